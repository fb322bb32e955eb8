import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  defaultMappingOptions,
  mapSubmissionToReport,
  MASS_TAG_PATTERN,
  type MappingOptions,
  type RelatedItem,
} from '../../src/mapping/index.js';

const FIXTURES = new URL('../fixtures/assemblyline-fixtures/', import.meta.url);
const load = (rel: string): unknown => JSON.parse(readFileSync(new URL(rel, FIXTURES), 'utf8'));

const ROOT = '3f6492021893dd0b94e38a54824c48fa2824cbdcfb923d9e8382e6342f01804f';
const STAGE2 = 'c79acf47758c66aa3f19873a054364ebf83c06d5fb75d9c99d88addc6af3b196';
const WUPDSVC = '66604483e3e657a90aba61ea5f7dcfb7d41c033fa6d4576129a990526fd285d9';
const CAPE_ZIP = 'f617660a16b150b89110ec3b89f19ac98f92227b9f28105ff9098a46d657bd84';
const NOW = '2026-03-02T10:00:00.000Z';

const full = load('responses/submission-full.json');
const summary = load('responses/submission-summary.json');
const fresh = load('messages/fresh-analysis.json');

function plan(opts: Partial<MappingOptions> = {}, withSummary = true) {
  return mapSubmissionToReport(
    { full, summary: withSummary ? summary : undefined, message: fresh, cacheHit: false, rootSha256: ROOT, now: NOW },
    defaultMappingOptions({ uiBaseUrl: 'https://al.example.org/', bridgeVersion: '0.1.0', ...opts }),
  );
}

const files = (related: RelatedItem[]) => related.filter((r) => r.kind === 'file');
const iocs = (related: RelatedItem[]) => related.filter((r) => r.kind !== 'file');

