/**
 * Poll cost against the backlog: the time of one poll cycle (one tick each of the poller, the listener and the
 * worker, in that order: what runs every PollTime and every queue read) with 10 jobs in flight vs 10 000, against
 * the simulators in child processes. The reconciler's tick is timed too and printed, not counted in the cycle:
 * it runs every min(30 s, ResultDeadline / 4), not every poll. The upstream answers are the same in both: MASS lists the same 10 pending scheduled analyses (all
 * claimed already), the notification queue is empty. What differs is only the ledger's backlog, so what is
 * compared is the bridge's own per-cycle work (its ledger queries and scans). Target: ≤ MAX_RATIO × the small one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAssemblylineClient } from '../src/assemblyline/client.js';
import { assemblylineClientOptionsFromConfig } from '../src/assemblyline/options.js';
import { BridgeContext } from '../src/bridge/context.js';
import { Loop } from '../src/bridge/loop.js';
import { listenTick } from '../src/bridge/loops/listener.js';
import { pollTick } from '../src/bridge/loops/poller.js';
import { reconcileTick } from '../src/bridge/loops/reconciler.js';
import { workerTick } from '../src/bridge/loops/worker.js';
import { WORK_STATES } from '../src/bridge/states.js';
import { renderSimulatorIni } from '../src/commands/sim-config.js';
import { loadConfig } from '../src/config/index.js';
import type { BridgeConfig } from '../src/config/types.js';
import { openLedger } from '../src/ledger/index.js';
import type { Ledger } from '../src/ledger/types.js';
import { silentLogger } from '../src/log.js';
import { createMassClient } from '../src/mass/client.js';
import { massClientOptionsFromConfig } from '../src/mass/options.js';
import { QUICK, envInt, fmtNum, fmtRatio, median, postJson, startSimServer, type BenchOutcome, type Say, type SimServerInfo } from './lib.js';

/** The cycle with the large backlog may cost at most this many times the one with the small backlog. */
const MAX_RATIO = 2;
const SMALL = 10;
/** Jobs the worker's due query asks for: what a tick at the default Concurrency 16 picks. */
const DUE_PICK = 32;
/**
 * The small backlog of the due-query row. It is above DUE_PICK so that both sides return the same
 * DUE_PICK rows: with fewer due jobs than the limit the small side returns fewer rows, and the ratio
 * would measure rows returned, not growth with the backlog.
 */
const DUE_SMALL = 2 * DUE_PICK;
/** Scheduled analyses MASS lists in both runs. */
const LISTED = 10;

type Tick = 'poll' | 'listen' | 'work' | 'reconcile';

/** Puts `n` jobs in the ledger in state `waiting` (claimed, fetched, ingested), the first ones MASS's listed items. */
function fillLedger(ledger: Ledger, n: number, listed: Array<{ id: string; url: string; sample: string }>, now: number): void {
  for (let i = 0; i < n; i++) {
    const item = listed[i] ?? { id: `bench-backlog-${i}`, url: `http://backlog.invalid/api/schedule_analysis/${i}/`, sample: `http://backlog.invalid/api/sample/${i}/` };
    ledger.claim({ id: item.id, scheduledAnalysisUrl: item.url, sampleUrl: item.sample }, now);
    ledger.update(item.id, { state: 'fetching' }, { type: 'bench-fill' }, now);
    ledger.update(item.id, { state: 'ingesting', sha256: 'a'.repeat(64), fileName: 'x.bin', fileSize: 1 }, { type: 'bench-fill' }, now);
    // A deadline hours away: no job is due for the reconciler while the cycles are timed.
    ledger.update(item.id, { state: 'waiting', ingestId: `benchIngest${i}`, deadline: now + 6 * 3_600_000, notBefore: now + 6 * 3_600_000 }, { type: 'bench-fill' }, now);
  }
}

/**
 * The worker's pick of due jobs (ledger.dueIds over the work states, DUE_PICK jobs) with `small` vs
 * `large` jobs due, each in its own ledger: median ms of 200 calls, the two alternating.
 */
