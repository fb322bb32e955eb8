/**
 * The ledger's reads that must not grow with the finished history (schema v8): job lists filtered by state (one
 * index range per state), pages deep in the history (a row-value cursor), the jobs finished since a time (a range of
 * finished_at) and the hourly prune (from where the last one stopped). Each must return exactly what a plain scan
 * of the rows returns, and read the index it was written for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { openLedger, MIGRATIONS, PRUNE_BATCH } from '../../src/ledger/sqlite.js';
import { JOB_STATES, TERMINAL_STATES, type Job, type JobQuery, type JobState, type Ledger } from '../../src/ledger/types.js';
import { walkTo } from '../helpers/ledger-walk.js';

const DAY = 86_400_000;

function tempFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-history-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'bridge.sqlite');
}

const sa = (id: string) => ({ id, scheduledAnalysisUrl: `http://m/api/scheduled_analysis/${id}/`, sampleUrl: `http://m/api/sample/s${id}/` });

/** Claims job `id` at `createdAt` and moves it to `state` (along allowed transitions), with `sha256`. */
function jobIn(ledger: Ledger, id: string, createdAt: number, state: JobState, sha256: string, finishAt = createdAt + 1): void {
  ledger.claim(sa(id), createdAt);
  ledger.update(id, { sha256 }, { type: 'test-sha' }, createdAt);
  if (state === 'claimed') return;
  walkTo(ledger, id, state, finishAt);
  ledger.update(id, { state }, { type: 'test-final' }, finishAt);
}

/** Every job, read by another connection: what a plain scan of the rows holds. */
function allRows(file: string): Array<Pick<Job, 'id' | 'state' | 'createdAt' | 'finishedAt'> & { sha256: string | null }> {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT id, state, created_at, finished_at, sha256 FROM jobs').all() as Array<{ id: string; state: JobState; created_at: number; finished_at: number | null; sha256: string | null }>).map(
      (r) => ({ id: r.id, state: r.state, createdAt: r.created_at, finishedAt: r.finished_at, sha256: r.sha256 }),
    );
  } finally {
    db.close();
  }
}

/** The ids a list query must return, newest first, from a scan of every row (ids here are ASCII: JS order = SQLite's). */
function scanList(rows: ReturnType<typeof allRows>, q: JobQuery): string[] {
  return rows
    .filter((r) => !q.states || q.states.length === 0 || q.states.includes(r.state))
    .filter((r) => !q.sha256 || r.sha256 === q.sha256)
    .filter((r) => q.from === undefined || r.createdAt >= q.from)
    .filter((r) => q.to === undefined || r.createdAt <= q.to)
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((r) => r.id);
}

/** Every page of `q`, following the cursors; each page holds at most the limit and only the last has no cursor. */
function allPages(ledger: Ledger, q: JobQuery): string[] {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = ledger.list({ ...q, cursor });
    assert.ok(page.jobs.length <= (q.limit ?? 50), 'a page holds at most the limit');
    ids.push(...page.jobs.map((j) => j.id));
    if (page.nextCursor === null) return ids;
    assert.equal(page.jobs.length, q.limit ?? 50, 'a page before the last is full');
    cursor = page.nextCursor;
  }
  throw new Error('no last page');
}

test('a job list (by state, sha256, creation time, page after page) returns what a scan of every job returns', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file);
  t.after(() => ledger.close());
  // 60 jobs in every state, with creation times that often tie (the id breaks the tie) and three sha256 values.
  const states = [...JOB_STATES];
  for (let i = 0; i < 60; i++) {
    jobIn(ledger, `j${String((i * 37) % 60).padStart(2, '0')}`, 1000 + (i % 13) * 10, states[i % states.length], ['a', 'b', 'c'][i % 3].repeat(64), 5000 + i);
  }
  await ledger.flush();
  const rows = allRows(file);
  const query = fc.record(
    {
      states: fc.subarray([...JOB_STATES, 'no-such-state' as JobState], { minLength: 0 }),
      sha256: fc.constantFrom('a'.repeat(64), 'b'.repeat(64), 'd'.repeat(64)),
      from: fc.integer({ min: 990, max: 1130 }),
      to: fc.integer({ min: 990, max: 1130 }),
      limit: fc.integer({ min: 1, max: 9 }),
    },
    { requiredKeys: ['limit'] },
  );
  fc.assert(
    fc.property(query, (q) => {
      assert.deepEqual(allPages(ledger, q), scanList(rows, q), JSON.stringify(q));
    }),
    { numRuns: 300 },
  );
  // The default page size (50) and the largest (1000): one page holds all 60 or 50 of them.
  assert.deepEqual(allPages(ledger, { states: ['done', 'failed'] }), scanList(rows, { states: ['done', 'failed'] }));
  assert.deepEqual(ledger.list({ limit: 1000 }).jobs.map((j) => j.id), scanList(rows, {}));
});