test('fixture scenario: verdict, score and metadata under one assemblyline key', () => {
  const p = plan();
  assert.equal(p.maxScore, 2000);
  assert.equal(p.verdict, 'malicious');
  assert.equal(p.sid, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.deepEqual(Object.keys(p.additionalMetadata), ['assemblyline']);
  const al = p.additionalMetadata.assemblyline as Record<string, unknown>;
  assert.equal(al.sid, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.equal(al.link, 'https://al.example.org/submission/4Hc0QBr3BzVoArs3KbVHIW');
  assert.equal(al.max_score, 2000);
  assert.equal(al.verdict, 'malicious');
  assert.equal(al.file_count, 3);
  assert.equal(al.error_count, 1);
  assert.deepEqual(al.services, ['CAPE', 'ConfigExtractor', 'Extract', 'FrankenStrings', 'YARA']);
  assert.equal(al.completed, '2026-03-02T09:21:47.903114Z');
  assert.equal(al.cache_hit, false);
  assert.equal(al.bridge_version, '0.1.0');
  assert.equal(al.ingest_id, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.ok(JSON.stringify(p.additionalMetadata).length < 4096);
});

test('fixture scenario: sample tags are verdict, score bucket, family and ATT&CK ids, all MASS-valid', () => {
  const p = plan();
  assert.deepEqual(p.tags, [
    'al:verdict:malicious',
    'al:score:2000+',
    'al:family:agenttesla',
    'al:attack:t1055',
    'al:attack:t1071',
    'al:attack:t1555',
  ]);
  for (const t of p.tags) assert.match(t, MASS_TAG_PATTERN);
});

test('tagKinds selects tag families, maxTags caps them with a note', () => {
  const only = plan({ tagKinds: ['heuristic'], tagPrefix: 'assemblyline/' });
  assert.deepEqual(only.tags, [
    'assemblyline/heuristic:cape.14',
    'assemblyline/heuristic:cape.32',
    'assemblyline/heuristic:configextractor.1',
    'assemblyline/heuristic:configextractor.2',
  ]);
  const capped = plan({ maxTags: 2 });
  assert.deepEqual(capped.tags, ['al:verdict:malicious', 'al:score:2000+']);
  assert.ok(capped.notes.some((n) => /4 sample tag\(s\) not set: MaxTags is 2/.test(n)));
});

test('extracted and dropped files become related files; the supplementary zip does not', () => {
  const p = plan();
  const f = files(p.related);
  assert.deepEqual(
    f.map((x) => [x.sha256, x.name, x.parentSha256, x.parentRelation, x.depth, x.size, x.relation]),
    [
      [WUPDSVC, 'wupdsvc.exe', ROOT, 'DYNAMIC', 1, 61440, 'dropped-by'],
      [STAGE2, 'stage2.dll', ROOT, 'EXTRACTED', 1, 98304, 'dropped-by'],
    ],
  );
  assert.equal(f[0].kind === 'file' && f[0].key, `file:${WUPDSVC}`);
  assert.ok(!p.related.some((r) => r.kind === 'file' && r.sha256 === CAPE_ZIP));
  // files first, then IOCs
  const firstIoc = p.related.findIndex((r) => r.kind !== 'file');
  assert.ok(p.related.slice(firstIoc).every((r) => r.kind !== 'file'));
});

test('extractedRelations filters by parent_relation; extractedFiles=false and maxDepth=0 turn files off', () => {
  assert.deepEqual(
    files(plan({ extractedRelations: ['DYNAMIC'] }).related).map((r) => r.kind === 'file' && r.sha256),
    [WUPDSVC],
  );
  const filtered = plan({ extractedRelations: ['DYNAMIC'] });
  assert.ok(filtered.notes.some((n) => /1 extracted file\(s\) skipped: parent_relation not in ExtractedRelations/.test(n)));
  assert.equal(files(plan({ extractedFiles: false }).related).length, 0);
  const shallow = plan({ maxDepth: 0 });
  assert.equal(files(shallow.related).length, 0);
  assert.ok(shallow.notes.some((n) => /deeper than MaxDepth 0/.test(n)));
  const one = plan({ maxExtracted: 1 });
  assert.equal(files(one.related).length, 1);
  assert.ok(one.notes.some((n) => /1 extracted file relation\(s\) not reported: MaxExtracted is 1/.test(n)));
});

test('network.dynamic tags become IOCs with their relation; the safelisted domain is excluded', () => {
  const p = plan();
  assert.deepEqual(
    iocs(p.related).map((r) => [r.kind, r.value, r.relation, r.tagType, r.sourceSha256]),
    [
      ['uri', 'http://cdn-update.example.net/gate.php', 'retrieved-by', 'network.dynamic.uri', ROOT],
      ['domain', 'cdn-update.example.net', 'resolved-by', 'network.dynamic.domain', ROOT],
      ['ip', '203.0.113.45', 'contacted-by', 'network.dynamic.ip', ROOT],
      ['ip', '192.0.2.80', 'contacted-by', 'network.dynamic.ip', ROOT],
      ['ip', '198.51.100.23', 'contacted-by', 'network.dynamic.ip', ROOT],
    ],
  );
  assert.ok(!p.related.some((r) => r.kind === 'domain' && r.value === 'settings-win.data.microsoft.com'));
  assert.equal(iocs(plan({ networkIocs: false }).related).length, 0);
});

test('network.static IOCs only for the types listed in staticIocs; safelisted static domain never', () => {
  const p = plan({ staticIocs: ['domain', 'uri'] });
  const statics = iocs(p.related).filter((r) => r.tagType.startsWith('network.static.'));
  assert.deepEqual(
    statics.map((r) => [r.kind, r.value, r.sourceSha256]),
    [
      ['domain', 'panel.example.org', ROOT],
      ['uri', 'http://panel.example.org/admin/login.php', ROOT],
      ['domain', 'mail-sync.example.com', STAGE2],
      ['uri', 'https://mail-sync.example.com/api/v2/collect', STAGE2],
    ],
  );
  assert.ok(!p.related.some((r) => r.kind !== 'file' && r.value === 'schemas.microsoft.com'));
  assert.ok(!p.related.some((r) => r.kind === 'ip' && r.value === '198.51.100.77'));
});

test('an IOC seen in a file that is not planned is attached to the root and says where it was seen', () => {
  const p = plan({ staticIocs: ['uri'], extractedFiles: false });
  const c2 = p.related.find((r) => r.kind === 'uri' && r.value === 'https://mail-sync.example.com/api/v2/collect');
  assert.ok(c2 && c2.kind === 'uri');
  assert.equal(c2.sourceSha256, ROOT);
  assert.equal(c2.observedInSha256, STAGE2);
});

test('maxIocs caps IOCs and notes the cut', () => {
  const p = plan({ maxIocs: 2 });
  assert.equal(iocs(p.related).length, 2);
  assert.ok(p.notes.some((n) => n === '3 network IOC(s) not reported: MaxIOCs is 2'));
});

test('al_summary from the summary document: tags by group, heuristics by level, ATT&CK matrix', () => {
  const s = plan().jsonReportObjects.al_summary as Record<string, any>;
  assert.equal(s.source, 'summary');
  assert.equal(s.verdict, 'malicious');
  assert.deepEqual(s.tags.attribution, [{ type: 'attribution.family', value: 'AGENTTESLA', level: 'malicious', safelisted: false }]);
  assert.equal(s.tags.ioc.length, 12);
  assert.deepEqual(s.tags.behavior, []);
  assert.deepEqual(
    s.heuristics.malicious.map((h: { heur_id: string }) => h.heur_id),
    ['CAPE.14', 'CONFIGEXTRACTOR.1', 'CONFIGEXTRACTOR.2'],
  );
  assert.deepEqual(s.heuristics.suspicious, [{ heur_id: 'CAPE.32', name: 'Injection' }]);
  assert.deepEqual(
    s.attack_matrix.map((c: { category: string; techniques: Array<{ attack_id: string }> }) => [c.category, c.techniques.map((t) => t.attack_id)]),
    [
      ['command-and-control', ['T1071']],
      ['credential-access', ['T1555']],
      ['defense-evasion', ['T1055']],
      ['privilege-escalation', ['T1055']],
    ],
  );
});

test('without a summary document the same summary is computed from full', () => {
  const fromSummary = plan().jsonReportObjects.al_summary as Record<string, any>;
  const computed = plan({}, false).jsonReportObjects.al_summary as Record<string, any>;
  assert.equal(computed.source, 'full');
  const sortTags = (list: Array<{ type: string; value: string }>) =>
    [...list].sort((a, b) => (a.type + a.value < b.type + b.value ? -1 : 1));
  for (const g of ['ioc', 'attribution', 'behavior']) assert.deepEqual(sortTags(computed.tags[g]), sortTags(fromSummary.tags[g]));
  const ids = (h: Record<string, Array<{ heur_id: string }>>) =>
    Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.map((x) => x.heur_id).sort()]));
  assert.deepEqual(ids(computed.heuristics), ids(fromSummary.heuristics));
  assert.deepEqual(computed.attack_matrix, fromSummary.attack_matrix);
  assert.deepEqual(plan({}, false).tags, plan().tags);
});

