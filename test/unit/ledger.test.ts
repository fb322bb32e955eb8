import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dueSql, openLedger, MIGRATIONS } from '../../src/ledger/sqlite.js';
import { BridgeError } from '../../src/errors.js';
import { walkTo } from '../helpers/ledger-walk.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sa = (id: string) => ({ id, scheduledAnalysisUrl: `http://m/api/scheduled_analysis/${id}/`, sampleUrl: `http://m/api/sample/s${id}/` });

test('claim is idempotent: the second claim returns the existing job, not a new one', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  const first = ledger.claim(sa('a1'), 1000);
  assert.equal(first.created, true);
  assert.equal(first.job.state, 'claimed');
  walkTo(ledger, 'a1', 'ingesting', 2000);
  ledger.update('a1', { state: 'ingesting', attempts: 1 }, { type: 'ingest-started' }, 2000);
  const second = ledger.claim(sa('a1'), 3000);
  assert.equal(second.created, false);
  assert.equal(second.job.state, 'ingesting');
  assert.deepEqual(ledger.events('a1').map((e) => e.type), ['claimed', 'ingest-started']);
});

test('update applies the patch and appends the event together; terminal states get finishedAt', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  ledger.claim(sa('b1'), 1000);
  walkTo(ledger, 'b1', 'waiting', 1500);
  const job = ledger.update('b1', { state: 'waiting', ingestId: 'ING1', cacheHit: true, neverDrop: true, deadline: 9000 }, { type: 'ingested', data: { n: 1 } }, 1500);
  assert.equal(job.ingestId, 'ING1');
  assert.equal(job.cacheHit, true);
  assert.equal(job.neverDrop, true);
  assert.equal(job.updatedAt, 1500);
  assert.equal(ledger.findByIngestId('ING1')?.id, 'b1');
  walkTo(ledger, 'b1', 'done', 2000);
  const done = ledger.update('b1', { state: 'done', massReportUrl: 'http://m/api/report/1/' }, { type: 'report-sent' }, 2000);
  assert.equal(done.finishedAt, 2000);
  const events = ledger.events('b1');
  assert.deepEqual(events.find((e) => e.type === 'ingested')?.data, { n: 1 });
  assert.equal(events.at(-1)?.state, 'done');
  assert.deepEqual(ledger.finishedSince(1999), [{ state: 'done', finishedAt: 2000, createdAt: 1000 }]);
  assert.throws(() => ledger.update('nope', { state: 'done' }, { type: 'x' }, 1), /no job nope/);
});

test('a file ledger keeps everything across close and reopen', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'bridge.sqlite');
  const l1 = openLedger(path);
  l1.claim(sa('c1'), 1000);
  walkTo(l1, 'c1', 'waiting', 1100);
  l1.update('c1', { state: 'waiting', ingestId: 'I-c1', sha256: 'ab'.repeat(32) }, { type: 'ingested' }, 1100);
  const [m] = l1.storeMessages('q', [{ ingest_id: 'I-c1', failure: '' }], 1200);
  l1.recordRelatedSample({ jobId: 'c1', key: 'ip:1.2.3.4', kind: 'ip', value: '1.2.3.4', massSampleUrl: 'http://m/api/sample/ip1/' }, 1300);
  l1.recordRelation({ jobId: 'c1', key: 'contacted-by:ip:1.2.3.4', kind: 'contacted-by', sampleUrl: 'u1', otherUrl: 'u2', massRelationUrl: 'r1' }, 1300);
  l1.recordOwnSample('CD'.repeat(32), { jobId: 'c1', sid: 'S1', parentSha256: 'ab'.repeat(32), massSampleUrl: '' }, 1300);
  l1.close();

  const l2 = openLedger(path);
  t.after(() => l2.close());
  const job = l2.get('c1');
  assert.equal(job?.state, 'waiting');
  assert.equal(job?.ingestId, 'I-c1');
  assert.deepEqual(l2.unprocessedMessages(10).map((x) => x.seq), [m.seq]);
  assert.deepEqual(l2.unprocessedMessages(10)[0].body, { ingest_id: 'I-c1', failure: '' });
  l2.markMessageProcessed(m.seq, 'c1', 1400);
  assert.equal(l2.unprocessedMessages(10).length, 0);
  assert.equal(l2.relatedSamples('c1')[0].massSampleUrl, 'http://m/api/sample/ip1/');
  assert.equal(l2.relations('c1').length, 1);
  // The MASS URL recorded after the upload fills in the intent; the origin stays the first one.
  l2.recordOwnSample('cd'.repeat(32), { jobId: 'other', sid: 'S2', parentSha256: 'x', massSampleUrl: 'http://m/api/sample/f1/' }, 1500);
  assert.deepEqual(l2.ownSample('cd'.repeat(32)), { jobId: 'c1', sid: 'S1', parentSha256: 'ab'.repeat(32), massSampleUrl: 'http://m/api/sample/f1/' });
  assert.ok(l2.sizeBytes() > 0);
  assert.equal(l2.isWritable(), true);
});

