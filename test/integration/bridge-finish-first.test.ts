import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MassClient } from '../../src/mass/types.js';
import { startHarness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const SAMPLES = 24;

/** Records the order of the bridge's sample reads and report posts; each sample read takes `delayMs` longer. */
function recordMass(calls: string[], delayMs: number): (c: MassClient) => MassClient {
  return (c) =>
    new Proxy(c, {
      get(target, prop, receiver) {
        if (prop === 'getSample') {
          return async (...args: Parameters<MassClient['getSample']>) => {
            await new Promise((r) => setTimeout(r, delayMs));
            calls.push('read');
            return target.getSample(...args);
          };
        }
        if (prop === 'submitReport') {
          return async (...args: Parameters<MassClient['submitReport']>) => {
            const report = await target.submitReport(...args);
            calls.push('report');
            return report;
          };
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
}

test('reports reach MASS while other scheduled analyses are still being taken in, not after the last one', { timeout: 60_000 }, async (t) => {
  const calls: string[] = [];
  const h = await startHarness(t, {
    al: { analysisDelayMs: 20 },
    config: { bridge: { concurrency: 2, queuePollTime: 0.05 } },
    wrapMass: recordMass(calls, 60),
  });
  for (let i = 0; i < SAMPLES; i++) await h.seedFile(`finish-${i}.bin`, `sample ${i} for the finishing order`);
  h.bridge.start();
  await waitFor(async () => (await h.massState()).reports.length >= SAMPLES, { timeoutMs: 45_000, what: `${SAMPLES} reports on MASS` });
  const state = await h.massState();
  assert.equal(state.reports.length, SAMPLES);
  assert.ok(state.reports.every((r) => r.error_message === null), 'every report is an analysis report');
  const firstReport = calls.indexOf('report');
  const lastRead = calls.lastIndexOf('read');
  assert.ok(firstReport >= 0 && firstReport < lastRead, `the first report came after the last sample read: ${calls.join(' ')}`);
});
