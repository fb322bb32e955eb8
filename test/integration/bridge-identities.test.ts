/**
 * Several identities in one process: three instances of the analysis system, polled by one bridge, over a MASS
 * scheduler with the real threshold (an instance gets new work only while it has at most 100 pending) and a short
 * interval.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../src/api/app.js';
import { openBridgeRuntime } from '../../src/bridge/commands.js';
import { doctorCommand } from '../../src/commands/doctor.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { MassClient } from '../../src/mass/types.js';
import { makeConfig, overrideMethods, reportsBySample, startSimulators } from '../helpers/bridge-harness.js';
import { textSink } from '../helpers/text-sink.js';
import { waitFor } from '../helpers/wait.js';

const ANALYSES = 500;

test('three identities, 500 scheduled analyses: each reported once by the identity that claimed it, all online, none above 101 pending', { timeout: 240_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 }, al: { analysisDelayMs: 100 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const extra = [];
  for (const name of ['second', 'third']) {
    const inst = await sims.admin.createInstance(system.url);
    extra.push({ name, uuid: inst.uuid, apiKey: sims.mass.instanceKeyFor(inst.uuid)! });
  }
  const uuids = new Map([['default', sims.endpoints.uuid], ...extra.map((e) => [e.name, e.uuid] as [string, string])]);

  // Every sample waits as an analysis request until the scheduler places it: the instances are offline until they poll.
  const samples = new Set<string>();
  for (let i = 0; i < ANALYSES; i++) samples.add((await sims.seedFile(`many-${i}.bin`, `identity load file ${i}\n`)).url);

  const config = makeConfig(sims.endpoints, { mass: { identities: extra } });
  // Which identity's key sent each report (the steps' clients, one per identity).
  const reportedBy = new Map<string, string[]>();
  const runtime = await openBridgeRuntime(config, silentLogger(), {
    wrapMass: (client: MassClient, identity = 'default') =>
      overrideMethods(client, {
        submitReport: async (original, url, report, o) => {
          const answer = await original(url, report, o);
          const key = typeof url === 'string' ? url : url.url;
          reportedBy.set(key, [...(reportedBy.get(key) ?? []), identity]);
          return answer;
        },
      }),
  });
  const api = await buildApi({ ledger: runtime.ledger, control: runtime.bridge.control, metrics: runtime.metrics, token: '', readAuth: 'none', readToken: '' });
  sims.defer(async () => {
    await api.close();
    await runtime.bridge.stop({ graceMs: 2000 });
    await runtime.close();
  });

  // What MASS counts as pending per instance, read like an operator would, while the bridge works.
  let maxPending = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const uuid of uuids.values()) maxPending = Math.max(maxPending, (await sims.admin.getInstance(uuid)).scheduled_analyses_count);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  runtime.bridge.start();
  await waitFor(async () => (await sims.massState()).reports.length >= ANALYSES, { timeoutMs: 200_000, intervalMs: 250, what: `${ANALYSES} reports on MASS` });
  watching = false;
  await watcher;

  const state = await sims.massState();
  assert.equal(state.reports.length, ANALYSES, 'one report per scheduled analysis, no more');
  assert.equal(state.scheduled_pending, 0);
  assert.equal(state.analysis_requests, 0);
  const bySample = reportsBySample(state);
  assert.equal(bySample.size, ANALYSES);
  for (const url of samples) assert.equal(bySample.get(url)?.length, 1, `one report for ${url}`);
  assert.ok(maxPending >= 100, `the load reached the threshold (max pending ${maxPending})`);
  assert.ok(maxPending <= 101, `no instance held more than 101 pending (max ${maxPending})`);

  // Each job remembers which identity claimed it, and that identity's key sent its one report.
  const claimedBy = new Map<string, number>();
  const jobs = runtime.ledger.list({ limit: 1000 }).jobs;
  assert.equal(jobs.length, ANALYSES);
  for (const job of jobs) {
    assert.equal(job.state, 'done', `${job.id}: ${job.lastError ?? ''}`);
    assert.ok(job.identity && uuids.has(job.identity), `${job.id} claimed by a configured identity (${job.identity})`);
    claimedBy.set(job.identity, (claimedBy.get(job.identity) ?? 0) + 1);
    assert.deepEqual(reportedBy.get(job.scheduledAnalysisUrl), [job.identity], `${job.id} reported once, by its own identity`);
  }
  for (const name of uuids.keys()) assert.ok((claimedBy.get(name) ?? 0) > 0, `${name} claimed work (${JSON.stringify([...claimedBy])})`);

  // All three stay online on MASS, and the status API and the metrics say so per identity.
  for (const uuid of uuids.values()) assert.equal((await sims.admin.getInstance(uuid)).is_online, true, `${uuid} online on MASS`);
  const status = (await api.inject({ method: 'GET', url: '/api/v1/status' })).json<{ identities: Array<{ name: string; uuid: string; online: boolean; inFlight: number; pendingOnMass: number | null; lastPollAt: string | null }> }>();
  assert.deepEqual(status.identities.map((i) => [i.name, i.uuid]), [...uuids]);
  for (const i of status.identities) {
    assert.equal(i.online, true, `${i.name} online`);
    assert.equal(i.inFlight, 0);
    assert.ok(i.lastPollAt !== null);
    assert.ok(i.pendingOnMass !== null && i.pendingOnMass <= 101);
  }
  const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body;
  for (const name of uuids.keys()) {
    assert.match(metrics, new RegExp(`^massal_identity_online\\{identity="${name}"\\} 1$`, 'm'));
    assert.match(metrics, new RegExp(`^massal_identity_jobs_in_flight\\{identity="${name}"\\} 0$`, 'm'));
  }
  const job = (await api.inject({ method: 'GET', url: `/api/v1/jobs/${jobs[0].id}` })).json<{ identity?: string; job?: { identity: string } }>();
  assert.equal(job.job?.identity ?? job.identity, jobs[0].identity);
});

test('doctor checks every identity: a key that does not belong to its UUID is named with its section', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 0 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const good = await sims.admin.createInstance(system.url);
  const other = await sims.admin.createInstance(system.url);
  const config = makeConfig(sims.endpoints, {
    mass: {
      identities: [
        { name: 'good', uuid: good.uuid, apiKey: sims.mass.instanceKeyFor(good.uuid)! },
        // The key of another instance: MASS answers the poll with 404.
        { name: 'swapped', uuid: other.uuid, apiKey: sims.mass.instanceKeyFor(good.uuid)! },
      ],
    },
  });
  let out = '';
  const code = await doctorCommand({ config, out: { write: (s: string) => (out += s) } });
  assert.equal(code, 1, out);
  assert.match(out, new RegExp(`\\[ ok \\] identity good: the key belongs to instance ${good.uuid}; 0 scheduled analyses pending`));
  assert.match(out, new RegExp(`\\[FAIL\\] identity swapped: the key does not belong to instance ${other.uuid} \\(the poll answers 404\\)\\n\\s+fix: \\[AssemblylineAnalysis:swapped\\] has the key of \\[AssemblylineAnalysis:good\\]: copy the key of instance ${other.uuid}`));
  assert.ok(!out.includes(sims.mass.instanceKeyFor(good.uuid)!), 'no key is printed');
});

test('an identity removed from the configuration: its unfinished jobs are reported with the key of an identity still configured', { timeout: 90_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 }, al: { analysisDelayMs: 1500 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const inst = await sims.admin.createInstance(system.url);
  const second = { name: 'second', uuid: inst.uuid, apiKey: sims.mass.instanceKeyFor(inst.uuid)! };
  const samples = new Set<string>();
  for (let i = 0; i < 12; i++) samples.add((await sims.seedFile(`removed-${i}.bin`, `removed identity file ${i}\n`)).url);

  const reportedBy = new Map<string, string>();
  const wrapMass = (client: MassClient, identity = 'default') =>
    overrideMethods(client, {
      submitReport: async (original, url, report, o) => {
        const answer = await original(url, report, o);
        reportedBy.set(typeof url === 'string' ? url : url.url, identity);
        return answer;
      },
    });
  // First run with both identities: stopped while the work is in Assemblyline.
  const withBoth = makeConfig(sims.endpoints, { mass: { identities: [second] } });
  const first = await openBridgeRuntime(withBoth, silentLogger(), { wrapMass });
  first.bridge.start();
  const claimed = await waitFor(
    () => {
      const jobs = first.ledger.list({ limit: 100 }).jobs;
      return jobs.length === samples.size && jobs.every((j) => j.state === 'waiting') ? jobs : undefined;
    },
    { timeoutMs: 30_000, what: 'every sample claimed and in Assemblyline' },
  );
  await first.bridge.stop({ graceMs: 2000 });
  await first.close();
  const ofSecond = claimed.filter((j) => j.identity === 'second');
  assert.ok(ofSecond.length > 0 && ofSecond.length < samples.size, `both identities claimed work (${ofSecond.length} by second)`);

  // Second run without it: the default identity finishes every job, the removed identity's too.
  const onlyFirst = makeConfig(sims.endpoints);
  const after = await openBridgeRuntime(onlyFirst, silentLogger(), { wrapMass });
  sims.defer(async () => {
    await after.bridge.stop({ graceMs: 2000 });
    await after.close();
  });
  after.bridge.start();
  await waitFor(async () => (await sims.massState()).reports.length >= samples.size, { timeoutMs: 60_000, what: 'every report on MASS' });
  const state = await sims.massState();
  assert.equal(state.reports.length, samples.size);
  assert.equal(state.scheduled_pending, 0);
  for (const job of ofSecond) {
    assert.equal(after.ledger.get(job.id)?.state, 'done');
    assert.equal(after.ledger.get(job.id)?.identity, 'second', 'the job still names the identity that claimed it');
    assert.equal(reportedBy.get(job.scheduledAnalysisUrl), 'default', 'reported with the key of an identity still configured');
  }
  assert.deepEqual(after.bridge.control.status().identities?.map((i) => i.name), ['default']);
});

test('a wrong key of one identity is that identity’s problem: MASS stays up, the other identity works, /ready names the identity', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 }, al: { analysisDelayMs: 50 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const inst = await sims.admin.createInstance(system.url);
  const wrongKey = 'IjNotTheKeyOfTwo.sig-wrong';
  const config = makeConfig(sims.endpoints, { mass: { identities: [{ name: 'two', uuid: inst.uuid, apiKey: wrongKey }] } });
  const runtime = await openBridgeRuntime(config, silentLogger());
  const api = await buildApi({ ledger: runtime.ledger, control: runtime.bridge.control, metrics: runtime.metrics, token: '', readAuth: 'none', readToken: '' });
  sims.defer(async () => {
    await api.close();
    await runtime.bridge.stop({ graceMs: 2000 });
    await runtime.close();
  });
  runtime.bridge.start();
  const samples = new Set<string>();
  for (let i = 0; i < 4; i++) samples.add((await sims.seedFile(`wrong-key-${i}.bin`, `wrong key of another identity ${i}\n`)).url);
  await waitFor(async () => (await sims.massState()).reports.length >= samples.size, { timeoutMs: 30_000, what: 'every sample reported by the default identity' });
  await waitFor(() => runtime.bridge.control.status().identities?.find((i) => i.name === 'two')?.lastPollError ?? undefined, { what: "identity two's poll error" });

  const status = (await api.inject('/api/v1/status')).json();
  assert.equal(status.upstreams.mass.ok, true, `MASS is up for the identities whose key works (${JSON.stringify(status.upstreams.mass)})`);
  const two = status.identities.find((i: { name: string }) => i.name === 'two');
  assert.match(two.lastPollError, /403|refus/i);
  assert.equal(two.lastPollAt, null);
  const ready = await api.inject('/ready');
  assert.equal(ready.statusCode, 503);
  assert.ok(ready.json().reasons.some((r: string) => /identity two/.test(r)), JSON.stringify(ready.json().reasons));
  assert.ok(!ready.json().reasons.some((r: string) => /MASS refuses poll/.test(r)), `the refusal is the identity's, not MASS's: ${JSON.stringify(ready.json().reasons)}`);
  for (const body of [JSON.stringify(status), ready.body, (await api.inject('/metrics')).body]) assert.ok(!body.includes(wrongKey), 'the key appears nowhere');
});

test('a further identity whose poll fails on every poll: one error line, not one per poll; its MASS calls are counted under its name', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 }, al: { analysisDelayMs: 50 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const inst = await sims.admin.createInstance(system.url);
  const wrongKey = 'IjNotTheKeyOfTwo.sig-wrong';
  const config = makeConfig(sims.endpoints, { mass: { identities: [{ name: 'two', uuid: inst.uuid, apiKey: wrongKey }] } });
  const log = textSink();
  const runtime = await openBridgeRuntime(config, createLogger({ level: 'info', destination: log.stream }));
  sims.defer(async () => {
    await runtime.bridge.stop({ graceMs: 2000 });
    await runtime.close();
  });
  const pollCalls = async (identity: string, outcome: string) =>
    ((await runtime.metrics.registry.getSingleMetric('massal_upstream_requests_total')?.get())?.values ?? [])
      .filter((v) => v.labels.identity === identity && v.labels.operation === 'poll' && v.labels.outcome === outcome)
      .reduce((n, v) => n + v.value, 0);
  runtime.bridge.start();
  const samples = new Set<string>();
  for (let i = 0; i < 3; i++) samples.add((await sims.seedFile(`failing-two-${i}.bin`, `identity two keeps failing ${i}\n`)).url);
  await waitFor(async () => (await sims.massState()).reports.length >= samples.size, { timeoutMs: 30_000, what: 'every sample reported by the default identity' });
  // PollTime and SleepTime 0.1 s: many failed polls of identity two within the minute.
  await waitFor(async () => (await pollCalls('two', 'error')) >= 10, { timeoutMs: 20_000, what: 'ten failed polls of identity two' });

  const lines = log.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; identity?: string });
  const errors = lines.filter((l) => l.level >= 50);
  assert.equal(errors.length, 1, `one error line for ${await pollCalls('two', 'error')} failed polls: ${JSON.stringify(errors)}`);
  assert.equal(errors[0].identity, 'two');
  assert.match(errors[0].msg, /^poll of identity two failed$/);
  assert.ok(!log.text().includes(wrongKey), 'the key is not logged');
  // The first identity claims and reports all the while.
  const state = await sims.massState();
  assert.equal(reportsBySample(state).size, samples.size);
  for (const job of runtime.ledger.list({ limit: 100 }).jobs) assert.equal(job.identity, 'default');
  assert.match(runtime.bridge.control.status().identities?.find((i) => i.name === 'two')?.lastPollError ?? '', /403|refus/i);

  // The metric tells whose MASS calls fail: one series per identity; Assemblyline calls have none.
  assert.ok((await pollCalls('default', 'ok')) > 0, 'polls of the default identity are counted under its name');
  assert.equal(await pollCalls('default', 'error'), 0);
  assert.equal(await pollCalls('two', 'ok'), 0);
  const exposed = await runtime.metrics.registry.metrics();
  assert.match(exposed, /^massal_upstream_requests_total\{target="mass",operation="poll",outcome="ok",identity="default"\} \d+$/m);
  assert.match(exposed, /^massal_upstream_requests_total\{target="mass",operation="poll",outcome="error",identity="two"\} \d+$/m);
  assert.match(exposed, /^massal_upstream_requests_total\{target="mass",operation="submit_report",outcome="ok",identity="default"\} 3$/m);
  assert.match(exposed, /^massal_upstream_requests_total\{target="assemblyline",operation="ingest",outcome="ok"\} \d+$/m);
});

test('a further identity whose poll works again after failing the same way: one error line, then an info line with the count', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  const inst = await sims.admin.createInstance(system.url);
  // MASS refuses identity two's next six polls, then answers them again.
  await sims.massControl('/_sim/faults', { method: 'GET', path_prefix: `/api/analysis_system_instance/${inst.uuid}/scheduled_analyses/`, status: 403, times: 6 });
  const config = makeConfig(sims.endpoints, { mass: { identities: [{ name: 'two', uuid: inst.uuid, apiKey: sims.mass.instanceKeyFor(inst.uuid)! }] } });
  const log = textSink();
  const runtime = await openBridgeRuntime(config, createLogger({ level: 'info', destination: log.stream }));
  sims.defer(async () => {
    await runtime.bridge.stop({ graceMs: 2000 });
    await runtime.close();
  });
  runtime.bridge.start();
  const lines = () => log.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; identity?: string; failures?: number });
  const back = await waitFor(() => lines().find((l) => l.identity === 'two' && l.level === 30), { timeoutMs: 20_000, what: "identity two's poll working again" });
  assert.equal(back.msg, 'poll of identity two works again after 6 failures');
  assert.deepEqual(lines().filter((l) => l.level >= 50).map((l) => [l.identity, l.msg]), [['two', 'poll of identity two failed']]);
  assert.equal(runtime.bridge.control.status().identities?.find((i) => i.name === 'two')?.lastPollError, null);
});