test('migrations run on an empty database and set user_version; a newer schema is refused', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'empty.sqlite');
  new Database(path).close();
  const ledger = openLedger(path);
  ledger.close();
  const raw = new Database(path);
  assert.equal(raw.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
  for (const name of ['jobs', 'job_events', 'messages', 'related_samples', 'relations', 'own_samples']) {
    assert.ok(tables.some((x) => x.name === name), `table ${name}`);
  }
  raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
  raw.close();
  assert.throws(() => openLedger(path), /newer than this bridge/);
});

test('job_events is append-only', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'b.sqlite');
  const ledger = openLedger(path);
  ledger.claim(sa('e1'), 1);
  ledger.close();
  const raw = new Database(path);
  t.after(() => raw.close());
  assert.throws(() => raw.prepare('DELETE FROM job_events').run(), /append-only/);
});

test('list pages newest first with a cursor, and filters by state and sha256', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  for (let i = 0; i < 25; i++) {
    ledger.claim(sa(`j${String(i).padStart(2, '0')}`), 1000 + Math.floor(i / 2)); // pairs share createdAt
  }
  walkTo(ledger, 'j03', 'done', 5000);
  ledger.update('j03', { state: 'done', sha256: 'aa'.repeat(32) }, { type: 'report-sent' }, 5000);
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = ledger.list({ limit: 10, cursor });
    seen.push(...page.jobs.map((j) => j.id));
    cursor = page.nextCursor ?? undefined;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.equal(seen.length, 25);
  assert.equal(new Set(seen).size, 25);
  assert.equal(seen[0], 'j24');
  assert.equal(seen[24], 'j00');
  assert.deepEqual(ledger.list({ states: ['done'] }).jobs.map((j) => j.id), ['j03']);
  assert.deepEqual(ledger.list({ sha256: 'AA'.repeat(32) }).jobs.map((j) => j.id), ['j03']);
  assert.throws(() => ledger.list({ cursor: 'garbage' }), /invalid cursor/);
});

test('due returns non-terminal jobs in the asked states whose notBefore has passed, oldest first', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  ledger.claim(sa('d1'), 100);
  ledger.claim(sa('d2'), 50);
  ledger.claim(sa('d3'), 10);
  ledger.update('d3', { notBefore: 10_000 }, { type: 'retry' }, 200);
  ledger.claim(sa('d4'), 10);
  walkTo(ledger, 'd4', 'failed', 200);
  ledger.update('d4', { state: 'failed' }, { type: 'report-sent' }, 200);
  assert.deepEqual(ledger.due(['claimed'], 1000, 10).map((j) => j.id), ['d2', 'd1']);
  assert.deepEqual(ledger.due(['claimed', 'failed'], 20_000, 10).map((j) => j.id), ['d2', 'd1', 'd3']);
  assert.equal(ledger.inFlight(), 3);
  assert.equal(ledger.oldestInFlightCreatedAt(), 10);
  const counts = ledger.countByState();
  assert.equal(counts.claimed, 3);
  assert.equal(counts.failed, 1);
  assert.equal(counts.done, 0);
});

