/**
 * History: what the bridge reads from its ledger on every request and tick, with a year of finished jobs behind it vs
 * a ledger on its first day. Both ledgers hold the same jobs of the last day (finished ones and jobs in flight); the
 * long one has `BENCH_HISTORY_JOBS` more finished jobs spread over the year before, each with the rows the bridge
 * writes for a job (its events, its notification, related samples, relations and own samples for every third one).
 * The history is written with SQL in the bridge's row shapes (writing it through the ledger would take minutes);
 * the last day and the jobs in flight go through the ledger. Timed, each the median of many calls alternating
 * between the two ledgers:
 *
 * - a scrape and a status call: the counts, the oldest jobs (in flight, per state), the jobs finished in the last
 *   hour, the size (what GET /metrics and GET /api/v1/status read);
 * - the status page's three job lists (failed and held; done; unfinished);
 * - the reconciler's ledger work: the hourly prune with nothing left to delete, its due waiting jobs, and the list of
 *   waiting jobs it reads after an uncertain queue read and at start;
 * - a page of done jobs from a cursor: 11 months back in the long ledger, half-way back in the fresh one.
 *
 * Target: each ≤ MAX_RATIO × the fresh ledger's.
 */
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger } from '../src/ledger/sqlite.js';
import type { JobState, Ledger } from '../src/ledger/types.js';
import { QUICK, envInt, fmtNum, fmtRatio, median, type BenchOutcome, type Say } from './lib.js';

