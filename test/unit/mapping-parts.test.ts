import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  defaultMappingOptions,
  extractedChildIn,
  extractedFileTags,
  extractedInSids,
  isAbsoluteUrl,
  mapErrorReport,
  mapOwnSampleReport,
  mapSubmissionToReport,
  MASS_TAG_PATTERN,
  normaliseDomain,
  normaliseIoc,
  sanitizeTag,
  scoreBucket,
  verdictForScore,
} from '../../src/mapping/index.js';

const FIXTURES = new URL('../fixtures/assemblyline-fixtures/', import.meta.url);
const load = (rel: string): unknown => JSON.parse(readFileSync(new URL(rel, FIXTURES), 'utf8'));
const ROOT = '3f6492021893dd0b94e38a54824c48fa2824cbdcfb923d9e8382e6342f01804f';
const STAGE2 = 'c79acf47758c66aa3f19873a054364ebf83c06d5fb75d9c99d88addc6af3b196';
const NOW = '2026-03-02T10:00:00.000Z';

test('MASS_TAG_PATTERN is the MASS rule: word characters, colon, dash, slash, plus, dot', () => {
  for (const ok of ['al:verdict:malicious', 'a/b+c.d-e_f:1']) assert.match(ok, MASS_TAG_PATTERN);
  for (const bad of ['has space', 'a,b', 'x@y', 'k=v', '#x', '', 'é']) assert.doesNotMatch(bad, MASS_TAG_PATTERN);
});

test('sanitizeTag keeps valid tags and repairs or rejects the rest', () => {
  assert.equal(sanitizeTag('al:family:agenttesla'), 'al:family:agenttesla');
  assert.equal(sanitizeTag('al:family:Agent Tesla'), 'al:family:Agent_Tesla');
  assert.equal(sanitizeTag('  Trojan.Win32/Emotet@x=1  '), 'Trojan.Win32/Emotet_x_1');
  assert.equal(sanitizeTag('café'), 'cafe');
  assert.equal(sanitizeTag('a,,,,b'), 'a_b');
  assert.equal(sanitizeTag('   '), null);
  assert.equal(sanitizeTag('@@@'), null);
  assert.equal(sanitizeTag('::--'), null);
  assert.equal(sanitizeTag('x'.repeat(500))?.length, 128);
  assert.equal(sanitizeTag(42 as unknown as string), null);
});

test('verdict thresholds are AL defaults: 1000 malicious, 700 highly_suspicious, 300 suspicious, 0 info, below safe', () => {
  assert.equal(verdictForScore(2000), 'malicious');
  assert.equal(verdictForScore(1000), 'malicious');
  assert.equal(verdictForScore(999), 'highly_suspicious');
  assert.equal(verdictForScore(700), 'highly_suspicious');
  assert.equal(verdictForScore(699), 'suspicious');
  assert.equal(verdictForScore(300), 'suspicious');
  assert.equal(verdictForScore(299), 'info');
  assert.equal(verdictForScore(0), 'info');
  assert.equal(verdictForScore(-1), 'safe');
  assert.equal(verdictForScore(500, { suspicious: 300, highly_suspicious: 500, malicious: 1000 }), 'highly_suspicious');
  assert.deepEqual(
    [-10, 0, 1, 299, 300, 699, 700, 999, 1000, 1999, 2000, 5000].map((s) => scoreBucket(s)),
    ['negative', '0', '1-299', '1-299', '300-699', '300-699', '700-999', '700-999', '1000-1999', '1000-1999', '2000+', '2000+'],
  );
});

