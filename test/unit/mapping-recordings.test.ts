import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { defaultMappingOptions, mapSubmissionToReport, MASS_TAG_PATTERN, type ReportPlan } from '../../src/mapping/index.js';

const FIXTURES = new URL('../fixtures/assemblyline-fixtures/', import.meta.url);
const load = (rel: string): unknown => JSON.parse(readFileSync(new URL(rel, FIXTURES), 'utf8'));
const NOW = '2026-03-02T10:00:00.000Z';
const opts = defaultMappingOptions({ uiBaseUrl: 'https://al.example.org', bridgeVersion: '0.1.0' });
const meta = (p: ReportPlan) => p.additionalMetadata.assemblyline as Record<string, unknown>;

function assertWellFormed(p: ReportPlan): void {
  for (const t of p.tags) assert.match(t, MASS_TAG_PATTERN);
  for (const k of Object.keys(p.jsonReportObjects)) assert.match(k, /^[A-Za-z0-9_-]+$/);
  assert.ok(JSON.stringify(p.additionalMetadata).length < 4096);
  assert.doesNotThrow(() => JSON.stringify(p));
}

test('real AL 4.0 submission/full (java client): zip with one extracted text file, no parent_relation field', () => {
  const full = load('real/java-client-al4.0/submission_full.json');
  const zip = '49a41506349514a98c6cbb040224a8c91ed40b2cd11af570ec672df6b1d7bd36';
  const txt = '334d016f755cd6dc58c53a86e183882f8ec14f52fb05345887c8a5edd42c87b7';
  const p = mapSubmissionToReport({ full, cacheHit: false, rootSha256: zip, now: NOW }, opts);
  assertWellFormed(p);
  assert.equal(p.sid, '3p9RPMzkoYJ1p4vfdZj6B0');
  assert.equal(p.maxScore, 0);
  assert.equal(p.verdict, 'info');
  assert.deepEqual(p.tags, ['al:verdict:info', 'al:score:0']);
  assert.deepEqual(
    p.related.map((r) => r.kind === 'file' && [r.sha256, r.name, r.parentSha256, r.parentRelation, r.depth, r.size]),
    // AL 4.0 results carry no parent_relation: the model default EXTRACTED applies
    [[txt, 'al_test.txt', zip, 'EXTRACTED', 1, 6]],
  );
  assert.equal(meta(p).file_count, 2);
  assert.equal(meta(p).error_count, 0);
  assert.equal((meta(p).services as string[]).length, 10);
  assert.equal(p.jsonReportObjects.al_errors, undefined);
  const results = p.jsonReportObjects.al_results as { files: Array<{ sha256: string; results: Array<{ empty: boolean }> }> };
  assert.deepEqual(results.files.map((f) => f.sha256), [zip, txt]);
  assert.equal(results.files[1].results.filter((r) => r.empty).length, 7);
});

test('real AL 4.4 submission/tree (usaa): nested children become related files within maxDepth', () => {
  const tree = load('real/usaa-powerup-al4.4/submission-tree-test1.json');
  const zip = '4788ad19357d68b49d0433c806d1b7fd9c990d536716522c122f8b0fdcaad664';
  const pskill = '75899c5ace600406503a937ef550ab0bbd0f6e0188b9e93e206beb1dfc79bb81';
  const p = mapSubmissionToReport({ full: tree, cacheHit: false, rootSha256: zip, now: NOW }, opts);
  assertWellFormed(p);
  const f = p.related.filter((r) => r.kind === 'file');
  assert.equal(f.length, 6);
  const first = f.slice(0, 2).map((r) => r.kind === 'file' && [r.name, r.parentSha256, r.depth]);
  assert.deepEqual(first, [
    ['pskill64.exe', zip, 1],
    ['__MACOSX/._pskill64.exe', zip, 1],
  ]);
  for (const r of f.slice(2)) {
    assert.ok(r.kind === 'file');
    assert.equal(r.parentSha256, pskill);
    assert.equal(r.depth, 2);
    assert.equal(r.parentRelation, 'EXTRACTED');
  }
  assert.equal(p.maxScore, 500);
  assert.equal(p.verdict, 'suspicious');
  const shallow = mapSubmissionToReport({ full: tree, cacheHit: false, rootSha256: zip, now: NOW }, { ...opts, maxDepth: 1 });
  assert.equal(shallow.related.length, 2);
  assert.ok(shallow.notes.some((n) => /4 extracted file relation\(s\) deeper than MaxDepth 1/.test(n)));
  const fileTree = (p.jsonReportObjects.al_results as { file_tree: { tree: Array<{ children: Array<{ children: Array<{ truncated: boolean }> }> }> } }).file_tree;
  assert.equal(fileTree.tree[0].children[0].children.filter((c) => c.truncated).length, 1);
});

const messageFiles = [
  'real/cccs-training-2023/get-message-example.json',
  'real/java-client-al4.0/ingest_get_message_list.json',
  ...readdirSync(new URL('responses/', FIXTURES))
    .filter((n) => n.startsWith('get-message'))
    .map((n) => `responses/${n}`),
  ...readdirSync(new URL('messages/', FIXTURES)).map((n) => `messages/${n}`),
];

for (const rel of messageFiles) {
  test(`message document ${rel} maps without results into a sensible plan`, () => {
    const message = load(rel);
    const p = mapSubmissionToReport({ full: null, message, cacheHit: false, rootSha256: 'not-a-sha', now: NOW }, opts);
    assertWellFormed(p);
    assert.deepEqual(p.related, []);
    assert.ok(p.notes.some((n) => /notification message only/.test(n)));
    assert.ok(p.maxScore >= 0);
  });
}

test('messages: sid and score come from the message when there is no results document', () => {
  const p = mapSubmissionToReport(
    { full: undefined, message: load('real/cccs-training-2023/get-message-example.json'), cacheHit: false, rootSha256: '', now: NOW },
    opts,
  );
  assert.equal(p.sid, '2gfYPTznkoWWmYTZHxuljl');
  assert.equal(meta(p).ingest_id, '3SKGKc1NVO8HBkqMT4TpWV');
  assert.equal(meta(p).link, 'https://al.example.org/submission/2gfYPTznkoWWmYTZHxuljl');
  assert.equal(p.verdict, 'info');
});

test('cache-hit message: the flag and the new ingest_id flow to the metadata, the sid is the earlier one', () => {
  const full = load('responses/submission-full.json');
  const root = '3f6492021893dd0b94e38a54824c48fa2824cbdcfb923d9e8382e6342f01804f';
  const hit = mapSubmissionToReport({ full, message: load('messages/cache-hit.json'), cacheHit: true, rootSha256: root, now: NOW }, opts);
  assert.equal(meta(hit).cache_hit, true);
  assert.equal(meta(hit).ingest_id, '7SZCI5JMuWiBYpipAjxPhy');
  assert.equal(meta(hit).sid, '4Hc0QBr3BzVoArs3KbVHIW');
  const fresh = mapSubmissionToReport({ full, message: load('messages/fresh-analysis.json'), cacheHit: false, rootSha256: root, now: NOW }, opts);
  assert.equal(meta(fresh).cache_hit, false);
  assert.equal(meta(fresh).ingest_id, '4Hc0QBr3BzVoArs3KbVHIW');
  assert.deepEqual(hit.related, fresh.related);
  assert.deepEqual(hit.tags, fresh.tags);
});
