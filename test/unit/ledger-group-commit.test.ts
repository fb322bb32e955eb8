/**
 * Group commit of the SQLite ledger (docs/design.md §9): writes are visible at once to the same ledger, durable
 * once flush() resolves, and concurrent flushes share one commit. What a SIGKILL loses is exactly what was not
 * flushed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { buildApi } from '../../src/api/app.js';
import { instrument, newHealth } from '../../src/bridge/instrument.js';
import { TransitionRefused } from '../../src/bridge/states.js';
import { BridgeError } from '../../src/errors.js';
import { openLedger } from '../../src/ledger/sqlite.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { walkTo } from '../helpers/ledger-walk.js';
import { waitFor } from '../helpers/wait.js';

const SQLITE_MODULE = fileURLToPath(new URL('../../src/ledger/sqlite.ts', import.meta.url));

function tempFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-group-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'bridge.sqlite');
}

const claimInput = (i: number) => ({ id: `sa-${i}`, scheduledAnalysisUrl: `http://mass/sa/${i}/`, sampleUrl: `http://mass/s/${i}/` });

/** Jobs another connection (another process: an operator's sqlite3, a backup, a restarted bridge) can read. */
function committedJobs(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT id FROM jobs ORDER BY id').all() as Array<{ id: string }>).map((r) => r.id);
  } finally {
    db.close();
  }
}

test('a write is read back at once by the same ledger, and committed for other readers only by flush', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file, { flushAfterMs: 60_000 });
  t.after(() => ledger.close());
  ledger.claim(claimInput(1), 1000);
  ledger.update('sa-1', { state: 'fetching' }, { type: 'fetching' }, 1001);
  assert.equal(ledger.get('sa-1')?.state, 'fetching');
  assert.equal(ledger.pending(), 2);
  assert.equal(ledger.isWritable(), true, 'the open transaction holds the write lock: writable');
  assert.deepEqual(committedJobs(file), [], 'nothing committed yet');
  const before = ledger.commits();
  await ledger.flush();
  assert.equal(ledger.pending(), 0);
  assert.equal(ledger.commits(), before + 1, 'two writes, one commit');
  assert.deepEqual(committedJobs(file), ['sa-1']);
  await ledger.flush();
  assert.equal(ledger.commits(), before + 1, 'a flush with nothing pending commits nothing');
});

test('concurrent flushes of one turn share one commit; a write after it needs the next one', async (t) => {
  const ledger = openLedger(tempFile(t), { flushAfterMs: 60_000 });
  t.after(() => ledger.close());
  const before = ledger.commits();
  const flushes: Array<Promise<void>> = [];
  for (let i = 0; i < 8; i++) {
    ledger.claim(claimInput(i), 1000 + i);
    flushes.push(ledger.flush());
  }
  await Promise.all(flushes);
  assert.equal(ledger.commits(), before + 1, '8 claims of 8 concurrent jobs: one commit');
  ledger.claim(claimInput(8), 2000);
  assert.equal(ledger.pending(), 1);
  await ledger.flush();
  assert.equal(ledger.commits(), before + 2);
});

test('a refused write leaves the pending writes of other jobs intact', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file, { flushAfterMs: 60_000 });
  t.after(() => ledger.close());
  ledger.claim(claimInput(1), 1000);
  ledger.claim(claimInput(2), 1000);
  assert.throws(() => ledger.update('sa-2', { state: 'done' }, { type: 'done' }, 1001), TransitionRefused);
  assert.equal(ledger.pending(), 2);
  await ledger.flush();
  assert.deepEqual(committedJobs(file), ['sa-1', 'sa-2']);
  assert.equal(ledger.get('sa-2')?.state, 'claimed');
});

test('writes nobody flushes are committed by the timer, and by close', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file, { flushAfterMs: 20 });
  ledger.claim(claimInput(1), 1000);
  const deadline = Date.now() + 5000;
  while (ledger.pending() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(ledger.pending(), 0, 'the timer committed');
  assert.deepEqual(committedJobs(file), ['sa-1']);

  const idle = openLedger(tempFile(t), { flushAfterMs: 60_000 });
  idle.claim(claimInput(2), 1000);
  idle.close();
  ledger.claim(claimInput(3), 1000);
  ledger.close();
  assert.deepEqual(committedJobs(file), ['sa-1', 'sa-3'], 'close committed the pending claim');
});

