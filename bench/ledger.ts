/**
 * Ledger: how many jobs per second the SQLite ledger alone sustains (WAL, synchronous FULL, temp file), with the
 * real per-job sequence of ledger writes of a file analysis (what the bridge writes between claim and `done`, in
 * order), `BENCH_LEDGER_CONCURRENCY` jobs at a time (default 8, the default Concurrency), and the upstream calls
 * of the pipeline modelled as calls that answer at once: each first waits for the ledger like the instrumented
 * clients do (no request while a write is uncommitted).
 *
 * Baseline: the same sequence on a ledger that commits every write at once (`commit: 'each'`, the ledger before
 * group commit). Measured: group commit (the default). Both runs check every job ended `done` with its full event
 * history and that no modelled request started while a write was uncommitted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger, type LedgerOptions } from '../src/ledger/sqlite.js';
import type { Ledger } from '../src/ledger/types.js';
import { envInt, fmtNum, fmtRatio, type BenchOutcome, type Say } from './lib.js';

/** Group commit must sustain at least this many times the baseline's jobs/s at the default concurrency. */
const MIN_SPEEDUP = 3;
/** Upstream requests of a job in this sequence: each one is a point where pending writes must be committed. */
const REQUESTS_PER_JOB = 5;

/**
 * …with at most one commit (fsync) per request boundary shared by the jobs running together: ⌈5 / concurrency⌉
 * commits per job (1 at the default 8; the baseline needs 11).
 */
function maxCommitsPerJob(concurrency: number): number {
  return Math.ceil(REQUESTS_PER_JOB / concurrency);
}

/** The events a job of this sequence ends with. */
const EVENTS = ['claimed', 'fetched', 'ingest-started', 'ingested', 'notified', 'collected', 'related', 'report-attempt', 'report-sent'];

interface Run {
  jobs: number;
  seconds: number;
  commits: number;
  /** Modelled upstream requests, and those that found a write uncommitted (must be 0). */
  calls: number;
  unflushedCalls: number;
  ok: boolean;
}

/**
 * One job, write for write as the bridge does it for a file sample (poller claim, fetch, ingest, listener, collect,
 * relate with nothing to relate, report). `call` stands for each upstream request between the writes.
 */
async function job(ledger: Ledger, i: number, call: () => Promise<void>): Promise<void> {
  const id = `sa-${i}`;
  const now = (): number => 1_700_000_000_000 + i;
  ledger.claim({ id, scheduledAnalysisUrl: `http://127.0.0.1/api/scheduled_analysis/${i}/`, sampleUrl: `http://127.0.0.1/api/sample/${i}/` }, now());
  await call(); // get_sample
  ledger.update(id, { state: 'ingesting', sha256: i.toString(16).padStart(64, '0'), fileName: `bench-${i}.bin`, fileSize: 1024, sampleCls: 'Sample.FileSample', stepFailures: 0 }, { type: 'fetched' }, now());
  ledger.update(id, { attempts: 1 }, { type: 'ingest-started', data: { attempt: 1, neverDrop: false, ignoreCache: false } }, now());
  await call(); // ingest
  ledger.update(id, { state: 'waiting', ingestId: `ing-${i}`, deadline: now() + 3_600_000, stepFailures: 0 }, { type: 'ingested', data: { ingestId: `ing-${i}` } }, now());
  await call(); // get_messages (one notification per read: the listener's worst case)
  const [stored] = ledger.storeMessages('mass-bridge', [{ ingest_id: `ing-${i}`, submission: { sid: `sid-${i}`, metadata: { bridge_job: id } }, failure: '' }], now());
  ledger.update(id, { state: 'collecting', sid: `sid-${i}`, alFailure: '', stepFailures: 0 }, { type: 'notified', data: { sid: `sid-${i}` } }, now());
  ledger.markMessageProcessed(stored.seq, id, now());
  await call(); // submission_full + summary
  ledger.update(id, { state: 'relating', score: 0, stepFailures: 0 }, { type: 'collected', data: { related: 0 } }, now());
  ledger.update(id, { state: 'reporting', stepFailures: 0 }, { type: 'related', data: { related: 0 } }, now());
  ledger.appendEvent(id, { type: 'report-attempt', data: { error: false } }, now());
  await call(); // submit_report
  ledger.update(id, { state: 'done', massReportUrl: `http://127.0.0.1/api/report/${i}/`, stepFailures: 0 }, { type: 'report-sent' }, now());
}

