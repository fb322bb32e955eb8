/**
 * The SQLite adapter of the Ledger port (better-sqlite3, synchronous, one connection per process).
 * WAL. Group commit: writes go into one open transaction that `flush()` commits and then makes durable with an
 * fsync of the WAL file run on libuv's thread pool (synchronous=NORMAL, so the COMMIT itself does not wait for
 * the disk, except one that runs SQLite's automatic checkpoint, and the event loop goes on while the disk
 * writes); the bridge flushes before every upstream call
 * (bridge/instrument.ts), so every write is on disk before the side effect that depends on it (see
 * docs/design.md §9 "Group commit"). `each` commits every write with synchronous=FULL.
 */
import Database from 'better-sqlite3';
import { closeSync, fsync, fsyncSync, openSync, statSync } from 'node:fs';
import { assertTransition, canTransition } from '../bridge/states.js';
import { BridgeError } from '../errors.js';
import { countWriteErrors } from './write-errors.js';
import {
  JOB_STATES,
  TERMINAL_STATES,
  type Job,
  type JobEvent,
  type JobPage,
  type JobPatch,
  type JobQuery,
  type JobState,
  type Ledger,
  type NewEvent,
  type RelatedSampleRecord,
  type RelationRecord,
  type StoredMessage,
} from './types.js';

interface RelationRow {
  job_id: string;
  key: string;
  kind: string;
  sample_url: string;
  other_url: string;
  mass_relation_url: string;
  created_at: number;
}

interface MessageRow {
  seq: number;
  queue: string;
  ingest_id: string;
  received_at: number;
  body: string;
  job_id: string | null;
  processed_at: number | null;
}

function relationRecord(r: RelationRow): RelationRecord {
  return {
    jobId: r.job_id,
    key: r.key,
    kind: r.kind,
    sampleUrl: r.sample_url,
    otherUrl: r.other_url,
    massRelationUrl: r.mass_relation_url,
    createdAt: r.created_at,
  };
}

/** Each entry migrates from user_version = index to index + 1. Append only; never edit a shipped step. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    scheduled_analysis_url TEXT NOT NULL,
    sample_url TEXT NOT NULL,
    state TEXT NOT NULL,
    sha256 TEXT,
    file_name TEXT,
    file_size INTEGER,
    sample_cls TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    ingest_id TEXT,
    sid TEXT,
    cache_hit INTEGER NOT NULL DEFAULT 0,
    score INTEGER,
    al_failure TEXT,
    error_code TEXT,
    error_message TEXT,
    last_error TEXT,
    last_error_code TEXT,
    mass_report_url TEXT,
    not_before INTEGER NOT NULL DEFAULT 0,
    deadline INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    ignore_cache INTEGER NOT NULL DEFAULT 0,
    never_drop INTEGER NOT NULL DEFAULT 0,
    step_failures INTEGER NOT NULL DEFAULT 0,
    echo_of TEXT
  );
  CREATE INDEX jobs_state_not_before ON jobs(state, not_before);
  CREATE INDEX jobs_ingest_id ON jobs(ingest_id);
  CREATE INDEX jobs_sha256 ON jobs(sha256);
  CREATE INDEX jobs_created_at ON jobs(created_at, id);
  CREATE INDEX jobs_finished_at ON jobs(finished_at);

  CREATE TABLE job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    code TEXT,
    data TEXT
  );
  CREATE INDEX job_events_job ON job_events(job_id, seq);
  -- append-only: the history is evidence, never rewritten
  CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
  CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;

  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    ingest_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    job_id TEXT,
    processed_at INTEGER
  );
  CREATE INDEX messages_ingest_id ON messages(ingest_id);
  CREATE INDEX messages_unprocessed ON messages(seq) WHERE processed_at IS NULL;

  CREATE TABLE related_samples (
    job_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    mass_sample_url TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
  );

  CREATE TABLE relations (
    job_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    sample_url TEXT NOT NULL,
    other_url TEXT NOT NULL,
    mass_relation_url TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
  );

  CREATE TABLE own_samples (
    sha256 TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    parent_sha256 TEXT NOT NULL,
    mass_sample_url TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  // v2: relations are looked up by their endpoints across jobs (MASS does not deduplicate relations).
  `
  CREATE INDEX relations_endpoints ON relations(kind, sample_url, other_url);
  `,
  // v3: retention. The history of a finished job may be deleted (prune); any other deletion stays refused.
  `
  DROP TRIGGER job_events_no_delete;
  CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
    WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = OLD.job_id AND jobs.state IN ('done', 'failed'))
    BEGIN SELECT RAISE(ABORT, 'job_events is append-only while its job is unfinished'); END;
  CREATE INDEX messages_processed_at ON messages(processed_at) WHERE processed_at IS NOT NULL;
  `,
  // v4: when the job entered its current state (budgets by age, the oldest job per state in the status API).
  `
  ALTER TABLE jobs ADD COLUMN state_since INTEGER;
  UPDATE jobs SET state_since = updated_at;
  CREATE INDEX jobs_state_since ON jobs(state, state_since);
  `,
  // v5: the identity (instance of the analysis system) whose poll claimed the job. Earlier jobs were claimed by the
  // only identity there was, the first one, named 'default'.
  `
  ALTER TABLE jobs ADD COLUMN identity TEXT;
  UPDATE jobs SET identity = 'default';
  `,
  // v6: the worker's due jobs come from this index in its order, LIMIT rows per state, instead of sorting every
  // due job on each tick (2 ms a tick with 10 000 due jobs). It replaces (state, not_before), its prefix.
  `
  CREATE INDEX jobs_due ON jobs(state, not_before, created_at, id);
  DROP INDEX jobs_state_not_before;
  `,
  // v7: the number of jobs per state and identity, kept by triggers in the same transaction as every change of a
  // job's state or identity: in-flight and per-state counts read a few rows instead of counting every job (the
  // poller asks before each claim). A later migration that rebuilds the jobs table must recreate these triggers.
  `
  CREATE TABLE job_counts (
    state TEXT NOT NULL,
    identity TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (state, identity)
  ) WITHOUT ROWID;
  INSERT INTO job_counts (state, identity, n) SELECT state, COALESCE(identity, 'default'), COUNT(*) FROM jobs GROUP BY 1, 2;
  CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (state, identity, n) VALUES (NEW.state, COALESCE(NEW.identity, 'default'), 1)
      ON CONFLICT (state, identity) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = OLD.state AND identity = COALESCE(OLD.identity, 'default');
  END;
  CREATE TRIGGER jobs_count_update AFTER UPDATE OF state, identity ON jobs
    WHEN OLD.state IS NOT NEW.state OR COALESCE(OLD.identity, 'default') IS NOT COALESCE(NEW.identity, 'default') BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = OLD.state AND identity = COALESCE(OLD.identity, 'default');
    INSERT INTO job_counts (state, identity, n) VALUES (NEW.state, COALESCE(NEW.identity, 'default'), 1)
      ON CONFLICT (state, identity) DO UPDATE SET n = n + 1;
  END;
  `,
  // v8: a long history of finished jobs must not slow what runs on every request or tick. A job list filtered by
  // state reads one range of (state, created_at, id) per state, newest first, cut at the page size, instead of
  // sorting every job of the state (a page of `done` jobs took 0.7 s with 500 000 of them); it also gives the oldest
  // job in flight with one seek per state. `ledger_marks` holds named numbers the ledger keeps for itself: 'pruned'
  // is the finished_at below which prune() has already deleted every finished job's history, so that the hourly
  // prune reads only the jobs finished since its last run instead of every job it ever pruned.
  `
  CREATE INDEX jobs_state_created ON jobs(state, created_at, id);
  CREATE TABLE ledger_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  `,
];

/**
 * The due jobs of `states` states, at most `limit` (parameters: state and now for each state): one index range of
 * jobs_due (migration v6) per state, each in index order and cut at the limit, then merged. A single
 * `state IN (…)` query would sort every due job of those states on each call. `ids`: only the ids, read from the
 * index alone. The limit is part of the SQL, not a parameter: SQLite (with STAT4, as better-sqlite3 builds it)
 * re-plans a statement each time a LIMIT parameter is bound, which cost more than the query itself.
 */