test('IOC values: valid IPs, plausible host names (lower-cased), absolute URLs; others dropped', () => {
  assert.equal(normaliseIoc('ip', '203.0.113.45'), '203.0.113.45');
  assert.equal(normaliseIoc('ip', '2001:DB8::1'), '2001:db8::1');
  assert.equal(normaliseIoc('ip', '[2001:db8::1]'), '2001:db8::1');
  assert.equal(normaliseIoc('ip', '192.168.0.1'), '192.168.0.1');
  for (const bad of ['999.1.1.1', '1.2.3', 'example.com', 'fe80::1%eth0', '']) assert.equal(normaliseIoc('ip', bad), null, bad);
  assert.equal(normaliseDomain('CDN-Update.Example.NET.'), 'cdn-update.example.net');
  assert.equal(normaliseDomain('bücher.example'), 'xn--bcher-kva.example');
  for (const bad of ['localhost', '1.2.3.4', 'a..b.com', '-a.com', 'a b.com', 'http://a.com', 'x.' + 'a'.repeat(64) + '.com']) {
    assert.equal(normaliseDomain(bad), null, bad);
  }
  assert.ok(isAbsoluteUrl('http://cdn-update.example.net/gate.php'));
  assert.ok(isAbsoluteUrl('ftp://198.51.100.1/x'));
  for (const bad of ['/gate.php', 'cdn-update.example.net/gate.php', 'http://', 'http://a b/', 'not a url']) assert.ok(!isAbsoluteUrl(bad), bad);
});

test('invalid IOC tag values are dropped with a note; valid private addresses stay unless safelisted', () => {
  const sha = 'a'.repeat(64);
  const section = (tags: unknown[]) => ({ title_text: 's', body_format: 'TEXT', body: null, depth: 0, heuristic: null, tags });
  const full = {
    sid: 'X1',
    max_score: 0,
    files: [{ name: 'f', sha256: sha, size: 1 }],
    results: {
      [`${sha}.CAPE.v1.c1`]: {
        sha256: sha,
        response: { service_name: 'CAPE', extracted: [], supplementary: [] },
        result: {
          score: 0,
          sections: [
            section([
              { type: 'network.dynamic.ip', value: '10.0.0.5', safelisted: false },
              { type: 'network.dynamic.ip', value: '10.0.0.6', safelisted: true },
              { type: 'network.dynamic.ip', value: '300.1.1.1', safelisted: false },
              { type: 'network.dynamic.domain', value: 'EVIL.Example.COM', safelisted: false },
              { type: 'network.dynamic.domain', value: 'evil.example.com', safelisted: false },
              { type: 'network.dynamic.domain', value: 'not a domain', safelisted: false },
              { type: 'network.dynamic.uri', value: '/relative/path', safelisted: false },
              { type: 'network.port', value: 443, safelisted: false },
            ]),
          ],
        },
      },
    },
  };
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: sha, now: NOW }, defaultMappingOptions());
  assert.deepEqual(
    p.related.map((r) => r.kind !== 'file' && [r.kind, r.value]),
    [
      ['ip', '10.0.0.5'],
      ['domain', 'evil.example.com'],
    ],
  );
  assert.deepEqual(p.notes, [
    '1 ip tag value(s) dropped: not valid IP addresses',
    '1 domain tag value(s) dropped: not plausible host names',
    '1 uri tag value(s) dropped: not absolute URLs',
  ]);
});

