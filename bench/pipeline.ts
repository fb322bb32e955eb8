/**
 * Pipeline throughput: N small samples end-to-end through the real bridge (openBridgeRuntime, config from an
 * INI via loadConfig, every [Bridge] key at its default) vs the null bridge (bench/null-bridge.ts: the same
 * upstream calls in straight-line code, same Concurrency and MaxInFlight) against the simulators in a child
 * process. Each run gets fresh simulators (and the bridge a fresh ledger), and ends with a check that MASS
 * holds exactly one report per scheduled analysis. Target: the bridge reaches MIN_NULL_RATIO of the null bridge.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBridgeRuntime, type BridgeRuntime } from '../src/bridge/commands.js';
import { renderSimulatorIni } from '../src/commands/sim-config.js';
import { loadConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log.js';
import { runNullBridge } from './null-bridge.js';
import { QUICK, envInt, fmtNum, fmtRatio, getJson, pollUntil, postJson, startSimServer, type BenchOutcome, type Say } from './lib.js';

interface MassState {
  samples: number;
  scheduled_pending: number;
  analysis_requests: number;
  reports: Array<{ sample: string; error_message: string | null }>;
}

interface RunResult {
  label: string;
  n: number;
  seconds: number;
  perSecond: number;
  ok: boolean;
  check: string;
}

const AL_DELAY_MS = 50;
const SCHEDULER_MS = 100;
/** MASS poll interval of both runs (s): the same for both, short so that MASS hands out work as fast as it can. */
const POLL_S = 0.1;
/** [Bridge] Concurrency and MaxInFlight defaults, used by the null bridge too. */
const CONCURRENCY = 4;
const MAX_IN_FLIGHT = 100;
/** The bridge must reach this fraction of the null bridge's throughput. */
const MIN_NULL_RATIO = 0.8;

type Runner = 'bridge' | 'null bridge';

