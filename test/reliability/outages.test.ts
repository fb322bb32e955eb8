/**
 * Upstream outages and network faults, injected by a TCP fault proxy between the bridge and each
 * simulator (test/helpers/fault-proxy.ts). For each: the bridge keeps running, /ready tells the
 * truth while the upstream is away (false, the upstream named), and once it is back everything
 * completes: exactly one report per scheduled analysis, no sample relation twice, nothing pending.
 * Loopback only; every wait is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MassSimState } from '../helpers/bridge-harness.js';
import { reportsBySample } from '../helpers/bridge-harness.js';
import { startProxiedHarness, type ProxiedHarness } from '../helpers/fault-harness.js';
import { waitFor } from '../helpers/wait.js';

const DROPPER = (i: number) =>
  JSON.stringify({ score: 800, extracted: [{ name: `payload-${i}.dll`, relation: 'DYNAMIC' }], iocs: [{ type: 'network.dynamic.ip', value: `203.0.113.${i + 1}`, safelisted: false }] });

/** Plain files plus droppers (each adds an extracted file sample and two relations). */
async function seed(h: ProxiedHarness, files: number, droppers: number, size = 64): Promise<{ urls: string[]; analyses: number; relations: number }> {
  const urls: string[] = [];
  for (let i = 0; i < files; i++) urls.push((await h.seedFile(`file-${i}.bin`, `ordinary file ${i}\n${'.'.repeat(size)}\n`)).url);
  for (let i = 0; i < droppers; i++) urls.push((await h.seedFile(`dropper-${i}.exe`, `dropper ${i}\nAL-SIM: ${DROPPER(i)}\n`)).url);
  // Each dropped file is a new MASS sample that MASS schedules for us too (its report comes from the parent).
  return { urls, analyses: files + 2 * droppers, relations: 2 * droppers };
}

/** The invariant after the upstream is back. */
function assertComplete(h: ProxiedHarness, state: MassSimState, seeded: { urls: string[]; analyses: number; relations: number }) {
  const by = reportsBySample(state);
  for (const url of seeded.urls) assert.equal(by.get(url)?.length, 1, `exactly one report for ${url}`);
  assert.equal(state.reports.length, seeded.analyses, 'one report per scheduled analysis, none extra');
  const keys = state.relations.map((r) => `${r._cls} ${r.sample} ${r.other}`);
  assert.equal(new Set(keys).size, keys.length, 'no sample relation twice');
  assert.equal(state.relations.length, seeded.relations);
  assert.equal(state.scheduled_pending, 0);
  assert.equal(state.analysis_requests, 0);
  assert.equal(h.ledger.inFlight(), 0, 'nothing in flight in the ledger');
  for (const [name, loop] of Object.entries(h.bridge.loops)) assert.ok(loop.running, `the ${name} loop still runs`);
}

test('MASS refused for a while: /ready is false naming MASS, the bridge keeps running, everything completes when MASS is back', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { config: { bridge: { retryBaseDelay: 0.02, retryMaxDelay: 0.2 } } });
  const seeded = await seed(h, 6, 2);
  h.bridge.start();
  await waitFor(async () => (await h.ready()).ready, { timeoutMs: 20_000, what: '/ready true before the outage' });
  await h.massProxy.set({ refuse: true });
  const down = await waitFor(async () => {
    const r = await h.ready();
    return r.status === 503 && !r.checks.mass ? r : null;
  }, { timeoutMs: 10_000, what: '/ready false naming MASS' });
  assert.ok(down.reasons.some((r) => /MASS/.test(r)), `a reason names MASS: ${JSON.stringify(down.reasons)}`);
  assert.equal(down.checks.ledger, true);
  // The outage lasts many poll periods and step retries.
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(h.bridge.control.status().upstreams.mass.consecutiveFailures > 0, 'the failures are counted');
  for (const loop of Object.values(h.bridge.loops)) assert.ok(loop.running);
  await h.massProxy.set({});
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  await waitFor(async () => (await h.ready()).ready, { timeoutMs: 10_000, what: '/ready true again' });
});

test('Assemblyline a black hole (accepts, never answers): /ready names Assemblyline, everything completes once it answers', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { timeoutMs: 500, readyAssemblylineWindowMs: 800 });
  const seeded = await seed(h, 4, 1);
  await h.alProxy.set({ blackHole: true });
  h.bridge.start();
  const down = await waitFor(async () => {
    const r = await h.ready();
    return r.status === 503 && !r.checks.assemblyline && r.checks.mass ? r : null;
  }, { timeoutMs: 15_000, what: '/ready false naming Assemblyline' });
  assert.ok(down.reasons.some((r) => /Assemblyline/.test(r)), `a reason names Assemblyline: ${JSON.stringify(down.reasons)}`);
  await waitFor(() => h.alProxy.stats().swallowed > 0 && h.bridge.control.status().upstreams.assemblyline.consecutiveFailures > 0, {
    what: 'the bridge tried Assemblyline and counted the failure',
  });
  assert.equal(h.al.stats().ingests, 0, 'nothing reached Assemblyline');
  await h.alProxy.set({});
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  assert.equal(h.al.stats().ingests, 5, 'one ingest per file analysis');
  await waitFor(async () => (await h.ready()).ready, { timeoutMs: 10_000, what: '/ready true again' });
});