test('findRelation finds a relation any job created with exactly the same kind and endpoints', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  ledger.claim(sa('j1'), 1000);
  ledger.recordRelation({ jobId: 'j1', key: 'dropped-by:x:y', kind: 'dropped-by', sampleUrl: 'http://m/api/sample/x/', otherUrl: 'http://m/api/sample/y/', massRelationUrl: 'http://m/api/sample_relation/r1/' }, 1100);
  assert.equal(ledger.findRelation('dropped-by', 'http://m/api/sample/x/', 'http://m/api/sample/y/')?.massRelationUrl, 'http://m/api/sample_relation/r1/');
  assert.equal(ledger.findRelation('contacted-by', 'http://m/api/sample/x/', 'http://m/api/sample/y/'), undefined, 'another kind is another relation');
  assert.equal(ledger.findRelation('dropped-by', 'http://m/api/sample/y/', 'http://m/api/sample/x/'), undefined, 'the direction matters');
});

test('a file that is not a ledger database is refused at open with a LEDGER error that names it', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'broken.sqlite');
  writeFileSync(path, 'this is not an SQLite database, just some text that happens to be long enough '.repeat(20));
  assert.throws(() => openLedger(path), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'LEDGER');
    assert.match(err.message, /broken\.sqlite/);
    return true;
  });
});

test('prune deletes the history of long-finished jobs and old processed messages, and nothing else', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  const DAY = 86_400_000;
  ledger.claim(sa('old-done'), 1 * DAY);
  walkTo(ledger, 'old-done', 'done', 2 * DAY);
  ledger.update('old-done', { state: 'done' }, { type: 'report-sent' }, 2 * DAY);
  ledger.claim(sa('old-open'), 1 * DAY);
  walkTo(ledger, 'old-open', 'waiting', 2 * DAY);
  ledger.update('old-open', { state: 'waiting' }, { type: 'ingested' }, 2 * DAY);
  ledger.claim(sa('new-failed'), 9 * DAY);
  walkTo(ledger, 'new-failed', 'failed', 9 * DAY);
  ledger.update('new-failed', { state: 'failed' }, { type: 'report-sent' }, 9 * DAY);
  ledger.recordRelation({ jobId: 'old-done', key: 'k', kind: 'dropped-by', sampleUrl: 's', otherUrl: 'o', massRelationUrl: 'r' }, 2 * DAY);
  ledger.recordOwnSample('a'.repeat(64), { jobId: 'old-done', sid: 'SID', parentSha256: 'b'.repeat(64), massSampleUrl: 'm' }, 2 * DAY);
  const [m1, m2] = ledger.storeMessages('q', [{ ingest_id: 'I1' }, { ingest_id: 'I2' }], 2 * DAY);
  ledger.markMessageProcessed(m1.seq, 'old-done', 2 * DAY);

  const before = { oldDone: ledger.events('old-done').length, oldOpen: ledger.events('old-open').length, newFailed: ledger.events('new-failed').length };
  const removed = ledger.prune(5 * DAY);
  assert.deepEqual(removed, { events: before.oldDone, messages: 1, more: false });
  assert.deepEqual(ledger.events('old-done'), [], 'the old finished job lost its history');
  assert.equal(ledger.get('old-done')?.state, 'done', 'but the job row stays (it stops a second claim)');
  assert.equal(ledger.events('old-open').length, before.oldOpen, 'an unfinished job keeps its history, however old');
  assert.equal(ledger.events('new-failed').length, before.newFailed, 'a recently finished job keeps its history');
  assert.equal(ledger.relations('old-done').length, 1, 'relations are kept for dedup');
  assert.ok(ledger.ownSample('a'.repeat(64)), 'own samples are kept for echo-back');
  assert.deepEqual(ledger.unprocessedMessages(10).map((m) => m.seq), [m2.seq], 'an unprocessed message is never pruned');
});

