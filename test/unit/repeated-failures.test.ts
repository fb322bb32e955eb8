import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPEAT_LOG_INTERVAL_MS, RepeatedFailures } from '../../src/bridge/repeated-failures.js';

test('a failure repeated every second is logged when it starts, then once a minute with the count left out', () => {
  const failures = new RepeatedFailures();
  const logged: Array<{ at: number; repeats: number }> = [];
  // An hour of polls at PollTime 1 s, each refused the same way.
  for (let s = 0; s < 3600; s++) {
    const d = failures.failed('MASS refuses the poll (403)', s * 1000);
    if (d.log) logged.push({ at: s, repeats: d.repeats });
  }
  assert.equal(logged.length, 60, 'one line a minute, not 3600');
  assert.deepEqual(logged[0], { at: 0, repeats: 0 });
  assert.deepEqual(logged[1], { at: 60, repeats: 59 });
  assert.equal(logged.reduce((n, l) => n + 1 + l.repeats, 0), 3600 - 59, 'every failure but the last minute is logged or counted');
  assert.equal(failures.inRow, 3600);
  assert.equal(REPEAT_LOG_INTERVAL_MS, 60_000);
});

test('a different message is logged at once; a success ends the run and says how many failures it ended', () => {
  const failures = new RepeatedFailures(1000);
  assert.deepEqual(failures.failed('403', 0), { log: true, repeats: 0 });
  assert.deepEqual(failures.failed('403', 10), { log: false });
  assert.deepEqual(failures.failed('403', 20), { log: false });
  assert.deepEqual(failures.failed('TIMEOUT', 30), { log: true, repeats: 2 }, 'a change of message is logged at once, with the lines it left out');
  assert.deepEqual(failures.failed('TIMEOUT', 40), { log: false });
  assert.equal(failures.succeeded(), 5);
  assert.equal(failures.succeeded(), 0, 'nothing to say after a success that follows a success');
  assert.deepEqual(failures.failed('TIMEOUT', 50), { log: true, repeats: 0 }, 'the first failure after a success is logged at once');
});