function dueQueryCost(dir: string, small: number, large: number): { smallMs: number; largeMs: number } {
  const ledgers = [small, large].map((n, k) => {
    const ledger = openLedger(join(dir, `due-${k}.sqlite`));
    for (let i = 0; i < n; i++) {
      ledger.claim({ id: `due-${i}`, scheduledAnalysisUrl: `http://backlog.invalid/api/schedule_analysis/${i}/`, sampleUrl: `http://backlog.invalid/api/sample/${i}/` }, 1000 + i);
      if (i % 2 === 1) ledger.update(`due-${i}`, { state: 'fetching' }, { type: 'bench-fill' }, 1000 + i);
    }
    return ledger;
  });
  const states = WORK_STATES.filter((s) => s !== 'ingesting');
  const times: number[][] = [[], []];
  try {
    for (let c = 0; c < 220; c++) {
      for (let k = 0; k < 2; k++) {
        const t0 = performance.now();
        const picked = ledgers[k].dueIds(states, 10_000_000, DUE_PICK);
        const ms = performance.now() - t0;
        if (picked.length !== DUE_PICK) throw new Error(`the due query picked ${picked.length} jobs, expected ${DUE_PICK}`);
        if (c >= 20) times[k].push(ms);
      }
    }
  } finally {
    for (const l of ledgers) l.close();
  }
  return { smallMs: median(times[0]), largeMs: median(times[1]) };
}

interface Setup {
  /** One cycle: the time of each tick (ms). */
  cycle(): Promise<Record<Tick, number>>;
  /** No job moved and none was claimed. */
  unchanged(): boolean;
  close(): Promise<void>;
}

