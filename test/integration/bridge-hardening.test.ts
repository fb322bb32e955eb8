/**
 * Review findings of the pipeline core, each reproduced against the simulators (see docs/design.md §4).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AssemblylineClient, IngestRequest, SubmissionFull } from '../../src/assemblyline/types.js';
import { openBridgeRuntime } from '../../src/bridge/commands.js';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassClient, MassReport } from '../../src/mass/types.js';
import { makeConfig, overrideMethods, reportsBySample, settled, startHarness, startSimulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

test('the heartbeat poll goes on while sample downloads hold every connection to MASS', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t);
  // Concurrency = the MASS pool's 8 connections: eight slow downloads could starve a poll sharing that pool.
  const config = makeConfig(sims.endpoints, { bridge: { concurrency: 8, stepRetries: 1 } });
  const samples = [];
  for (let i = 0; i < 8; i++) samples.push(await sims.seedFile(`slow-${i}.bin`, `slow download ${i}\n`));
  // Each download answers only after a long delay; the connection is busy until then.
  for (const s of samples) await sims.massControl('/_sim/faults', { method: 'GET', path_prefix: `/api/sample/${s.id}/download/`, delay_ms: 8000, times: 1 });
  const downloads = { started: 0, finished: 0 };
  const runtime = await openBridgeRuntime(config, silentLogger(), {
    wrapMass: (c) =>
      overrideMethods<MassClient>(c, {
        downloadSample: async (original, ...args) => {
          downloads.started++;
          try {
            return await original(...args);
          } finally {
            downloads.finished++;
          }
        },
      }),
  });
  sims.defer(async () => {
    await runtime.bridge.stop({ graceMs: 500 });
    await runtime.close();
  });
  runtime.bridge.start();
  await waitFor(() => downloads.started >= 8, { timeoutMs: 20_000, what: 'eight downloads in flight' });
  const lastPoll = () => runtime.bridge.control.status().lastPollAt ?? 0;
  let seen = lastPoll();
  let polls = 0;
  await waitFor(
    () => {
      assert.equal(downloads.finished, 0, 'the polls must happen while every download is still held');
      if (lastPoll() !== seen) {
        seen = lastPoll();
        polls++;
      }
      return polls >= 3;
    },
    { timeoutMs: 6000, intervalMs: 10, what: 'three polls while the downloads are held' },
  );
});

test('a poll that never answers is cut off, and the next poll still happens', { timeout: 30_000 }, async (t) => {
  let calls = 0;
  const h = await startHarness(t, {
    config: { mass: { timeout: 0.2 } },
    wrapMass: (c) =>
      overrideMethods<MassClient>(c, {
        // The first poll hangs like a half-open connection: it only ends when its signal is aborted.
        poll: (original, uuid, opts) => {
          calls++;
          if (calls > 1) return original(uuid, opts);
          return new Promise((_resolve, reject) => {
            opts?.signal?.addEventListener('abort', () => reject(new BridgeError('ABORTED', 'poll aborted')), { once: true });
          });
        },
      }),
  });
  h.bridge.start();
  await waitFor(() => calls >= 2 && h.bridge.control.status().lastPollAt !== null, { timeoutMs: 10_000, what: 'a second, successful poll' });
  assert.equal(h.bridge.control.status().upstreams.mass.lastErrorCode, 'TIMEOUT');
});

test('a poll is cut off at the poll cap even when Timeout is longer, and the next poll still happens', { timeout: 30_000 }, async (t) => {
  // A MASS that accepts the poll and never answers it.
  const requests: string[] = [];
  const blackHole = createServer((req) => void requests.push(req.url ?? ''));
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const silent = createMassClient({ apiRoot: `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}/api/`, apiKey: 'unused' });
  t.after(async () => {
    blackHole.closeAllConnections();
    await new Promise((resolve) => blackHole.close(resolve));
    await silent.close();
  });
  const h = await startHarness(t, {
    // Timeout 10 s: only the cap (200 ms here, 4 minutes by default) ends the poll within this test.
    config: { mass: { timeout: 10 } },
    maxPollMs: 200,
    wrapMass: (c) => overrideMethods<MassClient>(c, { poll: (original, uuid, opts) => (requests.length < 2 ? silent.poll(uuid, opts) : original(uuid, opts)) }),
  });
  h.bridge.start();
  const error = await waitFor(() => h.bridge.control.status().identities?.[0].lastPollError ?? undefined, { timeoutMs: 5000, what: 'the first poll cut off' });
  assert.equal(error, 'MASS poll gave no answer within 200 ms');
  assert.equal(h.bridge.control.status().upstreams.mass.lastErrorCode, 'TIMEOUT');
  await waitFor(() => h.bridge.control.status().lastPollAt !== null, { timeoutMs: 5000, what: 'a later poll answered' });
  assert.equal(requests.length, 2, 'the silent MASS got the two polls before it, each cut off in turn');
  assert.match(requests[0], /scheduled_analyses/);
});

test('the ingest sends the sample size, so the upload carries a Content-Length instead of chunked encoding', { timeout: 30_000 }, async (t) => {
  const sizes: Array<number | undefined> = [];
  const h = await startHarness(t, {
    wrapAl: (c) => overrideMethods(c, { ingest: (original, req: IngestRequest, ro) => (sizes.push(req.size), original(req, ro)) }),
  });
  const content = 'a file with a known length\n';
  const sample = await h.seedFile('sized.bin', content);
  h.bridge.start();
  const state = await settled(h, 1);
  assert.equal(reportsBySample(state).get(sample.url)?.[0].error_message, null);
  assert.deepEqual(sizes, [Buffer.byteLength(content)]);
});

test('a MASS download outage does not use up the ingest attempts Assemblyline needs later', { timeout: 60_000 }, async (t) => {
  // MaxAttempts 3; the download fails for two whole step runs, then AL skips the first real ingest once.
  const h = await startHarness(t, { config: { bridge: { stepRetries: 2, maxAttempts: 3, retryBaseDelay: 0.01, retryMaxDelay: 0.05 } } });
  const sample = await h.seedFile('skip-after-outage.bin', 'outage then skipped\nAL-SIM: {"failure": "Skipped", "failure_times": 1}\n');
  await h.massControl('/_sim/faults', { method: 'GET', path_prefix: `/api/sample/${sample.id}/download/`, status: 503, times: 4 });
  h.bridge.start();
  const state = await settled(h, 1);
  const reports = reportsBySample(state).get(sample.url) ?? [];
  assert.equal(reports.length, 1);
  assert.equal(reports[0].error_message, null, 'analysed after the re-ingest, not an error report');
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.attempts, 2, 'two ingests reached Assemblyline');
  assert.equal(h.al.stats().ingests, 2);
});

test('a submission read as failed is re-ingested with ignore_cache; one read as still running is waited for', { timeout: 60_000 }, async (t) => {
  const fake: Record<string, string[]> = {}; // sid → states to answer first
  const ingests: IngestRequest[] = [];
  const h = await startHarness(t, {
    config: { bridge: { resultDeadline: 0.3 } },
    wrapAl: (c) =>
      overrideMethods(c as Required<AssemblylineClient>, {
        ingest: (original, req: IngestRequest, ro) => (ingests.push(req), original(req, ro)),
        // Hash-first: a re-ingest of a file Assemblyline holds goes in by sha256 (a 404 is followed by the upload).
        ingestBySha256: async (original, req, ro) => {
          const accepted = await original(req, ro);
          if (accepted) ingests.push({ ...req, body: Buffer.alloc(0) });
          return accepted;
        },
        getSubmissionFull: async (original, sid: string, ro) => {
          const full = await original(sid, ro);
          const next = fake[sid]?.shift();
          return full && next ? ({ ...full, state: next } as SubmissionFull) : full;
        },
        getSubmission: async (original, sid: string, ro) => {
          const sub = await original(sid, ro);
          return sub && fake[`lookup:${sid}`]?.shift() ? { ...sub, state: 'submitted' } : sub;
        },
      }),
  });
  h.bridge.on('job', (u) => {
    // The first ingest of each file: its submission is read back in a state that cannot be reported yet.
    if (u.event.type !== 'ingested' || u.job.attempts !== 1) return;
    const id = String(u.event.data?.ingestId);
    if (u.job.fileName === 'failed.bin') fake[id] = ['failed'];
    if (u.job.fileName === 'running.bin') {
      fake[id] = ['submitted'];
      fake[`lookup:${id}`] = ['submitted'];
    }
  });
  const failed = await h.seedFile('failed.bin', 'the dispatcher failed this one\n');
  const running = await h.seedFile('running.bin', 'still running when read\n');
  h.bridge.start();
  const state = await settled(h, 2);
  for (const s of [failed, running]) {
    const reports = reportsBySample(state).get(s.url) ?? [];
    assert.equal(reports.length, 1, `one report for ${s.file_names?.[0]}`);
    assert.equal(reports[0].error_message, null);
  }
  const byName = (n: string) => h.ledger.list({}).jobs.find((j) => j.fileName === n)!;
  const failedEvents = h.ledger.events(byName('failed.bin').id).map((e) => e.type);
  assert.ok(failedEvents.includes('submission-failed'));
  assert.equal(ingests.filter((r) => r.name === 'failed.bin').length, 2);
  assert.equal(ingests.find((r) => r.name === 'failed.bin' && r.params.ignore_cache === true)?.metadata.bridge_attempt, '2');
  const runningEvents = h.ledger.events(byName('running.bin').id).map((e) => e.type);
  assert.ok(runningEvents.includes('submission-running'));
  assert.ok(runningEvents.includes('reconciled'), 'collected once the reconciler found it completed');
  assert.equal(ingests.filter((r) => r.name === 'running.bin').length, 1, 'no re-ingest for a submission that was only running');
});

test('a report already on MASS is found before the results are read again (expired submission: no re-ingest)', { timeout: 60_000 }, async (t) => {
  let reportPosted = false;
  let lost = 1;
  const h = await startHarness(t, {
    // One try per step run: the lost answer ends the step, the next run starts from the `reporting` state.
    config: { bridge: { stepRetries: 1, retryBaseDelay: 0.01, retryMaxDelay: 0.05 } },
    wrapMass: (c) =>
      overrideMethods<MassClient>(c, {
        submitReport: async (original, ...args): Promise<MassReport> => {
          const r = await original(...args);
          reportPosted = true;
          if (lost-- > 0) throw new BridgeError('NETWORK', 'socket hang up (simulated: answer lost after MASS saved)', { upstream: 'mass' });
          return r;
        },
      }),
    // After the report, the submission expires in Assemblyline.
    wrapAl: (c) => overrideMethods(c, { getSubmissionFull: (original, sid: string, ro) => (reportPosted ? Promise.resolve(null) : original(sid, ro)) }),
  });
  const sample = await h.seedFile('reported.bin', 'reported, answer lost\n');
  h.bridge.start();
  const state = await settled(h, 1);
  assert.equal(reportsBySample(state).get(sample.url)?.length, 1);
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.state, 'done');
  assert.equal(h.al.stats().ingests, 1, 'the reported job was not sent back to Assemblyline');
  assert.ok(h.ledger.events(job.id).some((e) => e.type === 'report-sent' && e.data?.outcome === 'found'));
});

test('a scheduled analysis deleted on MASS while in flight ends the job (no report, no endless retry)', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const sample = await h.seedFile('deleted.bin', 'admin deletes the item\nAL-SIM: {"delay_ms": 1500}\n');
  h.bridge.start();
  const waiting = await waitFor(() => h.ledger.list({ states: ['waiting'] }).jobs[0], { timeoutMs: 20_000, what: 'job waiting for AL' });
  const res = await fetch(waiting.scheduledAnalysisUrl, { method: 'DELETE', headers: { authorization: `APIKEY ${h.mass.adminKey}` } });
  assert.ok(res.status < 300, `admin DELETE → ${res.status}`);
  const job = await waitFor(() => (h.ledger.get(waiting.id)?.state === 'done' ? h.ledger.get(waiting.id) : undefined), { timeoutMs: 20_000, what: 'job ended' });
  const end = h.ledger.events(job.id).find((e) => e.type === 'report-sent');
  assert.equal(end?.data?.outcome, 'gone');
  assert.match(end?.message ?? '', /no longer exists/);
  const state = await h.massState();
  assert.equal(reportsBySample(state).get(sample.url), undefined, 'MASS has no report: the item was gone');
  assert.equal(h.ledger.inFlight(), 0);
});

test('notifications stored before a crash are processed on restart even when nothing new is popped', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const sample = await h.seedFile('stored.bin', 'stored, then crashed\nAL-SIM: {"delay_ms": 300}\n');
  h.bridge.start();
  // The listener is "down"; the test pops the message and stores it, like a bridge that crashed right after storeMessages.
  await h.bridge.loops.listener.stop();
  const waiting = await waitFor(() => h.ledger.list({ states: ['waiting'] }).jobs[0], { timeoutMs: 20_000, what: 'job waiting for AL' });
  const messages = await waitFor(async () => {
    const m = await h.alClient.getMessages(h.config.assemblyline.notificationQueue, 10);
    return m.length > 0 ? m : null;
  }, { timeoutMs: 20_000, what: 'the notification' });
  h.ledger.storeMessages(h.config.assemblyline.notificationQueue, messages, Date.now());
  assert.equal(h.ledger.get(waiting.id)?.state, 'waiting');
  h.bridge.loops.listener.start();
  const state = await settled(h, 1);
  assert.equal(reportsBySample(state).get(sample.url)?.[0].error_message, null);
  assert.equal(h.ledger.unprocessedMessages(10).length, 0);
  assert.equal(h.al.stats().ingests, 1, 'answered from the stored message, not by a re-ingest');
});

test('malformed poll items and queue messages are skipped; the good work around them is still reported', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t, {
    wrapMass: (c) =>
      overrideMethods<MassClient>(c, {
        // A broken item before and after the real ones (newest first, as MASS lists them).
        poll: async (original, ...args) => [null, { id: 42 }, ...(await original(...args)), {}] as unknown as Awaited<ReturnType<MassClient['poll']>>,
      }),
    wrapAl: (c) =>
      overrideMethods<AssemblylineClient>(c, {
        getMessages: async (original, ...args) => {
          const real = await original(...args);
          return real.length ? ([{ unexpected: true }, ...real] as unknown as Awaited<ReturnType<AssemblylineClient['getMessages']>>) : real;
        },
      }),
  });
  h.bridge.start();
  const sample = await h.seedFile('fine.bin', 'a perfectly ordinary file\n');
  const state = await waitFor(async () => {
    const s = await h.massState();
    return s.reports.some((r) => r.sample === sample.url) ? s : null;
  }, { timeoutMs: 20_000, what: 'the report of the good sample' });
  const report = state.reports.find((r) => r.sample === sample.url)!;
  assert.equal(report.error_message, null);
  assert.equal(h.ledger.countByState().done, 1);
});

test('RetainDays: the reconciler prunes the history of jobs finished longer ago, keeping the jobs', { timeout: 30_000 }, async (t) => {
  let offset = 0;
  const h = await startHarness(t, { config: { bridge: { retainDays: 1 } }, now: () => Date.now() + offset });
  h.bridge.start();
  const sample = await h.seedFile('kept.bin', 'an ordinary file\n');
  await waitFor(async () => (await h.massState()).reports.some((r) => r.sample === sample.url), { timeoutMs: 20_000, what: 'the report' });
  const job = h.ledger.list({}).jobs[0];
  await waitFor(() => h.ledger.get(job.id)?.state === 'done', { what: 'the job done' });
  assert.ok(h.ledger.events(job.id).length > 3, 'the history is there while recent');
  // Two days later on the bridge's clock, the next hourly prune removes it; the job row stays.
  offset = 2 * 86_400_000;
  await waitFor(() => h.ledger.events(job.id).length === 0, { timeoutMs: 10_000, what: 'the pruned history' });
  assert.equal(h.ledger.get(job.id)?.state, 'done');
});