test('echo-back: a file the bridge submitted is answered from the parent submission, restricted to its subtree', () => {
  const full = load('responses/submission-full.json');
  const p = mapOwnSampleReport({ full, sha256: STAGE2, parentSid: '4Hc0QBr3BzVoArs3KbVHIW', now: NOW }, defaultMappingOptions({ uiBaseUrl: 'https://al.example.org' }));
  assert.deepEqual(p.related, []);
  assert.equal(p.maxScore, 2000);
  assert.equal(p.verdict, 'malicious');
  assert.deepEqual(p.tags, ['al:verdict:malicious', 'al:score:2000+', 'al:family:agenttesla', 'al:attack:t1555']);
  const al = p.additionalMetadata.assemblyline as Record<string, unknown>;
  assert.equal(al.answered_from_parent_submission, true);
  assert.equal(al.parent_sid, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.equal(al.sid, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.equal(al.file_count, 1);
  assert.equal(al.error_count, 0);
  assert.deepEqual(al.services, ['ConfigExtractor']);
  const results = p.jsonReportObjects.al_results as { files: Array<{ sha256: string; name: string }> };
  assert.deepEqual(results.files.map((f) => [f.sha256, f.name]), [[STAGE2, 'stage2.dll']]);
  assert.equal(p.jsonReportObjects.al_errors, undefined);
  const tree = (p.jsonReportObjects.al_results as { file_tree: { root_sha256: string; tree: Array<{ sha256: string }> } }).file_tree;
  assert.equal(tree.root_sha256, STAGE2);
  assert.deepEqual(tree.tree.map((n) => n.sha256), [STAGE2]);
});

test('echo-back of the dropped file carries its error; an unknown file gives a plan with a note', () => {
  const full = load('responses/submission-full.json');
  const wupd = '66604483e3e657a90aba61ea5f7dcfb7d41c033fa6d4576129a990526fd285d9';
  const p = mapOwnSampleReport({ full, sha256: wupd, now: NOW }, defaultMappingOptions());
  assert.equal(p.verdict, 'info');
  assert.equal((p.jsonReportObjects.al_errors as { count: number }).count, 1);
  assert.equal((p.additionalMetadata.assemblyline as Record<string, unknown>).parent_sid, '4Hc0QBr3BzVoArs3KbVHIW');
  const unknown = mapOwnSampleReport({ full, sha256: 'b'.repeat(64), now: NOW }, defaultMappingOptions());
  assert.deepEqual(unknown.related, []);
  assert.ok(unknown.notes.some((n) => n.startsWith(`file ${'b'.repeat(64)} not found`)));
  const root = mapOwnSampleReport({ full, sha256: ROOT, now: NOW }, defaultMappingOptions());
  assert.deepEqual(root.related, []);
  assert.equal(root.maxScore, 2000);
});

test('the tags of an extracted file name the submission it came from; only with the extracted tag, in any order', () => {
  const tags = extractedFileTags('al:', 'DYNAMIC', '4Hc0QBr3BzVoArs3KbVHIW');
  assert.deepEqual(tags, ['al:extracted', 'al:relation:dynamic', 'al:sid:4Hc0QBr3BzVoArs3KbVHIW']);
  // MASS merges tags as a set and returns them in any order, with its own tags and those of other extractions.
  const onMass = ['sample-type:filesample', 'al:sid:ZZnewerSubmission1', ...tags.reverse(), 'mime:application/x-dosexec'];
  assert.deepEqual(extractedInSids(onMass, 'al:'), ['4Hc0QBr3BzVoArs3KbVHIW', 'ZZnewerSubmission1']);
  // Another prefix is another bridge system's tags; a report's tags never carry `extracted`.
  assert.deepEqual(extractedInSids(onMass, 'x:'), []);
  assert.deepEqual(extractedInSids(['al:sid:4Hc0QBr3BzVoArs3KbVHIW', 'al:verdict:malicious'], 'al:'), []);
  assert.deepEqual(extractedInSids(undefined, 'al:'), []);
  // An odd prefix is sanitized the same way on both sides.
  const odd = extractedFileTags('my bridge/', '', 'SID1');
  assert.deepEqual(odd, ['my_bridge/extracted', 'my_bridge/relation:extracted', 'my_bridge/sid:SID1']);
  assert.deepEqual(extractedInSids(odd, 'my bridge/'), ['SID1']);
  assert.deepEqual(extractedInSids(extractedFileTags('', 'EXTRACTED', 'SID2'), ''), ['SID2']);
});

test('extractedChildIn: Assemblyline confirms a file as extracted in the submission, never the submitted file itself', () => {
  const full = load('responses/submission-full.json');
  assert.equal(extractedChildIn(full, STAGE2), true);
  assert.equal(extractedChildIn(full, STAGE2.toUpperCase()), true);
  assert.equal(extractedChildIn(full, '66604483e3e657a90aba61ea5f7dcfb7d41c033fa6d4576129a990526fd285d9'), true);
  assert.equal(extractedChildIn(full, ROOT), false, 'the submitted file is not extracted');
  assert.equal(extractedChildIn(full, 'b'.repeat(64)), false);
  assert.equal(extractedChildIn(full, 'not a hash'), false);
  assert.equal(extractedChildIn(null, STAGE2), false);
});

test('error report: readable error_message, machine-readable code in additional_metadata, no tags', () => {
  const e = mapErrorReport({
    code: 'AL_SKIPPED',
    message: 'Assemblyline dropped the ingest\n(Skipped) 3 times',
    sid: 'ITH6639wFsxqg14IPBHKl',
    ingestId: 'ITH6639wFsxqg14IPBHKl',
    attempts: 3,
    bridgeVersion: '0.1.0',
    uiBaseUrl: 'https://al.example.org/',
    now: NOW,
  });
  assert.equal(e.errorMessage, 'Assemblyline analysis failed (AL_SKIPPED): Assemblyline dropped the ingest (Skipped) 3 times');
  assert.deepEqual(e.additionalMetadata, {
    assemblyline: {
      error: true,
      code: 'AL_SKIPPED',
      sid: 'ITH6639wFsxqg14IPBHKl',
      ingest_id: 'ITH6639wFsxqg14IPBHKl',
      link: 'https://al.example.org/submission/ITH6639wFsxqg14IPBHKl',
      attempts: 3,
      bridge_version: '0.1.0',
      reported_at: NOW,
    },
  });
  assert.deepEqual(e.tags, []);
  const withUserinfo = mapErrorReport({ code: 'X', message: 'm', sid: 'S1', uiBaseUrl: 'https://user:pw@al.example.org/ui/', bridgeVersion: '0.1.0', now: NOW });
  assert.equal((withUserinfo.additionalMetadata.assemblyline as Record<string, unknown>).link, 'https://al.example.org/ui/submission/S1');
  const bare = mapErrorReport({ code: '', message: '', bridgeVersion: '0.1.0', now: NOW });
  assert.equal(bare.errorMessage, 'Assemblyline analysis failed (UNKNOWN)');
  assert.equal((bare.additionalMetadata.assemblyline as Record<string, unknown>).link, null);
});

test('defaultMappingOptions fills gaps and rejects values of the wrong type', () => {
  const d = defaultMappingOptions();
  assert.deepEqual(d.extractedRelations, ['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED']);
  assert.equal(d.tagPrefix, 'al:');
  const o = defaultMappingOptions({ maxTags: -3, staticIocs: ['IP', 'bogus'] as never, extractedRelations: ['dynamic'], maxDepth: Number.NaN });
  assert.equal(o.maxTags, d.maxTags);
  assert.deepEqual(o.staticIocs, ['ip']);
  assert.deepEqual(o.extractedRelations, ['DYNAMIC']);
  assert.equal(o.maxDepth, d.maxDepth);
});

test('nested extraction: each file points to the file that extracted it; cycles and repeats are related once per parent', () => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => x.repeat(64));
  const result = (sha: string, service: string, extracted: Array<[string, string, string?]>, supplementary: string[] = []) => ({
    sha256: sha,
    response: {
      service_name: service,
      extracted: extracted.map(([s, name, rel]) => ({ sha256: s, name, ...(rel ? { parent_relation: rel } : {}) })),
      supplementary: supplementary.map((s) => ({ sha256: s, name: 'report.json', parent_relation: 'INFORMATION' })),
    },
    result: { score: 0, sections: [] },
  });
  const full = {
    sid: 'N1',
    files: [{ name: 'a.zip', sha256: a, size: 10 }],
    results: {
      [`${a}.Extract.v1.c1`]: result(a, 'Extract', [[b, 'b.exe'], [c, 'c.dll']], [d]),
      [`${b}.Extract.v1.c1`]: result(b, 'Extract', [[c, 'c.dll'], [a, 'a.zip']]),
      [`${c}.CAPE.v1.c1`]: result(c, 'CAPE', [[c, 'self'], [d, 'mem.dmp', 'MEMDUMP']]),
    },
  };
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: a, now: NOW }, defaultMappingOptions());
  assert.deepEqual(
    p.related.map((r) => r.kind === 'file' && [r.sha256[0], r.parentSha256[0], r.depth, r.parentRelation]),
    [
      ['b', 'a', 1, 'EXTRACTED'],
      ['c', 'a', 1, 'EXTRACTED'],
      ['c', 'b', 2, 'EXTRACTED'],
      ['d', 'c', 2, 'MEMDUMP'],
    ],
  );
  const noMemdump = mapSubmissionToReport({ full, cacheHit: false, rootSha256: a, now: NOW }, defaultMappingOptions({ extractedRelations: ['EXTRACTED'] }));
  assert.ok(!noMemdump.related.some((r) => r.kind === 'file' && r.sha256 === d));
});

