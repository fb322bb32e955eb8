/**
 * CallLimiter (src/assemblyline/limiter.ts): the slots of concurrent Assemblyline calls, served first come, first
 * served, with `first` waiters (notification-queue reads) ahead of the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallLimiter } from '../../src/assemblyline/limiter.js';
import { BridgeError } from '../../src/errors.js';

/** Lets every settled promise run its callbacks. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a `first` waiter aborted while queued rejects with the abort reason, takes no slot, and the others are served in order', async () => {
  const limiter = new CallLimiter(1);
  const held = await limiter.acquire();
  const granted: string[] = [];
  const releases = new Map<string, () => void>();
  const wait = (name: string, signal?: AbortSignal, first = false): Promise<void> =>
    limiter.acquire(signal, first).then((release) => {
      granted.push(name);
      releases.set(name, release);
    });

  const plain1 = wait('plain-1');
  const aborter = new AbortController();
  const aborted = limiter.acquire(aborter.signal, true);
  const first2 = wait('first-2', undefined, true);
  const plain2 = wait('plain-2');
  assert.equal(limiter.waiting, 4);

  const reason = new Error('the listener stops');
  aborter.abort(reason);
  await assert.rejects(aborted, (err: unknown) => err instanceof BridgeError && err.code === 'ABORTED' && err.cause === reason);
  assert.equal(limiter.waiting, 3, 'the aborted waiter left the queue');
  assert.equal(limiter.active, 1, 'and took no slot');

  // Each release hands the one slot to the next waiter: the remaining `first` one, then the others in arrival order.
  held();
  await turn();
  assert.deepEqual(granted, ['first-2']);
  releases.get('first-2')!();
  await turn();
  assert.deepEqual(granted, ['first-2', 'plain-1']);
  releases.get('plain-1')!();
  await turn();
  assert.deepEqual(granted, ['first-2', 'plain-1', 'plain-2']);
  await Promise.all([plain1, first2, plain2]);
  assert.equal(limiter.active, 1);
  releases.get('plain-2')!();
  assert.equal(limiter.active, 0, 'every slot is back: the aborted waiter held none');
  assert.equal(limiter.waiting, 0);

  // Aborting after the fact changes nothing; a new caller gets a slot at once.
  const release = await limiter.acquire(new AbortController().signal, true);
  assert.equal(limiter.active, 1);
  release();
  release();
  assert.equal(limiter.active, 0, 'a release called twice frees one slot');
});