/** An fsync stand-in that holds each call until the test lets it finish (or fail). */
function heldFsync(): { calls: number; release: (err?: NodeJS.ErrnoException) => void; fsync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void } {
  const waiting: Array<(err: NodeJS.ErrnoException | null) => void> = [];
  const out = {
    calls: 0,
    fsync(_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) {
      out.calls++;
      waiting.push(cb);
    },
    release(err?: NodeJS.ErrnoException) {
      for (const cb of waiting.splice(0)) cb(err ?? null);
    },
  };
  return out;
}

const settled = (p: Promise<unknown>): Promise<string> =>
  Promise.race([p.then(() => 'resolved', (e: unknown) => `rejected: ${(e as Error).message}`), new Promise<string>((r) => setTimeout(() => r('pending'), 50))]);

test('flush resolves only after the fsync of the WAL file it starts; until then the committed writes count as pending', async (t) => {
  const file = tempFile(t);
  const held = heldFsync();
  const ledger = openLedger(file, { flushAfterMs: 60_000, fsync: held.fsync });
  t.after(() => ledger.close());
  // The COMMIT itself does not wait for the disk: the flush's own fsync does, off the event loop.
  ledger.claim(claimInput(1), 1000);
  const flushed = ledger.flush();
  assert.equal(await settled(flushed), 'pending', 'committed, not yet on disk: flush waits');
  assert.equal(held.calls, 1);
  assert.deepEqual(committedJobs(file), ['sa-1'], 'committed for other readers');
  assert.equal(ledger.pending(), 1, 'committed but not fsynced: still pending for the upstream calls');
  // Another caller (a later turn, nothing new written) waits for the fsync in flight instead of starting one.
  const again = ledger.flush();
  assert.equal(await settled(again), 'pending');
  assert.equal(held.calls, 1, 'no second fsync for the same writes');
  held.release();
  assert.equal(await settled(flushed), 'resolved');
  assert.equal(await settled(again), 'resolved');
  assert.equal(ledger.pending(), 0);
  await ledger.flush();
  assert.equal(held.calls, 1, 'nothing new: no fsync');
});

