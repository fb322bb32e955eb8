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

test('once analysis times are known, a wave of jobs is read when its analyses end, not by backoff reads while they run', { timeout: 60_000 }, async (t) => {
  const reads: number[] = [];
  const h = await startHarness(t, {
    al: { analysisDelayMs: 3_000 },
    config: { bridge: { queuePollTime: 5, queueReadsPerMinute: 6000 } },
    wrapAl: countReads(reads),
  });
  // First wave: the bridge learns that analyses take 3 s (notify_time − ingest_time of its notifications).
  for (let i = 0; i < 8; i++) await h.seedFile(`learn-${i}.bin`, `first wave sample ${i}`);
  h.bridge.start();
  const reportsOf = async (n: number): Promise<boolean> => {
    const s = await h.massState();
    return s.reports.length >= n && s.scheduled_pending === 0 && h.ledger.inFlight() === 0;
  };
  await waitFor(() => reportsOf(8), { timeoutMs: 30_000, what: 'the first wave reported' });
  // Second wave: plain backoff (50, 100, 200, 400, 800, 1600 ms) would read 6 times, empty, before the analyses
  // end at 3 s; timed by the expected finish, the first read comes when they end (a simulator timer that fires
  // late under load may cost a short backoff of one or two more reads).
  const before = reads.length;
  for (let i = 0; i < 8; i++) await h.seedFile(`wave-${i}.bin`, `second wave sample ${i}`);
  await waitFor(() => reportsOf(16), { timeoutMs: 30_000, what: 'the second wave reported' });
  const wave = reads.slice(before);
  assert.equal(reads.reduce((a, b) => a + b, 0), 16, 'every notification was read once');
  const emptyBeforeFirst = wave.findIndex((n) => n > 0);
  assert.ok(emptyBeforeFirst >= 0 && emptyBeforeFirst <= 3, `empty reads before the first notification of the wave: ${wave.join(',')}`);
});
