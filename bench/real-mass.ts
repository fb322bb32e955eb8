/**
 * Real MASS server benchmark (`npm run bench -- --real-mass <API root>`, or BENCH_MASS_URL): on one MASS server,
 * in one run, N fresh small file samples each go through
 *
 * - the MASS-only ceiling: straight-line client code with the MASS calls alone (poll, read the sample, download,
 *   empty report), 4 at a time; no Assemblyline;
 * - the Python bridge (bench/baselines/python_bridge.py): a pipelined bridge written from the MASS tutorial pattern
 *   and the Assemblyline REST API (threads, 1 s queue sleep), against the Assemblyline simulator;
 * - the bridge with every key at its default, against the Assemblyline simulator.
 *
 * The Assemblyline simulator (analysis BENCH_MASS_AL_DELAY_MS, default 200 ms per file) runs in its own process,
 * fresh for each run. Time runs from the runner's first poll to its N-th report. Before each run the bench uploads
 * N new samples with a user key and waits until the MASS scheduler has queued them for the instance; after it,
 * MASS must hold exactly one report (not an error report) per sample, and the instance's queue must be empty.
 * Targets: bridge ≥ 1.5× the Python bridge and ≥ 0.6× the MASS-only ceiling. Not part of the default run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import PQueue from 'p-queue';
import { openBridgeRuntime, type BridgeRuntime } from '../src/bridge/commands.js';
import { loadConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log.js';
import { createMassClient } from '../src/mass/client.js';
import type { ScheduledAnalysis } from '../src/mass/types.js';
import { REPO_ROOT, envInt, fmtNum, fmtRatio, median, pollUntil, startSimServer, type BenchOutcome, type Say, type SimServerInfo, endBridgeRun } from './lib.js';

/** The bridge must reach this multiple of the Python bridge's throughput. */
const MIN_PYTHON_RATIO = 1.5;
/** The bridge must reach this fraction of the MASS-only ceiling. */
const MIN_CEILING_RATIO = 0.6;
/** MASS gives an instance at most about 100 scheduled analyses at a time (MAX_SCHEDULE_THRESHOLD). */
const MASS_BATCH = 100;

type Runner = 'ceiling' | 'python' | 'bridge';
const RUNNERS: Runner[] = ['ceiling', 'python', 'bridge'];
const LABEL: Record<Runner, string> = { ceiling: 'MASS only', python: 'Python bridge', bridge: 'bridge, defaults' };

/**
 * The runners BENCH_MASS_RUNNERS names (comma-separated `ceiling`, `python`, `bridge`, in that order of the first
 * round), or all three; throws on an unknown name.
 */
export function chosenRunners(raw: string | undefined): Runner[] {
  if (raw === undefined || raw.trim() === '') return RUNNERS;
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of names) {
    if (!(RUNNERS as string[]).includes(name)) throw new Error(`BENCH_MASS_RUNNERS: unknown runner ${JSON.stringify(name)} (known: ${RUNNERS.join(', ')})`);
  }
  return [...new Set(names)] as Runner[];
}

/** Where the MASS server is and the keys the benchmark uses (never printed). */
export interface RealMassTarget {
  /** API root, ending with '/' (e.g. http://127.0.0.1:5000/api/). */
  apiRoot: string;
  /** Key of a MASS user that may upload samples (TLP 0). */
  userKey: string;
  instanceUuid: string;
  /** Key of that analysis-system instance; its system's tag filter must match new file samples. */
  instanceKey: string;
}

/** Reads the target from `--real-mass URL` (or BENCH_MASS_URL) and BENCH_MASS_USER_KEY, _INSTANCE_UUID, _INSTANCE_KEY. */
export function realMassTarget(argv: string[], env: NodeJS.ProcessEnv): RealMassTarget | { missing: string } {
  const at = argv.indexOf('--real-mass');
  const url = (at >= 0 ? argv[at + 1] : undefined) ?? env.BENCH_MASS_URL;
  if (!url) return { missing: 'no MASS server given (--real-mass <API root> or BENCH_MASS_URL)' };
  const need = ['BENCH_MASS_USER_KEY', 'BENCH_MASS_INSTANCE_UUID', 'BENCH_MASS_INSTANCE_KEY'].filter((k) => !env[k]);
  if (need.length > 0) return { missing: `${need.join(', ')} not set` };
  return {
    apiRoot: url.endsWith('/') ? url : `${url}/`,
    userKey: env.BENCH_MASS_USER_KEY!,
    instanceUuid: env.BENCH_MASS_INSTANCE_UUID!,
    instanceKey: env.BENCH_MASS_INSTANCE_KEY!,
  };
}