/** The long ledger's cost may be at most this many times the fresh one's. */
const MAX_RATIO = 2;
const DAY = 86_400_000;
const NOW = Date.parse('2026-12-01T00:00:00Z');
/** Jobs of the last day (finished), in both ledgers. */
const LAST_DAY = 1000;
/** Jobs in flight, in both ledgers (most of them waiting, as in a busy bridge). */
const IN_FLIGHT: Array<[JobState, number]> = [['claimed', 10], ['fetching', 5], ['ingesting', 10], ['waiting', 150], ['collecting', 5], ['relating', 5], ['reporting', 5], ['held', 10]];
/** How the walk of the ledger API reaches each unfinished state. */
const PATH: Record<string, JobState[]> = {
  claimed: [], fetching: ['fetching'], ingesting: ['ingesting'], waiting: ['ingesting', 'waiting'], collecting: ['ingesting', 'waiting', 'collecting'],
  relating: ['ingesting', 'waiting', 'collecting', 'relating'], reporting: ['ingesting', 'waiting', 'collecting', 'relating', 'reporting'],
  held: ['ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'held'],
};

/** A MASS-like id (an ObjectId: seconds, then a counter), so that ids sort by creation as MASS's do. */
function objectId(t: number, i: number): string {
  return Math.floor(t / 1000).toString(16).padStart(8, '0') + i.toString(16).padStart(16, '0');
}

function sha256Of(i: number): string {
  return (i.toString(16).padStart(16, '0') + 'b1').repeat(4).slice(0, 64);
}

/** Writes `n` finished jobs created evenly over [from, to), every 50th failed, with the rows the bridge writes for each. */
function writeFinished(file: string, n: number, from: number, to: number, first: number): void {
  const db = new Database(file);
  try {
    const job = db.prepare(`INSERT INTO jobs (id, scheduled_analysis_url, sample_url, state, sha256, file_name, file_size, sample_cls, attempts, ingest_id, sid,
      score, error_code, error_message, mass_report_url, not_before, deadline, created_at, updated_at, finished_at, state_since, identity)
      VALUES (?, ?, ?, ?, ?, ?, 1234, 'Sample.FileSample', 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'default')`);
    const event = db.prepare('INSERT INTO job_events (job_id, at, type, state, data) VALUES (?, ?, ?, ?, ?)');
    const message = db.prepare('INSERT INTO messages (queue, ingest_id, received_at, body, job_id, processed_at) VALUES (?, ?, ?, ?, ?, ?)');
    const related = db.prepare('INSERT INTO related_samples (job_id, key, kind, value, mass_sample_url, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const relation = db.prepare('INSERT INTO relations (job_id, key, kind, sample_url, other_url, mass_relation_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const own = db.prepare('INSERT OR IGNORE INTO own_samples (sha256, job_id, sid, parent_sha256, mass_sample_url, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const events: Array<[string, JobState]> = [['claimed', 'claimed'], ['fetched', 'ingesting'], ['ingest-started', 'ingesting'], ['ingested', 'waiting'], ['notified', 'collecting'], ['collected', 'relating'], ['related', 'reporting'], ['report-attempt', 'reporting'], ['report-sent', 'done']];
    const step = (to - from) / n;
    const batch = db.transaction((a: number, b: number) => {
      for (let k = a; k < b; k++) {
        const i = first + k;
        const created = Math.floor(from + k * step);
        const finished = created + 60_000;
        const id = objectId(created, i);
        const state = i % 50 === 0 ? 'failed' : 'done';
        const sha = sha256Of(i);
        const ingestId = `ing${i}`;
        const sid = `sid${i}`;
        job.run(id, `http://mass.invalid/api/scheduled_analysis/${id}/`, `http://mass.invalid/api/sample/s${i}/`, state, sha, `sample-${i}.exe`, ingestId, sid,
          state === 'done' ? i % 1000 : null, state === 'failed' ? 'AL_FAILURE' : null, state === 'failed' ? 'all services failed' : null,
          `http://mass.invalid/api/report/${i}/`, created, created + 3_600_000, created, finished, finished, finished);
        events.forEach(([type, s], e) => event.run(id, created + e * 5000, type, state === 'failed' && s === 'done' ? 'failed' : s, JSON.stringify({ ingestId, sid })));
        message.run('mass-bridge', ingestId, finished - 40_000, JSON.stringify({ ingest_id: ingestId, submission: { sid, metadata: { bridge_job: id } }, failure: '' }), id, finished - 39_000);
        if (i % 3 === 0) {
          const child = sha256Of(i + 1_000_000_000);
          const url = `http://mass.invalid/api/sample/c${i}/`;
          related.run(id, `file:${child}`, 'file', child, url, finished - 20_000);
          own.run(child, id, sid, sha, url, finished - 20_000);
          relation.run(id, `dropped-by:${child}:${sha}`, 'dropped-by', url, `http://mass.invalid/api/sample/s${i}/`, `http://mass.invalid/api/relation/${i}/`, finished - 15_000);
        }
      }
    });
    for (let a = 0; a < n; a += 10_000) batch(a, Math.min(n, a + 10_000));
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** The jobs in flight, through the ledger as the bridge writes them. */
function writeInFlight(ledger: Ledger): void {
  let k = 0;
  for (const [state, count] of IN_FLIGHT) {
    for (let j = 0; j < count; j++, k++) {
      const t = NOW - 3_000_000 + k * 1000;
      const id = objectId(t, 2_000_000_000 + k);
      ledger.claim({ id, scheduledAnalysisUrl: `http://mass.invalid/api/scheduled_analysis/${id}/`, sampleUrl: `http://mass.invalid/api/sample/f${k}/` }, t);
      for (const s of PATH[state]) {
        const patch: Record<string, unknown> = { state: s };
        if (s === 'ingesting') Object.assign(patch, { sha256: sha256Of(3_000_000_000 + k), fileName: 'f.bin', fileSize: 1 });
        if (s === 'waiting') Object.assign(patch, { ingestId: `flight${k}`, deadline: NOW + 6 * 3_600_000, notBefore: NOW + 6 * 3_600_000 });
        ledger.update(id, patch, { type: s }, t + 1);
      }
    }
  }
}

type Probe = 'status' | 'page' | 'reconciler' | 'deep';

/** One call of each probe on `ledger`; `deepCursor`: where the deep page starts. */
function probes(ledger: Ledger, deepCursor: string): Record<Probe, () => number> {
  // Each returns a number of rows, so that a probe that read nothing (a broken fill) shows in the check.
  return {
    status: () => {
      const counts = ledger.countByState();
      ledger.inFlight();
      ledger.inFlightByIdentity();
      ledger.sizeBytes();
      const oldest = ledger.oldestInFlightCreatedAt();
      return Object.keys(counts).length + ledger.oldestPerState().length + ledger.finishedSince(NOW - 3_600_000).length + (oldest === null ? 0 : 1);
    },
    page: () =>
      ledger.list({ states: ['failed', 'held'], limit: 10 }).jobs.length +
      ledger.list({ states: ['done'], limit: 10 }).jobs.length +
      ledger.list({ states: ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'held'], limit: 20 }).jobs.length,
    reconciler: () => {
      const pruned = ledger.prune(NOW - 90 * DAY);
      return pruned.events + pruned.messages + ledger.due(['waiting'], NOW, 50).length + ledger.list({ states: ['waiting'], limit: 500 }).jobs.length;
    },
    deep: () => ledger.list({ states: ['done'], limit: 50, cursor: deepCursor }).jobs.length,
  };
}

export async function benchHistory(say: Say): Promise<BenchOutcome> {
  const history = envInt('BENCH_HISTORY_JOBS', QUICK ? 20_000 : 200_000);
  const reps = envInt('BENCH_HISTORY_REPS', 200);
  say(`history: the ledger reads of every scrape, status call, status page, reconciler tick and a deep page of done jobs, with ${history} finished jobs over the past year vs none; both with ${LAST_DAY} jobs finished in the last day and ${IN_FLIGHT.reduce((n, [, c]) => n + c, 0)} in flight; median of ${reps} calls each`);
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'mass-al-bridge-bench-history-'));
  const ledgers: Ledger[] = [];
  try {
    const t0 = performance.now();
    const files = ['fresh', 'long'].map((name) => join(dir, `${name}.sqlite`));
    for (const [k, file] of files.entries()) {
      openLedger(file).close();
      if (k === 1) writeFinished(file, history, NOW - 365 * DAY, NOW - DAY, 0);
      writeFinished(file, LAST_DAY, NOW - DAY, NOW - 60_000, history);
      const ledger = openLedger(file);
      writeInFlight(ledger);
      await ledger.flush();
      ledgers.push(ledger);
    }
    say(`history: ledgers written in ${fmtNum((performance.now() - t0) / 1000, 1)} s`);
    // The deep page: in the long ledger 11 months back, in the fresh one half-way through its day.
    const cursors = [NOW - DAY / 2, NOW - 330 * DAY].map((to, k) => ledgers[k].list({ states: ['done'], to, limit: 1 }).nextCursor ?? '');
    // Each ledger's first prune deletes the history older than RetainDays (in the long one, 9 months of it); what
    // is timed is the hourly prune after it.
    for (const l of ledgers) l.prune(NOW - 90 * DAY);
    const calls = ledgers.map((l, k) => probes(l, cursors[k]));
    const names: Probe[] = ['status', 'page', 'reconciler', 'deep'];
    const times = ledgers.map(() => Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Probe, number[]>);
    const rows = ledgers.map(() => ({}) as Record<Probe, number>);
    for (let r = 0; r < reps + 10; r++) {
      for (const name of names) {
        for (let k = 0; k < ledgers.length; k++) {
          const t = performance.now();
          rows[k][name] = calls[k][name]();
          const ms = performance.now() - t;
          if (r >= 10) times[k][name].push(ms);
        }
      }
    }
    // Both ledgers answer with as many rows (the history adds none to any of these answers), and every list is full.
    const same = names.every((n) => rows[0][n] === rows[1][n]);
    const full = rows[1].page === 40 && rows[1].deep === 50 && rows[1].reconciler === 150;
    const ok = same && full && !cursors.includes('');
    say(`history: check: both ledgers return the same number of rows (${names.map((n) => `${n} ${rows[0][n]}/${rows[1][n]}`).join(', ')}) and every page is full: ${ok ? 'OK' : 'FAILED'}`);
    const what: Record<Probe, string> = {
      status: 'a scrape / status call',
      page: "the status page's job lists",
      reconciler: "the reconciler's prune, due and waiting list",
      deep: 'a page of done jobs 11 months back',
    };
    const out = names.map((name) => {
      const fresh = median(times[0][name]);
      const long = median(times[1][name]);
      const ratio = long / fresh;
      say(`history: ${what[name].padEnd(45)} fresh ${fmtNum(fresh, 3)} ms, with ${history} finished ${fmtNum(long, 3)} ms (${fmtRatio(ratio)})`);
      return {
        bench: `history: ${what[name]}, ${history} finished vs none`,
        baseline: `fresh: ${fmtNum(fresh, 3)} ms`,
        measured: `long: ${fmtNum(long, 3)} ms`,
        ratio: fmtRatio(ratio),
        target: `≤ ${fmtRatio(MAX_RATIO)}`,
        met: ratio <= MAX_RATIO,
      };
    });
    return { ok, rows: out };
  } finally {
    for (const l of ledgers) l.close();
    await rm(dir, { recursive: true, force: true });
  }
}