export function dueSql(states: number, what: 'jobs' | 'ids', limit: number): string {
  const order = 'ORDER BY not_before, created_at, id';
  const n = Math.max(0, Math.floor(limit));
  if (states === 1) return `SELECT ${what === 'ids' ? 'id' : JOB_SELECT} FROM jobs WHERE state = ? AND not_before <= ? ${order} LIMIT ${n}`;
  const cols = what === 'ids' ? 'id, not_before, created_at' : JOB_SELECT;
  const range = `SELECT ${cols} FROM jobs WHERE state = ? AND not_before <= ? ${order} LIMIT ${n}`;
  const merged = Array.from({ length: states }, () => `SELECT * FROM (${range})`).join(' UNION ALL ');
  return `SELECT ${what === 'ids' ? 'id' : JOB_SELECT} FROM (${merged}) ${order} LIMIT ${n}`;
}

/**
 * The limit written into a due query: the next power of two (the rows beyond `limit` are dropped), so that the
 * statements prepared for the limits callers ask stay few.
 */
function dueLimit(limit: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, limit)));
}

/** The columns of a job row, in the order the statements below read them (arrays, not objects: half the cost). */
const JOB_COLUMNS = [
  'id', 'scheduled_analysis_url', 'sample_url', 'state', 'sha256', 'file_name', 'file_size', 'sample_cls', 'attempts', 'ingest_id',
  'sid', 'cache_hit', 'score', 'al_failure', 'error_code', 'error_message', 'last_error', 'last_error_code', 'mass_report_url',
  'not_before', 'deadline', 'created_at', 'updated_at', 'finished_at', 'ignore_cache', 'never_drop', 'step_failures', 'echo_of',
  'state_since', 'identity',
] as const;

/** The select list of a job row (JOB_COLUMNS). */
const JOB_SELECT = JOB_COLUMNS.join(', ');

/** A job row as better-sqlite3 returns it in raw mode: the values of JOB_COLUMNS in that order. */
type JobRow = unknown[];

/** Job field → column, for patches. Booleans are stored as 0/1. */
const COLUMNS: Record<keyof JobPatch, string> = {
  scheduledAnalysisUrl: 'scheduled_analysis_url',
  sampleUrl: 'sample_url',
  state: 'state',
  sha256: 'sha256',
  fileName: 'file_name',
  fileSize: 'file_size',
  sampleCls: 'sample_cls',
  attempts: 'attempts',
  ingestId: 'ingest_id',
  sid: 'sid',
  cacheHit: 'cache_hit',
  score: 'score',
  alFailure: 'al_failure',
  errorCode: 'error_code',
  errorMessage: 'error_message',
  lastError: 'last_error',
  lastErrorCode: 'last_error_code',
  massReportUrl: 'mass_report_url',
  notBefore: 'not_before',
  deadline: 'deadline',
  updatedAt: 'updated_at',
  finishedAt: 'finished_at',
  ignoreCache: 'ignore_cache',
  neverDrop: 'never_drop',
  stepFailures: 'step_failures',
  echoOf: 'echo_of',
  stateSince: 'state_since',
  identity: 'identity',
};

/** The asked states that can be due: non-terminal, each once. */
function dueStates(states: readonly JobState[]): JobState[] {
  return [...new Set(states.filter((s) => !TERMINAL_STATES.includes(s)))];
}

function dueParams(states: readonly string[], now: number): unknown[] {
  const params: unknown[] = [];
  for (const state of states) params.push(state, now);
  return params;
}

