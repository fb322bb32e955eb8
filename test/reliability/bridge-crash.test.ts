import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BridgeConfig } from '../../src/config/types.js';
import { makeConfig, reportsBySample, seedWorkload, startSimulators, WORKLOAD_TAG_FILTER, type Simulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';
import { seeded } from '../helpers/seeded.js';

/** The kill moments come from a seeded generator; the seed is printed. Replay with BRIDGE_CRASH_SEED=<seed>. */
const SEED = Number(process.env.BRIDGE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`bridge-crash seed ${SEED} (replay: BRIDGE_CRASH_SEED=${SEED})`);

const CHILD = fileURLToPath(new URL('../helpers/bridge-child.ts', import.meta.url));

interface Child {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnBridge(t: { after: (fn: () => unknown) => void }, config: BridgeConfig): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, BRIDGE_CHILD_CONFIG: JSON.stringify(config), BRIDGE_CHILD_LOG: process.env.BRIDGE_CHILD_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, output: () => out.slice(-4000), exited };
}

async function exitWithin(child: Child, ms: number) {
  const bound = new Promise<null>((resolve) => setTimeout(() => resolve(null), ms).unref());
  const r = await Promise.race([child.exited, bound]);
  if (!r) throw new Error(`bridge child did not exit within ${ms} ms\n${child.output()}`);
  return r;
}

const EXTRACTING = (i: number) =>
  JSON.stringify({ score: 700, extracted: [{ name: `dropped-${i}.dll`, relation: 'DYNAMIC' }], iocs: [{ type: 'network.dynamic.ip', value: `203.0.113.${i + 10}`, safelisted: false }] });

async function seedAll(sims: Simulators) {
  const workload = await seedWorkload(sims, 60);
  for (let i = 0; i < 5; i++) await sims.seedFile(`dropper-${i}.exe`, `dropper ${i}\nAL-SIM: ${EXTRACTING(i)}\n`);
  // + 5 droppers, + 5 echo-backs of their dropped files (answered from the parent, no ingest), + 5 echo-backs
  // of their IP samples (the filter matches IP samples too: error report "not a file sample").
  return { ...workload, analyses: workload.analyses + 15, errorReports: workload.errorReports + 5, maxIngests: workload.maxIngests + 5, relations: 10 };
}

async function settledOnMass(sims: Simulators, analyses: number, child: () => Child) {
  return waitFor(
    async () => {
      const s = await sims.massState();
      return s.reports.length >= analyses && s.scheduled_pending === 0 && s.analysis_requests === 0 ? s : null;
    },
    { timeoutMs: 40_000, intervalMs: 100, what: `all ${analyses} reports` },
  ).catch(async (err: Error) => {
    const s = await sims.massState();
    throw new Error(`${err.message}: reports ${s.reports.length}, pending ${s.scheduled_pending}, requests ${s.analysis_requests}\n${child().output()}`, { cause: err });
  });
}

test(`SIGKILL twice at random moments (seed ${SEED}), then restart: the same end state on MASS`, { timeout: 120_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { tagFilter: WORKLOAD_TAG_FILTER } });
  const config = makeConfig(sims.endpoints, { bridge: { maxFileSize: 4096, resultDeadline: 3, gracePeriod: 5 } });
  const w = await seedAll(sims);

  const random = seeded(SEED);
  let child = spawnBridge(t, config);
  for (const crash of [1, 2]) {
    // A random moment: somewhere between 10 % and 70 % of the reports being on MASS.
    const threshold = Math.floor(w.analyses * (0.1 + random() * 0.3 * crash));
    await waitFor(async () => (await sims.massState()).reports.length >= threshold, { timeoutMs: 40_000, what: `${threshold} reports before crash ${crash}` });
    child.proc.kill('SIGKILL');
    const r = await exitWithin(child, 10_000);
    assert.equal(r.signal, 'SIGKILL');
    child = spawnBridge(t, config);
  }
  const state = await settledOnMass(sims, w.analyses, () => child);

  child.proc.kill('SIGTERM');
  const r = await exitWithin(child, (config.bridge.gracePeriod + 10) * 1000);
  assert.equal(r.code, 0, child.output());

  assert.equal(state.reports.length, w.analyses, 'one report per scheduled analysis, none duplicated by a restart');
  const markers = new Set(state.reports.map((x) => (x.additional_metadata.assemblyline as Record<string, unknown>).bridge_job));
  assert.equal(markers.size, w.analyses);
  assert.equal(state.reports.filter((x) => x.error_message !== null).length, w.errorReports);
  for (const url of w.errorSamples.hidden) assert.match(reportsBySample(state).get(url)?.[0]?.error_message ?? '', /not visible/);
  assert.equal(state.relations.length, w.relations, 'relations are not duplicated by restarts');
  // A crash between AL accepting an upload and the ledger recording its ingest_id re-ingests that file:
  // at most Concurrency such files per crash.
  const ingests = sims.al.stats().ingests;
  assert.ok(ingests <= w.maxIngests + 2 * config.bridge.concurrency, `ingests ${ingests} <= ${w.maxIngests} + 2 × Concurrency`);
});