async function run(file: string, options: LedgerOptions, n: number, concurrency: number): Promise<Run> {
  const ledger = openLedger(file, options);
  let calls = 0;
  let unflushedCalls = 0;
  // What bridge/instrument.ts does before every request, then an answer on the next turn of the event loop.
  const call = async (): Promise<void> => {
    while (ledger.pending() > 0) await ledger.flush();
    calls++;
    if (ledger.pending() !== 0) unflushedCalls++;
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await job(ledger, next++, call);
    }),
  );
  await ledger.flush();
  const seconds = (performance.now() - started) / 1000;
  const commits = ledger.commits();
  const counts = ledger.countByState();
  const sample = [0, Math.floor(n / 2), n - 1].map((i) => ledger.events(`sa-${i}`).map((e) => e.type).join(','));
  ledger.close();
  const ok = counts.done === n && sample.every((s) => s === EVENTS.join(',')) && unflushedCalls === 0;
  return { jobs: n, seconds, commits, calls, unflushedCalls, ok };
}

/** Baseline and group commit run in this many alternating rounds of N / ROUNDS jobs each. */
const ROUNDS = 4;

function total(runs: Run[]): Run {
  return runs.reduce((a, r) => ({
    jobs: a.jobs + r.jobs,
    seconds: a.seconds + r.seconds,
    commits: a.commits + r.commits,
    calls: a.calls + r.calls,
    unflushedCalls: a.unflushedCalls + r.unflushedCalls,
    ok: a.ok && r.ok,
  }));
}

export async function benchLedger(say: Say): Promise<BenchOutcome> {
  const n = envInt('BENCH_LEDGER_N', 1000);
  const concurrency = envInt('BENCH_LEDGER_CONCURRENCY', 8);
  const dir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-bench-ledger-'));
  try {
    // Alternating rounds, so that a change in the disk's load (other processes' fsyncs) hits both sides alike.
    const rounds: Record<'each' | 'group' | 'alone', Run[]> = { each: [], group: [], alone: [] };
    const per = Math.max(1, Math.floor(n / ROUNDS));
    for (let r = 0; r < ROUNDS; r++) {
      rounds.each.push(await run(join(dir, `each-${r}.sqlite`), { commit: 'each' }, per, concurrency));
      rounds.group.push(await run(join(dir, `group-${r}.sqlite`), { commit: 'group' }, per, concurrency));
      // For the record: group commit with one job at a time (an idle bridge) shares nothing.
      rounds.alone.push(await run(join(dir, `alone-${r}.sqlite`), { commit: 'group' }, Math.min(per, 50), 1));
    }
    const each = total(rounds.each);
    const group = total(rounds.group);
    const alone = total(rounds.alone);
    const rate = (r: Run): number => r.jobs / r.seconds;
    const perJob = (r: Run): number => r.commits / r.jobs;
    const speedup = rate(group) / rate(each);
    say(`ledger: ${each.jobs} jobs per side in ${ROUNDS} alternating rounds, of ${EVENTS.length} events (11 writes, ${REQUESTS_PER_JOB} modelled upstream requests each), ${concurrency} at a time, temp files, WAL, synchronous FULL`);
    for (const [name, r] of [['commit each write (baseline)', each], ['group commit', group], ['group commit, 1 at a time', alone]] as const) {
      say(`ledger: ${name.padEnd(28)} ${fmtNum(rate(r), 0).padStart(7)} jobs/s, ${fmtNum(perJob(r), 2)} commits/job, ${fmtNum((r.seconds / r.jobs) * 1e6, 0)} µs/job; requests with a write uncommitted: ${r.unflushedCalls} of ${r.calls}`);
    }
    say(`ledger: group commit sustains ${fmtRatio(speedup)} the baseline's jobs/s with ${fmtRatio(perJob(group) / perJob(each))} its commits per job`);
    const ok = each.ok && group.ok && alone.ok;
    say(`ledger: check: every job done with its ${EVENTS.length} events, no request with a write uncommitted: ${ok ? 'OK' : 'FAILED'}`);
    return {
      ok,
      rows: [
        {
          bench: `ledger: ${each.jobs} jobs, ${concurrency} at a time`,
          baseline: `commit each ${fmtNum(rate(each), 0)} jobs/s`,
          measured: `group ${fmtNum(rate(group), 0)} jobs/s`,
          ratio: fmtRatio(speedup),
          target: `≥ ${fmtRatio(MIN_SPEEDUP)}`,
          met: speedup >= MIN_SPEEDUP,
        },
        {
          bench: `ledger: commits per job, ${concurrency} at a time`,
          baseline: `commit each ${fmtNum(perJob(each), 2)}`,
          measured: `group ${fmtNum(perJob(group), 2)}`,
          ratio: fmtRatio(perJob(group) / perJob(each)),
          target: `≤ ${maxCommitsPerJob(concurrency)} commits`,
          met: perJob(group) <= maxCommitsPerJob(concurrency),
        },
      ],
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
