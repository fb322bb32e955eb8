import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportsBySample, scheduleAgain, seedWorkload, startHarness, WORKLOAD_TAG_FILTER, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

async function settled(h: Harness, expectedReports: number, what: string) {
  try {
    return await waitUntilSettled(h, expectedReports, what);
  } catch (err) {
    const s = await h.massState();
    const stuck = h.ledger.list({ states: ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'held'], limit: 5 }).jobs;
    const alState = (await h.alControl('/_sim/state', undefined, 'GET')) as { ingests: Array<{ ingest_id: string }>; submissions: Array<{ sid: string }> };
    const ids = new Set(stuck.map((j) => j.ingestId));
    const detail = { al: { ingests: alState.ingests.filter((i) => ids.has(i.ingest_id)), subs: alState.submissions.filter((x) => ids.has(x.sid)) }, byState: h.ledger.countByState(), reports: s.reports.length, pending: s.scheduled_pending, requests: s.analysis_requests, stuck, events: stuck[0] ? h.ledger.events(stuck[0].id) : [] };
    throw new Error(`${(err as Error).message}\n${JSON.stringify(detail, null, 1)}`, { cause: err });
  }
}

async function waitUntilSettled(h: Harness, expectedReports: number, what: string) {
  return waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= expectedReports && s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs: 45_000, intervalMs: 100, what },
  );
}

test('issue 3 acceptance: 200 scheduled analyses, every one ends with exactly one report', { timeout: 90_000 }, async (t) => {
  const h = await startHarness(t, {
    mass: { tagFilter: WORKLOAD_TAG_FILTER },
    config: { bridge: { maxFileSize: 4096, resultDeadline: 3 } },
  });
  h.bridge.start();

  // Phase 1: the mix (duplicates, non-file, TLP-hidden, oversize, Skipped once, lost notification).
  const workload = await seedWorkload(h, 165);
  let state = await settled(h, workload.analyses, 'phase 1 reports');

  // Phase 2: cache hits: files already analysed are scheduled again one after another.
  const cacheSamples = [...reportsBySample(state)]
    .filter(([, reports]) => reports.length === 1 && reports[0].error_message === null)
    .slice(0, 3)
    .map(([url]) => url);
  for (const url of cacheSamples) await scheduleAgain(h, url);
  state = await settled(h, workload.analyses + 3, 'cache-hit reports');
  for (const url of cacheSamples) {
    const reports = reportsBySample(state).get(url) ?? [];
    assert.equal(reports.length, 2, 'two scheduled analyses of one sample → two reports');
    const second = reports.map((r) => r.additional_metadata.assemblyline as Record<string, unknown>);
    assert.equal(second[0].sid, second[1].sid, 'the cache hit reports the earlier submission');
  }

  // Phase 3: notifications sit in the queue while the listener is paused; the 24 h cleanup deletes the queue.
  await h.bridge.loops.listener.stop();
  const before = h.al.stats().messagesQueued;
  for (let i = 0; i < 5; i++) await h.seedFile(`late-${i}.bin`, `arrives before the queue is deleted ${i}\n`);
  await waitFor(() => h.al.stats().messagesQueued >= before + 5, { timeoutMs: 20_000, what: 'messages queued in AL' });
  await h.alControl('/_sim/clock', { advance_ms: 25 * 3600 * 1000 });
  assert.equal(h.al.runQueueCleanup(), 1, 'the whole notification queue is deleted');
  h.bridge.loops.listener.start();
  const total = workload.analyses + 3 + 5;
  state = await settled(h, total, 'reports after queue deletion');

  // Exactly one report per scheduled analysis (our marker is the scheduled-analysis id), nothing pending.
  assert.equal(state.reports.length, total);
  const markers = new Set(state.reports.map((r) => (r.additional_metadata.assemblyline as Record<string, unknown>).bridge_job));
  assert.equal(markers.size, total, 'no scheduled analysis got two reports');
  assert.equal(state.scheduled_pending, 0);

  const errors = state.reports.filter((r) => r.error_message !== null);
  assert.equal(errors.length, workload.errorReports);
  const errorOf = (url: string) => reportsBySample(state).get(url)?.[0]?.error_message ?? '';
  for (const url of workload.errorSamples.nonFile) assert.match(errorOf(url), /not a file sample/);
  for (const url of workload.errorSamples.hidden) assert.match(errorOf(url), /not visible/);
  for (const url of workload.errorSamples.oversize) assert.match(errorOf(url), /too large/);

  // Assemblyline saw one ingest per file analysis plus the documented re-ingests (Skipped), nothing more.
  const stats = h.al.stats();
  assert.ok(stats.ingests <= workload.maxIngests + 3 + 5, `ingests ${stats.ingests} <= ${workload.maxIngests + 8}`);
  assert.ok(stats.ingests >= workload.maxIngests - 3 + 3 + 5, `ingests ${stats.ingests}: every file analysis reached AL`);
  assert.ok(stats.messagesLost >= 3, 'the lost notifications really were lost');
  assert.equal(h.ledger.countByState().held, 0);
});
