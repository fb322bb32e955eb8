/**
 * Pipeline throughput: N small samples end-to-end through the real bridge (openBridgeRuntime, config
 * from an INI via loadConfig) against the simulators in a child process, with
 * `[Bridge] Concurrency = 1, MaxInFlight = 1` (the sequential baseline) vs Concurrency 4 / MaxInFlight 100.
 * Each run gets fresh simulators and a fresh ledger, and ends with a check that MASS holds exactly one
 * report per scheduled analysis.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBridgeRuntime, type BridgeRuntime } from '../src/bridge/commands.js';
import { renderSimulatorIni } from '../src/commands/sim-config.js';
import { loadConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log.js';
import { envInt, fmtNum, fmtRatio, getJson, pollUntil, postJson, startSimServer, type BenchOutcome, type Say } from './lib.js';

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

async function runOnce(label: string, n: number, concurrency: number, maxInFlight: number, say: Say): Promise<RunResult> {
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
          AssemblylineAnalysis: { PollTime: 0.1 },
          Bridge: { Concurrency: concurrency, MaxInFlight: maxInFlight, QueuePollTime: 0.05, ResultDeadline: 60, RetryBaseDelay: 0.05, RetryMaxDelay: 1, LogLevel: 'silent' },
          API: { Listen: '127.0.0.1:0' },
        },
      }),
      { mode: 0o600 },
    );
    const { config } = loadConfig({ file: iniPath, env: {} });
    runtime = await openBridgeRuntime(config, silentLogger());
    const { bridge, ledger } = runtime;
    bridge.start();
    // The first poll puts the instance online; only then does the MASS scheduler give it work.
    await pollUntil('the bridge to poll MASS', () => (bridge.control.status().lastPollAt ? true : undefined), 15_000);

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
        () => {
          const c = ledger.countByState();
          return c.done + c.failed + c.held >= n ? c : undefined;
        },
        Number(process.env.BENCH_PIPELINE_MAX_MS ?? 150_000),
        10,
      );
    } finally {
      ticking = false;
      await ticker;
    }
    const seconds = (performance.now() - t0) / 1000;
    await bridge.stop({ graceMs: 5000 });

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
    say(`pipeline: ${label.padEnd(28)} ${scheduled} samples in ${seconds.toFixed(2)} s = ${fmtNum(perSecond)} samples/s`);
    say(`pipeline: check (${label}): ${check}: ${ok ? 'OK' : 'FAILED'}`);
    return { label, n, seconds, perSecond, ok, check };
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
  const n = envInt('BENCH_PIPELINE_N', 200);
  say(`pipeline: ${n} small samples end-to-end through the bridge (Assemblyline analysis ${AL_DELAY_MS} ms each, MASS scheduler every ${SCHEDULER_MS} ms, bridge poll 0.1 s, queue poll 0.05 s)`);
  const seq = await runOnce('Concurrency 1, MaxInFlight 1', n, 1, 1, say);
  const par = await runOnce('Concurrency 4, MaxInFlight 100', n, 4, 100, say);
  const speedup = par.perSecond / seq.perSecond;
  say(`pipeline: Concurrency 4 / MaxInFlight 100 is ${fmtRatio(speedup)} the throughput of sequential`);
  return {
    ok: seq.ok && par.ok,
    rows: [
      {
        bench: `pipeline: ${n} samples end-to-end`,
        baseline: `c1/m1 ${fmtNum(seq.perSecond)}/s`,
        measured: `c4/m100 ${fmtNum(par.perSecond)}/s`,
        ratio: fmtRatio(speedup),
      },
    ],
  };
}
