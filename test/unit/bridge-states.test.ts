/** The state table is the only authority on transitions: both ledgers refuse what it does not allow. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { budgetOf, canTransition, FINAL_STATES, STATE_TABLE, TransitionRefused, WORK_STATES } from '../../src/bridge/states.js';
import { openLedger } from '../../src/ledger/sqlite.js';
import { JOB_STATES, type JobState, type Ledger } from '../../src/ledger/types.js';
import { createFakeLedger } from '../helpers/fake-ledger.js';
import { pathTo, walkTo } from '../helpers/ledger-walk.js';

const sa = (id: string) => ({ id, scheduledAnalysisUrl: `http://m/api/scheduled_analysis/${id}/`, sampleUrl: `http://m/api/sample/s${id}/` });

for (const [name, open] of [
  ['SQLite ledger', () => openLedger(':memory:')],
  ['test fake ledger', () => createFakeLedger()],
] as Array<[string, () => Ledger]>) {
  test(`${name}: every transition the table does not allow is refused and nothing is written`, (t) => {
    const ledger = open();
    t.after(() => ledger.close());
    let n = 0;
    let refused = 0;
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        const id = `j${n++}`;
        ledger.claim(sa(id), 1000);
        if (from !== 'claimed') {
          walkTo(ledger, id, from, 1000);
          ledger.update(id, { state: from }, { type: 'setup' }, 1000);
        }
        const before = ledger.get(id)!;
        const eventsBefore = ledger.events(id).length;
        if (canTransition(from, to)) {
          assert.equal(ledger.update(id, { state: to }, { type: 'move' }, 2000).state, to, `${from} → ${to} is allowed`);
        } else {
          refused++;
          assert.throws(() => ledger.update(id, { state: to, lastError: 'x' }, { type: 'move' }, 2000), TransitionRefused, `${from} → ${to} is refused`);
          assert.deepEqual(ledger.get(id), before, 'the job is unchanged');
          assert.equal(ledger.events(id).length, eventsBefore, 'no event is written');
        }
      }
    }
    assert.ok(refused > 40, `most pairs are refused (${refused})`);
    // The specific holes the table closes:
    ledger.claim(sa('done1'), 1);
    walkTo(ledger, 'done1', 'done', 2);
    ledger.update('done1', { state: 'done' }, { type: 'report-sent' }, 3);
    assert.throws(() => ledger.update('done1', { state: 'reporting' }, { type: 'x' }, 4), /done → reporting/);
    assert.throws(() => ledger.update('done1', { state: 'failed' }, { type: 'x' }, 4), /done → failed/);
  });
}

test('the table: final states lead nowhere, every unfinished state can reach an end, work states have a budget', () => {
  assert.deepEqual([...FINAL_STATES].sort(), ['done', 'failed']);
  for (const s of JOB_STATES) {
    if (FINAL_STATES.includes(s) || s === 'held') continue;
    assert.ok(pathTo(s, 'done') || pathTo(s, 'failed'), `${s} can end`);
    assert.ok(pathTo(s, 'reporting'), `${s} can reach an error report`);
    const b = budgetOf(s, { maxAttempts: 3, outageMs: 3_600_000, resultDeadlineMs: 60_000, sameFailureLimit: 5 });
    assert.ok(b.ageMs !== null && b.ageMs > 0, `${s} has an age budget`);
    assert.notEqual(STATE_TABLE[s].onSpent, 'none', `${s} says what happens when its budget is spent`);
  }
  assert.ok(!WORK_STATES.includes('waiting'), 'waiting belongs to the listener and reconciler');
  assert.equal(STATE_TABLE.held.onSpent, 'none', 'held waits for an operator');
  const states: JobState[] = ['done', 'failed'];
  for (const s of states) assert.equal(canTransition(s, s), false, `${s} is final, even for a no-op state write`);
});
