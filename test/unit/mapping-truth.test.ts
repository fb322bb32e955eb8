import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { defaultMappingOptions, mapSubmissionToReport, relationTarget, type MappingOptions, type RelatedItem } from '../../src/mapping/index.js';

// What a report claims about related samples must be what is true: counts, notes and relations.

const FIXTURES = new URL('../fixtures/mapping-truth/', import.meta.url);
const load = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));
const NOW = '2026-03-02T10:00:00.000Z';
const [ROOT, A, B, C, D, E] = ['0', '1', '2', '3', '4', '5'].map((x) => `${x}a`.repeat(32));

type Edge = [parent: string, child: string, relation?: string];

/** An AL 4 `submission/full` with one Extract result per parent, extracting the given children. */
function fullOf(edges: Edge[], opts: { sizes?: Record<string, number>; iocsOf?: Record<string, string[]> } = {}) {
  const parents = [...new Set([...edges.map((e) => e[0]), ...Object.keys(opts.iocsOf ?? {})])];
  const results: Record<string, unknown> = {};
  for (const p of parents) {
    results[`${p}.Extract.v4_7_0.c1`] = {
      sha256: p,
      response: {
        service_name: 'Extract',
        service_version: '4.7.0',
        extracted: edges.filter((e) => e[0] === p).map(([, c, rel]) => ({ sha256: c, name: `${c.slice(0, 2)}.bin`, parent_relation: rel ?? 'EXTRACTED' })),
        supplementary: [],
      },
      result: {
        score: 0,
        sections: (opts.iocsOf?.[p] ?? []).map((ip) => ({ title_text: 'net', body: '', body_format: 'TEXT', depth: 0, heuristic: null, tags: [{ type: 'network.dynamic.ip', value: ip, safelisted: false }] })),
      },
    };
  }
  const fileInfos: Record<string, unknown> = {};
  for (const [sha, size] of Object.entries(opts.sizes ?? {})) fileInfos[sha] = { sha256: sha, size, type: 'unknown', is_supplementary: false };
  return { sid: 'TRUTH1', state: 'completed', files: [{ name: 'root.bin', sha256: ROOT, size: 10 }], results, errors: {}, file_infos: fileInfos };
}

function plan(full: unknown, opts: Partial<MappingOptions> = {}) {
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: ROOT, now: NOW }, defaultMappingOptions(opts));
  const related = (p.jsonReportObjects.al_summary as { related: Record<string, number> }).related;
  return { p, related };
}

const fileItems = (related: RelatedItem[]) => related.filter((r): r is Extract<RelatedItem, { kind: 'file' }> => r.kind === 'file');

test('MaxDepth counts every relation it leaves out: root→a→b→c→d with MaxDepth 1 leaves out three', () => {
  const chain: Edge[] = [[ROOT, A], [A, B], [B, C], [C, D]];
  const one = plan(fullOf(chain), { maxDepth: 1 });
  assert.deepEqual(fileItems(one.p.related).map((f) => f.sha256), [A]);
  assert.equal(one.related.files_beyond_max_depth, 3);
  assert.ok(one.p.notes.includes('3 extracted file relation(s) deeper than MaxDepth 1 not reported'), one.p.notes.join('\n'));
  const two = plan(fullOf(chain), { maxDepth: 2 });
  assert.deepEqual(fileItems(two.p.related).map((f) => f.sha256), [A, B]);
  assert.equal(two.related.files_beyond_max_depth, 2);
  const zero = plan(fullOf(chain), { maxDepth: 0 });
  assert.equal(zero.related.files, 0);
  assert.equal(zero.related.files_beyond_max_depth, 4);
  const all = plan(fullOf(chain), { maxDepth: 4 });
  assert.equal(all.related.files, 4);
  assert.equal(all.related.files_beyond_max_depth, 0);
  assert.ok(!all.p.notes.some((n) => n.includes('MaxDepth')));
});

