/**
 * The durable job ledger: the single source of truth for what the bridge has done.
 * One Job per MASS scheduled analysis, an append-only event history per job, every popped
 * Assemblyline notification, and every related sample / relation created on MASS.
 */

/**
 * claimed      recorded before any side effect (from a poll)
 * fetching     reading sample metadata / deciding (no external side effect yet)
 * ingesting    an ingest call may be in flight (attempt = n)
 * waiting      ingest_id known; waiting for the notification
 * collecting   notification persisted (sid/failure known); fetching results
 * relating     creating related samples and relations on MASS
 * reporting    the report may be in flight to MASS
 * done         successful report accepted by MASS (terminal)
 * failed       error report accepted by MASS (terminal)
 * held         needs an operator: a permanent error that could not even be reported (retry/abandon via API)
 */
export type JobState =
  | 'claimed'
  | 'fetching'
  | 'ingesting'
  | 'waiting'
  | 'collecting'
  | 'relating'
  | 'reporting'
  | 'done'
  | 'failed'
  | 'held';

export const JOB_STATES: readonly JobState[] = [
  'claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'done', 'failed', 'held',
];
export const TERMINAL_STATES: readonly JobState[] = ['done', 'failed'];

export interface Job {
  /** MASS scheduled-analysis id. */
  id: string;
  scheduledAnalysisUrl: string;
  sampleUrl: string;
  state: JobState;
  /** Set once known. */
  sha256: string | null;
  fileName: string | null;
  fileSize: number | null;
  sampleCls: string | null;
  /** Ingest attempts started so far. */
  attempts: number;
  ingestId: string | null;
  /** AL submission id (may be an older cached submission). */
  sid: string | null;
  cacheHit: boolean;
  score: number | null;
  /** AL failure string from the notification ('' when analysed). */
  alFailure: string | null;
  /** When set, the report to send is an error report with this code and message. */
  errorCode: string | null;
  errorMessage: string | null;
  /** Last problem seen (even if retried later). */
  lastError: string | null;
  lastErrorCode: string | null;
  massReportUrl: string | null;
  /** Earliest time (ms since epoch) the job should be worked on again (backoff). */
  notBefore: number;
  /** Deadline (ms) for the notification of the current ingest. */
  deadline: number | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  // Added by the bridge (optional so hand-made Jobs in tests stay valid; the SQLite ledger always fills them).
  /** The next ingest sends params.ignore_cache (the cached submission was gone). */
  ignoreCache?: boolean;
  /** The next ingest sends params.never_drop (a previous ingest was Skipped). */
  neverDrop?: boolean;
  /** Consecutive step runs that ended with exhausted transient retries (drives notBefore backoff). */
  stepFailures?: number;
  /** Echo-back: the job id whose extraction created this sample; answered from that job's submission. */
  echoOf?: string | null;
  /** When the job entered its current state (ms); budgets by age and the status API read it. */
  stateSince?: number;
  /**
   * Name of the identity ([AssemblylineAnalysis] = `default`, or an [AssemblylineAnalysis:NAME] section) whose poll
   * claimed the job; its MASS client sends the job's report and relations. null/absent = the first identity.
   */
  identity?: string | null;
}

export interface JobEvent {
  seq: number;
  jobId: string;
  at: number;
  /** e.g. claimed, ingest-started, ingested, notified, collected, related-sample, relation, report-sent, error, retry, abandoned */
  type: string;
  state: JobState;
  message: string | null;
  code: string | null;
  data: Record<string, unknown> | null;
}

export interface StoredMessage {
  seq: number;
  queue: string;
  ingestId: string;
  receivedAt: number;
  /** The message exactly as popped. */
  body: Record<string, unknown>;
  jobId: string | null;
  processedAt: number | null;
}

export type RelatedKind = 'file' | 'ip' | 'domain' | 'uri';

export interface RelatedSampleRecord {
  jobId: string;
  /** Stable key within a job, e.g. file:<sha256> or ip:<value>. */
  key: string;
  kind: RelatedKind;
  value: string;
  massSampleUrl: string;
  createdAt: number;
}

export interface RelationRecord {
  jobId: string;
  /** Stable key within a job, e.g. dropped-by:<sha256>:<parentSha256>. */
  key: string;
  kind: string;
  sampleUrl: string;
  otherUrl: string;
  massRelationUrl: string;
  createdAt: number;
}

