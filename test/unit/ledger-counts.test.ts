/**
 * The ledger's job counts (countByState, inFlight, inFlightByIdentity) come from a table that triggers keep in the
 * same transaction as every job write (migration v7). They must always equal a count of the jobs themselves: after
 * any mix of claims, transitions, refused transitions, writes that fail half way, hand edits and a migration.
 * The oldest job per unfinished state and the oldest job in flight (read per state from an index) must equal a
 * scan of the rows likewise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { openLedger, MIGRATIONS } from '../../src/ledger/sqlite.js';
import { JOB_STATES, type JobState, type Ledger } from '../../src/ledger/types.js';

function tempFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-counts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'bridge.sqlite');
}

const sa = (id: string, identity?: string) => ({
  id,
  scheduledAnalysisUrl: `http://m/api/scheduled_analysis/${id}/`,
  sampleUrl: `http://m/api/sample/s${id}/`,
  ...(identity === undefined ? {} : { identity }),
});

/** The counts computed from the committed jobs rows by another connection. */
function countedFromRows(file: string): { byState: Record<string, number>; inFlight: number; byIdentity: Record<string, number>; oldestSince: Record<string, number>; oldestInFlight: number | null } {
  const db = new Database(file, { readonly: true });
  try {
    const byState = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<string, number>;
    for (const r of db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: string; n: number }>) byState[r.state] = r.n;
    const unfinished = "state NOT IN ('done', 'failed', 'held')";
    const inFlight = (db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE ${unfinished}`).get() as { n: number }).n;
    const byIdentity = Object.fromEntries(
      (db.prepare(`SELECT COALESCE(identity, 'default') AS identity, COUNT(*) AS n FROM jobs WHERE ${unfinished} GROUP BY 1`).all() as Array<{ identity: string; n: number }>).map((r) => [r.identity, r.n]),
    );
    // Since when the oldest job of each unfinished state has been in it: a scan of every row.
    const oldestSince = Object.fromEntries(
      (db.prepare("SELECT state, MIN(COALESCE(state_since, updated_at)) AS since FROM jobs WHERE state NOT IN ('done', 'failed') GROUP BY state").all() as Array<{ state: string; since: number }>).map((r) => [r.state, r.since]),
    );
    const oldestInFlight = (db.prepare(`SELECT MIN(created_at) AS t FROM jobs WHERE ${unfinished}`).get() as { t: number | null }).t;
    return { byState, inFlight, byIdentity, oldestSince, oldestInFlight };
  } finally {
    db.close();
  }
}

async function assertCountsMatch(ledger: Ledger, file: string, why: string): Promise<void> {
  await ledger.flush();
  const rows = countedFromRows(file);
  assert.deepEqual(ledger.countByState(), rows.byState, `countByState ${why}`);
  assert.equal(ledger.inFlight(), rows.inFlight, `inFlight ${why}`);
  assert.deepEqual(ledger.inFlightByIdentity(), rows.byIdentity, `inFlightByIdentity ${why}`);
  const oldest = ledger.oldestPerState();
  assert.deepEqual(Object.fromEntries(oldest.map((o) => [o.state, o.since])), rows.oldestSince, `oldestPerState ${why}`);
  for (const o of oldest) assert.equal(ledger.get(o.jobId)?.state, o.state, `oldestPerState names a job in ${o.state} ${why}`);
  assert.equal(ledger.oldestInFlightCreatedAt(), rows.oldestInFlight, `oldestInFlightCreatedAt ${why}`);
}

test('a ledger from before the count table gets counts of its existing jobs, then keeps them through every write', async (t) => {
  const file = tempFile(t);
  // A ledger as schema v6 left it: jobs in several states, one without an identity.
  const raw = new Database(file);
  for (let v = 0; v < 6; v++) raw.exec(MIGRATIONS[v]);
  raw.pragma('user_version = 6');
  const insert = raw.prepare('INSERT INTO jobs (id, scheduled_analysis_url, sample_url, state, created_at, updated_at, state_since, identity) VALUES (?, ?, ?, ?, 1, 1, 1, ?)');
  insert.run('w1', 'u1', 's1', 'waiting', 'default');
  insert.run('w2', 'u2', 's2', 'waiting', null);
  insert.run('w3', 'u3', 's3', 'waiting', 'lab-2');
  insert.run('d1', 'u4', 's4', 'done', 'lab-2');
  insert.run('h1', 'u5', 's5', 'held', 'default');
  raw.close();

  const ledger = openLedger(file);
  t.after(() => ledger.close());
  assert.equal(ledger.countByState().waiting, 3);
  assert.equal(ledger.inFlight(), 3);
  assert.deepEqual(ledger.inFlightByIdentity(), { default: 2, 'lab-2': 1 });
  await assertCountsMatch(ledger, file, 'after the migration');

  ledger.claim(sa('n1', 'lab-2'), 10);
  ledger.claim(sa('n1', 'lab-2'), 11); // a second claim of the same scheduled analysis changes nothing
  ledger.update('w3', { state: 'collecting' }, { type: 'notified' }, 12);
  ledger.update('w3', { lastError: 'x' }, { type: 'note' }, 13); // no state change
  ledger.update('h1', { state: 'reporting' }, { type: 'retry' }, 14);
  await assertCountsMatch(ledger, file, 'after claims and transitions');
});

test('a write that fails after changing the job row leaves the counts as they were', async (t) => {
  const file = tempFile(t);
  openLedger(file).close();
  // Makes the event insert of an update fail after its UPDATE of the job row ran (both are one savepoint).
  const raw = new Database(file);
  raw.exec("CREATE TRIGGER test_fail_event BEFORE INSERT ON job_events WHEN NEW.type = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;");
  raw.close();

  const ledger = openLedger(file);
  t.after(() => ledger.close());
  ledger.claim(sa('a'), 1);
  ledger.claim(sa('b'), 1);
  assert.throws(() => ledger.update('a', { state: 'fetching' }, { type: 'boom' }, 2), /boom/);
  assert.equal(ledger.get('a')?.state, 'claimed');
  assert.deepEqual({ claimed: ledger.countByState().claimed, fetching: ledger.countByState().fetching }, { claimed: 2, fetching: 0 });
  // A refused transition writes nothing either.
  assert.throws(() => ledger.update('b', { state: 'done' }, { type: 'report-sent' }, 3));
  ledger.update('b', { state: 'fetching' }, { type: 'fetching' }, 4);
  await assertCountsMatch(ledger, file, 'after a failed, a refused and a good write');
});

test('the counts equal a count of the jobs after any sequence of claims, transitions and hand edits', async (t) => {
  const file = tempFile(t);
  const ledger = openLedger(file);
  t.after(() => ledger.close());
  const ids = ['j0', 'j1', 'j2', 'j3', 'j4', 'j5'];
  const identities = [undefined, 'default', 'lab-2', 'lab-3'];
  const op = fc.oneof(
    fc.record({ kind: fc.constant('claim' as const), id: fc.constantFrom(...ids), identity: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constant('move' as const), id: fc.constantFrom(...ids), state: fc.constantFrom(...JOB_STATES) }),
    fc.record({ kind: fc.constant('identity' as const), id: fc.constantFrom(...ids), identity: fc.constantFrom(...identities) }),
    fc.record({ kind: fc.constant('flush' as const) }),
  );
  let now = 1;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
      for (const o of ops) {
        now++;
        if (o.kind === 'flush') await ledger.flush();
        else if (o.kind === 'claim') ledger.claim(sa(o.id, o.identity), now);
        else if (!ledger.get(o.id)) continue;
        else if (o.kind === 'move') {
          try {
            ledger.update(o.id, { state: o.state as JobState }, { type: 'test-move' }, now);
          } catch {
            // a transition the state table refuses: nothing written
          }
        } else ledger.update(o.id, { identity: o.identity ?? null }, { type: 'test-identity' }, now);
      }
      await assertCountsMatch(ledger, file, `after ${JSON.stringify(ops)}`);
    }),
    { numRuns: 60 },
  );
  // An operator's hand edits of the jobs table (another connection) are counted too.
  await ledger.flush();
  const raw = new Database(file);
  try {
    raw.prepare("UPDATE jobs SET state = 'held' WHERE state NOT IN ('done', 'failed', 'held')").run();
    raw.prepare("DELETE FROM jobs WHERE state IN ('done', 'failed')").run();
    raw.prepare("INSERT INTO jobs (id, scheduled_analysis_url, sample_url, state, created_at, updated_at) VALUES ('by-hand', 'u', 's', 'waiting', 1, 1)").run();
  } finally {
    raw.close();
  }
  await assertCountsMatch(ledger, file, 'after hand edits');
});