test('the jobs finished since a time are those a scan of every job finds', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file);
  t.after(() => ledger.close());
  for (let i = 0; i < 40; i++) jobIn(ledger, `f${i}`, 100 * i, (['done', 'failed', 'held', 'waiting'] as JobState[])[i % 4], 'e'.repeat(64), 100 * i + 7 * (i % 5));
  await ledger.flush();
  const rows = allRows(file);
  fc.assert(
    fc.property(fc.integer({ min: -10, max: 4100 }), (from) => {
      const got = ledger.finishedSince(from).map((f) => `${f.state}@${f.finishedAt}/${f.createdAt}`).sort();
      const want = rows
        .filter((r) => TERMINAL_STATES.includes(r.state) && r.finishedAt !== null && r.finishedAt >= from)
        .map((r) => `${r.state}@${r.finishedAt}/${r.createdAt}`)
        .sort();
      assert.deepEqual(got, want, `from ${from}`);
    }),
    { numRuns: 200 },
  );
});

test('hourly prunes delete exactly the history a prune of every finished job would, including after an upgrade and a change of RetainDays', async (t) => {
  const file = tempFile(t);
  // A ledger as schema v7 left it, with a history that no prune has touched yet.
  const raw = new Database(file);
  for (let v = 0; v < 7; v++) raw.exec(MIGRATIONS[v]);
  raw.pragma('user_version = 7');
  raw.close();
  let ledger = openLedger(file);
  t.after(() => ledger.close());
  for (let i = 0; i < 20; i++) jobIn(ledger, `old${i}`, i * DAY, i % 3 === 0 ? 'waiting' : i % 3 === 1 ? 'done' : 'failed', 'f'.repeat(64), i * DAY + 3_600_000);
  await ledger.flush();
  ledger.close();
  ledger = openLedger(file);

  /** The jobs whose history a prune of every finished job before `before` leaves. */
  const expectedWithHistory = (before: number): string[] =>
    allRows(file)
      .filter((r) => !(TERMINAL_STATES.includes(r.state) && r.finishedAt !== null && r.finishedAt < before))
      .map((r) => r.id)
      .sort();
  const withHistory = (): string[] =>
    allRows(file)
      .filter((r) => ledger.events(r.id).length > 0)
      .map((r) => r.id)
      .sort();
  const eventCount = (): number => allRows(file).reduce((n, r) => n + ledger.events(r.id).length, 0);

  // The reconciler's prunes: every hour, RetainDays behind; RetainDays 5, then raised to 8, then lowered to 2; jobs
  // keep finishing between the prunes (at their now, after every earlier prune's cutoff).
  let now = 20 * DAY;
  let highest = Number.NEGATIVE_INFINITY;
  let n = 0;
  for (const [hours, retainDays] of [[30, 5], [30, 8], [30, 2]] as const) {
    for (let h = 0; h < hours; h++) {
      now += 3_600_000;
      jobIn(ledger, `new${n}`, now - 3_000_000, n % 2 === 0 ? 'done' : 'held', 'f'.repeat(64), now - 60_000);
      n++;
      const before = now - retainDays * DAY;
      await ledger.flush();
      const events = eventCount();
      const removed = ledger.prune(before);
      highest = Math.max(highest, before);
      assert.deepEqual(withHistory(), expectedWithHistory(highest), `prune at hour ${n} (RetainDays ${retainDays})`);
      await ledger.flush();
      assert.equal(removed.events, events - eventCount(), 'prune reports the events it deleted');
    }
  }
  // A restart keeps where the prune got to.
  await ledger.flush();
  ledger.close();
  ledger = openLedger(file);
  now += 3_600_000;
  ledger.prune(now - 2 * DAY);
  assert.deepEqual(withHistory(), expectedWithHistory(now - 2 * DAY));
});