export interface JobQuery {
  states?: JobState[];
  sha256?: string;
  /** createdAt range, ms */
  from?: number;
  to?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  limit?: number;
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

export type JobPatch = Partial<Omit<Job, 'id' | 'createdAt'>>;

export interface NewEvent {
  type: string;
  message?: string | null;
  code?: string | null;
  data?: Record<string, unknown> | null;
}

/**
 * The ledger port. Writes are synchronous for the caller and visible at once to every read of the same ledger;
 * they are durable once `flush()` resolves (a ledger may commit each write at once, then `flush()` has nothing to do).
 */
export interface Ledger {
  /** Inserts the job in state `claimed` unless it exists; returns the job and whether it was new. Atomic. */
  claim(input: { id: string; scheduledAnalysisUrl: string; sampleUrl: string; identity?: string }, now: number): { job: Job; created: boolean };
  get(id: string): Job | undefined;
  /** Whether a job with this id exists (reads an index only: the poller asks for every scheduled analysis listed). */
  has(id: string): boolean;
  /**
   * Applies the patch and appends the event in one transaction; returns the updated job. A state change the
   * state table (bridge/states.ts) does not allow is refused with TransitionRefused and nothing is written.
   */
  update(id: string, patch: JobPatch, event: NewEvent, now: number): Job;
  appendEvent(id: string, event: NewEvent, now: number): void;
  events(id: string): JobEvent[];
  findByIngestId(ingestId: string): Job | undefined;
  /** Non-terminal jobs in the given states whose notBefore <= now, oldest first. */
  due(states: JobState[], now: number, limit: number): Job[];
  /** The ids of due(states, now, limit), in its order; reads only an index (what the worker's tick needs). */
  dueIds(states: JobState[], now: number, limit: number): string[];
  list(query: JobQuery): JobPage;
  countByState(): Record<JobState, number>;
  /** Non-terminal, non-held jobs. */
  inFlight(): number;
  /** Non-terminal, non-held jobs by the identity that claimed them (jobs without one count under `default`). */
  inFlightByIdentity(): Record<string, number>;
  oldestInFlightCreatedAt(): number | null;
  /** For each unfinished state that has jobs: the job that has been in it longest, and since when (ms). */
  oldestPerState(): Array<{ state: JobState; jobId: string; since: number }>;
  /** Finished (done/failed) with finishedAt in [from, now]. */
  finishedSince(from: number): Array<{ state: JobState; finishedAt: number; createdAt: number }>;
  /** Persists popped messages in one transaction, before any of them is acted on. */
  storeMessages(queue: string, messages: Array<Record<string, unknown> & { ingest_id: string }>, now: number): StoredMessage[];
  unprocessedMessages(limit: number): StoredMessage[];
  markMessageProcessed(seq: number, jobId: string | null, now: number): void;
  recordRelatedSample(rec: Omit<RelatedSampleRecord, 'createdAt'>, now: number): void;
  relatedSamples(jobId: string): RelatedSampleRecord[];
  recordRelation(rec: Omit<RelationRecord, 'createdAt'>, now: number): void;
  relations(jobId: string): RelationRecord[];
  /** A relation any job already created with exactly these endpoints (MASS does not deduplicate relations). */
  findRelation(kind: string, sampleUrl: string, otherUrl: string): RelationRecord | undefined;
  /** Files the bridge itself submitted to MASS: sha256 → where it came from (echo-back detection). */
  recordOwnSample(sha256: string, origin: { jobId: string; sid: string; parentSha256: string; massSampleUrl: string }, now: number): void;
  /** Deletes the own-sample row of `sha256` written by `jobId` before an upload that made no MASS sample (URL still ''). */
  forgetOwnSample(sha256: string, jobId: string): void;
  ownSample(sha256: string): { jobId: string; sid: string; parentSha256: string; massSampleUrl: string } | undefined;
  /**
   * Deletes the event history of jobs that finished (done/failed) before `before` and the notifications
   * processed before it. Job rows, related samples, relations and own samples are kept (claims, echo-back
   * and relation dedup rely on them). A ledger may do it in batches: `more` is true when this call stopped
   * before the end, and the caller calls again (with the same or a later `before`) to go on.
   */
  prune(before: number): { events: number; messages: number; more?: boolean };
  /**
   * Makes every write made before the call durable (committed and on disk: the SQLite ledger fsyncs its WAL file
   * off the event loop) and resolves; resolves at once when nothing is pending. Concurrent callers of one
   * event-loop turn share one commit (group commit). The bridge calls it before every upstream request and before
   * an operator action answers. Rejects with a `LEDGER` BridgeError when the commit or the fsync fails (after a
   * failed fsync, every later call rejects).
   */
  flush(): Promise<void>;
  /** Writes made and not yet durable (uncommitted, or committed and not yet fsynced): 0 when everything written is on disk. */
  pending(): number;
  /** Commits that made writes durable since the ledger was opened (`massal_ledger_commits_total`). */
  commits(): number;
  /** Cheap write probe for /ready. */
  isWritable(): boolean;
  /**
   * True once an fsync of the WAL file failed: nothing can become durable any more (every `flush()` rejects with the
   * same `LEDGER` error) and the process has to stop. Optional for fakes (absent: never).
   */
  syncFailed?(): boolean;
  /** Writes that failed since the ledger was opened (massal_ledger_write_errors_total). Optional for fakes. */
  writeErrors?(): number;
  /** Bytes on disk (db + wal). */
  sizeBytes(): number;
  close(): void;
}
