/**
 * Identities: how throughput grows with the number of identities K when MASS's scheduler, not Assemblyline, is the
 * limit. MASS hands an instance new work only while it has at most 100 pending scheduled analyses, so with an
 * analysis time of T seconds one identity finishes about 100 / T samples a second, and K identities
 * min(K × 100 / T, Assemblyline's capacity). The real bridge (openBridgeRuntime, K identities from one INI) runs
 * K × PER_IDENTITY samples against fresh simulators in a child process for K = 1, 2, 4 (--quick: 1, 2 with a shorter T), one batch of 101 samples per identity; a last run
 * gives Assemblyline a capacity below what four identities could feed it (an async submission quota of C
 * concurrent analyses: C / T a second). Targets: each run reaches MIN_MODEL_RATIO of its model throughput, and K
 * identities at least MIN_SCALING × K times the throughput of one (measured in the same run).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBridgeRuntime, type BridgeRuntime } from '../src/bridge/commands.js';
import { renderSimulatorIni } from '../src/commands/sim-config.js';
import { loadConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log.js';
import { QUICK, envInt, fmtNum, median, fmtRatio, getJson, pollUntil, postJson, startSimServer, type BenchOutcome, type Say, type TableRow, endBridgeRun } from './lib.js';

/** MASS's MAX_SCHEDULE_THRESHOLD: an instance with at most this many pending gets one more per request. */
const THRESHOLD = 100;
/** MASS's scheduler interval here (real MASS: 30 s for analyses of minutes; kept in the same proportion to T). */
const SCHEDULER_MS = 1000;
const POLL_S = 0.5;
/**
 * Each run must reach this fraction of its model rate: n / (ceil(n / min(K × 101, capacity)) × T) for a batch of n
 * (min(K × 101 / T, capacity / T) when the batch fills whole rounds). What is missing is the bridge's own time per
 * scheduled analysis (claim, ingest, queue read, report: a few seconds for a batch of 101 on 2 cores), which weighs
 * more with the shorter T of --quick.
 */
const MIN_MODEL_RATIO = QUICK ? 0.6 : 0.7;
/** K identities must finish at least this fraction of K times what one identity finishes (same run, same T). */
const MIN_SCALING = 0.8;

interface MassState {
  scheduled_pending: number;
  analysis_requests: number;
  reports: Array<{ sample: string; error_message: string | null }>;
}

interface Run {
  k: number;
  /** Concurrent analyses Assemblyline allows (0 = unlimited). */
  capacity: number;
}