test('a long history is pruned in batches of at most PRUNE_BATCH jobs (more when jobs finished at the same instant), to the same end', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file);
  t.after(() => ledger.close());
  // 2.5 batches of finished jobs; the jobs around the first batch's end all finished at the same instant.
  const n = Math.floor(PRUNE_BATCH * 2.5);
  for (let i = 0; i < n; i++) {
    const id = `p${String(i).padStart(6, '0')}`;
    const finishedAt = i >= PRUNE_BATCH - 5 && i < PRUNE_BATCH + 5 ? DAY + PRUNE_BATCH - 5 : DAY + i;
    ledger.claim(sa(id), i);
    ledger.update(id, { state: 'reporting' }, { type: 'test-reporting' }, i);
    ledger.update(id, { state: i % 7 === 0 ? 'failed' : 'done' }, { type: 'report-sent' }, finishedAt);
  }
  ledger.claim(sa('open'), 5);
  const [m] = ledger.storeMessages('q', [{ ingest_id: 'I' }], 1);
  ledger.markMessageProcessed(m.seq, 'p000001', 1);
  await ledger.flush();
  const eventsPerJob = ledger.events('p000001').length;
  const calls: Array<{ events: number; messages: number; more?: boolean }> = [];
  for (;;) {
    const r = ledger.prune(10 * DAY);
    calls.push(r);
    await ledger.flush();
    if (!r.more) break;
    assert.ok(calls.length < 10, 'the prune ends');
  }
  assert.deepEqual(
    calls.map((c) => c.events / eventsPerJob),
    [PRUNE_BATCH - 5, PRUNE_BATCH, n - 2 * PRUNE_BATCH + 5],
    'the first batch ends before the jobs that finished at the same instant (its last one among them), the next starts with them all',
  );
  assert.equal(calls.reduce((s, c) => s + c.messages, 0), 1);
  assert.deepEqual(withEvents(file), ['open'], 'every finished job lost its history, the unfinished one kept it');
  assert.deepEqual(ledger.prune(10 * DAY), { events: 0, messages: 0, more: false }, 'then there is nothing left to do');
});

/** The ids of the jobs that still have events (another connection). */
function withEvents(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT DISTINCT job_id FROM job_events ORDER BY job_id').pluck().all() as string[]);
  } finally {
    db.close();
  }
}

test('the periodic reads use the index they were written for, not a pass over the finished history', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file);
  t.after(() => ledger.close());
  jobIn(ledger, 'a', 1, 'done', 'a'.repeat(64));
  jobIn(ledger, 'b', 2, 'waiting', 'a'.repeat(64));
  await ledger.flush();
  const raw = new Database(file, { readonly: true });
  t.after(() => raw.close());
  const plan = (sql: string): string => {
    const params = Array((sql.match(/\?/g) ?? []).length).fill(null);
    return (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
  };
  /** The SQL of the statements `fn` prepares (the ledger prepares its per-shape statements at their first use). */
  const preparedBy = (fn: () => unknown): string[] => {
    const seen: string[] = [];
    const original = Database.prototype.prepare;
    Database.prototype.prepare = function (this: Database.Database, sql: string) {
      seen.push(sql);
      return original.call(this, sql);
    } as typeof original;
    try {
      fn();
    } finally {
      Database.prototype.prepare = original;
    }
    return seen;
  };
  // A page of one state: a range of jobs_state_created, newest first, without a sort of every job in the state.
  const [done] = preparedBy(() => ledger.list({ states: ['done'], limit: 10 }));
  assert.match(plan(done), /^SEARCH jobs USING COVERING INDEX jobs_state_created \(state=\?\)$/);
  // Several states: one such range each, then a sort of at most a page per state.
  const [several] = preparedBy(() => ledger.list({ states: ['failed', 'held'], limit: 10 }));
  assert.equal(plan(several).match(/SEARCH jobs USING COVERING INDEX jobs_state_created \(state=\?\)/g)?.length, 2, plan(several));
  assert.doesNotMatch(plan(several), /SCAN jobs|jobs_due|jobs_state_since/);
  // A page deep in the history: one seek to the cursor.
  const cursor = ledger.list({ limit: 1 }).nextCursor!;
  const [deep] = preparedBy(() => ledger.list({ limit: 1, cursor }));
  assert.match(plan(deep), /USING INDEX jobs_created_at \(\(created_at,id\)<\(\?,\?\)\)/);
  const [deepByState] = preparedBy(() => ledger.list({ states: ['done'], limit: 1, cursor }));
  assert.match(plan(deepByState), /jobs_state_created \(state=\? AND \(created_at,id\)<\(\?,\?\)\)/);
  // By sha256: that index, whatever else is asked.
  const [bySha] = preparedBy(() => ledger.list({ states: ['done'], sha256: 'a'.repeat(64), from: 0, cursor, limit: 5 }));
  assert.match(plan(bySha), /^SEARCH jobs USING INDEX jobs_sha256 \(sha256=\?\)/);

  // The finished-since read and the prune are prepared when the ledger opens: a second ledger shows their SQL.
  const opened = preparedBy(() => openLedger(':memory:').close());
  const finished = opened.find((s) => s.includes('SELECT state, finished_at, created_at FROM jobs'))!;
  assert.match(plan(finished), /^SEARCH jobs USING INDEX jobs_finished_at \(finished_at>\?\)$/);
  const prune = opened.find((s) => s.startsWith('DELETE FROM job_events'))!;
  assert.match(plan(prune), /SEARCH jobs USING INDEX jobs_finished_at \(finished_at>\? AND finished_at<\?\)/);
  const oldest = opened.find((s) => s.includes('MIN(created_at)'))!;
  assert.doesNotMatch(plan(oldest), /jobs_created_at|SCAN jobs/);
});
