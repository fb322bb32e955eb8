/**
 * Two bridge processes (the real CLI, `src/cli.ts run`), each with its own ledger and its own identity (MASS
 * instance) of the same analysis system, on one MASS and one Assemblyline simulator. They share nothing else.
 * Mixed samples with extracted files that MASS dispatches back as work, to either bridge: no relation twice, no
 * extracted file ingested, one report per scheduled analysis; and the MASS calls this costs, counted.
 *
 * Which bridge gets what is made certain where it matters: the root samples carry the tag `manual`, which the
 * system's tag filter leaves out, and are scheduled by an admin to one instance (MASS.md §3, the direct
 * POST scheduled_analysis/); the extracted files are dispatched by MASS's own scheduler (fewest pending first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { openLedger } from '../../src/ledger/sqlite.js';
import type { JobEvent } from '../../src/ledger/types.js';
import type { MassSample } from '../../src/mass/types.js';
import { startSimulators, type MassSimState, type Simulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const FILTER = 'sample-type:filesample and (not manual)';

type Child = ChildProcessByStdio<null, Readable, Readable>;

interface BridgeProc {
  name: string;
  uuid: string;
  stateDir: string;
  child: Child;
  output: () => string;
  exited: Promise<number | null>;
}

function startBridge(t: { after(fn: () => unknown): void }, sims: Simulators, name: string, uuid: string, key: string): BridgeProc {
  const e = sims.endpoints;
  const stateDir = join(e.stateDir, name);
  const ini = join(e.stateDir, `${name}.ini`);
  writeFileSync(ini, [
    '[GLOBAL]', `ServerURL = ${sims.massOrigin}/`, 'SleepTime = 0.1',
    '[AssemblylineAnalysis]', `UUID = ${uuid}`, `mass api key = ${key}`, 'PollTime = 0.1',
    // One Assemblyline user for both, each bridge with its own notification queue (docs/operations.md §5).
    '[Assemblyline]', `URL = ${e.alUrl}`, `User = ${e.alUser}`, `APIKey = ${e.alApiKey}`, `NotificationQueue = mass-al-bridge-${name}`, 'MaxConcurrentCalls = 4',
    '[Bridge]', `StateDir = ${stateDir}`, `InstanceName = bridge-${name}`, 'Concurrency = 4', 'GracePeriod = 5', 'LogLevel = warn',
    'QueuePollTime = 0.05', 'ResultDeadline = 10', 'RetryBaseDelay = 0.02', 'RetryMaxDelay = 0.2',
    '[Report]', 'IOCMinVerdict = info',
    '[API]', 'Listen = 127.0.0.1:0', '',
  ].join('\n'));
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PRETTY_LOGS: '1' };
  delete env.MASSAL_TEST_CRASH_AT;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', ini], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { name, uuid, stateDir, child, output: () => out.slice(-4000), exited };
}

/** Admin shortcut past the scheduler (MASS.md §3): schedules a sample for one instance. */
async function scheduleTo(sims: Simulators, uuid: string, sample: MassSample): Promise<void> {
  const res = await fetch(`${sims.endpoints.massApiRoot}scheduled_analysis/`, {
    method: 'POST',
    headers: { authorization: `APIKEY ${sims.mass.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ analysis_system_instance: `${sims.endpoints.massApiRoot}analysis_system_instance/${uuid}/`, sample: sample.url }),
  });
  if (res.status !== 201) throw new Error(`schedule → ${res.status}: ${await res.text()}`);
}

/** A dropper: stage2-<i>.dll dropped at run time, which itself unpacks payload-<i>.bin, and one contacted IP. */
function dropper(i: number): string {
  const scenario = {
    score: 700,
    extracted: [{ name: `stage2-${i}.dll`, relation: 'DYNAMIC', scenario: { score: 500, extracted: [{ name: `payload-${i}.bin`, relation: 'EXTRACTED' }] } }],
    iocs: [{ type: 'network.dynamic.ip', value: `203.0.113.${i + 10}` }],
  };
  return `dropper ${i}\nAL-SIM: ${JSON.stringify(scenario)}\n`;
}

/** An archive holding the same library as another archive: the library unpacks the same inner file. */
function bundle(which: string): string {
  const scenario = { score: 300, extracted: [{ name: 'common.dll', relation: 'EXTRACTED', content: 'a library shipped in two archives\n', scenario: { score: 100, extracted: [{ name: 'inner.bin', relation: 'EXTRACTED' }] } }] };
  return `archive ${which}\nAL-SIM: ${JSON.stringify(scenario)}\n`;
}

test('two bridges (own ledgers, two instances of one system) never duplicate each other\'s work', { timeout: 120_000 }, async (t) => {
  // No scheduler ticks of its own: the test runs them, so who gets which extracted file is known (below).
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 0, tagFilter: FILTER } });
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  // A is a second instance; B is the one the simulator seeded, first in MASS's list, so a tie of pending items goes to B.
  const instanceA = await sims.admin.createInstance(system.url);
  const keyA = sims.mass.instanceKeyFor(instanceA.uuid)!;
  const a = startBridge(t, sims, 'a', instanceA.uuid, keyA);
  const b = startBridge(t, sims, 'b', sims.endpoints.uuid, sims.endpoints.massKey);
  const both = [a, b];
  const debug = async (): Promise<string> => {
    const s = await sims.massState();
    return `reports ${s.reports.length}, pending ${s.scheduled_pending}, requests ${s.analysis_requests}\n--- a ---\n${a.output()}\n--- b ---\n${b.output()}`;
  };
  // Both online (their first polls) before MASS's scheduler runs.
  await waitFor(async () => ((await sims.admin.getInstance(a.uuid)).is_online && (await sims.admin.getInstance(b.uuid)).is_online) || null, { timeoutMs: 30_000, what: 'both bridges polling' })
    .catch(async (err: Error) => { throw new Error(`${err.message}\n${await debug()}`, { cause: err }); });

  const reported = async (urls: string[], minReports: number): Promise<MassSimState> =>
    waitFor(
      async () => {
        const s = await sims.massState();
        const done = urls.every((u) => s.reports.some((r) => r.sample === u));
        return done && s.reports.length >= minReports && s.scheduled_pending === 0 ? s : null;
      },
      { timeoutMs: 40_000, intervalMs: 100, what: `${minReports} reports` },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await debug()}`, { cause: err });
    });

  // Phase 1, the reported case: bridge A analyses droppers; MASS dispatches the files A extracted (stage2, payload)
  // back to the system, and its scheduler gives them out alternately, starting with B.
  const DROPPERS_1 = 3;
  const PLAIN = 4;
  const roots: MassSample[] = [];
  const phase1: MassSample[] = [];
  for (let i = 0; i < DROPPERS_1; i++) phase1.push(await sims.seedFile(`dropper-${i}.exe`, dropper(i), { tags: ['manual'] }));
  for (const s of phase1) await scheduleTo(sims, a.uuid, s);
  const plain: MassSample[] = [];
  for (let i = 0; i < PLAIN; i++) plain.push(await sims.seedFile(`plain-${i}.txt`, `an ordinary file ${i}\n`, { tags: ['manual'] }));
  for (const [i, s] of plain.entries()) await scheduleTo(sims, i % 2 === 0 ? a.uuid : b.uuid, s);
  roots.push(...phase1, ...plain);
  let state = await reported(roots.map((s) => s.url), roots.length);
  assert.equal(state.analysis_requests, 2 * DROPPERS_1, 'MASS holds one analysis request per extracted file A submitted');
  assert.equal(sims.mass.runScheduler(), 2 * DROPPERS_1);
  let analyses = roots.length + 2 * DROPPERS_1;
  state = await reported([], analyses);

  // Phase 2: MASS's scheduler runs on its own; more droppers for both bridges at once; the same dropper scheduled
  // again, to the other bridge; and two archives holding one library, each analysed by another bridge, one after
  // the other.
  const ticker = setInterval(() => sims.mass.runScheduler(), 100);
  t.after(() => clearInterval(ticker));
  const DROPPERS_2 = 4;
  const phase2: MassSample[] = [];
  for (let i = 0; i < DROPPERS_2; i++) phase2.push(await sims.seedFile(`dropper-${DROPPERS_1 + i}.exe`, dropper(DROPPERS_1 + i), { tags: ['manual'] }));
  for (const [i, s] of phase2.entries()) await scheduleTo(sims, i % 2 === 0 ? a.uuid : b.uuid, s);
  await scheduleTo(sims, b.uuid, phase1[0]);
  const bundleA = await sims.seedFile('bundle-a.zip', bundle('a'), { tags: ['manual'] });
  await scheduleTo(sims, a.uuid, bundleA);
  roots.push(...phase2, bundleA);
  // + the dropper again, + bundle-a's library and inner file coming back
  analyses += 3 * DROPPERS_2 + 1 + 3;
  state = await reported(roots.map((s) => s.url), analyses);
  const bundleB = await sims.seedFile('bundle-b.zip', bundle('b'), { tags: ['manual'] });
  await scheduleTo(sims, b.uuid, bundleB);
  roots.push(bundleB);
  // The library is not dispatched again (MASS.md §7: a duplicate sample is not), so only bundle-b's own report.
  analyses += 1;
  state = await reported([bundleB.url], analyses);
  clearInterval(ticker);
  state = await sims.massState();

  for (const p of both) p.child.kill('SIGTERM');
  for (const p of both) assert.equal(await p.exited, 0, `${p.name} stops gracefully\n${p.output()}`);

  // One report per scheduled analysis, each an analysis report.
  assert.equal(state.reports.length, analyses, 'one report per scheduled analysis');
  assert.equal(state.scheduled_pending, 0);
  assert.equal(state.analysis_requests, 0);
  const markers = new Set(state.reports.map((r) => `${String((r.additional_metadata.assemblyline as Record<string, unknown>).bridge_instance)} ${String((r.additional_metadata.assemblyline as Record<string, unknown>).bridge_job)}`));
  assert.equal(markers.size, analyses, 'no scheduled analysis reported twice');
  assert.deepEqual(state.reports.filter((r) => r.error_message !== null).map((r) => r.error_message), [], 'no error report');

  // No relation twice: per dropper stage2 dropped-by dropper, payload dropped-by stage2, IP contacted-by dropper;
  // the library dropped-by each archive, the inner file dropped-by the library once.
  const keys = state.relations.map((r) => `${r._cls} ${r.sample} ${r.other}`);
  assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], 'no relation twice');
  assert.equal(state.relations.length, 3 * (DROPPERS_1 + DROPPERS_2) + 3, 'every relation once');

  // No extracted file ingested: Assemblyline saw the root samples only, each once, and the dropper scheduled again.
  const extracted = (await sims.admin.findSamples({ tags__all: 'al:extracted' })).map((s) => s.sha256sum);
  assert.equal(extracted.length, 2 * (DROPPERS_1 + DROPPERS_2) + 2, 'the extracted files are on MASS');
  const ingested = sims.al.stats().ingestsBySha256;
  assert.deepEqual(extracted.filter((sha) => sha !== undefined && ingested[sha] !== undefined), [], 'no extracted file ingested');
  const rootIngests = roots.map((s) => ingested[s.sha256sum ?? ''] ?? 0);
  assert.deepEqual(rootIngests, roots.map((s) => (s === phase1[0] ? 2 : 1)), 'each root sample ingested once per scheduled analysis');

  // What each bridge recorded, from its own ledger.
  const seen = both.map((p) => {
    const ledger = openLedger(join(p.stateDir, 'bridge.sqlite'));
    try {
      const jobs = ledger.list({ limit: 500 }).jobs;
      const events: JobEvent[] = jobs.flatMap((j) => ledger.events(j.id));
      return { jobs: jobs.length, events };
    } finally {
      ledger.close();
    }
  });
  const [seenA, seenB] = seen;
  assert.equal(seenA.jobs + seenB.jobs, analyses, 'every scheduled analysis claimed by exactly one bridge');
  const viaTags = (s: typeof seenA) => s.events.filter((e) => e.type === 'echo-back' && e.data?.via === 'mass-tags').length;
  // Phase 1 gave B half of A's 2 × 3 extracted files (alternating, B first): B knew them only from their tags on MASS.
  assert.ok(viaTags(seenB) >= DROPPERS_1, `B recognised A's extracted files by their tags on MASS (${viaTags(seenB)})`);
  const found = seen.flatMap((s) => s.events.filter((e) => e.type === 'relation-found'));
  // The dropper scheduled again to B: its 3 relations were A's; bundle-b: the inner file's relation was A's.
  assert.ok(seenB.events.filter((e) => e.type === 'relation-found').length >= 4, 'B found the relations A had made, and did not post them');

  // The cost, in MASS calls: the echo-back check needs none beyond the one sample read every job makes; the
  // relation check is one relation_graph read per relation, posted or found.
  for (const [i, p] of both.entries()) {
    const calls = state.calls[p.uuid] ?? {};
    assert.equal(calls['GET sample_detail'] ?? 0, seen[i].jobs, `${p.name}: one sample read per scheduled analysis`);
  }
  const graphReads = both.reduce((n, p) => n + (state.calls[p.uuid]?.['GET sample_relation_graph'] ?? 0), 0);
  assert.equal(graphReads, state.relations.length + found.length, 'one relation_graph read per relation posted or found');
  console.log(`MASS calls per bridge: ${JSON.stringify(Object.fromEntries(both.map((p) => [p.name, state.calls[p.uuid]])))}`);
});