test('old stored tag layout ({type: {sub: [values]}}) and numeric tag values are read', () => {
  const sha = 'e'.repeat(64);
  const full = {
    sid: 'OLD1',
    files: [{ name: 'x', sha256: sha, size: 1 }],
    results: [
      {
        sha256: sha,
        response: { service_name: 'Legacy' },
        result: {
          score: 1200,
          sections: [
            {
              title_text: 'legacy',
              body: 'x',
              heuristic: { heur_id: 'LEGACY.1', name: 'l', score: 1200, attack: [{ attack_id: 'T1059' }] },
              tags: { network: { dynamic: { ip: ['198.51.100.5'] }, port: [443] }, attribution: { family: ['Emotet Loader'] } },
            },
          ],
        },
      },
    ],
  };
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: sha, now: NOW }, defaultMappingOptions());
  assert.equal(p.verdict, 'malicious');
  assert.deepEqual(p.tags, ['al:verdict:malicious', 'al:score:1000-1999', 'al:family:emotet_loader', 'al:attack:t1059']);
  assert.deepEqual(p.related.map((r) => r.kind !== 'file' && r.key), ['ip:198.51.100.5']);
});

test('a value safelisted in a result without a usable sha256 still never becomes a sample (found by the property test)', () => {
  const root = '0f'.repeat(32);
  const other = '1f'.repeat(32);
  const section = (type: string, safelisted: unknown) => ({ title_text: '', body: '', body_format: 'TEXT', depth: 0, heuristic: null, tags: [{ type, value: 'EVIL.Example.com', safelisted }] });
  const full = {
    sid: 'S1',
    files: [{ name: 'x', sha256: root, size: 1 }],
    results: {
      [`${other}.CAPE.v4_7_0.c0`]: { sha256: other, response: { service_name: 'CAPE', service_version: '4.7.0', extracted: [], supplementary: [] }, result: { score: 0, sections: [section('network.static.domain', false)] } },
      '.CAPE.v4_7_0.c1': { sha256: '', response: { service_name: 'CAPE', service_version: '4.7.0', extracted: [], supplementary: [] }, result: { score: 0, sections: [section('network.dynamic.domain', true)] } },
    },
    errors: {},
    file_tree: {},
  };
  const plan = mapSubmissionToReport({ full, cacheHit: false, rootSha256: root, now: '2026-01-01T00:00:00Z' }, defaultMappingOptions({ staticIocs: ['domain'] }));
  assert.deepEqual(plan.related, []);
});

test('a supplementary file listed only by a result without a usable sha256 is still no sample (found by the property test)', () => {
  const root = '0f'.repeat(32);
  const supp = '7f'.repeat(32);
  const full = {
    sid: 'S2',
    files: [{ name: 'x', sha256: root, size: 1 }],
    results: {
      '.CAPE.v4_7_0.c0.e': { sha256: '', response: { service_name: 'CAPE', service_version: '4.7.0', extracted: [], supplementary: [{ sha256: supp, name: 'report.zip', parent_relation: 'INFORMATION' }] }, result: { score: 0, sections: [] } },
    },
    errors: {},
    file_tree: { [root]: { sha256: root, name: ['x'], type: '', size: 1, score: 0, truncated: false, children: { [supp]: { sha256: supp, name: ['report.zip'], type: '', size: 5, score: 0, truncated: false, children: {} } } } },
  };
  const plan = mapSubmissionToReport({ full, cacheHit: false, rootSha256: root, now: '2026-01-01T00:00:00Z' }, defaultMappingOptions({}));
  assert.deepEqual(plan.related, []);
});