test('writes committed by the timer are fsynced by it; a flush meanwhile waits for that fsync', async (t) => {
  const file = tempFile(t);
  const held = heldFsync();
  const ledger = openLedger(file, { flushAfterMs: 10, fsync: held.fsync });
  t.after(() => ledger.close());
  ledger.claim(claimInput(1), 1000);
  const deadline = Date.now() + 5000;
  while (held.calls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(committedJobs(file), ['sa-1'], 'the timer committed');
  assert.equal(ledger.pending(), 1, 'its fsync has not finished');
  const flushed = ledger.flush();
  assert.equal(await settled(flushed), 'pending', 'a flush after the timer commit waits for an fsync too');
  held.release();
  assert.equal(await settled(flushed), 'resolved');
  assert.equal(ledger.pending(), 0);

});

test('while an fsync runs, the writes of every later turn wait for it and then share one commit and one fsync', async (t) => {
  const file = tempFile(t);
  const held = heldFsync();
  const ledger = openLedger(file, { flushAfterMs: 60_000, fsync: held.fsync });
  t.after(() => ledger.close());
  const before = ledger.commits();
  ledger.claim(claimInput(1), 1000);
  const first = ledger.flush();
  await waitFor(() => held.calls >= 1, { what: 'the first fsync' });
  assert.equal(held.calls, 1);
  // Three later turns write and flush while that fsync runs.
  const later: Array<Promise<void>> = [];
  for (let i = 2; i <= 4; i++) {
    ledger.claim(claimInput(i), 1000 + i);
    later.push(ledger.flush());
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(ledger.commits(), before + 1, 'their commit waits for the fsync in flight');
  assert.deepEqual(committedJobs(file), ['sa-1'], 'not committed yet: another process sees only the first claim');
  assert.equal(ledger.pending(), 4);
  for (const p of later) assert.equal(await settled(p), 'pending');
  held.release();
  assert.equal(await settled(first), 'resolved');
  await waitFor(() => held.calls >= 2, { what: 'the second fsync' });
  assert.equal(ledger.commits(), before + 2, 'one commit for the three turns');
  assert.equal(held.calls, 2, 'and one fsync');
  assert.deepEqual(committedJobs(file), ['sa-1', 'sa-2', 'sa-3', 'sa-4']);
  for (const p of later) assert.equal(await settled(p), 'pending', 'durable only once that fsync has finished');
  assert.equal(ledger.pending(), 3);
  held.release();
  for (const p of later) assert.equal(await settled(p), 'resolved');
  assert.equal(ledger.pending(), 0);
});

test('a failed fsync fails that flush, the one queued behind it and every later one: no side effect follows a write that may be lost', async (t) => {
  const held = heldFsync();
  const file = tempFile(t);
  const failures: BridgeError[] = [];
  const ledger = openLedger(file, { flushAfterMs: 60_000, fsync: held.fsync, onSyncFailure: (err) => failures.push(err) });
  t.after(() => ledger.close());
  ledger.claim(claimInput(1), 1000);
  const first = ledger.flush();
  await waitFor(() => held.calls >= 1, { what: 'the first fsync' });
  // More writes while the first fsync runs: their flush waits for it instead of running a second fsync alongside
  // (which could return success after the first took the disk's error).
  ledger.claim(claimInput(2), 1001);
  const queued = ledger.flush();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(held.calls, 1, 'one fsync at a time');
  held.release(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
  await assert.rejects(first, (e: unknown) => e instanceof BridgeError && e.code === 'LEDGER' && e.message.includes(`fsync of ${file}-wal failed: EIO`));
  await assert.rejects(queued, (e: unknown) => e instanceof BridgeError && e.code === 'LEDGER', 'the queued flush fails too');
  ledger.claim(claimInput(3), 1002);
  await assert.rejects(ledger.flush(), (e: unknown) => e instanceof BridgeError && e.code === 'LEDGER', 'a later flush fails too');
  assert.equal(held.calls, 1, 'no second fsync that could succeed without the lost pages');
  assert.ok(ledger.pending() > 0, 'nothing counts as durable any more: no upstream request starts');
  assert.equal(ledger.isWritable(), false, '/ready reports the ledger as not writable');
  assert.equal(failures.length, 1, 'onSyncFailure is told once, however many flushes fail');
  assert.equal(failures[0].message, `ledger fsync of ${file}-wal failed: EIO: i/o error, fsync; restart the bridge once the disk works`);
  ledger.close();
  assert.deepEqual(committedJobs(file), ['sa-1', 'sa-2'], 'close commits nothing written after the failure');
});

test('close while an fsync runs leaves the descriptor to the fsync, which still finishes', async (t) => {
  const held = heldFsync();
  const ledger = openLedger(tempFile(t), { flushAfterMs: 60_000, fsync: held.fsync });
  ledger.claim(claimInput(1), 1000);
  const flushed = ledger.flush();
  await waitFor(() => held.calls >= 1, { what: 'the fsync' });
  assert.equal(held.calls, 1);
  ledger.close();
  held.release();
  assert.equal(await settled(flushed), 'resolved');
});

test('commit: each commits every write at once (the old behaviour, the benchmark baseline)', (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file, { commit: 'each' });
  t.after(() => ledger.close());
  ledger.claim(claimInput(1), 1000);
  ledger.appendEvent('sa-1', { type: 'note' }, 1001);
  assert.equal(ledger.pending(), 0);
  assert.equal(ledger.commits(), 2);
  assert.deepEqual(committedJobs(file), ['sa-1']);
});

test('SIGKILL loses exactly the writes made after the last flush', { timeout: 60_000 }, async (t) => {
  const file = tempFile(t);
  // A process that claims two jobs, flushes, claims a third, signals and waits to be killed.
  const script = `
    const { openLedger } = await import(${JSON.stringify(SQLITE_MODULE)});
    const ledger = openLedger(${JSON.stringify(file)}, { flushAfterMs: 600000 });
    const input = (i) => ({ id: 'sa-' + i, scheduledAnalysisUrl: 'http://mass/sa/' + i + '/', sampleUrl: 'http://mass/s/' + i + '/' });
    ledger.claim(input(1), 1000);
    ledger.update('sa-1', { state: 'fetching' }, { type: 'fetching' }, 1001);
    ledger.claim(input(2), 1000);
    await ledger.flush();
    ledger.claim(input(3), 1002);
    ledger.update('sa-2', { state: 'fetching' }, { type: 'fetching' }, 1003);
    process.stdout.write('written ' + ledger.pending() + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before writing: ${out}`)));
  });
  assert.equal(out.trim(), 'written 2');
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;

  const ledger = openLedger(file);
  t.after(() => ledger.close());
  assert.equal(ledger.get('sa-1')?.state, 'fetching', 'flushed: kept');
  assert.equal(ledger.get('sa-2')?.state, 'claimed', 'flushed claim kept, its unflushed transition lost');
  assert.equal(ledger.get('sa-3'), undefined, 'unflushed claim lost (MASS lists it again at the next poll)');
  assert.deepEqual(ledger.events('sa-2').map((e) => e.type), ['claimed']);
});