test('a file reached both within and beyond MaxDepth is related once, and only the deep relation is counted as left out', () => {
  // root→a→b→c and root→c: c is at depth 1 through root, b→c is a depth-3 relation
  const p = plan(fullOf([[ROOT, A], [A, B], [B, C], [ROOT, C]]), { maxDepth: 2 });
  assert.deepEqual(fileItems(p.p.related).map((f) => [f.sha256, f.parentSha256]), [[A, ROOT], [C, ROOT], [B, A]]);
  assert.equal(p.related.files_beyond_max_depth, 1);
  assert.equal(p.related.files_under_omitted_parent, 0);
});

test('children of a file that is not related are counted and never planned, whatever kept the parent out', () => {
  // a has a relation that is not allowed; b is cut by MaxExtracted; their children must not vanish silently
  const full = fullOf([[ROOT, A, 'MEMDUMP'], [A, C], [C, E], [ROOT, B], [ROOT, D], [D, C]]);
  const p = plan(full, { extractedRelations: ['EXTRACTED'], maxExtracted: 2, maxDepth: 3 });
  assert.deepEqual(fileItems(p.p.related).map((f) => [f.sha256, f.parentSha256]), [[B, ROOT], [D, ROOT]]);
  assert.equal(p.related.files_with_other_relation, 1); // a
  assert.equal(p.related.files_cut_by_max_extracted, 1); // c under d
  // a→c and c→e: their parents have no MASS sample
  assert.equal(p.related.files_under_omitted_parent, 2);
  assert.ok(p.p.notes.includes('2 extracted file relation(s) not reported: the file they were extracted from is not reported'), p.p.notes.join('\n'));
});

test('MaxExtractedSize: a file Assemblyline reports as too large is not related, with a note, and neither are its children', () => {
  const full = fullOf([[ROOT, A], [ROOT, B], [B, C]], { sizes: { [A]: 5, [B]: 200, [C]: 7 } });
  const capped = plan(full, { maxExtractedSize: 100 });
  assert.deepEqual(fileItems(capped.p.related).map((f) => f.sha256), [A]);
  assert.equal(capped.related.files, 1);
  assert.equal(capped.related.files_too_large, 1);
  assert.equal(capped.related.files_under_omitted_parent, 1);
  assert.ok(capped.p.notes.includes('1 extracted file(s) skipped: larger than MaxExtractedSize (100 bytes)'), capped.p.notes.join('\n'));
  const free = plan(full);
  assert.deepEqual(fileItems(free.p.related).map((f) => f.sha256), [A, B, C]);
  assert.equal(free.related.files_too_large, 0);
  // a file of unknown size is planned: only the download can tell
  const unknown = plan(fullOf([[ROOT, A]]), { maxExtractedSize: 1 });
  assert.equal(unknown.related.files, 1);
});

test('the plan names each item\'s dependency: nested files and IOCs of related files point at the file item they need', () => {
  const full = fullOf([[ROOT, A], [A, B], [ROOT, B]], { iocsOf: { [ROOT]: ['203.0.113.1'], [A]: ['203.0.113.2'] } });
  const { p } = plan(full);
  const byPair = new Map(p.related.map((r) => [r.kind === 'file' ? `${r.sha256}:${r.parentSha256}` : r.key, r]));
  assert.equal(byPair.get(`${A}:${ROOT}`)?.dependsOn, undefined);
  assert.equal(byPair.get(`${B}:${ROOT}`)?.dependsOn, undefined);
  assert.equal(byPair.get(`${B}:${A}`)?.dependsOn, `file:${A}`);
  assert.equal(byPair.get('ip:203.0.113.1')?.dependsOn, undefined);
  assert.equal(byPair.get('ip:203.0.113.2')?.dependsOn, `file:${A}`);
  // every dependency is an earlier file item
  const seen = new Set<string>();
  for (const r of p.related) {
    if (r.dependsOn !== undefined) assert.ok(seen.has(r.dependsOn), `${r.key} depends on a later item`);
    if (r.kind === 'file') seen.add(r.key);
  }
});

