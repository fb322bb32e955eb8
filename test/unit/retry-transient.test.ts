/**
 * retryTransient (bridge/context.ts): pRetry with its first attempt made directly. Same outcome as pRetry for a
 * first success, a transient failure that succeeds later, a permanent failure, exhausted retries and a shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryTransient } from '../../src/bridge/context.js';
import { BridgeError, isTransient } from '../../src/errors.js';

function options(signal: AbortSignal, retries = 2) {
  return { retries, minTimeout: 1, maxTimeout: 5, randomize: true, signal, shouldRetry: ({ error }: { error: Error }) => !signal.aborted && isTransient(error) };
}

/** A call that fails with the given errors in turn, then answers `ok`; counts its attempts. */
function flaky(errors: Error[]): { calls: number; fn: () => Promise<string> } {
  const out = {
    calls: 0,
    fn: () => {
      out.calls++;
      const e = errors[out.calls - 1];
      return e ? Promise.reject(e) : Promise.resolve('ok');
    },
  };
  return out;
}

const transient = () => new BridgeError('UPSTREAM_HTTP', 'Assemblyline answered 503', { upstream: 'assemblyline', status: 503 });

test('a first success is returned after one attempt', async () => {
  const call = flaky([]);
  assert.equal(await retryTransient(call.fn, options(new AbortController().signal)), 'ok');
  assert.equal(call.calls, 1);
});

test('transient failures are retried until the call succeeds, within the retries', async () => {
  const call = flaky([transient(), transient()]);
  assert.equal(await retryTransient(call.fn, options(new AbortController().signal, 2)), 'ok');
  assert.equal(call.calls, 3);
  const exhausted = flaky([transient(), transient(), transient()]);
  await assert.rejects(retryTransient(exhausted.fn, options(new AbortController().signal, 2)), (e: unknown) => e instanceof BridgeError && e.code === 'UPSTREAM_HTTP');
  assert.equal(exhausted.calls, 3, 'one attempt and two retries');
});

test('a permanent failure is not retried and reaches the caller unchanged', async () => {
  const refused = new BridgeError('AUTH', 'MASS refused the key', { upstream: 'mass', status: 403 });
  const call = flaky([refused]);
  await assert.rejects(retryTransient(call.fn, options(new AbortController().signal)), (e: unknown) => e === refused);
  assert.equal(call.calls, 1);
});

test('a shutdown before the call makes no attempt; one during a successful attempt rejects with its reason', async () => {
  const stopped = new AbortController();
  const reason = new BridgeError('ABORTED', 'bridge shutting down');
  stopped.abort(reason);
  const call = flaky([]);
  await assert.rejects(retryTransient(call.fn, options(stopped.signal)), (e: unknown) => e === reason);
  assert.equal(call.calls, 0);

  const during = new AbortController();
  let calls = 0;
  const fn = () => {
    calls++;
    during.abort(reason);
    return Promise.resolve('ok');
  };
  await assert.rejects(retryTransient(fn, options(during.signal)), (e: unknown) => e === reason);
  assert.equal(calls, 1);
});