async function runOnce(label: string, runner: Runner, n: number, say: Say): Promise<RunResult & { queueReads: number }> {
  const sims = await startSimServer({ alDelayMs: AL_DELAY_MS });
  const { info } = sims;
  const stateDir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-bench-'));
  let runtime: BridgeRuntime | null = null;
  try {
    // Small distinct files (no AL cache hits); the AL default outcome has no extracted files, so one job per sample.
    const run = randomUUID();
    const seeded = new Set<string>();
    for (let i = 0; i < n; i++) {
      const s = await postJson<{ url: string }>(`${info.massOrigin}/_sim/samples`, {
        file_name: `bench-${i}.bin`,
        content_text: `bench pipeline sample ${i} of run ${run}\n${'x'.repeat(1024)}\n`,
      });
      seeded.add(s.url);
    }

    const iniPath = join(stateDir, 'bench.ini');
    await writeFile(
      iniPath,
      renderSimulatorIni({
        massOrigin: info.massOrigin,
        instanceUuid: info.instanceUuid,
        instanceKey: info.instanceKey,
        alOrigin: info.alOrigin,
        alUser: info.alUser,
        alApiKey: info.alApiKey,
        stateDir,
        overrides: {
          // Same fast timings for both runs; only Concurrency/MaxInFlight differ.
          GLOBAL: { SleepTime: 0.1 },
          AssemblylineAnalysis: { PollTime: POLL_S },
          // Every [Bridge] key at its default (the simulator INI sets a shorter QueuePollTime: restored here).
          Bridge: { Concurrency: CONCURRENCY, MaxInFlight: MAX_IN_FLIGHT, QueuePollTime: 5, ResultDeadline: 21600, LogLevel: 'silent' },
          API: { Listen: '127.0.0.1:0' },
        },
      }),
      { mode: 0o600 },
    );
    const { config } = loadConfig({ file: iniPath, env: {} });
    let finishedCount: () => { done: number; failed: number; held: number } | undefined;
    let queueReads = (): number => 0;
    let getMessagesCount = 0;
    let readCount = async (): Promise<void> => undefined;
    let nullRun: Promise<{ queueReads: number }> | undefined;
    let nullError: unknown;
    if (runner === 'bridge') {
      runtime = await openBridgeRuntime(config, silentLogger());
      const { bridge, ledger } = runtime;
      const counting = runtime;
      bridge.start();
      // The first poll puts the instance online; only then does the MASS scheduler give it work.
      await pollUntil('the bridge to poll MASS', () => (bridge.control.status().lastPollAt ? true : undefined), 15_000);
      finishedCount = () => {
        const c = ledger.countByState();
        return c.done + c.failed + c.held >= n ? c : undefined;
      };
      // The bridge's own count of notification-queue reads (massal_upstream_requests_total, operation get_messages).
      queueReads = () => getMessagesCount;
      const metric = counting.metrics.registry.getSingleMetric('massal_upstream_requests_total');
      readCount = async () => {
        const m = await metric?.get();
        getMessagesCount = (m?.values ?? []).filter((v) => v.labels.operation === 'get_messages').reduce((a, v) => a + v.value, 0);
      };
    } else {
      // The null bridge's first poll also puts the instance online.
      const mass = config.mass;
      let reports = 0;
      nullRun = runNullBridge({
        massApiRoot: config.global.apiRoot, massKey: mass.apiKey, instanceUuid: mass.uuid,
        alUrl: config.assemblyline.url, alUser: config.assemblyline.user, alApiKey: config.assemblyline.apiKey,
        queue: config.assemblyline.notificationQueue, concurrency: CONCURRENCY, maxInFlight: MAX_IN_FLIGHT,
        pollMs: POLL_S * 1000, queueIdleMs: 10, n, onReport: () => void reports++,
      });
      nullRun.catch((err: unknown) => {
        nullError = err;
      });
      await new Promise((r) => setTimeout(r, 300));
      finishedCount = () => {
        if (nullError !== undefined) throw nullError instanceof Error ? nullError : new Error(String(nullError));
        return reports >= n ? { done: reports, failed: 0, held: 0 } : undefined;
      };
    }

    // MASS hands an instance about 100 scheduled analyses at a time; its scheduler runs here every 100 ms.
    const t0 = performance.now();
    let scheduled = 0;
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        scheduled += (await postJson<{ scheduled: number }>(`${info.massOrigin}/_sim/scheduler/run`, {})).scheduled;
        await new Promise((r) => setTimeout(r, SCHEDULER_MS));
      }
    })();
    let finished: Record<string, number>;
    try {
      finished = await pollUntil(
        `${n} jobs to finish`,
        finishedCount,
        Number(process.env.BENCH_PIPELINE_MAX_MS ?? 150_000),
        10,
      );
    } finally {
      ticking = false;
      await ticker;
    }
    const seconds = (performance.now() - t0) / 1000;
    await readCount();
    let reads = queueReads();
    if (runtime) await runtime.bridge.stop({ graceMs: 5000 });
    if (nullRun) reads = (await nullRun).queueReads;

    const st = await getJson<MassState>(`${info.massOrigin}/_sim/state`);
    const perSample = new Map<string, number>();
    for (const r of st.reports) perSample.set(r.sample, (perSample.get(r.sample) ?? 0) + 1);
    const exactlyOne = [...seeded].every((u) => perSample.get(u) === 1);
    const errors = st.reports.filter((r) => r.error_message !== null).length;
    const ok =
      scheduled === n && st.reports.length === scheduled && exactlyOne && st.scheduled_pending === 0 && st.analysis_requests === 0 &&
      finished.done === n && errors === 0;
    const check =
      `scheduled ${scheduled}/${n}, MASS reports ${st.reports.length} (error reports ${errors}), ` +
      `exactly one per scheduled analysis: ${exactlyOne ? 'yes' : 'NO'}, pending ${st.scheduled_pending}, unscheduled requests ${st.analysis_requests}, ` +
      `ledger done ${finished.done} failed ${finished.failed} held ${finished.held}`;
    const perSecond = scheduled / seconds;
    // Ledger commits (fsyncs) per job: group commit shares one among the jobs that wrote before the same request.
    const commits = runtime ? `, ${fmtNum(runtime.ledger.commits() / Math.max(1, scheduled), 2)} ledger commits/job` : '';
    say(`pipeline: ${label.padEnd(28)} ${scheduled} samples in ${seconds.toFixed(2)} s = ${fmtNum(perSecond)} samples/s, ${reads} notification-queue reads${commits}`);
    say(`pipeline: check (${label}): ${check}: ${ok ? 'OK' : 'FAILED'}`);
    return { label, n, seconds, perSecond, ok, check, queueReads: reads };
  } finally {
    if (runtime) {
      await runtime.bridge.stop({ graceMs: 2000 }).catch(() => undefined);
      await runtime.close().catch(() => undefined);
    }
    await sims.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

export async function benchPipeline(say: Say): Promise<BenchOutcome> {
  const n = envInt('BENCH_PIPELINE_N', QUICK ? 50 : 200);
  say(
    `pipeline: ${n} small samples end-to-end (Assemblyline analysis ${AL_DELAY_MS} ms each, MASS scheduler every ${SCHEDULER_MS} ms, ` +
      `MASS poll ${POLL_S} s): the bridge with every [Bridge] key at its default vs the null bridge (Concurrency ${CONCURRENCY}, MaxInFlight ${MAX_IN_FLIGHT})`,
  );
  const base = await runOnce('null bridge', 'null bridge', n, say);
  const bridge = await runOnce('bridge, defaults', 'bridge', n, say);
  const ratio = bridge.perSecond / base.perSecond;
  say(`pipeline: the bridge reaches ${fmtRatio(ratio)} the throughput of the null bridge (target ≥ ${fmtRatio(MIN_NULL_RATIO)})`);
  return {
    ok: base.ok && bridge.ok,
    rows: [
      {
        bench: `pipeline: ${n} samples end-to-end`,
        baseline: `null ${fmtNum(base.perSecond)}/s`,
        measured: `bridge ${fmtNum(bridge.perSecond)}/s`,
        ratio: fmtRatio(ratio),
        target: `≥ ${fmtRatio(MIN_NULL_RATIO)}`,
        met: ratio >= MIN_NULL_RATIO,
      },
    ],
  };
}