interface RunResult {
  runner: Runner;
  seconds: number;
  perSecond: number;
  ok: boolean;
  note: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * CPU seconds (user + system) the MASS server process has used so far, when BENCH_MASS_PID names it (a server on
 * this machine, Linux /proc); undefined otherwise. Shows how much MASS work a runner caused, whatever the load.
 */
function massCpuSeconds(): number | undefined {
  const pid = process.env.BENCH_MASS_PID;
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Uploads N distinct small files and waits until the MASS scheduler has queued all of them for the instance. */
async function seedRound(t: RealMassTarget, n: number, say: Say): Promise<Set<string>> {
  const instance = createMassClient({ apiRoot: t.apiRoot, apiKey: t.instanceKey });
  const user = createMassClient({ apiRoot: t.apiRoot, apiKey: t.userKey });
  try {
    // A poll puts the instance online; MASS's scheduler assigns work to online instances only.
    const left = await instance.poll(t.instanceUuid);
    if (left.length > 0) {
      throw new Error(`the instance's queue already holds ${left.length} scheduled analyses; give the benchmark an instance of its own with an empty queue`);
    }
    const run = randomUUID();
    const urls = new Set<string>();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const body = Buffer.from(`real-mass benchmark sample ${i} of run ${run}\n${'x'.repeat(1024)}\n`);
      urls.add((await user.submitFileSample({ filename: `bench-${i}.bin`, body, tlpLevel: 0 })).url);
    }
    const uploaded = performance.now();
    const want = Math.min(n, MASS_BATCH);
    const maxMs = envInt('BENCH_MASS_SCHEDULE_MAX_MS', 120_000);
    await pollUntil(
      `the MASS scheduler to queue ${want} of the new samples for the instance (its interval is SCHEDULE_ANALYSES_INTERVAL)`,
      async () => ((await instance.poll(t.instanceUuid)).filter((sa) => urls.has(sa.sample)).length >= want ? true : undefined),
      maxMs,
      250,
    );
    say(
      `real-mass: seeded ${n} samples in ${((uploaded - t0) / 1000).toFixed(1)} s; queued by the MASS scheduler ` +
        `${((performance.now() - uploaded) / 1000).toFixed(1)} s later`,
    );
    return urls;
  } finally {
    await Promise.allSettled([instance.close(), user.close()]);
  }
}

/** Each seeded sample holds exactly one report (no error report) and the instance's queue is empty. */
async function checkRound(t: RealMassTarget, urls: Set<string>): Promise<{ ok: boolean; check: string }> {
  const instance = createMassClient({ apiRoot: t.apiRoot, apiKey: t.instanceKey });
  const user = createMassClient({ apiRoot: t.apiRoot, apiKey: t.userKey });
  try {
    let one = 0;
    let errors = 0;
    for (const url of urls) {
      const reports = await user.listSampleReports(url);
      if (reports.length === 1) one++;
      errors += reports.filter((r) => r.error_message !== null && r.error_message !== undefined).length;
    }
    const queued = (await instance.poll(t.instanceUuid)).length;
    const ok = one === urls.size && errors === 0 && queued === 0;
    return { ok, check: `exactly one report for ${one}/${urls.size} samples, error reports ${errors}, left in the queue ${queued}` };
  } finally {
    await Promise.allSettled([instance.close(), user.close()]);
  }
}

/** The MASS-only ceiling: poll, read the sample, download (drained), empty report; 4 at a time. */
async function runCeiling(t: RealMassTarget, n: number): Promise<number> {
  const mass = createMassClient({ apiRoot: t.apiRoot, apiKey: t.instanceKey });
  const work = new PQueue({ concurrency: 4 });
  const seen = new Set<string>();
  let reported = 0;
  let failure: unknown;
  const one = async (sa: ScheduledAnalysis): Promise<void> => {
    const sample = await mass.getSample(sa.sample);
    const download = await mass.downloadSample(sample);
    download.body.resume();
    await finished(download.body);
    await mass.submitReport(sa, { analysisDate: new Date() });
    reported++;
  };
  try {
    const t0 = performance.now();
    while (reported < n && failure === undefined) {
      let added = 0;
      for (const sa of await mass.poll(t.instanceUuid)) {
        if (seen.has(sa.url)) continue;
        seen.add(sa.url);
        added++;
        work.add(() => one(sa)).catch((err: unknown) => void (failure ??= err));
      }
      if (added > 0) await work.onIdle();
      else await sleep(100);
    }
    if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure));
    return (performance.now() - t0) / 1000;
  } finally {
    await mass.close();
  }
}