test('an API answer leaves only once what it shows is committed; /metrics counts the commits', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file, { flushAfterMs: 60_000 });
  t.after(() => ledger.close());
  const token = 'group-commit-token';
  const app = await buildApi({ ledger, control: createFakeControl(ledger), metrics: createMetrics({ collectProcessMetrics: false }), token });
  t.after(() => app.close());

  ledger.claim(claimInput(1), 1000);
  assert.equal(ledger.pending(), 1);
  const read = await app.inject('/api/v1/jobs/sa-1');
  assert.equal(read.statusCode, 200, read.body);
  assert.equal(ledger.pending(), 0, 'the answer waited for the commit');
  assert.deepEqual(committedJobs(file), ['sa-1']);

  walkTo(ledger, 'sa-1', 'held', 1001);
  ledger.update('sa-1', { state: 'held', lastError: 'MASS refused the report' }, { type: 'held' }, 1002);
  await ledger.flush();
  const retried = await app.inject({ method: 'POST', url: '/api/v1/jobs/sa-1/retry', headers: { authorization: `Bearer ${token}` } });
  assert.equal(retried.statusCode, 200, retried.body);
  assert.equal(ledger.pending(), 0, 'the operator action is committed before its answer');
  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare("SELECT state FROM jobs WHERE id = 'sa-1'").get() as { state: string }).state, 'claimed');

  const metrics = (await app.inject('/metrics')).body;
  const commits = Number(/^massal_ledger_commits_total (\d+)$/m.exec(metrics)?.[1]);
  assert.equal(commits, ledger.commits());
  assert.ok(commits >= 3, `commits counted: ${commits}`);
});

test('an upstream call that changes something waits until no ledger write is pending; a failed commit fails it before the request, not counted against the upstream', async () => {
  let pending = 2;
  let fail = false;
  const durable = {
    pending: () => pending,
    flush: () => (fail ? Promise.reject(new BridgeError('LEDGER', 'ledger commit failed: disk I/O error')) : Promise.resolve().then(() => void (pending = 0))),
  };
  const requests: number[] = [];
  const client = {
    submitReport: (): Promise<string> => {
      requests.push(pending);
      return Promise.resolve('report');
    },
  };
  const health = newHealth();
  const wrapped = instrument(client, 'mass', health, undefined, () => 1, durable);
  await wrapped.submitReport();
  assert.deepEqual(requests, [0], 'the request started after the commit');

  pending = 1;
  fail = true;
  await assert.rejects(wrapped.submitReport(), (err: unknown) => err instanceof BridgeError && err.code === 'LEDGER');
  assert.deepEqual(requests, [0], 'no request without the commit');
  assert.equal(health.consecutiveFailures, 0, 'the upstream is not blamed');
});

test('reads start without waiting for pending ledger writes; ingests, the destructive queue read and every MASS write wait for them', async () => {
  let pending = 0;
  let flushes = 0;
  const durable = {
    pending: () => pending,
    flush: () => {
      flushes++;
      return Promise.resolve().then(() => void (pending = 0));
    },
  };
  const seen: Array<{ op: string; pending: number }> = [];
  const op = (name: string) => (): Promise<null> => {
    seen.push({ op: name, pending });
    return Promise.resolve(null);
  };
  const names = {
    mass: ['poll', 'getSample', 'downloadSample', 'getScheduledAnalysis', 'listSampleReports', 'getRelationGraph', 'findSamples', 'submitReport', 'submitFileSample', 'submitIPSample', 'submitDomainSample', 'submitURISample', 'addRelation'],
    assemblyline: ['getSubmission', 'getSubmissionFull', 'getSubmissionSummary', 'isCompleted', 'searchSubmissions', 'downloadFile', 'openFile', 'fileChildren', 'ingest', 'ingestBySha256', 'getMessages'],
  } as const;
  const writes = new Set(['submitReport', 'submitFileSample', 'submitIPSample', 'submitDomainSample', 'submitURISample', 'addRelation', 'ingest', 'ingestBySha256', 'getMessages']);
  for (const [target, ops] of Object.entries(names) as Array<['mass' | 'assemblyline', readonly string[]]>) {
    const client = Object.fromEntries(ops.map((n) => [n, op(n)])) as Record<string, () => Promise<null>>;
    const wrapped = instrument(client, target, newHealth(), undefined, () => 1, durable);
    for (const n of ops) {
      pending = 3;
      await wrapped[n]();
    }
  }
  for (const s of seen) {
    assert.equal(s.pending, writes.has(s.op) ? 0 : 3, `${s.op} ${writes.has(s.op) ? 'waited for the commit' : 'started at once'}`);
  }
  assert.equal(seen.length, names.mass.length + names.assemblyline.length);
  assert.equal(flushes, writes.size, 'one flush per state-changing call, none for reads');
});