/** A bridge context (no loops running) on its own ledger holding `inFlight` waiting jobs. */
async function setUp(config: BridgeConfig, info: SimServerInfo, inFlight: number, dir: string): Promise<Setup> {
  const ledger = openLedger(join(dir, `ledger-${inFlight}.sqlite`));
  const mass = createMassClient(await massClientOptionsFromConfig(config));
  const pollClient = createMassClient({ ...(await massClientOptionsFromConfig(config)), connections: 1 });
  const al = createAssemblylineClient(await assemblylineClientOptionsFromConfig(config.assemblyline));
  const close = async (): Promise<void> => {
    await Promise.allSettled([mass.close(), pollClient.close(), al.close()]);
    ledger.close();
  };
  try {
    const listed = (await pollClient.poll(info.instanceUuid)).map((s) => ({ id: s.id, url: s.url, sample: s.sample }));
    if (listed.length !== LISTED) throw new Error(`MASS lists ${listed.length} scheduled analyses, expected ${LISTED}`);
    fillLedger(ledger, inFlight, listed, Date.now());
    const logger = silentLogger();
    const ctx = new BridgeContext({ config, mass, pollClient, assemblyline: al, ledger, logger }, new EventEmitter());
    // Loops that never run: a tick's wake() of another loop is a no-op here, every tick is called below.
    const idle = async (): Promise<void> => undefined;
    ctx.loops = { poller: new Loop('poller', () => 1e9, idle, logger), worker: new Loop('worker', () => 1e9, idle, logger), listener: new Loop('listener', () => 1e9, idle, logger), reconciler: new Loop('reconciler', () => 1e9, idle, logger) };
    // No lookup of every waiting job at start (that is a one-off after an uncertain read, not a poll cycle).
    ctx.queueReadUncertainAt = null;
    const ticks: Array<[Tick, () => Promise<void>]> = [
      ['poll', () => pollTick(ctx)],
      ['listen', () => listenTick(ctx)],
      ['work', () => workerTick(ctx)],
      ['reconcile', () => reconcileTick(ctx)],
    ];
    return {
      async cycle() {
        const times = {} as Record<Tick, number>;
        for (const [name, tick] of ticks) {
          const t = performance.now();
          await tick();
          times[name] = performance.now() - t;
        }
        return times;
      },
      unchanged: () => ledger.countByState().waiting === inFlight && ledger.inFlight() === inFlight,
      async close() {
        ctx.stopping = true;
        ctx.abort.abort();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function benchPollCost(say: Say): Promise<BenchOutcome> {
  const large = envInt('BENCH_POLL_BACKLOG', QUICK ? 2000 : 10_000);
  const cycles = envInt('BENCH_POLL_CYCLES', 60);
  say(`poll-cost: one poll cycle (MASS poll, queue read, worker tick; the reconciler tick apart) with ${SMALL} vs ${large} jobs in flight; MASS lists the same ${LISTED} claimed scheduled analyses, the queue is empty; median of ${cycles} cycles`);
  const sims = await startSimServer({ alDelayMs: 10 });
  const { info } = sims;
  // The ledger's commits are not part of a quiet cycle; a memory-backed directory makes filling the backlog fast.
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mass-al-bridge-bench-poll-'));
  try {
    for (let i = 0; i < LISTED; i++) await postJson(`${info.massOrigin}/_sim/samples`, { file_name: `poll-${i}.bin`, content_text: `poll cost sample ${i}\n` });
    const iniPath = join(dir, 'bench.ini');
    await writeFile(
      iniPath,
      renderSimulatorIni({
        massOrigin: info.massOrigin, instanceUuid: info.instanceUuid, instanceKey: info.instanceKey,
        alOrigin: info.alOrigin, alUser: info.alUser, alApiKey: info.alApiKey, stateDir: dir,
        // Every cycle reads the queue (the budget never defers a read).
        overrides: { Bridge: { QueueReadsPerMinute: 1_000_000, LogLevel: 'silent' }, API: { Listen: '127.0.0.1:0' } },
      }),
      { mode: 0o600 },
    );
    const { config } = loadConfig({ file: iniPath, env: {} });
    // The first poll puts the instance online; then MASS schedules the LISTED samples to it.
    const probe = createMassClient(await massClientOptionsFromConfig(config));
    await probe.poll(info.instanceUuid);
    await probe.close();
    await postJson(`${info.massOrigin}/_sim/scheduler/run`, {});

    // Both backlogs side by side, their cycles alternating, so that the machine's load hits both alike.
    const setups = [await setUp(config, info, SMALL, dir), await setUp(config, info, large, dir)];
    const results: Array<{ cycleMs: number; perTick: Record<Tick, number>; checked: boolean }> = [];
    try {
      const samples = setups.map(() => ({ poll: [] as number[], listen: [] as number[], work: [] as number[], reconcile: [] as number[], cycle: [] as number[] }));
      for (let c = 0; c < cycles + 5; c++) {
        for (let i = 0; i < setups.length; i++) {
          const t = await setups[i].cycle();
          if (c < 5) continue; // warm-up
          const s = samples[i];
          s.cycle.push(t.poll + t.listen + t.work);
          s.poll.push(t.poll);
          s.listen.push(t.listen);
          s.work.push(t.work);
          s.reconcile.push(t.reconcile);
        }
      }
      for (let i = 0; i < setups.length; i++) {
        const s = samples[i];
        results.push({
          cycleMs: median(s.cycle),
          perTick: { poll: median(s.poll), listen: median(s.listen), work: median(s.work), reconcile: median(s.reconcile) },
          checked: setups[i].unchanged(),
        });
      }
    } finally {
      for (const s of setups) await s.close();
    }
    const [small, big] = results;
    const due = dueQueryCost(dir, DUE_SMALL, large);
    const fmt = (r: typeof small) => `${fmtNum(r.cycleMs, 2)} ms (poll ${fmtNum(r.perTick.poll, 2)}, queue ${fmtNum(r.perTick.listen, 2)}, worker ${fmtNum(r.perTick.work, 2)}); reconciler tick ${fmtNum(r.perTick.reconcile, 2)} ms`;
    say(`poll-cost: ${String(SMALL).padStart(6)} jobs in flight: cycle ${fmt(small)}`);
    say(`poll-cost: ${String(large).padStart(6)} jobs in flight: cycle ${fmt(big)}`);
    const ratio = big.cycleMs / small.cycleMs;
    const ok = small.checked && big.checked;
    say(`poll-cost: check: no job moved and none was claimed during the cycles: ${ok ? 'OK' : 'FAILED'}`);
    return {
      ok,
      rows: [
        {
          bench: `poll-cost: one cycle, ${large} vs ${SMALL} in flight`,
          baseline: `${SMALL}: ${fmtNum(small.cycleMs, 2)} ms`,
          measured: `${large}: ${fmtNum(big.cycleMs, 2)} ms`,
          ratio: fmtRatio(ratio),
          target: `≤ ${fmtRatio(MAX_RATIO)}`,
          met: ratio <= MAX_RATIO,
        },
        {
          // The reconciler runs every min(30 s, ResultDeadline / 4), not every poll, but must not grow either.
          bench: `poll-cost: reconciler tick, ${large} vs ${SMALL} in flight`,
          baseline: `${SMALL}: ${fmtNum(small.perTick.reconcile, 2)} ms`,
          measured: `${large}: ${fmtNum(big.perTick.reconcile, 2)} ms`,
          ratio: fmtRatio(big.perTick.reconcile / small.perTick.reconcile),
          target: `≤ ${fmtRatio(MAX_RATIO)}`,
          met: big.perTick.reconcile / small.perTick.reconcile <= MAX_RATIO,
        },
        {
          // The worker's tick with a backlog of jobs DUE for work (e.g. MaxInFlight far above Concurrency): the query
          // that picks the next jobs.
          bench: `poll-cost: worker's due query, ${large} vs ${DUE_SMALL} due`,
          baseline: `${DUE_SMALL}: ${fmtNum(due.smallMs, 3)} ms`,
          measured: `${large}: ${fmtNum(due.largeMs, 3)} ms`,
          ratio: fmtRatio(due.largeMs / due.smallMs),
          target: `≤ ${fmtRatio(MAX_RATIO)}`,
          met: due.largeMs / due.smallMs <= MAX_RATIO,
        },
      ],
    };
  } finally {
    await sims.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
