import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashPointFromSpec } from '../../src/bridge/crash-point.js';

test('MASSAL_TEST_CRASH_AT: unset arms nothing; <point>:N kills at the N-th time that point is reached only', () => {
  assert.equal(crashPointFromSpec(undefined, () => assert.fail('no kill')), undefined);
  assert.equal(crashPointFromSpec('', () => assert.fail('no kill')), undefined);
  const killed: string[] = [];
  const hook = crashPointFromSpec('after-claim:3', (name) => killed.push(name))!;
  hook('after-claim');
  hook('after-report-answer');
  hook('after-claim');
  assert.deepEqual(killed, []);
  hook('after-claim');
  assert.deepEqual(killed, ['after-claim']);
  const killedFirst: string[] = [];
  const first = crashPointFromSpec('after-queue-pop', (name) => killedFirst.push(name))!;
  first('after-queue-pop');
  assert.deepEqual(killedFirst, ['after-queue-pop']);
});

test('MASSAL_TEST_CRASH_AT: an unknown point or a bad count is refused with the known points', () => {
  assert.throws(() => crashPointFromSpec('after-lunch', () => undefined), /unknown crash point "after-lunch".*after-claim/);
  assert.throws(() => crashPointFromSpec('after-claim:0', () => undefined), /not a count/);
  assert.throws(() => crashPointFromSpec('after-claim:x', () => undefined), /not a count/);
});
