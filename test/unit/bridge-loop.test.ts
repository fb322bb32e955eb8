import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Loop } from '../../src/bridge/loop.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

test('a loop ticks, start and stop are safe twice, and stop waits for the running tick', async () => {
  let ticks = 0;
  let inTick = false;
  const loop = new Loop('t', () => 1, async () => {
    inTick = true;
    ticks++;
    await new Promise((r) => setImmediate(r));
    inTick = false;
  }, silentLogger());
  loop.start();
  loop.start();
  await waitFor(() => ticks >= 3, { what: 'three ticks' });
  await loop.stop();
  assert.equal(inTick, false, 'no tick is running after stop resolved');
  const after = ticks;
  await loop.stop();
  assert.equal(loop.running, false);
  await new Promise((r) => setImmediate(r));
  assert.equal(ticks, after, 'no tick after stop');
});

test('after a failed tick the loop waits the error interval (SleepTime), not the normal one', async () => {
  let ticks = 0;
  // Normal interval: an hour. Only the error interval lets the loop come back.
  const loop = new Loop('poller', () => 3_600_000, async () => {
    ticks++;
    throw new Error('MASS is down');
  }, silentLogger(), () => 1);
  loop.start();
  try {
    await waitFor(() => ticks >= 3, { timeoutMs: 5000, what: 'retries after failures' });
  } finally {
    await loop.stop();
  }
});

test('wake() runs the next tick at once', async () => {
  let ticks = 0;
  const loop = new Loop('w', () => 3_600_000, async () => {
    ticks++;
  }, silentLogger());
  loop.start();
  await waitFor(() => ticks === 1, { what: 'first tick' });
  loop.wake();
  await waitFor(() => ticks === 2, { timeoutMs: 5000, what: 'the woken tick' });
  await loop.stop();
});