async function runOnce(run: Run, n: number, analysisMs: number, say: Say): Promise<{ perSecond: number; model: number; ok: boolean; maxPending: number }> {
  const sims = await startSimServer({ alDelayMs: analysisMs, instances: run.k, asyncQuota: run.capacity });
  const { info } = sims;
  const stateDir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-bench-identities-'));
  let runtime: BridgeRuntime | null = null;
  try {
    const tag = randomUUID();
    const seeded = new Set<string>();
    for (let i = 0; i < n; i++) {
      const s = await postJson<{ url: string }>(`${info.massOrigin}/_sim/samples`, { file_name: `id-${i}.bin`, content_text: `identities sample ${i} of ${tag}\n` });
      seeded.add(s.url);
    }
    const identitySections = Object.fromEntries(
      info.extraInstances.map((inst, i) => [`AssemblylineAnalysis:id${i + 2}`, { UUID: inst.uuid, 'mass api key': inst.key }]),
    );
    const iniPath = join(stateDir, 'bench.ini');
    await writeFile(
      iniPath,
      renderSimulatorIni({
        massOrigin: info.massOrigin, instanceUuid: info.instanceUuid, instanceKey: info.instanceKey, alOrigin: info.alOrigin,
        alUser: info.alUser, alApiKey: info.alApiKey, stateDir,
        overrides: {
          GLOBAL: { SleepTime: 0.1 },
          AssemblylineAnalysis: { PollTime: POLL_S },
          // Room for every identity's share; the default Concurrency would do, 8 keeps the steps off the critical path.
          // QueuePollTime 1 s: a whole batch of results is read within a second of Assemblyline finishing it (the
          // default 5 s would add up to 5 s to every batch of 101).
          Bridge: { Concurrency: 8, MaxInFlight: run.k * (THRESHOLD + 1) + 50, QueuePollTime: 1, ResultDeadline: 21600, LogLevel: 'silent' },
          API: { Listen: '127.0.0.1:0' },
          ...identitySections,
        },
      }),
      { mode: 0o600 },
    );
    const { config } = loadConfig({ file: iniPath, env: {} });
    runtime = await openBridgeRuntime(config, silentLogger());
    const { bridge, ledger } = runtime;
    bridge.start();
    // An instance is online (and gets work) only after its first poll.
    await pollUntil('every identity to poll MASS', () => ((bridge.control.status().identities ?? []).every((i) => i.lastPollAt !== null) ? true : undefined), 15_000);

    const t0 = performance.now();
    let scheduled = 0;
    let maxPending = 0;
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        scheduled += (await postJson<{ scheduled: number }>(`${info.massOrigin}/_sim/scheduler/run`, {})).scheduled;
        for (const i of bridge.control.status().identities ?? []) maxPending = Math.max(maxPending, i.pendingOnMass ?? 0);
        await new Promise((r) => setTimeout(r, SCHEDULER_MS));
      }
    })();
    let finished: { done: number; failed: number; held: number };
    try {
      finished = await pollUntil(
        `${n} jobs to finish`,
        () => {
          const c = ledger.countByState();
          return c.done + c.failed + c.held >= n ? c : undefined;
        },
        Number(process.env.BENCH_IDENTITIES_MAX_MS ?? 150_000),
        20,
      );
    } finally {
      ticking = false;
      await ticker;
    }
    const seconds = (performance.now() - t0) / 1000;
    await bridge.stop({ graceMs: 5000 });
    const all = ledger.list({ limit: 1000 }).jobs;
    const jobs = all.length;
    // Where the time went, per job: claim → ingested (waiting), → results read (collecting), → reported (done).
    const phases = { claim: [] as number[], ingest: [] as number[], analysis: [] as number[], report: [] as number[] };
    const startMs = Date.now() - seconds * 1000;
    for (const job of all) {
      const at = (state: string) => ledger.events(job.id).find((e) => e.state === state)?.at;
      const waiting = at('waiting');
      const collecting = at('collecting');
      if (waiting === undefined || collecting === undefined || job.finishedAt === null) continue;
      phases.claim.push(job.createdAt - startMs);
      phases.ingest.push(waiting - job.createdAt);
      phases.analysis.push(collecting - waiting);
      phases.report.push(job.finishedAt - collecting);
    }
    const spread = (v: number[]) => `median ${(median(v) / 1000).toFixed(1)} s, max ${(Math.max(...v) / 1000).toFixed(1)} s`;
    say(
      `identities: K=${run.k} per job: claimed after start ${spread(phases.claim)}; claim → ingested ${spread(phases.ingest)}; ` +
        `ingested → results read ${spread(phases.analysis)}; results → reported ${spread(phases.report)}`,
    );
    const st = await getJson<MassState>(`${info.massOrigin}/_sim/state`);
    const perSample = new Map<string, number>();
    for (const r of st.reports) perSample.set(r.sample, (perSample.get(r.sample) ?? 0) + 1);
    const exactlyOne = [...seeded].every((u) => perSample.get(u) === 1);
    const errors = st.reports.filter((r) => r.error_message !== null).length;
    const ok = scheduled === n && st.reports.length === n && exactlyOne && errors === 0 && finished.done === n && st.scheduled_pending === 0 && maxPending <= THRESHOLD + 1;
    const perSecond = n / seconds;
    // At most min(K × 101, capacity) analyses run at once: a batch of n takes ceil(n / that) analysis times T, so
    // the model rate of this finite batch is n / (rounds × T) (the steady state min(K × 100 / T, capacity / T) when
    // n fills whole rounds; 404 samples through 300 slots need two rounds, not 404 / 300 of one).
    const atOnce = Math.min(run.k * (THRESHOLD + 1), run.capacity > 0 ? run.capacity : Infinity);
    const model = n / (Math.ceil(n / atOnce) * (analysisMs / 1000));
    say(
      `identities: K=${run.k}${run.capacity ? `, Assemblyline capacity ${run.capacity} concurrent` : ''}: ${n} samples in ${seconds.toFixed(1)} s = ` +
        `${fmtNum(perSecond)}/s; model n / (ceil(n / min(K × ${THRESHOLD + 1}, capacity)) × T) = ${fmtNum(model)}/s (${fmtRatio(perSecond / model)})`,
    );
    say(
      `identities: check (K=${run.k}): scheduled ${scheduled}/${n}, MASS reports ${st.reports.length} (error reports ${errors}), exactly one per sample: ` +
        `${exactlyOne ? 'yes' : 'NO'}, ledger done ${finished.done} of ${jobs}, most pending on one instance ${maxPending}: ${ok ? 'OK' : 'FAILED'}`,
    );
    return { perSecond, model, ok, maxPending };
  } finally {
    await endBridgeRun(runtime, stateDir, sims);
  }
}