test('the event history of an unfinished job cannot be deleted, even by hand', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'l.sqlite');
  const ledger = openLedger(file);
  ledger.claim(sa('busy'), 1000);
  ledger.close();
  const raw = new Database(file);
  t.after(() => raw.close());
  assert.throws(() => raw.prepare("DELETE FROM job_events WHERE job_id = 'busy'").run(), /append-only/);
});

test('due across several states: one order (notBefore, then age, then id) and the limit over all of them', (t) => {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  // 30 jobs in three work states with interleaved notBefore and ages.
  for (let i = 0; i < 30; i++) {
    const id = `m${String(i).padStart(2, '0')}`;
    ledger.claim(sa(id), 1000 - i);
    if (i % 3 === 1) walkTo(ledger, id, 'fetching', 2000);
    if (i % 3 === 2) walkTo(ledger, id, 'ingesting', 2000);
    ledger.update(id, { notBefore: (i * 7) % 11 }, { type: 'retry' }, 2000);
  }
  const all = ledger.due(['claimed', 'fetching', 'ingesting'], 3000, 100);
  assert.equal(all.length, 30);
  const key = (j: { notBefore: number; createdAt: number; id: string }): string => `${String(j.notBefore).padStart(4, '0')}/${String(j.createdAt).padStart(6, '0')}/${j.id}`;
  assert.deepEqual(all.map(key), all.map(key).sort(), 'ordered by notBefore, then creation, then id');
  // The first 7 over all states are the first 7 of the whole order, whichever state they are in.
  assert.deepEqual(ledger.due(['ingesting', 'claimed', 'fetching'], 3000, 7).map((j) => j.id), all.slice(0, 7).map((j) => j.id));
  // Not yet due, repeated states and a zero limit.
  assert.deepEqual(ledger.due(['claimed', 'claimed'], 3, 100).map((j) => j.id), all.filter((j) => j.state === 'claimed' && j.notBefore <= 3).map((j) => j.id));
  assert.deepEqual(ledger.due(['claimed'], 3000, 0), []);
  // The worker's ids-only form gives the same jobs in the same order.
  for (const [states, now, limit] of [[['claimed', 'fetching', 'ingesting'], 3000, 100], [['ingesting', 'claimed', 'fetching'], 3000, 7], [['fetching'], 5, 3], [['claimed', 'claimed'], 3, 100]] as const) {
    assert.deepEqual(ledger.dueIds([...states], now, limit), ledger.due([...states], now, limit).map((j) => j.id));
  }
});

test('the worker\'s due query reads an index range per state, without sorting every due job', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-plan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.sqlite');
  openLedger(file).close();
  const raw = new Database(file, { readonly: true });
  t.after(() => raw.close());
  // A plan with a temporary B-tree sorts every due job on each worker tick: the cost would grow with the backlog.
  const plan = (sql: string, params: unknown[]): string[] => (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
  const one = plan(dueSql(1, 'jobs', 16), ['claimed', 0]);
  assert.ok(one.some((d) => d.includes('jobs_due')), one.join('; '));
  assert.ok(!one.some((d) => d.includes('TEMP B-TREE')), one.join('; '));
  // Three states: three index ranges, each cut at the limit before the merge (sorts of at most 16 rows each).
  const three = plan(dueSql(3, 'jobs', 16), ['claimed', 0, 'fetching', 0, 'ingesting', 0]);
  assert.equal(three.filter((d) => d.startsWith('SEARCH jobs USING INDEX jobs_due')).length, 3, three.join('; '));
  assert.ok(!three.some((d) => d.startsWith('SCAN jobs')), three.join('; '));
  // The ids-only form reads the index alone.
  const ids = plan(dueSql(3, 'ids', 16), ['claimed', 0, 'fetching', 0, 'ingesting', 0]);
  assert.equal(ids.filter((d) => d.startsWith('SEARCH jobs USING COVERING INDEX jobs_due')).length, 3, ids.join('; '));
});