test('al_results: per file, per service, sections with title, heuristic and tags; bodies trimmed with a note', () => {
  const p = plan({ maxSectionBody: 300 });
  const r = p.jsonReportObjects.al_results as Record<string, any>;
  assert.deepEqual(
    r.files.map((f: { sha256: string; results: Array<{ service: string }> }) => [f.sha256, f.results.map((x) => x.service)]),
    [
      [ROOT, ['CAPE', 'Extract', 'FrankenStrings', 'YARA']],
      [WUPDSVC, ['YARA']],
      [STAGE2, ['ConfigExtractor']],
    ],
  );
  const cape = r.files[0].results[0];
  const inj = cape.sections.find((s: { title: string }) => s.title === 'Signature: injection_rwx');
  assert.deepEqual(inj.heuristic, { heur_id: 'CAPE.32', name: 'Injection', score: 500, attack_ids: ['T1055'], signatures: ['injection_rwx'] });
  const sandbox = cape.sections.find((s: { body_format: string }) => s.body_format === 'SANDBOX');
  assert.equal(sandbox.body_truncated, true);
  assert.equal(typeof sandbox.body, 'string');
  assert.equal(sandbox.body.length, 300);
  assert.ok(sandbox.body_length > 300);
  assert.match(sandbox.body_note, /trimmed to 300 of \d+ characters/);
  const ports = cape.sections.find((s: { title: string }) => s.title === 'TCP/UDP Network Traffic');
  assert.ok(ports.tags.some((t: { type: string; value: string }) => t.type === 'network.port' && t.value === '80'));
  assert.ok(p.notes.some((n) => /section bod(y|ies) trimmed to 300 characters/.test(n)));
  assert.equal(r.files[0].results[3].empty, true);
});