/** A Python 3 with `requests` (BENCH_PYTHON, else python3, else /usr/bin/python3). */
function findPython(): string {
  const candidates = process.env.BENCH_PYTHON ? [process.env.BENCH_PYTHON] : ['python3', '/usr/bin/python3'];
  for (const py of candidates) {
    if (spawnSync(py, ['-c', 'import requests'], { stdio: 'ignore' }).status === 0) return py;
  }
  throw new Error(`no Python 3 with the requests package among ${candidates.join(', ')} (set BENCH_PYTHON)`);
}

/** Runs bench/baselines/python_bridge.py until it has sent N reports; returns its own first-poll-to-last-report time. */
async function runPython(t: RealMassTarget, al: SimServerInfo, n: number): Promise<{ seconds: number; queueReads: number; cpuMs?: number }> {
  const child = spawn(findPython(), [join(REPO_ROOT, 'bench', 'baselines', 'python_bridge.py')], {
    env: {
      ...process.env,
      MASS_API: t.apiRoot,
      MASS_INSTANCE_UUID: t.instanceUuid,
      MASS_INSTANCE_KEY: t.instanceKey,
      AL_URL: al.alOrigin,
      AL_USER: al.alUser,
      AL_APIKEY: al.alApiKey,
      N: String(n),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`python_bridge.py exited ${code}: ${err.trim().slice(0, 300)}`);
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { reports: number; queue_reads: number; seconds: number };
  return { seconds: r.seconds, queueReads: r.queue_reads };
}

/** The bridge with every configuration key at its default except the endpoints, keys and the state directory. */
async function runBridge(t: RealMassTarget, al: SimServerInfo, n: number): Promise<{ seconds: number; queueReads: number; cpuMs: number }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-real-mass-'));
  let runtime: BridgeRuntime | null = null;
  try {
    const api = new URL(t.apiRoot);
    const ini = [
      '[GLOBAL]',
      `ServerURL = ${api.origin}/`,
      `APIEndpoint = ${api.pathname.replace(/^\//, '')}`,
      '[AssemblylineAnalysis]',
      `UUID = ${t.instanceUuid}`,
      `mass api key = ${t.instanceKey}`,
      '[Assemblyline]',
      `URL = ${al.alOrigin}`,
      `User = ${al.alUser}`,
      `APIKey = ${al.alApiKey}`,
      '[Bridge]',
      `StateDir = ${stateDir}`,
      'LogLevel = silent',
      '[API]',
      'Listen = 127.0.0.1:0',
      '',
    ].join('\n');
    const iniPath = join(stateDir, 'bench.ini');
    await writeFile(iniPath, ini, { mode: 0o600 });
    const { config } = loadConfig({ file: iniPath, env: {} });
    runtime = await openBridgeRuntime(config, silentLogger());
    const { bridge, ledger } = runtime;
    const t0 = performance.now();
    // The bridge runs in this process: its CPU time (user + system) from start to its N-th finished job.
    const cpu0 = process.cpuUsage();
    bridge.start();
    await pollUntil(
      `${n} bridge jobs to finish`,
      () => {
        const c = ledger.countByState();
        return c.done + c.failed + c.held >= n ? true : undefined;
      },
      envInt('BENCH_MASS_RUN_MAX_MS', 150_000),
      10,
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const metric = runtime.metrics.registry.getSingleMetric('massal_upstream_requests_total');
    const values = (await metric?.get())?.values ?? [];
    const queueReads = values.filter((v) => v.labels.operation === 'get_messages').reduce((a, v) => a + v.value, 0);
    await bridge.stop({ graceMs: 5000 });
    return { seconds, queueReads, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    await endBridgeRun(runtime, stateDir);
  }
}

async function runOnce(t: RealMassTarget, runner: Runner, n: number, alDelayMs: number, say: Say): Promise<RunResult> {
  const urls = await seedRound(t, n, say);
  let seconds: number;
  let extra = '';
  let cpuBefore: number | undefined;
  if (runner === 'ceiling') {
    cpuBefore = massCpuSeconds();
    seconds = await runCeiling(t, n);
  } else {
    const sims = await startSimServer({ alDelayMs });
    try {
      cpuBefore = massCpuSeconds();
      const r = runner === 'python' ? await runPython(t, sims.info, n) : await runBridge(t, sims.info, n);
      seconds = r.seconds;
      extra = `, ${r.queueReads} notification-queue reads`;
      if (r.cpuMs !== undefined) extra += `; bridge CPU ${fmtNum(r.cpuMs / n)} ms per sample`;
    } finally {
      await sims.stop();
    }
  }
  const cpuAfter = massCpuSeconds();
  if (cpuBefore !== undefined && cpuAfter !== undefined) {
    extra += `; MASS server CPU ${fmtNum(((cpuAfter - cpuBefore) * 1000) / n)} ms per sample`;
  }
  const { ok, check } = await checkRound(t, urls);
  const perSecond = n / seconds;
  say(`real-mass: ${LABEL[runner].padEnd(17)} ${n} samples in ${seconds.toFixed(2)} s = ${fmtNum(perSecond)} samples/s${extra}`);
  say(`real-mass: check (${LABEL[runner]}): ${check}: ${ok ? 'OK' : 'FAILED'}`);
  return { runner, seconds, perSecond, ok, note: check };
}

/** The benchmark entry (see the file comment). Prints a skip line and passes when no MASS server is given. */
export async function benchRealMass(say: Say): Promise<BenchOutcome> {
  const target = realMassTarget(process.argv.slice(2), process.env);
  if ('missing' in target) {
    say(`real-mass: skipped: ${target.missing} (see docs/benchmarks.md, "Against a real MASS server")`);
    return { ok: true, rows: [] };
  }
  const n = envInt('BENCH_MASS_N', 100);
  const repeat = envInt('BENCH_MASS_REPEAT', 1);
  const runners = chosenRunners(process.env.BENCH_MASS_RUNNERS);
  const alDelayMs = envInt('BENCH_MASS_AL_DELAY_MS', 200, 0);
  say(
    `real-mass: ${n} fresh small samples per run against ${new URL(target.apiRoot).origin} (Assemblyline simulator: ` +
      `${alDelayMs} ms analysis per file), ${repeat} round(s) of: ${runners.map((r) => LABEL[r]).join(', ')}`,
  );
  const results: Record<Runner, RunResult[]> = { ceiling: [], python: [], bridge: [] };
  for (let round = 0; round < repeat; round++) {
    // The server keeps every sample and report: the order rotates so that no runner always meets the fullest database.
    const order = runners.map((_, i) => runners[(i + round) % runners.length]);
    for (const runner of order) results[runner].push(await runOnce(target, runner, n, alDelayMs, say));
  }
  const rate = (r: Runner): number => median(results[r].map((x) => x.perSecond));
  const spread = (r: Runner): string => {
    const v = results[r].map((x) => x.perSecond);
    return v.length > 1 ? ` (${fmtNum(Math.min(...v))}–${fmtNum(Math.max(...v))})` : '';
  };
  const ok = runners.every((r) => results[r].every((x) => x.ok));
  if (runners.length < RUNNERS.length) {
    // Only some runners (e.g. one per fresh server): their lines above are the result; no ratio, no target.
    for (const r of runners) say(`real-mass: ${LABEL[r]}: median ${fmtNum(rate(r))} samples/s${spread(r)}`);
    say('real-mass: not every runner ran (BENCH_MASS_RUNNERS), so no ratio is checked against the targets');
    return { ok, rows: [] };
  }
  const [ceiling, python, bridge] = [rate('ceiling'), rate('python'), rate('bridge')];
  const vsPython = bridge / python;
  const vsCeiling = bridge / ceiling;
  for (const r of RUNNERS) say(`real-mass: ${LABEL[r]}: median ${fmtNum(rate(r))} samples/s${spread(r)}`);
  say(
    `real-mass: the bridge reaches ${fmtRatio(vsPython)} the Python bridge (target ≥ ${fmtRatio(MIN_PYTHON_RATIO)}) ` +
      `and ${fmtRatio(vsCeiling)} the MASS-only ceiling (target ≥ ${fmtRatio(MIN_CEILING_RATIO)})`,
  );
  return {
    ok,
    rows: [
      {
        bench: `real MASS: ${n} samples, vs Python`,
        baseline: `python ${fmtNum(python)}/s${spread('python')}`,
        measured: `bridge ${fmtNum(bridge)}/s${spread('bridge')}`,
        ratio: fmtRatio(vsPython),
        target: `≥ ${fmtRatio(MIN_PYTHON_RATIO)}`,
        met: vsPython >= MIN_PYTHON_RATIO,
      },
      {
        bench: `real MASS: ${n} samples, vs MASS only`,
        baseline: `MASS only ${fmtNum(ceiling)}/s${spread('ceiling')}`,
        measured: `bridge ${fmtNum(bridge)}/s`,
        ratio: fmtRatio(vsCeiling),
        target: `≥ ${fmtRatio(MIN_CEILING_RATIO)}`,
        met: vsCeiling >= MIN_CEILING_RATIO,
      },
    ],
  };
}
