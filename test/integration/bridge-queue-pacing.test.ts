import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AssemblylineClient } from '../../src/assemblyline/types.js';
import { startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const SAMPLES = 20;

/** Counts the bridge's notification-queue reads and the messages each brought. */
function countReads(reads: number[]): (c: AssemblylineClient) => AssemblylineClient {
  return (c) =>
    new Proxy(c, {
      get(target, prop, receiver) {
        if (prop !== 'getMessages') return Reflect.get(target, prop, receiver) as unknown;
        return async (...args: Parameters<AssemblylineClient['getMessages']>) => {
          const messages = await target.getMessages(...args);
          reads.push(messages.length);
          return messages;
        };
      },
    });
}

async function seedAndWait(h: Harness, timeoutMs: number): Promise<void> {
  for (let i = 0; i < SAMPLES; i++) await h.seedFile(`pace-${i}.bin`, `sample ${i} for queue pacing`);
  h.bridge.start();
  await waitFor(
    async () => {
      const s = await h.massState();
      return s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 && s.reports.length >= SAMPLES;
    },
    { timeoutMs, what: `${SAMPLES} reports on MASS` },
  );
}

test('default pacing (QueuePollTime 5 s, 120 reads a minute): 20 analyses of 0.2 s are collected in few queue reads, none lost', { timeout: 60_000 }, async (t) => {
  const reads: number[] = [];
  const h = await startHarness(t, {
    al: { analysisDelayMs: 200 },
    config: { bridge: { queuePollTime: 5, queueReadsPerMinute: 120 } },
    wrapAl: countReads(reads),
  });
  await seedAndWait(h, 30_000);
  const state = await h.massState();
  assert.equal(state.reports.length, SAMPLES);
  assert.ok(state.reports.every((r) => r.error_message === null), 'every report is an analysis report');
  const withMessages = reads.filter((n) => n > 0).length;
  assert.equal(reads.reduce((a, b) => a + b, 0), SAMPLES, 'every notification was read once');
  // Backoff while jobs wait (50, 100, 200 … ms) instead of one read every 5 s; within the burst of 20 reads.
  assert.ok(reads.length <= 20, `${reads.length} queue reads (${reads.join(',')})`);
  assert.ok(reads.length - withMessages >= 2, `empty reads while jobs waited: ${reads.join(',')}`);
});

test('results do not wait for QueuePollTime while jobs wait: 20 analyses end long before the first 60 s interval', { timeout: 60_000 }, async (t) => {
  const reads: number[] = [];
  const h = await startHarness(t, {
    al: { analysisDelayMs: 200 },
    config: { bridge: { queuePollTime: 60, queueReadsPerMinute: 120 } },
    wrapAl: countReads(reads),
  });
  // With a fixed 60 s wait between empty reads, no notification could be read within this timeout.
  await seedAndWait(h, 40_000);
  assert.equal(reads.reduce((a, b) => a + b, 0), SAMPLES);
  assert.ok(reads.length <= 20, `${reads.length} queue reads`);
});

test('the budget caps the reads: 6 reads a minute allows the burst of 1 read, then one every 10 s', { timeout: 30_000 }, async (t) => {
  const reads: number[] = [];
  const h = await startHarness(t, {
    al: { analysisDelayMs: 5_000 },
    config: { bridge: { queuePollTime: 0.05, queueReadsPerMinute: 6 } },
    wrapAl: countReads(reads),
  });
  await h.seedFile('slow.bin', 'analysis takes 5 s');
  h.bridge.start();
  await waitFor(() => h.ledger.countByState().waiting === 1, { timeoutMs: 10_000, what: 'the job waits' });
  const atWaiting = reads.length;
  await new Promise((r) => setTimeout(r, 1_500));
  // QueuePollTime 0.05 s alone would read ~30 times in 1.5 s; the budget leaves at most one more.
  assert.ok(reads.length - atWaiting <= 1, `${reads.length - atWaiting} reads in 1.5 s while a job waited`);
});