test('al_results.file_tree keeps the tree with parent_relation; al_errors lists the MetaDefender error', () => {
  const p = plan();
  const tree = (p.jsonReportObjects.al_results as Record<string, any>).file_tree;
  assert.equal(tree.root_sha256, ROOT);
  assert.equal(tree.tree.length, 1);
  assert.equal(tree.tree[0].parent_relation, 'ROOT');
  assert.deepEqual(
    tree.tree[0].children.map((c: { name: string; parent_relation: string; depth: number }) => [c.name, c.parent_relation, c.depth]),
    [
      ['wupdsvc.exe', 'DYNAMIC', 1],
      ['stage2.dll', 'EXTRACTED', 1],
    ],
  );
  const errors = p.jsonReportObjects.al_errors as Record<string, any>;
  assert.equal(errors.count, 1);
  assert.deepEqual(errors.errors[0], {
    sha256: WUPDSVC,
    file_name: 'wupdsvc.exe',
    service: 'MetaDefender',
    service_version: '0',
    type: 'TASK PRE-EMPTED',
    severity: 'error',
    status: 'FAIL_NONRECOVERABLE',
    message: 'The number of retries has passed the limit.',
  });
});

test('two report objects (three with al_errors, only when services failed), each with the format version', () => {
  const p = plan();
  assert.deepEqual(Object.keys(p.jsonReportObjects).sort(), ['al_errors', 'al_results', 'al_summary']);
  for (const o of Object.values(p.jsonReportObjects)) assert.equal((o as { format_version: number }).format_version, 2);
  const doc = structuredClone((full as { api_response: Record<string, unknown> }).api_response);
  doc.errors = {};
  const clean = mapSubmissionToReport({ full: doc, cacheHit: false, rootSha256: ROOT, now: NOW }, defaultMappingOptions());
  assert.deepEqual(Object.keys(clean.jsonReportObjects).sort(), ['al_results', 'al_summary']);
});

test('the same input gives the same plan (deterministic)', () => {
  assert.deepEqual(plan({ staticIocs: ['ip', 'domain', 'uri'] }), plan({ staticIocs: ['ip', 'domain', 'uri'] }));
});

test('a summary marked partial for a completed submission: tags and al_summary come from the full results, with a note', () => {
  const partial = JSON.parse(readFileSync(new URL('../fixtures/mapping-truth/submission-summary-partial.json', import.meta.url), 'utf8'));
  const opts = defaultMappingOptions({ uiBaseUrl: 'https://al.example.org/', bridgeVersion: '0.1.0' });
  const p = mapSubmissionToReport({ full, summary: partial, message: fresh, cacheHit: false, rootSha256: ROOT, now: NOW }, opts);
  // the same tags as with the complete summary, not just verdict and score
  assert.deepEqual(p.tags, plan().tags);
  assert.ok(p.tags.includes('al:family:agenttesla'));
  const s = p.jsonReportObjects.al_summary as Record<string, any>;
  const complete = plan().jsonReportObjects.al_summary as Record<string, any>;
  assert.equal(s.partial, false);
  assert.equal(s.source, 'full');
  const sortTags = (list: Array<{ type: string; value: string }>) => [...list].map((t) => `${t.type}=${t.value}`).sort();
  for (const g of ['ioc', 'attribution', 'behavior']) assert.deepEqual(sortTags(s.tags[g]), sortTags(complete.tags[g]), g);
  assert.deepEqual(s.attack_matrix, complete.attack_matrix);
  assert.ok(s.heuristics.malicious.length > 0);
  assert.ok(p.notes.some((n) => n.includes('marked partial')), p.notes.join('\n'));
  // the safelisted domain stays out of the related samples
  assert.ok(!p.related.some((r) => r.kind === 'domain' && r.value === 'settings-win.data.microsoft.com'));
  // a partial summary of a submission that is really unfinished still says partial
  const running = { ...(full as { api_response: Record<string, unknown> }).api_response, state: 'submitted' };
  const q = mapSubmissionToReport({ full: running, summary: partial, cacheHit: false, rootSha256: ROOT, now: NOW }, opts);
  assert.equal((q.jsonReportObjects.al_summary as Record<string, unknown>).partial, true);
  assert.deepEqual(q.tags, p.tags);
});