test('relationTarget: no dropped-by the root for a child whose parent has no MASS sample; IOCs fall back to the analysed sample with a note', () => {
  const full = fullOf([[ROOT, A], [A, B], [ROOT, B]], { iocsOf: { [A]: ['203.0.113.2'] } });
  const { p } = plan(full);
  const item = (pred: (r: RelatedItem) => boolean) => p.related.find(pred)!;
  const childOfA = item((r) => r.kind === 'file' && r.sha256 === B && r.parentSha256 === A);
  const childOfRoot = item((r) => r.kind === 'file' && r.sha256 === B && r.parentSha256 === ROOT);
  const ioc = item((r) => r.key === 'ip:203.0.113.2');
  const none = () => false;
  const all = () => true;

  const skipped = relationTarget(childOfA, none);
  assert.equal(skipped.action, 'skip');
  assert.ok(skipped.action === 'skip' && skipped.reason.includes(A) && skipped.reason.includes(B), JSON.stringify(skipped));
  assert.deepEqual(relationTarget(childOfA, all), { action: 'relate', otherKey: `file:${A}`, note: null });
  // the same file's relation to the root stays true whatever happened to its other parent
  assert.deepEqual(relationTarget(childOfRoot, none), { action: 'relate', otherKey: null, note: null });

  const fallback = relationTarget(ioc, none);
  assert.equal(fallback.action, 'relate');
  assert.ok(fallback.action === 'relate' && fallback.otherKey === null && fallback.note !== null && fallback.note.includes(A));
  assert.deepEqual(relationTarget(ioc, (k) => k === `file:${A}`), { action: 'relate', otherKey: `file:${A}`, note: null });
});

test('safelisted IOCs in Assemblyline\'s stored tag layout (nested tags plus safelisted_tags) are never related', () => {
  const full = load('submission-full-stored-tags.json');
  const { p, related } = plan(full, { staticIocs: ['ip', 'domain'] });
  const keys = p.related.filter((r) => r.kind !== 'file').map((r) => r.key).sort();
  assert.deepEqual(keys, ['domain:cdn-update.example.net', 'domain:panel.example.org', 'ip:203.0.113.45']);
  assert.equal(related.iocs_safelisted, 2);
  // the safelisted values are kept in the report, marked as such
  const results = p.jsonReportObjects.al_results as { files: Array<{ results: Array<{ service: string; sections: Array<{ tags: Array<{ type: string; value: string; safelisted: boolean }> }> }> }> };
  const cape = results.files.flatMap((f) => f.results).find((r) => r.service === 'CAPE')!;
  assert.deepEqual(
    cape.sections[0].tags.filter((t) => t.safelisted).map((t) => `${t.type}=${t.value}`).sort(),
    ['network.dynamic.domain=settings-win.data.microsoft.com', 'network.dynamic.ip=192.0.2.53'],
  );
  const summary = p.jsonReportObjects.al_summary as { tags: { ioc: Array<{ value: string; safelisted: boolean }> } };
  assert.equal(summary.tags.ioc.find((t) => t.value === 'settings-win.data.microsoft.com')?.safelisted, true);
});

test('a CaRT sample: given the MASS sample\'s sha256, the report names the analysed inner file and relates to the MASS sample', () => {
  // AL unpacks a CaRT upload and analyses the inner file (files[0]); the MASS sample is the CaRT file
  const cartOnMass = '6c'.repeat(32);
  const full = fullOf([[ROOT, A]], { iocsOf: { [ROOT]: ['203.0.113.9'] } });
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: cartOnMass, now: NOW }, defaultMappingOptions());
  const al = p.additionalMetadata.assemblyline as Record<string, unknown>;
  assert.equal(al.analysed_sha256, ROOT);
  const [file, ioc] = p.related;
  assert.ok(file.kind === 'file' && file.sha256 === A && file.parentSha256 === cartOnMass && file.dependsOn === undefined, JSON.stringify(file));
  assert.ok(ioc.kind === 'ip' && ioc.sourceSha256 === cartOnMass && ioc.dependsOn === undefined, JSON.stringify(ioc));
  assert.deepEqual(relationTarget(file, () => false), { action: 'relate', otherKey: null, note: null });
  // handed Assemblyline's own sha256 instead, the mapping cannot know the sample was a CaRT file
  const wrong = mapSubmissionToReport({ full, cacheHit: false, rootSha256: ROOT, now: NOW }, defaultMappingOptions());
  assert.equal((wrong.additionalMetadata.assemblyline as Record<string, unknown>).analysed_sha256, undefined);
});
