/**
 * Crash points, named and hit: the real CLI (`src/cli.ts run`) is SIGKILLed by its test-only hook
 * (MASSAL_TEST_CRASH_AT=<point>:<N>) exactly at one side-effect boundary, then restarted on the same ledger.
 * At the end: one report per scheduled analysis, no relation twice, nothing pending on MASS, and the
 * Assemblyline ingests within the bound of docs/design.md §1 "Remaining windows".
 *
 * Which occurrence of the point is hit (N) is drawn from a seeded generator; the seed is printed. Replay a
 * failure with CRASH_POINTS_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CRASH_POINTS, type CrashPointName } from '../../src/bridge/crash-point.js';
import { startSimulators, type Simulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';
import { seeded } from '../helpers/seeded.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const SEED = Number(process.env.CRASH_POINTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`crash-points seed ${SEED} (replay: CRASH_POINTS_SEED=${SEED})`);


const DROPPERS = 3;
/** 3 droppers + the echo-back of each one's dropped file (answered from its parent, not ingested again). */
const ANALYSES = 2 * DROPPERS;
/** Per dropper: dropped-by (its extracted file) and contacted-by (its IP). */
const RELATIONS = 2 * DROPPERS;
const CONCURRENCY = 4;

/** How often each point is reached at least in this workload: N is drawn from 1…that. */
const REACHED: Record<CrashPointName, number> = {
  'after-claim': DROPPERS,
  'mid-download': DROPPERS,
  'after-ingest-accepted': DROPPERS,
  // All notifications may come in one pop.
  'after-queue-pop': 1,
  'after-related-sample-answer': DROPPERS,
  'after-relation-answer': DROPPERS,
  'after-report-answer': DROPPERS,
};

type Child = ChildProcessByStdio<null, Readable, Readable>;

function writeIni(sims: Simulators): string {
  const e = sims.endpoints;
  const ini = join(e.stateDir, 'bridge.ini');
  writeFileSync(ini, [
    '[GLOBAL]', `ServerURL = ${sims.massOrigin}/`, 'SleepTime = 0.1',
    '[AssemblylineAnalysis]', `UUID = ${e.uuid}`, `mass api key = ${e.massKey}`, 'PollTime = 0.1',
    '[Assemblyline]', `URL = ${e.alUrl}`, `User = ${e.alUser}`, `APIKey = ${e.alApiKey}`,
    '[Bridge]', `StateDir = ${join(e.stateDir, 'state')}`, `Concurrency = ${CONCURRENCY}`, 'GracePeriod = 5', 'LogLevel = warn',
    'QueuePollTime = 0.05', 'ResultDeadline = 5', 'RetryBaseDelay = 0.02', 'RetryMaxDelay = 0.2',
    '[Report]', 'IOCMinVerdict = info',
    '[API]', 'Listen = 127.0.0.1:0', '',
  ].join('\n'));
  return ini;
}

function startCli(t: { after(fn: () => unknown): void }, ini: string, crashAt?: string): { child: Child; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PRETTY_LOGS: '1' };
  delete env.MASSAL_TEST_CRASH_AT;
  if (crashAt) env.MASSAL_TEST_CRASH_AT = crashAt;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', ini], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out.slice(-4000), exited };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}

const random = seeded(SEED);
for (const point of CRASH_POINTS) {
  const n = 1 + Math.floor(random() * REACHED[point]);
  test(`SIGKILL at ${point} (occurrence ${n}, seed ${SEED}), restart on the same ledger: one report each, no relation twice, nothing pending`, { timeout: 90_000 }, async (t) => {
    const sims = await startSimulators(t);
    for (let i = 0; i < DROPPERS; i++) {
      const scenario = { score: 700, extracted: [{ name: `dropped-${i}.dll`, relation: 'DYNAMIC' }], iocs: [{ type: 'network.dynamic.ip', value: `203.0.113.${i + 10}`, safelisted: false }] };
      await sims.seedFile(`dropper-${i}.exe`, `dropper ${i}\nAL-SIM: ${JSON.stringify(scenario)}\n`);
    }
    const ini = writeIni(sims);

    const first = startCli(t, ini, `${point}:${n}`);
    const r = await within(first.exited, 40_000, `the crash at ${point}:${n}`).catch((err: Error) => {
      throw new Error(`${err.message}\n${first.output()}`, { cause: err });
    });
    assert.equal(r.signal, 'SIGKILL', `killed by its own crash point\n${first.output()}`);
    assert.match(first.output(), /test-only crash point armed/);

    const second = startCli(t, ini);
    const state = await waitFor(
      async () => {
        const s = await sims.massState();
        return s.reports.length >= ANALYSES && s.scheduled_pending === 0 && s.analysis_requests === 0 ? s : null;
      },
      { timeoutMs: 40_000, intervalMs: 100, what: `all ${ANALYSES} reports after the restart` },
    ).catch(async (err: Error) => {
      const s = await sims.massState();
      throw new Error(`${err.message}: reports ${s.reports.length}, pending ${s.scheduled_pending}, requests ${s.analysis_requests}\n${second.output()}`, { cause: err });
    });
    second.child.kill('SIGTERM');
    assert.equal((await within(second.exited, 20_000, 'the graceful stop')).code, 0, second.output());

    assert.equal(state.reports.length, ANALYSES, 'exactly one report per scheduled analysis');
    const markers = new Set(state.reports.map((x) => (x.additional_metadata.assemblyline as Record<string, unknown>).bridge_job));
    assert.equal(markers.size, ANALYSES, 'no scheduled analysis reported twice');
    assert.equal(state.reports.filter((x) => x.error_message !== null).length, 0, 'no error report');
    const relationKeys = state.relations.map((x) => `${x._cls} ${x.sample} ${x.other}`);
    assert.equal(new Set(relationKeys).size, relationKeys.length, 'no relation twice');
    assert.equal(state.relations.length, RELATIONS, 'every relation once');
    const ingests = sims.al.stats().ingests;
    // design.md §1: a crash between Assemblyline accepting an ingest and the ledger recording it costs at most
    // Concurrency extra ingests. Any crash point can land in that window of the other jobs in flight.
    const bound = DROPPERS + CONCURRENCY;
    assert.ok(ingests >= DROPPERS && ingests <= bound, `Assemblyline ingests ${ingests} within ${DROPPERS}…${bound}`);
  });
}