export async function benchIdentities(say: Say): Promise<BenchOutcome> {
  const analysisMs = envInt('BENCH_IDENTITIES_T_MS', QUICK ? 10_000 : 20_000);
  // One whole batch: MASS hands each identity 101 at a time.
  const perIdentity = envInt('BENCH_IDENTITIES_PER', THRESHOLD + 1);
  const runs: Run[] = QUICK ? [{ k: 1, capacity: 0 }, { k: 2, capacity: 0 }] : [{ k: 1, capacity: 0 }, { k: 2, capacity: 0 }, { k: 4, capacity: 0 }, { k: 4, capacity: 300 }];
  say(
    `identities: analysis time T = ${analysisMs / 1000} s, MASS scheduler every ${SCHEDULER_MS} ms with the real threshold (${THRESHOLD}), poll every ${POLL_S} s; ` +
      `${perIdentity} samples per identity; K = ${[...new Set(runs.map((r) => r.k))].join(', ')}`,
  );
  const rows: TableRow[] = [];
  let ok = true;
  let single: number | undefined;
  for (const run of runs) {
    const n = run.k * perIdentity;
    const r = await runOnce(run, n, analysisMs, say);
    ok &&= r.ok;
    if (run.k === 1) single = r.perSecond;
    const ratio = r.perSecond / r.model;
    rows.push({
      bench: `identities: K=${run.k}${run.capacity ? `, AL ${run.capacity} concurrent` : ''}, T=${analysisMs / 1000} s`,
      baseline: `model ${fmtNum(r.model)}/s`,
      measured: `${fmtNum(r.perSecond)}/s`,
      ratio: fmtRatio(ratio),
      target: `≥ ${fmtRatio(MIN_MODEL_RATIO)}`,
      met: ratio >= MIN_MODEL_RATIO,
    });
    if (run.k > 1 && run.capacity === 0 && single !== undefined) {
      const scaling = r.perSecond / single;
      rows.push({
        bench: `identities: K=${run.k} vs K=1 (scaling)`,
        baseline: `K=1 ${fmtNum(single)}/s`,
        measured: `K=${run.k} ${fmtNum(r.perSecond)}/s`,
        ratio: fmtRatio(scaling),
        target: `≥ ${fmtRatio(MIN_SCALING * run.k)}`,
        met: scaling >= MIN_SCALING * run.k,
      });
    }
  }
  return { ok, rows };
}