/** A Job from a raw row of JOB_SELECT: index i is the i-th column of JOB_COLUMNS, in that list's order. */
function rowToJob(r: JobRow): Job {
  const updatedAt = r[22] as number;
  return {
    id: r[0] as string,
    scheduledAnalysisUrl: r[1] as string,
    sampleUrl: r[2] as string,
    state: r[3] as JobState,
    sha256: r[4] as string | null,
    fileName: r[5] as string | null,
    fileSize: r[6] as number | null,
    sampleCls: r[7] as string | null,
    attempts: r[8] as number,
    ingestId: r[9] as string | null,
    sid: r[10] as string | null,
    cacheHit: r[11] === 1,
    score: r[12] as number | null,
    alFailure: r[13] as string | null,
    errorCode: r[14] as string | null,
    errorMessage: r[15] as string | null,
    lastError: r[16] as string | null,
    lastErrorCode: r[17] as string | null,
    massReportUrl: r[18] as string | null,
    notBefore: r[19] as number,
    deadline: r[20] as number | null,
    createdAt: r[21] as number,
    updatedAt,
    finishedAt: r[23] as number | null,
    ignoreCache: r[24] === 1,
    neverDrop: r[25] === 1,
    stepFailures: r[26] as number,
    echoOf: r[27] as string | null,
    stateSince: (r[28] as number | null) ?? updatedAt,
    identity: r[29] as string | null,
  };
}

function toSql(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return null;
  return value;
}

function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {}
  throw new BridgeError('CONFIG_INVALID', 'invalid cursor');
}

const TERMINAL_SQL = TERMINAL_STATES.map((s) => `'${s}'`).join(',');

/** How the SQLite ledger commits its writes. */
export interface LedgerOptions {
  /**
   * `group` (default): writes join one open transaction; `flush()` commits it, and so do a timer and `close()`.
   * `each`: every write is its own synchronous commit (the behaviour before group commit; the benchmark's baseline).
   */
  commit?: 'group' | 'each';
  /** `group` only: the longest (ms) a write stays uncommitted when nobody calls `flush()`. Default 50. */
  flushAfterMs?: number;
  /** `group` only, for tests: replaces `fs.fsync` for the WAL file (same signature). */
  fsync?: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void;
  /**
   * `group` only: called once, with the `LEDGER` error, when an fsync of the WAL file fails (or the WAL file cannot
   * be opened for it). From then on every flush rejects with that error and the ledger can make nothing durable
   * again: the process has to stop, and a restart reads what is on disk.
   */
  onSyncFailure?: (err: BridgeError) => void;
}

/**
 * The most finished jobs whose history one `prune()` deletes (and ten times as many processed notifications): at most
 * about 80 ms of work (2-core machine), so that a first prune of a long history (after an upgrade, or RetainDays
 * lowered) runs as many short writes instead of one that holds the event loop for seconds and grows the WAL by
 * everything it deletes.
 */
export const PRUNE_BATCH = 2000;

/** Default `LedgerOptions.flushAfterMs`: bounds how stale another process's view (or a crash's loss of idle writes) can be. */
export const DEFAULT_FLUSH_AFTER_MS = 50;

/**
 * Opens (creating or migrating) the ledger file at `path`. Throws BridgeError `LEDGER` for a file that cannot be
 * opened, fails its integrity check or has a newer schema.
 */