test('Assemblyline refused (closed port) during work, then back', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { readyAssemblylineWindowMs: 800 });
  const seeded = await seed(h, 6, 0);
  h.bridge.start();
  await waitFor(() => h.al.stats().ingests >= 1, { what: 'a first ingest' });
  await h.alProxy.set({ refuse: true });
  await waitFor(async () => !(await h.ready()).checks.assemblyline, { timeoutMs: 10_000, what: '/ready assemblyline false' });
  await h.alProxy.set({});
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  // An ingest whose connection was cut after Assemblyline accepted it is repeated (docs/design.md §5:
  // harmless, the cache answers); one outage loses at most one answer per job.
  for (const [sha, n] of Object.entries(h.al.stats().ingestsBySha256)) assert.ok(n <= 2, `${sha} ingested ${n} times`);
  for (const r of (await h.massState()).reports) assert.equal(r.error_message, null, 'analysis reports, not error reports');
});

test('503 storms: Assemblyline API quota of one concurrent call and MASS answering 503 to 40 requests', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { al: { concurrentQuota: 1 } });
  const seeded = await seed(h, 8, 2);
  await h.massControl('/_sim/faults', { path_prefix: '/api/', status: 503, times: 40 });
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses, 60_000), seeded);
  assert.equal(h.al.stats().ingests, 10);
});

test('slow bodies both ways: every chunk of 512 bytes delayed, samples of 64 KiB', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { timeoutMs: 5000 });
  await h.massProxy.set({ latencyMs: 1, chunkBytes: 512 });
  await h.alProxy.set({ latencyMs: 1, chunkBytes: 4096 });
  const seeded = await seed(h, 3, 1, 64 * 1024);
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses, 60_000), seeded);
  assert.ok(h.massProxy.stats().bytesDown > 3 * 64 * 1024, 'the samples came through the slow proxy');
});

test('reset mid-download (after 10 000 bytes of a sample), twice: the download is retried and the report is right', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t);
  const seeded = await seed(h, 2, 0, 200_000);
  await h.massProxy.set({ reset: { direction: 'down', bytes: 10_000, after: '/download/', times: 2 } });
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  assert.equal(h.massProxy.stats().resets, 2, 'both resets happened');
  for (const r of (await h.massState()).reports) assert.equal(r.error_message, null, 'analysis reports, not error reports');
  assert.equal(h.al.stats().ingests, 2, 'a cut download never reached Assemblyline');
});

test('reset mid-upload (after 20 000 bytes of an ingest), twice: Assemblyline gets each sample once', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t);
  const seeded = await seed(h, 2, 0, 200_000);
  await h.alProxy.set({ reset: { direction: 'up', bytes: 20_000, after: 'POST /api/v4/ingest/', times: 2 } });
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  assert.equal(h.alProxy.stats().resets, 2, 'both resets happened');
  assert.equal(h.al.stats().ingests, 2, 'a cut upload is no ingest; each sample ingested once');
  for (const r of (await h.massState()).reports) assert.equal(r.error_message, null);
});

test('reset mid-response: the answer to a saved MASS report is cut; the report is found, not sent twice', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t);
  const seeded = await seed(h, 3, 1);
  // 40 bytes into the answer: MASS has saved the report, the bridge sees a reset.
  await h.massProxy.set({ reset: { direction: 'down', bytes: 40, after: 'submit_report/', times: 2 } });
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  assert.equal(h.massProxy.stats().resets, 2);
});

test('reset mid-response from Assemblyline: the submission/full answer is cut, fetched again', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t);
  const seeded = await seed(h, 2, 1);
  await h.alProxy.set({ reset: { direction: 'down', bytes: 100, after: '/submission/full/', times: 2 } });
  h.bridge.start();
  assertComplete(h, await h.settled(seeded.analyses), seeded);
  assert.equal(h.alProxy.stats().resets, 2);
  assert.equal(h.al.stats().ingests, 3, 'results fetched again, not ingested again');
});

test('notifications that never come: the reconciler finds the finished submissions after ResultDeadline', { timeout: 90_000 }, async (t) => {
  const h = await startProxiedHarness(t, { config: { bridge: { resultDeadline: 1 } } });
  const seeded = await seed(h, 2, 0);
  const lost: string[] = [];
  for (let i = 0; i < 3; i++) lost.push((await h.seedFile(`lost-${i}.bin`, `never notified ${i}\nAL-SIM: {"lose_notification_times": 1}\n`)).url);
  h.bridge.start();
  const state = await h.settled(seeded.analyses + 3);
  assertComplete(h, state, { ...seeded, urls: [...seeded.urls, ...lost], analyses: seeded.analyses + 3 });
  assert.equal(h.al.stats().messagesLost, 3, 'the simulator lost three notifications');
  assert.equal(h.al.stats().ingests, 5, 'found, not ingested again');
  for (const r of state.reports) assert.equal(r.error_message, null);
});

test('the notification queue deleted by Assemblyline after 24 h (simulated clock): the reconciler completes the work', { timeout: 90_000 }, async (t) => {
  let skewMs = 0;
  const h = await startProxiedHarness(t, { al: { now: () => Date.now() + skewMs }, config: { bridge: { resultDeadline: 2 } } });
  const seeded = await seed(h, 3, 0);
  h.bridge.start();
  // The bridge does not read the queue for a while (as when it was down): the notifications age there.
  await h.bridge.loops.listener.stop();
  await waitFor(() => h.al.stats().messagesQueued >= 3, { what: 'three notifications waiting in the queue' });
  skewMs = 25 * 3_600_000;
  assert.equal(h.al.runQueueCleanup(), 1, 'Assemblyline deleted the queue (its oldest message is older than 24 h)');
  h.bridge.loops.listener.start();
  const state = await h.settled(seeded.analyses);
  assertComplete(h, state, seeded);
  assert.equal(h.al.stats().ingests, 3, 'found by the reconciler, not ingested again');
  for (const r of state.reports) assert.equal(r.error_message, null);
});