test('SIGTERM during work exits 0 within the grace period; a restart completes the rest', { timeout: 90_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { tagFilter: WORKLOAD_TAG_FILTER }, al: { analysisDelayMs: 300 } });
  const config = makeConfig(sims.endpoints, { bridge: { maxFileSize: 4096, resultDeadline: 3, gracePeriod: 3 } });
  const w = await seedWorkload(sims, 40);

  const first = spawnBridge(t, config);
  await waitFor(
    async () => {
      const s = await sims.massState();
      return s.reports.length > 0 && s.reports.length < w.analyses;
    },
    { timeoutMs: 30_000, what: 'work in progress' },
  );
  first.proc.kill('SIGTERM');
  const r = await exitWithin(first, (config.bridge.gracePeriod + 10) * 1000);
  assert.equal(r.code, 0, first.output());
  assert.match(first.output(), /bridge-child exit 0/);

  const second = spawnBridge(t, config);
  const state = await settledOnMass(sims, w.analyses, () => second);
  second.proc.kill('SIGTERM');
  assert.equal((await exitWithin(second, (config.bridge.gracePeriod + 10) * 1000)).code, 0);
  assert.equal(state.reports.length, w.analyses);
  const markers = new Set(state.reports.map((x) => (x.additional_metadata.assemblyline as Record<string, unknown>).bridge_job));
  assert.equal(markers.size, w.analyses);
});

test('SIGKILL in the middle of creating related samples and relations: exactly one relation of each expected kind', { timeout: 120_000 }, async (t) => {
  const sims = await startSimulators(t);
  const config = makeConfig(sims.endpoints, { bridge: { gracePeriod: 5 } });
  const nested = {
    score: 1500,
    extracted: [{ name: 'stage2.dll', relation: 'EXTRACTED', scenario: { score: 2000, extracted: [{ name: 'payload.bin', relation: 'DYNAMIC' }] } }],
    iocs: [
      { type: 'network.dynamic.ip', value: '203.0.113.77' },
      { type: 'network.dynamic.domain', value: 'c2.example.net' },
      { type: 'network.dynamic.uri', value: 'http://c2.example.net/gate.php' },
      { type: 'network.dynamic.domain', value: 'safe.example.org', safelisted: true },
    ],
  };
  const root = await sims.seedFile('nested-dropper.exe', `MZ nested\nAL-SIM: ${JSON.stringify(nested)}\n`);
  // Slow relation POSTs down so that the kill lands while the bridge is creating them.
  await sims.massControl('/_sim/faults', { method: 'POST', path_prefix: '/api/sample_relation/', delay_ms: 400, times: 1000 });

  let child = spawnBridge(t, config);
  await waitFor(async () => (await sims.massState()).relations.length >= 2, { timeoutMs: 40_000, what: 'the first relations' });
  child.proc.kill('SIGKILL');
  assert.equal((await exitWithin(child, 10_000)).signal, 'SIGKILL');
  const before = (await sims.massState()).relations.length;
  assert.ok(before < 5, `killed before all relations existed (${before} of 5)`);

  child = spawnBridge(t, config);
  // Root + stage2.dll + payload.bin come back as work (the extracted files are dispatched to the bridge again).
  const state = await settledOnMass(sims, 3, () => child);
  child.proc.kill('SIGTERM');
  assert.equal((await exitWithin(child, 15_000)).code, 0, child.output());

  const kinds = state.relations.map((r) => r._cls.replace('SampleRelation.', '')).sort();
  assert.deepEqual(kinds, [
    'ContactedBySampleRelation',
    'DroppedBySampleRelation',
    'DroppedBySampleRelation',
    'ResolvedBySampleRelation',
    'RetrievedBySampleRelation',
  ]);
  const samples = await sims.admin.findSamples({});
  const byUrl = new Map(samples.map((s) => [s.url, s]));
  const dropped = state.relations.filter((r) => r._cls.endsWith('DroppedBySampleRelation')).map((r) => [byUrl.get(r.sample)?.file_names?.[0], byUrl.get(r.other)?.file_names?.[0]]);
  assert.deepEqual(dropped.sort(), [['payload.bin', 'stage2.dll'], ['stage2.dll', 'nested-dropper.exe']], 'nested files point to their own parent');
  for (const r of state.relations.filter((x) => !x._cls.endsWith('DroppedBySampleRelation'))) assert.equal(r.other, root.url, 'IOCs relate to the analysed sample');
  assert.ok(!samples.some((s) => s.domain === 'safe.example.org'), 'a safelisted domain never becomes a sample');
  assert.equal(state.reports.length, 3);
});