export function openLedger(path: string | ':memory:', options: LedgerOptions = {}): Ledger {
  const groupCommit = (options.commit ?? 'group') === 'group';
  const flushAfterMs = options.flushAfterMs ?? DEFAULT_FLUSH_AFTER_MS;
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new BridgeError('LEDGER', `cannot open ledger ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Waits up to 5 s for a lock held by another connection (an operator's sqlite3 shell, a backup) instead of failing at once.
    db.pragma('busy_timeout = 5000');
    const journal = db.pragma('journal_mode = WAL', { simple: true }) as string;
    // A claim, an ingest_id or a sent-report mark must survive power loss, not only a process crash. FULL: each
    // COMMIT waits for the disk. With group commit on a WAL file, NORMAL: the COMMIT only writes, and flush()
    // fsyncs the WAL file itself before it resolves (the same fsync FULL does, off the event loop).
    db.pragma(groupCommit && journal.toLowerCase() === 'wal' ? 'synchronous = NORMAL' : 'synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Every write is a savepoint in the open group transaction, and SQLite keeps the pages a savepoint changes in
    // a sub-journal to roll it back: in memory, not in a temporary file written on every write. (Only rollbacks of
    // uncommitted writes use it; nothing durable lives there.)
    db.pragma('temp_store = MEMORY');
    // A damaged file is refused at start with a clear message, not discovered by a failing write mid-job.
    const check = db.pragma('quick_check(1)', { simple: true }) as string;
    if (check !== 'ok') throw new BridgeError('LEDGER', `ledger ${path} failed its integrity check: ${check}`);
    migrate(db);
  } catch (err) {
    db.close();
    if (err instanceof BridgeError) throw err;
    throw new BridgeError('LEDGER', `cannot use ledger ${path}: ${(err as Error).message} (restore it from a backup or move it away)`, { cause: err });
  }

  const st = {
    insertJob: db.prepare(
      `INSERT INTO jobs (id, scheduled_analysis_url, sample_url, state, created_at, updated_at, not_before, state_since, identity)
       VALUES (?, ?, ?, 'claimed', ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
    ),
    // Per unfinished state, one seek of jobs_state_since, not a pass over every unfinished job: a MIN() over
    // COALESCE(state_since, updated_at) could not use the index (1.7 ms with 10 000 jobs waiting, on each reconciler
    // tick and each scrape). The bridge always sets state_since (migration v4 filled it); a row added by hand
    // without it counts from its updated_at, as before (the index range of NULLs, empty in practice).
    oldestPerState: db.prepare<[], { state: string; id: string; since: number }>(
      JOB_STATES.filter((s) => !TERMINAL_STATES.includes(s))
        .map(
          (s) =>
            `SELECT * FROM (SELECT * FROM (SELECT state, id, state_since AS since FROM jobs WHERE state = '${s}' AND state_since IS NOT NULL ORDER BY state_since LIMIT 1)` +
            ` UNION ALL SELECT * FROM (SELECT state, id, updated_at AS since FROM jobs WHERE state = '${s}' AND state_since IS NULL ORDER BY updated_at LIMIT 1) ORDER BY since LIMIT 1)`,
        )
        .join(' UNION ALL '),
    ),
    hasJob: db.prepare<[string], number>('SELECT 1 FROM jobs WHERE id = ?').pluck(),
    getJob: db.prepare<[string], JobRow>(`SELECT ${JOB_SELECT} FROM jobs WHERE id = ?`).raw(),
    // What a write checks before it changes a job: its state and whether it has finished.
    jobState: db.prepare<[string], [string, number | null]>('SELECT state, finished_at FROM jobs WHERE id = ?').raw(),
    insertEvent: db.prepare(
      'INSERT INTO job_events (job_id, at, type, state, message, code, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    // Rows as arrays, in this column order (see rowToJob).
    events: db
      .prepare<[string], [number, string, number, string, string, string | null, string | null, string | null]>(
        'SELECT seq, job_id, at, type, state, message, code, data FROM job_events WHERE job_id = ? ORDER BY seq',
      )
      .raw(),
    byIngestId: db.prepare<[string], JobRow>(`SELECT ${JOB_SELECT} FROM jobs WHERE ingest_id = ? LIMIT 1`).raw(),
    // The counts come from job_counts (migration v7), which triggers keep equal to a count of the jobs.
    countByState: db.prepare<[], [string, number]>('SELECT state, SUM(n) FROM job_counts GROUP BY state').raw(),
    inFlight: db.prepare<[], number>(`SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE state NOT IN (${TERMINAL_SQL}, 'held')`).pluck(),
    inFlightByIdentity: db.prepare<[], { identity: string; n: number }>(
      `SELECT identity, SUM(n) AS n FROM job_counts WHERE state NOT IN (${TERMINAL_SQL}, 'held') GROUP BY identity HAVING SUM(n) > 0`,
    ),
    // Per in-flight state, the smallest created_at of that state: one seek of jobs_state_created (migration v8), the
    // cost does not grow with the finished history (a MIN over jobs_created_at walked past every older finished job: 35 ms
    // with 200 000 of them, on every scrape and status call).
    oldest: db.prepare<[], { t: number | null }>(
      `SELECT MIN(t) AS t FROM (${JOB_STATES.filter((s) => !TERMINAL_STATES.includes(s) && s !== 'held')
        .map((s) => `SELECT MIN(created_at) AS t FROM jobs WHERE state = '${s}'`)
        .join(' UNION ALL ')})`,
    ),
    // A range of jobs_finished_at: the jobs finished since `from`, however many finished before. (`+state`: without the
    // unary plus SQLite read every done and failed job through an index on state, 160 ms with 500 000 of them, on
    // every status call and throughput chart refresh.)
    finishedSince: db.prepare<[number], { state: string; finished_at: number; created_at: number }>(
      `SELECT state, finished_at, created_at FROM jobs WHERE finished_at IS NOT NULL AND finished_at >= ? AND +state IN (${TERMINAL_SQL})`,
    ),
    insertMessage: db.prepare('INSERT INTO messages (queue, ingest_id, received_at, body) VALUES (?, ?, ?, ?)'),
    markProcessed: db.prepare('UPDATE messages SET processed_at = ?, job_id = ? WHERE seq = ?'),
    insertRelated: db.prepare(
      `INSERT INTO related_samples (job_id, key, kind, value, mass_sample_url, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(job_id, key) DO UPDATE SET mass_sample_url = excluded.mass_sample_url`,
    ),
    related: db.prepare<[string], { job_id: string; key: string; kind: string; value: string; mass_sample_url: string; created_at: number }>(
      'SELECT * FROM related_samples WHERE job_id = ? ORDER BY rowid',
    ),
    insertRelation: db.prepare(
      `INSERT INTO relations (job_id, key, kind, sample_url, other_url, mass_relation_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(job_id, key) DO NOTHING`,
    ),
    relations: db.prepare<[string], RelationRow>('SELECT * FROM relations WHERE job_id = ? ORDER BY rowid'),
    // The history of the jobs finished in [from, before): a range of jobs_finished_at that starts where the last prune
    // stopped (ledger_marks 'pruned', migration v8), not at the first job ever finished.
    pruneEvents: db.prepare<[number, number]>(
      `DELETE FROM job_events WHERE job_id IN (SELECT id FROM jobs WHERE finished_at >= ? AND finished_at < ? AND +state IN ('done', 'failed'))`,
    ),
    // Where a batch of at most PRUNE_BATCH jobs ends: the finished_at of the first job after the batch, if any.
    pruneBatchEnd: db.prepare<[number, number], number>(
      `SELECT finished_at FROM jobs WHERE finished_at >= ? AND finished_at < ? AND +state IN ('done', 'failed') ORDER BY finished_at LIMIT 1 OFFSET ${PRUNE_BATCH}`,
    ).pluck(),
    prunedBefore: db.prepare<[], number>("SELECT value FROM ledger_marks WHERE name = 'pruned'").pluck(),
    setPrunedBefore: db.prepare<[number]>(
      "INSERT INTO ledger_marks (name, value) VALUES ('pruned', ?) ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
    ),
    // The oldest processed notifications, at most a batch (a range of messages_processed_at).
    pruneMessages: db.prepare<[number]>(
      `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE processed_at IS NOT NULL AND processed_at < ? ORDER BY processed_at LIMIT ${PRUNE_BATCH * 10})`,
    ),
    relationByEndpoints: db.prepare<[string, string, string], RelationRow>(
      'SELECT * FROM relations WHERE kind = ? AND sample_url = ? AND other_url = ? ORDER BY rowid LIMIT 1',
    ),
    // The first origin wins; a later call may only fill in the MASS URL (recorded before the upload, completed after).
    insertOwn: db.prepare(
      `INSERT INTO own_samples (sha256, job_id, sid, parent_sha256, mass_sample_url, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(sha256) DO UPDATE SET mass_sample_url = excluded.mass_sample_url
       WHERE own_samples.mass_sample_url = '' AND excluded.mass_sample_url <> ''`,
    ),
    forgetOwn: db.prepare<[string, string]>("DELETE FROM own_samples WHERE sha256 = ? AND job_id = ? AND mass_sample_url = ''"),
    own: db.prepare<[string], { job_id: string; sid: string; parent_sha256: string; mass_sample_url: string }>(
      'SELECT * FROM own_samples WHERE sha256 = ?',
    ),
  };

  // Statements built from a column or state list (or with a limit in their SQL) are prepared once per distinct
  // shape; `mode` is how they return rows: arrays (raw), the first column (pluck), objects (all) or none (run).
  const dynamic = new Map<string, Database.Statement<unknown[], unknown>>();
  function prepared(sql: string, mode: 'raw' | 'pluck' | 'run' | 'all'): Database.Statement<unknown[], unknown> {
    let stmt = dynamic.get(sql);
    if (!stmt) {
      stmt = db.prepare<unknown[], unknown>(sql);
      if (mode === 'raw') stmt.raw();
      else if (mode === 'pluck') stmt.pluck();
      dynamic.set(sql, stmt);
    }
    return stmt;
  }

  // UPDATE … RETURNING statements by the columns they set, and due queries by shape: looked up by a short key
  // instead of building and hashing their long SQL text on every call.
  const updates = new Map<string, Database.Statement<unknown[], unknown>>();
  function updateStatement(cols: readonly string[]): Database.Statement<unknown[], unknown> {
    const key = cols.join(',');
    let stmt = updates.get(key);
    if (!stmt) {
      stmt = prepared(`UPDATE jobs SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE id = ? RETURNING ${JOB_SELECT}`, 'raw');
      updates.set(key, stmt);
    }
    return stmt;
  }
  const dues = new Map<string, Database.Statement<unknown[], unknown>>();
  function dueStatement(states: number, what: 'jobs' | 'ids', limit: number): Database.Statement<unknown[], unknown> {
    const key = `${what}:${states}:${limit}`;
    let stmt = dues.get(key);
    if (!stmt) {
      stmt = prepared(dueSql(states, what, limit), what === 'ids' ? 'pluck' : 'raw');
      dues.set(key, stmt);
    }
    return stmt;
  }

  function getOrThrow(id: string): Job {
    const row = st.getJob.get(id);
    if (!row) throw new BridgeError('NOT_FOUND', `no job ${id}`);
    return rowToJob(row);
  }

  /** The job's state and finishedAt, for a write that changes it. */
  function stateOrThrow(id: string): { state: JobState; finishedAt: number | null } {
    const row = st.jobState.get(id);
    if (!row) throw new BridgeError('NOT_FOUND', `no job ${id}`);
    return { state: row[0] as JobState, finishedAt: row[1] };
  }

  function appendEventRaw(id: string, state: JobState, event: NewEvent, now: number): void {
    st.insertEvent.run(
      id,
      now,
      event.type,
      state,
      event.message ?? null,
      event.code ?? null,
      event.data == null ? null : JSON.stringify(event.data),
    );
  }

  // ---------------------------------------------------------------- group commit
  // Every write runs in a savepoint inside one open transaction (BEGIN IMMEDIATE: the write lock is taken at
  // the first write, so a commit never waits for a lock). flush() commits it once for every caller of the
  // same event-loop turn; a timer and close() commit what nobody flushed.
  let pendingWrites = 0;
  let commitCount = 0;
  let flushTimer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> | null = null;
  // Writes committed so far, and how many of them an fsync of the WAL has made durable (synchronous=NORMAL).
  let committedWrites = 0;
  let syncedWrites = 0;
  const walSynced = groupCommit && path !== ':memory:' && (db.pragma('synchronous', { simple: true }) as number) === 1;
  const fsyncWal = options.fsync ?? fsync;
  let walFd: number | null = null;
  // After a failed fsync the kernel may have dropped the unwritten pages and a second fsync can succeed without
  // them: every later flush fails with the first error, so no side effect ever follows a write that may be lost.
  let syncFailure: BridgeError | null = null;

  // The fsync in flight (or queued) and the committed writes it covers: a flush that needs no more waits for it.
  let syncing: { target: number; done: Promise<void> } | null = null;
  // close() ran while an fsync was in flight: its callback closes the descriptor.
  let closeWalFdAfterSync = false;

  /**
   * Makes every write committed so far durable: an fsync of the WAL file on the thread pool. One fsync at a time:
   * a second fsync of the same file running alongside could return success after the first one took a writeback
   * error, and mark as durable writes the kernel dropped.
   */
  function syncWal(): Promise<void> {
    if (syncFailure) return Promise.reject(syncFailure);
    const target = committedWrites;
    if (!walSynced || syncedWrites >= target) {
      syncedWrites = Math.max(syncedWrites, target);
      return Promise.resolve();
    }
    if (syncing && syncing.target >= target) return syncing.done;
    // After the one in flight (its failure fails this one too, without another fsync).
    const done: Promise<void> = (syncing?.done ?? Promise.resolve())
      .then(() => fsyncOnce(target))
      .finally(() => {
        if (syncing?.done === done) syncing = null;
      });
    syncing = { target, done };
    return done;
  }

  /** One fsync of the WAL file covering the writes committed up to `target`. */
  function fsyncOnce(target: number): Promise<void> {
    if (syncFailure) return Promise.reject(syncFailure);
    if (syncedWrites >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let fd: number;
      try {
        fd = walFd ??= openSync(`${path}-wal`, 'r+');
      } catch (err) {
        reject(failSync(`ledger fsync failed: cannot open ${path}-wal: ${(err as Error).message}`, err));
        return;
      }
      fsyncWal(fd, (err) => {
        if (closeWalFdAfterSync && walFd === fd) {
          closeWalFdAfterSync = false;
          walFd = null;
          try {
            closeSync(fd);
          } catch {}
        }
        if (err) failSync(`ledger fsync of ${path}-wal failed: ${err.message}; restart the bridge once the disk works`, err);
        if (syncFailure) {
          reject(syncFailure);
          return;
        }
        syncedWrites = Math.max(syncedWrites, target);
        resolve();
      });
    });
  }

  /** Records the first failure of an fsync of the WAL (later ones keep the first) and tells `onSyncFailure` once. */
  function failSync(message: string, cause: unknown): BridgeError {
    if (syncFailure) return syncFailure;
    syncFailure = new BridgeError('LEDGER', message, { cause });
    options.onSyncFailure?.(syncFailure);
    return syncFailure;
  }

  function commitNow(): void {
    if (flushTimer) {
      clearTimeout(flushTimer);
      flushTimer = null;
    }
    if (!db.open || !db.inTransaction) {
      pendingWrites = 0;
      return;
    }
    try {
      db.exec('COMMIT');
    } catch (err) {
      // An I/O error rolls the transaction back (its writes are lost, none was acted on: nothing was flushed);
      // a transaction still open is committed by the next flush.
      if (!db.inTransaction) pendingWrites = 0;
      throw new BridgeError('LEDGER', `ledger commit failed: ${(err as Error).message}`, { cause: err });
    }
    if (pendingWrites > 0) commitCount++;
    committedWrites += pendingWrites;
    pendingWrites = 0;
  }

  /** Writes not yet durable: uncommitted, or committed and not yet covered by a finished fsync of the WAL (never 0 after a failed fsync). */
  function notDurable(): number {
    const n = pendingWrites + (committedWrites - syncedWrites);
    return syncFailure ? Math.max(1, n) : n;
  }

  function flush(): Promise<void> {
    if (syncFailure) return Promise.reject(syncFailure);
    if (!groupCommit || !db.open || (notDurable() === 0 && !db.inTransaction)) return Promise.resolve();
    // Callers of this turn share the commit: it runs once the turn's microtasks (their writes) are done. The
    // fsync after it covers every write committed before it started (the timer's commits too). While an fsync
    // runs, the commit waits for it: the callers of every turn until then share that one commit and the one fsync
    // after it (they would wait for the running fsync anyway), instead of one commit and one fsync per turn.
    flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const run = (): void => {
          flushing = null;
          try {
            commitNow();
          } catch (err) {
            reject(err);
            return;
          }
          syncWal().then(resolve, reject);
        };
        // A failed fsync fails this flush too (syncWal rejects with it).
        if (syncing) syncing.done.then(run, run);
        else run();
      });
    });
    return flushing;
  }

  /** Makes `fn` a write: a transaction of its own (`each`), or a savepoint in the open group transaction. */
  function write<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const tx = db.transaction(fn);
    if (!groupCommit) {
      return (...args: A): R => {
        const out = tx(...args);
        commitCount++;
        return out;
      };
    }
    return (...args: A): R => {
      if (!db.inTransaction) db.exec('BEGIN IMMEDIATE');
      let out: R;
      try {
        out = tx(...args);
      } catch (err) {
        // The savepoint is rolled back; an I/O error may have rolled back the whole transaction.
        if (!db.inTransaction) pendingWrites = 0;
        else if (pendingWrites === 0) db.exec('ROLLBACK'); // do not hold the write lock for nothing
        throw err;
      }
      pendingWrites++;
      if (!flushTimer) {
        flushTimer = setTimeout(() => {
          flushTimer = null;
          // A failed commit is retried by the next flush; the caller of a write that matters flushes itself.
          flush().catch(() => undefined);
        }, flushAfterMs);
        flushTimer.unref();
      }
      return out;
    };
  }

  const claimTx = write((input: { id: string; scheduledAnalysisUrl: string; sampleUrl: string; identity?: string }, now: number) => {
    const info = st.insertJob.run(input.id, input.scheduledAnalysisUrl, input.sampleUrl, now, now, now, now, input.identity ?? null);
    const created = info.changes === 1;
    if (created) appendEventRaw(input.id, 'claimed', { type: 'claimed', data: { sampleUrl: input.sampleUrl } }, now);
    return { job: getOrThrow(input.id), created };
  });

  const updateTx = write((id: string, patch: JobPatch, event: NewEvent, now: number) => {
    const current = stateOrThrow(id);
    // The state table (bridge/states.ts) is the only authority on which transitions exist.
    if (patch.state !== undefined && (patch.state !== current.state || !canTransition(current.state, patch.state))) {
      assertTransition(id, current.state, patch.state);
    }
    const full: JobPatch = { ...patch, updatedAt: now };
    if (patch.state !== undefined && patch.state !== current.state) full.stateSince = now;
    if (full.state && TERMINAL_STATES.includes(full.state) && full.finishedAt === undefined && current.finishedAt === null) {
      full.finishedAt = now;
    }
    const cols: string[] = [];
    const values: unknown[] = [];
    for (const key of Object.keys(full) as Array<keyof JobPatch>) {
      const value = full[key];
      if (value === undefined) continue;
      const col = COLUMNS[key];
      if (!col) throw new BridgeError('INTERNAL', `unknown job field ${key}`);
      cols.push(col);
      values.push(toSql(value));
    }
    values.push(id);
    // The changed row comes back from the UPDATE itself (no second read).
    const row = updateStatement(cols).get(...values) as JobRow;
    const updated = rowToJob(row);
    appendEventRaw(id, updated.state, event, now);
    return updated;
  });

  const storeMessagesTx = write(
    (queue: string, messages: Array<Record<string, unknown> & { ingest_id: string }>, now: number): StoredMessage[] => {
      const out: StoredMessage[] = [];
      for (const m of messages) {
        const info = st.insertMessage.run(queue, String(m.ingest_id), now, JSON.stringify(m));
        out.push({ seq: Number(info.lastInsertRowid), queue, ingestId: String(m.ingest_id), receivedAt: now, body: m, jobId: null, processedAt: null });
      }
      return out;
    },
  );

  return countWriteErrors({
    claim: (input, now) => claimTx(input, now),
    get(id) {
      const row = st.getJob.get(id);
      return row ? rowToJob(row) : undefined;
    },
    has: (id) => st.hasJob.get(id) !== undefined,
    update: (id, patch, event, now) => updateTx(id, patch, event, now),
    appendEvent: write((id: string, event: NewEvent, now: number) => {
      appendEventRaw(id, stateOrThrow(id).state, event, now);
    }),
    events(id) {
      return st.events.all(id).map(
        ([seq, jobId, at, type, state, message, code, data]): JobEvent => ({
          seq,
          jobId,
          at,
          type,
          state: state as JobState,
          message,
          code,
          data: data == null ? null : (JSON.parse(data) as Record<string, unknown>),
        }),
      );
    },
    findByIngestId(ingestId) {
      const row = st.byIngestId.get(ingestId);
      return row ? rowToJob(row) : undefined;
    },
    due(states, now, limit) {
      const wanted = dueStates(states);
      if (wanted.length === 0 || limit < 1) return [];
      const rows = dueStatement(wanted.length, 'jobs', dueLimit(limit)).all(...dueParams(wanted, now)) as JobRow[];
      return rows.slice(0, limit).map(rowToJob);
    },
    dueIds(states, now, limit) {
      const wanted = dueStates(states);
      if (wanted.length === 0 || limit < 1) return [];
      const ids = dueStatement(wanted.length, 'ids', dueLimit(limit)).all(...dueParams(wanted, now)) as string[];
      return ids.length > limit ? ids.slice(0, limit) : ids;
    },
    list(query: JobQuery): JobPage {
      const limit = Math.max(1, Math.min(Math.floor(query.limit ?? 50), 1000));
      // The rows asked for (one more tells whether there is a next page), as a power of two written into the SQL
      // (see dueSql: a bound LIMIT is re-planned on every call).
      const n = dueLimit(limit + 1);
      // Bounds on (created_at, id), newest first; the cursor is the (createdAt, id) of the last row of the previous page.
      const bounds: string[] = [];
      const values: unknown[] = [];
      if (query.from !== undefined) {
        bounds.push('created_at >= ?');
        values.push(query.from);
      }
      if (query.to !== undefined) {
        bounds.push('created_at <= ?');
        values.push(query.to);
      }
      if (query.cursor) {
        // A row value: one seek into the (…, created_at, id) index, where `created_at < ? OR (created_at = ? AND id < ?)`
        // walked every newer job to reach a page deep in the history.
        const [c, id] = decodeCursor(query.cursor);
        bounds.push('(created_at, id) < (?, ?)');
        values.push(c, id);
      }
      const order = 'ORDER BY created_at DESC, id DESC';
      let rows: JobRow[];
      if (query.states && query.states.length > 0 && !query.sha256) {
        // One range of jobs_state_created (migration v8) per state, each cut at the page size, then merged: the cost of
        // a page does not grow with the jobs of the state (the finished history for done and failed). States that
        // do not exist hold no job.
        const states = JOB_STATES.filter((s) => query.states!.includes(s));
        if (states.length === 0) return { jobs: [], nextCursor: null };
        const where = ['state = ?', ...bounds].join(' AND ');
        // One state: its range's ids. Several: each range keeps created_at for the merge's ORDER BY.
        const range = (cols: string): string => `SELECT ${cols} FROM jobs WHERE ${where} ${order} LIMIT ${n}`;
        const sql =
          states.length === 1
            ? range('id')
            : `SELECT id FROM (${states.map(() => `SELECT * FROM (${range('created_at, id')})`).join(' UNION ALL ')}) ${order} LIMIT ${n}`;
        const ids = prepared(sql, 'pluck').all(...states.flatMap((s) => [s, ...values])) as string[];
        rows = ids.slice(0, limit + 1).map((id) => st.getJob.get(id)!);
      } else {
        // All jobs: a walk of jobs_created_at from the newest (or from the cursor). By sha256: that index's few rows,
        // sorted (the unary plus keeps SQLite from walking a state or creation-time index instead).
        const where: string[] = [];
        const filters: unknown[] = [];
        if (query.states && query.states.length > 0) {
          where.push(`+state IN (${query.states.map(() => '?').join(',')})`);
          filters.push(...query.states);
        }
        if (query.sha256) {
          where.push('sha256 = ?');
          filters.push(query.sha256.toLowerCase());
          where.push(...bounds.map((b) => b.replace(/created_at/g, '+created_at')));
        } else {
          where.push(...bounds);
        }
        filters.push(...values);
        const sql = `SELECT ${JOB_SELECT} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ${order} LIMIT ${n}`;
        rows = prepared(sql, 'raw').all(...filters) as JobRow[];
      }
      const more = rows.length > limit;
      const jobs = rows.slice(0, limit).map(rowToJob);
      const last = jobs[jobs.length - 1];
      return { jobs, nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null };
    },
    countByState() {
      const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const [state, n] of st.countByState.all()) out[state as JobState] = n;
      return out;
    },
    inFlight: () => st.inFlight.get() ?? 0,
    inFlightByIdentity: () => Object.fromEntries(st.inFlightByIdentity.all().map((r) => [r.identity, r.n])),
    oldestInFlightCreatedAt: () => st.oldest.get()?.t ?? null,
    oldestPerState() {
      return st.oldestPerState.all().map((r) => ({ state: r.state as JobState, jobId: r.id, since: r.since }));
    },
    finishedSince(from) {
      return st.finishedSince.all(from).map((r) => ({ state: r.state as JobState, finishedAt: r.finished_at, createdAt: r.created_at }));
    },
    storeMessages: (queue, messages, now) => storeMessagesTx(queue, messages, now),
    unprocessedMessages(limit) {
      if (limit < 1) return [];
      // The limit is written into the SQL (see dueSql: a bound LIMIT is re-planned on every call).
      const rows = prepared(`SELECT * FROM messages WHERE processed_at IS NULL ORDER BY seq LIMIT ${Math.floor(limit)}`, 'all').all() as MessageRow[];
      return rows.map((r) => ({
        seq: r.seq,
        queue: r.queue,
        ingestId: r.ingest_id,
        receivedAt: r.received_at,
        body: JSON.parse(r.body) as Record<string, unknown>,
        jobId: r.job_id,
        processedAt: r.processed_at,
      }));
    },
    markMessageProcessed: write((seq: number, jobId: string | null, now: number) => {
      st.markProcessed.run(now, jobId, seq);
    }),
    recordRelatedSample: write((rec: Omit<RelatedSampleRecord, 'createdAt'>, now: number) => {
      st.insertRelated.run(rec.jobId, rec.key, rec.kind, rec.value, rec.massSampleUrl, now);
    }),
    relatedSamples(jobId) {
      return st.related.all(jobId).map(
        (r): RelatedSampleRecord => ({
          jobId: r.job_id,
          key: r.key,
          kind: r.kind as RelatedSampleRecord['kind'],
          value: r.value,
          massSampleUrl: r.mass_sample_url,
          createdAt: r.created_at,
        }),
      );
    },
    recordRelation: write((rec: Omit<RelationRecord, 'createdAt'>, now: number) => {
      st.insertRelation.run(rec.jobId, rec.key, rec.kind, rec.sampleUrl, rec.otherUrl, rec.massRelationUrl, now);
    }),
    relations(jobId) {
      return st.relations.all(jobId).map(relationRecord);
    },
    findRelation(kind, sampleUrl, otherUrl) {
      const row = st.relationByEndpoints.get(kind, sampleUrl, otherUrl);
      return row ? relationRecord(row) : undefined;
    },
    recordOwnSample: write((sha256: string, origin: { jobId: string; sid: string; parentSha256: string; massSampleUrl: string }, now: number) => {
      st.insertOwn.run(sha256.toLowerCase(), origin.jobId, origin.sid, origin.parentSha256, origin.massSampleUrl, now);
    }),
    forgetOwnSample: write((sha256: string, jobId: string) => {
      st.forgetOwn.run(sha256.toLowerCase(), jobId);
    }),
    ownSample(sha256) {
      const r = st.own.get(sha256.toLowerCase());
      return r ? { jobId: r.job_id, sid: r.sid, parentSha256: r.parent_sha256, massSampleUrl: r.mass_sample_url } : undefined;
    },
    prune: write((before: number) => {
      // Every finished job's history below the mark is gone already: a job finishes with finished_at = its now, and
      // the mark is at least RetainDays behind the now of the prune that set it.
      const from = st.prunedBefore.get() ?? Number.MIN_SAFE_INTEGER;
      let events = 0;
      let more = false;
      if (before > from) {
        // At most a batch of jobs (all of those finished at the batch's last finished_at): the mark moves to where
        // the batch ended, and the next call goes on from there.
        const next = st.pruneBatchEnd.get(from, before);
        const end = next === undefined ? before : Math.max(next, from + 1);
        more = end < before;
        events = st.pruneEvents.run(from, end).changes;
        st.setPrunedBefore.run(end);
      }
      const messages = st.pruneMessages.run(before).changes;
      return { events, messages, more: more || messages === PRUNE_BATCH * 10 };
    }),
    flush,
    pending: notDurable,
    commits: () => commitCount,
    isWritable() {
      // After a failed fsync nothing written is made durable any more (every flush fails until a restart).
      if (syncFailure) return false;
      // The open group transaction holds the write lock: writable by definition.
      if (db.open && db.inTransaction) return true;
      try {
        db.exec('BEGIN IMMEDIATE; ROLLBACK;');
        return true;
      } catch {
        return false;
      }
    },
    sizeBytes() {
      if (path === ':memory:') {
        const pages = db.pragma('page_count', { simple: true }) as number;
        const size = db.pragma('page_size', { simple: true }) as number;
        return pages * size;
      }
      let total = 0;
      for (const suffix of ['', '-wal']) {
        try {
          total += statSync(path + suffix).size;
        } catch {}
      }
      return total;
    },
    syncFailed() {
      return syncFailure !== null;
    },
    close() {
      if (!db.open) return;
      try {
        // After a failed fsync nothing more is committed: what is on disk stays as it was (the writes since then
        // are rolled back; a restart does their steps again).
        if (syncFailure && db.inTransaction) db.exec('ROLLBACK');
        commitNow();
        if (walFd !== null && !syncFailure) fsyncSync(walFd);
      } finally {
        // A commit that failed here is lost with the connection: nothing stays pending on a closed ledger.
        pendingWrites = 0;
        syncedWrites = committedWrites;
        if (walFd !== null && syncing) {
          // An fsync on the thread pool still uses the descriptor: its callback closes it.
          closeWalFdAfterSync = true;
        } else if (walFd !== null) {
          try {
            closeSync(walFd);
          } catch {}
          walFd = null;
        }
        db.close();
      }
    },
  });
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new BridgeError('LEDGER', `ledger schema version ${current} is newer than this bridge (${MIGRATIONS.length}); upgrade the bridge`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
