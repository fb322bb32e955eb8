/**
 * The pipeline: four loops (poller, worker, listener, reconciler) around the durable ledger.
 * Every decision comes from decide.ts; this file does the I/O and writes each transition to the
 * ledger before the side effect that depends on it. See docs/design.md for the guarantees.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import pRetry from 'p-retry';
import type { AssemblylineClient, SubmissionFull } from '../assemblyline/types.js';
import type { BridgeConfig } from '../config/types.js';
import { BridgeError, isTransient, toBridgeError } from '../errors.js';
import type { Job, JobState, Ledger, NewEvent } from '../ledger/types.js';
import { TERMINAL_STATES } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { defaultMappingOptions, mapErrorReport, mapOwnSampleReport, mapSubmissionToReport, sanitizeTag } from '../mapping/index.js';
import type { MappingOptions, RelatedItem, ReportPlan } from '../mapping/types.js';
import { sameMassUrl } from '../mass/client.js';
import type { MassClient, MassRelation, MassReport, MassSample, RelationKind, ReportSubmission } from '../mass/types.js';
import type { BridgeMetrics } from '../metrics.js';
import { VERSION } from '../version.js';
import type { BridgeControl, BridgeStatus, UpstreamHealth } from './control.js';
import {
  WORK_STATES,
  decideDeadline,
  decideNotification,
  decideResultsMissing,
  decideSample,
  decideStepError,
  decideSubmissionState,
  errorReport,
  parseNotification,
  type DeadlineLookup,
  type Policy,
  type Transition,
} from './decide.js';
import { ingestHashFirst, ingestWayOf, type IngestWay } from './hash-first.js'; // hash-first
import { instrument, newHealth, recordFailure } from './instrument.js';
import { IngestGate } from './ingest-gate.js'; // ingest-gate
import { derivedTlp, withClassification } from '../mapping/classification.js'; // classification
import { ingestMetadata, ingestParams, ownParams, reconcileQuery, ReplacementSids } from './ingest-request.js'; // ingest-gate
import { Loop } from './loop.js';

export interface BridgeDeps {
  config: BridgeConfig;
  mass: MassClient;
  assemblyline: AssemblylineClient;
  /**
   * A MASS client used only for the poll (default: `mass`). The poll is MASS's only heartbeat; with its own
   * connection it never queues behind sample downloads that hold every connection of a shared pool.
   */
  pollClient?: MassClient;
  ledger: Ledger;
  logger: Logger;
  metrics?: BridgeMetrics;
  now?: () => number;
  random?: () => number;
}

/** What `on('job', …)` listeners receive after every ledger transition. */
export interface JobUpdate {
  job: Job;
  event: NewEvent;
}

export interface RunOnceSummary {
  claimed: number;
  done: number;
  failed: number;
  held: number;
  /** Jobs still not finished when the bound was reached. */
  remaining: number;
  timedOut: boolean;
}

export interface Bridge {
  start(): void;
  /** Stop claiming, let running steps finish or checkpoint within graceMs, then abort them. Safe twice. */
  stop(opts?: { graceMs?: number }): Promise<void>;
  /** One poll-to-idle cycle: claim what one poll returns, drive every job until none is left in flight (or the bound). */
  runOnce(opts?: { timeoutMs?: number }): Promise<RunOnceSummary>;
  readonly control: BridgeControl;
  on(event: 'job', listener: (update: JobUpdate) => void): this;
  off(event: 'job', listener: (update: JobUpdate) => void): this;
  /** The loops, for tests and the demo (e.g. pause the listener). */
  readonly loops: { poller: Loop; worker: Loop; listener: Loop; reconciler: Loop };
}

/** Marker in every report's additional_metadata.assemblyline: finds our report after a lost answer. */
export const REPORT_MARKER_KEY = 'bridge_job';
const PRUNE_INTERVAL_MS = 3_600_000;
/** Assemblyline failing this many times in a row stops claiming new work. */
const AL_FAILURE_THRESHOLD = 3;
/** Upper bound of one poll, whatever [AssemblylineAnalysis] Timeout says: MASS marks us offline after 10 minutes without one. */
const MAX_POLL_MS = 4 * 60_000;

class BridgeImpl extends EventEmitter implements Bridge {
  readonly control: BridgeControl;
  readonly loops: Bridge['loops'];

  readonly #config: BridgeConfig;
  readonly #ledger: Ledger;
  readonly #mass: MassClient;
  readonly #pollClient: MassClient;
  readonly #al: AssemblylineClient;
  readonly #log: Logger;
  readonly #metrics?: BridgeMetrics;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #policy: Policy;
  readonly #mapping: MappingOptions;
  readonly #health: { mass: UpstreamHealth; assemblyline: UpstreamHealth };
  readonly #queue: PQueue;
  /** Per-job lock: a job is touched by one loop at a time. */
  readonly #active = new Set<string>();
  /** Sample JSON read by the fetch step, reused by the ingest step that usually follows at once. */
  readonly #samples = new Map<string, MassSample>();
  /** Relation creations in progress, by kind + endpoints (see #createRelation). */
  readonly #relationLocks = new Map<string, Promise<void>>();
  #abort = new AbortController();
  #paused = false;
  #stopping = false;
  #stopPromise: Promise<void> | null = null;
  #claimMode: 'always' | 'once' | 'never' = 'always';
  #claimedThisRun = 0;
  #lastPollAt: number | null = null;
  #lastPruneAt = Number.NEGATIVE_INFINITY;
  readonly #startedAt: number;
  /** ingest-gate: configuration refusals and quotas that hold every ingest; replacement sids of dead cached ones. */
  readonly #gate: IngestGate;
  readonly #replacements = new ReplacementSids();

  constructor(deps: BridgeDeps) {
    super();
    this.#config = deps.config;
    this.#ledger = deps.ledger;
    this.#log = deps.logger;
    this.#metrics = deps.metrics;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#startedAt = this.#now();
    this.#health = { mass: newHealth(), assemblyline: newHealth() };
    this.#mass = instrument(deps.mass, 'mass', this.#health.mass, deps.metrics, this.#now);
    this.#pollClient = deps.pollClient ? instrument(deps.pollClient, 'mass', this.#health.mass, deps.metrics, this.#now) : this.#mass;
    this.#al = instrument(deps.assemblyline, 'assemblyline', this.#health.assemblyline, deps.metrics, this.#now);
    const b = this.#config.bridge;
    this.#policy = {
      maxAttempts: Math.max(1, b.maxAttempts),
      resultDeadlineMs: b.resultDeadline * 1000,
      retryBaseMs: b.retryBaseDelay * 1000,
      retryMaxMs: b.retryMaxDelay * 1000,
      maxFileSize: Math.min(b.maxFileSize, this.#config.assemblyline.maxFileSize || b.maxFileSize),
      reanalyseOwnSamples: b.reanalyseOwnSamples,
    };
    const r = this.#config.report;
    this.#mapping = defaultMappingOptions({
      uiBaseUrl: this.#config.assemblyline.uiUrl || this.#config.assemblyline.url,
      bridgeVersion: VERSION,
      tagKinds: r.tagKinds,
      maxTags: r.maxTags,
      tagPrefix: r.tagPrefix,
      maxSectionBody: r.maxSectionBody,
      extractedFiles: r.extractedFiles,
      extractedRelations: r.extractedRelations,
      maxDepth: r.maxDepth,
      maxExtracted: r.maxExtracted,
      networkIocs: r.networkIocs,
      staticIocs: r.staticIocs,
      maxIocs: r.maxIocs,
      iocMinVerdict: r.iocMinVerdict, // [Report] IOCMinVerdict (mapping/ioc-threshold.ts)
    });
    // ingest-gate: an async quota slot frees when a submission finishes, which the bridge sees at the next queue read.
    // A blocked gate probes once per RetryMaxDelay (at most a minute).
    this.#gate = new IngestGate({ asyncQuotaWaitMs: Math.max(50, b.queuePollTime * 1000), probeIntervalMs: Math.min(60_000, Math.max(100, b.retryMaxDelay * 1000)) });
    this.#queue = new PQueue({ concurrency: Math.max(1, b.concurrency) });
    // One shutdown signal is shared by every in-flight call.
    setMaxListeners(0, this.#abort.signal);
    const pollMs = () => this.#config.mass.pollTime * 1000;
    const workerMs = () => Math.max(10, Math.min(250, pollMs()));
    const reconcileMs = () => Math.max(50, Math.min(30_000, this.#policy.resultDeadlineMs / 4));
    this.loops = {
      // [GLOBAL] SleepTime: the wait before polling again after a failed poll.
      poller: new Loop('poller', pollMs, () => this.#pollTick(), this.#log, () => this.#config.global.sleepTime * 1000),
      worker: new Loop('worker', workerMs, () => this.#workerTick(), this.#log),
      listener: new Loop('listener', () => b.queuePollTime * 1000, () => this.#listenTick(), this.#log),
      reconciler: new Loop('reconciler', reconcileMs, () => this.#reconcileTick(), this.#log),
    };
    this.control = this.#makeControl();
  }

  // ---------------------------------------------------------------- lifecycle

  start(): void {
    if (this.#stopping) throw new BridgeError('INTERNAL', 'bridge was stopped; create a new one');
    for (const loop of Object.values(this.loops)) loop.start();
  }

  stop(opts: { graceMs?: number } = {}): Promise<void> {
    if (!this.#stopPromise) this.#stopPromise = this.#stop(opts.graceMs ?? this.#config.bridge.gracePeriod * 1000);
    return this.#stopPromise;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#log.info({ graceMs }, 'stopping: no new claims; waiting for running steps');
    const graceOver = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), graceMs);
      t.unref();
    });
    const drained = (async () => {
      await Promise.all([this.loops.poller.stop(), this.loops.reconciler.stop(), this.loops.worker.stop()]);
      // The listener finishes its current (destructive) read and persists it before stopping.
      await this.loops.listener.stop();
      await this.#queue.onIdle();
      return 'idle' as const;
    })();
    const outcome = await Promise.race([drained, graceOver]);
    if (outcome === 'timeout') {
      this.#log.warn('grace period over: aborting running steps (they checkpoint in the ledger)');
      this.#abort.abort(new BridgeError('ABORTED', 'bridge shutting down'));
      const bound = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
      await Promise.race([drained, bound]);
    }
    this.#log.info('stopped');
  }

  async runOnce(opts: { timeoutMs?: number } = {}): Promise<RunOnceSummary> {
    const bound = opts.timeoutMs ?? Math.max(60_000, this.#policy.resultDeadlineMs * (this.#policy.maxAttempts + 1) + 60_000);
    const started = this.#now();
    this.#claimMode = 'once';
    this.#claimedThisRun = 0;
    this.start();
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#claimMode === 'never' && this.#ledger.inFlight() === 0) return resolve();
        if (this.#now() - started > bound) {
          timedOut = true;
          return resolve();
        }
        setTimeout(check, 50);
      };
      check();
    });
    await this.stop();
    const finished = this.#ledger.finishedSince(started);
    return {
      claimed: this.#claimedThisRun,
      done: finished.filter((f) => f.state === 'done').length,
      failed: finished.filter((f) => f.state === 'failed').length,
      held: this.#ledger.countByState().held,
      remaining: this.#ledger.inFlight(),
      timedOut,
    };
  }

  // ---------------------------------------------------------------- helpers

  get #signal(): AbortSignal {
    return this.#abort.signal;
  }

  #retry<T>(fn: () => Promise<T>): Promise<T> {
    const b = this.#config.bridge;
    return pRetry(fn, {
      retries: Math.max(0, b.stepRetries - 1),
      minTimeout: b.retryBaseDelay * 1000,
      maxTimeout: b.retryMaxDelay * 1000,
      randomize: true,
      signal: this.#signal,
      shouldRetry: ({ error }) => !this.#signal.aborted && isTransient(error),
    });
  }

  #jobLog(job: Job): Logger {
    return this.#log.child({ job: job.id, sha256: job.sha256 ?? undefined, ingestId: job.ingestId ?? undefined, sid: job.sid ?? undefined });
  }

  #apply(job: Job, t: Transition): Job {
    // A new state starts with a clean failure count (backoff and the report-500 limit count per step).
    const patch = t.patch.state !== undefined && t.patch.state !== job.state && t.patch.stepFailures === undefined ? { ...t.patch, stepFailures: 0 } : t.patch;
    const updated = this.#ledger.update(job.id, patch, t.event, this.#now());
    const log = this.#jobLog(updated);
    const level = t.event.type === 'retry-later' || t.event.type === 'held' ? 'warn' : 'info';
    log[level]({ event: t.event.type, state: updated.state, code: t.event.code ?? undefined }, t.event.message ?? t.event.type);
    if (TERMINAL_STATES.includes(updated.state) && !TERMINAL_STATES.includes(job.state)) {
      this.#metrics?.jobFinished(updated.state as 'done' | 'failed', Math.max(0, (this.#now() - updated.createdAt) / 1000));
      this.#samples.delete(job.id);
    }
    this.emit('job', { job: updated, event: t.event } satisfies JobUpdate);
    return updated;
  }

  #lock(id: string): boolean {
    if (this.#active.has(id)) return false;
    this.#active.add(id);
    return true;
  }

  #canClaim(): boolean {
    if (this.#paused || this.#stopping || this.#claimMode === 'never') return false;
    if (!this.#gate.canClaim() && !this.#gate.canClaim(this.#ledger.countByState().ingesting)) return false; // ingest-gate (counts only while blocked)
    if (this.#health.assemblyline.consecutiveFailures >= AL_FAILURE_THRESHOLD) return false;
    return this.#ledger.inFlight() < this.#config.bridge.maxInFlight;
  }

  // ---------------------------------------------------------------- poller

  async #pollTick(): Promise<void> {
    // The poll is MASS's only heartbeat: it runs even while paused or at MaxInFlight, and one poll that hangs
    // (a half-open connection, a queue in the connection pool) must not stop the next one.
    const limitMs = Math.min(MAX_POLL_MS, Math.max(100, this.#config.mass.timeout * 1000));
    const timeout = AbortSignal.timeout(limitMs);
    let items: Awaited<ReturnType<MassClient['poll']>>;
    try {
      items = await this.#pollClient.poll(this.#config.mass.uuid, { signal: AbortSignal.any([this.#signal, timeout]) });
    } catch (err) {
      if (timeout.aborted && !this.#signal.aborted) {
        const e = new BridgeError('TIMEOUT', `MASS poll gave no answer within ${limitMs} ms`, { upstream: 'mass', cause: err });
        // The client saw an abort (not a failure); the status API must still show that MASS is not answering.
        recordFailure(this.#health.mass, e, this.#now());
        throw e;
      }
      throw err;
    }
    this.#lastPollAt = this.#now();
    this.#metrics?.pollSucceeded(this.#lastPollAt);
    const once = this.#claimMode === 'once';
    let claimed = 0;
    // MASS lists newest first; claim the oldest first.
    for (const sa of [...items].reverse()) {
      // One malformed item must not stop the claiming of all the others.
      if (typeof sa?.id !== 'string' || !sa.id || typeof sa.url !== 'string' || typeof sa.sample !== 'string') {
        this.#log.warn({ item: JSON.stringify(sa).slice(0, 500) }, 'scheduled analysis without id, url or sample ignored');
        continue;
      }
      if (this.#ledger.get(sa.id)) continue;
      if (!this.#canClaim()) break;
      const { job, created } = this.#ledger.claim({ id: sa.id, scheduledAnalysisUrl: sa.url, sampleUrl: sa.sample }, this.#now());
      if (created) {
        claimed++;
        this.#claimedThisRun++;
        this.#jobLog(job).info({ sample: sa.sample }, 'claimed scheduled analysis');
        this.emit('job', { job, event: { type: 'claimed' } } satisfies JobUpdate);
      }
    }
    if (once) this.#claimMode = 'never';
    if (claimed > 0) this.loops.worker.wake();
  }

  // ---------------------------------------------------------------- worker

  async #workerTick(): Promise<void> {
    if (this.#stopping) return;
    const free = this.#queue.concurrency - this.#queue.pending - this.#queue.size;
    if (free <= 0) return;
    // ingest-gate: while the gate holds every ingest, ingesting jobs are not picked (no hold written per job).
    const gateShut = this.#gate.blocksIngest(this.#now(), this.#gate.asyncLimit === null ? 0 : this.#ledger.countByState().waiting);
    const due = this.#ledger.due(gateShut ? WORK_STATES.filter((s) => s !== 'ingesting') : [...WORK_STATES], this.#now(), free + this.#active.size);
    let started = 0;
    for (const job of due) {
      if (started >= free) break;
      if (!this.#lock(job.id)) continue;
      started++;
      void this.#queue
        .add(() => this.#drive(job.id))
        .catch((err: unknown) => this.#log.error({ err, job: job.id }, 'job driver crashed'))
        .finally(() => {
          this.#active.delete(job.id);
          this.loops.worker.wake();
        });
    }
  }

  /** Runs consecutive steps of one job while it stays due (the caller holds the job's lock). */
  async #drive(id: string): Promise<void> {
    for (let i = 0; i < 16 && !this.#stopping; i++) {
      const job = this.#ledger.get(id);
      if (!job || !WORK_STATES.includes(job.state) || job.notBefore > this.#now()) return;
      try {
        await this.#step(job);
      } catch (err) {
        this.#onStepError(id, err);
        return;
      }
      const after = this.#ledger.get(id);
      if (!after || after.updatedAt === job.updatedAt && after.state === job.state) return;
    }
  }

  #onStepError(id: string, err: unknown): void {
    const job = this.#ledger.get(id);
    if (!job) return;
    const e = this.#signal.aborted ? new BridgeError('ABORTED', 'bridge shutting down', { cause: err }) : toBridgeError(err);
    const d = decideStepError(job, e, this.#policy, this.#now(), this.#random);
    if (d.kind === 'checkpoint') {
      this.#jobLog(job).info({ state: job.state }, 'step interrupted by shutdown; resumes after restart');
      return;
    }
    this.#apply(job, d.transition);
  }

  async #step(job: Job): Promise<void> {
    switch (job.state) {
      case 'claimed':
      case 'fetching':
        return this.#stepFetch(job);
      case 'ingesting':
        return this.#stepIngest(job);
      case 'collecting':
      case 'relating':
        return this.#stepCollect(job);
      case 'reporting':
        return job.errorCode ? this.#sendErrorReport(job) : this.#stepCollect(job);
      default:
        return;
    }
  }

  async #stepFetch(job: Job): Promise<void> {
    let sample: MassSample | 'invisible';
    try {
      sample = await this.#retry(() => this.#mass.getSample(job.sampleUrl, { signal: this.#signal }));
    } catch (err) {
      if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
      sample = 'invisible';
    }
    const own = sample !== 'invisible' && sample.sha256sum ? this.#ledger.ownSample(sample.sha256sum) : undefined;
    const t = decideSample(sample, this.#policy, own && own.jobId !== job.id ? { jobId: own.jobId, sid: own.sid } : undefined, this.#now());
    if (sample !== 'invisible') this.#samples.set(job.id, sample);
    this.#apply(job, t);
  }

  async #stepIngest(job: Job): Promise<void> {
    const attempt = job.attempts + 1;
    // ingest-gate: while a refusal or the async quota holds every ingest, wait without downloading from MASS.
    const heldUntil = this.#gate.tryStart(this.#now(), this.#gate.asyncLimit === null ? 0 : this.#ledger.countByState().waiting, job.id);
    if (heldUntil !== null) {
      this.#apply(job, { patch: { notBefore: heldUntil }, event: { type: 'ingest-held', message: this.#gate.reason ?? 'Assemblyline submission quota is full' } });
      return;
    }
    const neverDrop = this.#config.assemblyline.neverDrop || job.neverDrop === true;
    // [Assemblyline] IgnoreCache: every ingest bypasses AL's result cache; otherwise only a re-ingest of lost results does.
    const ignoreCache = this.#config.assemblyline.ignoreCache || job.ignoreCache === true;
    // Counted once the download is open, before the upload: a crash after AL accepted the file still uses up an
    // attempt, but a MASS outage that keeps the download from opening does not burn the attempts AL needs later.
    let counted = false;
    const countAttempt = (): void => {
      if (counted) return;
      counted = true;
      job = this.#apply(job, { patch: { attempts: attempt }, event: { type: 'ingest-started', data: { attempt, neverDrop, ignoreCache } } });
    };
    const al = this.#config.assemblyline;
    const params = ingestParams(al, job, this.#gate.withheld); // ingest-gate: only what the operator configured
    const source: MassSample | string = this.#samples.get(job.id) ?? job.sampleUrl;
    const request = {
      name: job.fileName ?? job.sha256 ?? job.id,
      metadata: ingestMetadata(al, this.#config.bridge.instanceName, job, attempt), // ingest-gate
      params,
      notificationQueue: al.notificationQueue,
      submissionProfile: al.submissionProfile || undefined,
      type: al.ingestType || undefined,
    };
    let ingestId: string;
    let via: IngestWay; // hash-first
    let gated = false; // ingest-gate
    try {
      ({ ingestId, via } = await this.#retry(async () => {
        try {
          // hash-first: a file AL already stores is ingested by its sha256: no MASS download, no upload (hash-first.ts).
          const byHash = await ingestHashFirst(this.#al, { enabled: al.hashFirst, sha256: job.sha256, request }, { signal: this.#signal }); // hash-first
          if (byHash) return (countAttempt(), { ...byHash, via: 'sha256' as const }); // hash-first
          // Re-opened on every attempt: a streamed body cannot be replayed.
          const download = await this.#mass.downloadSample(source, { signal: this.#signal });
          try {
            countAttempt();
            const uploaded = await this.#al.ingest(
              {
                ...request,
                body: download.body,
                // A known length goes out as Content-Length instead of chunked encoding (uWSGI and some proxies
                // in front of AL refuse chunked uploads). The download's own Content-Length is the truth for these bytes.
                size: download.size ?? job.fileSize ?? undefined,
              },
              { signal: this.#signal },
            );
            return { ...uploaded, via: 'upload' as const };
          } finally {
            download.body.destroy();
          }
        } catch (err) {
          // ingest-gate: a refusal every ingest would get is not retried here (no new MASS download per retry).
          if (this.#gate.onIngestError(err, this.#now(), ownParams(al, job), job.id)) {
            gated = true;
            throw new BridgeError('UPSTREAM_HTTP', (err as Error).message, { cause: err, transient: false });
          }
          throw err;
        }
      }));
    } catch (err) {
      const now = this.#now();
      this.#gate.release(); // ingest-gate
      // ingest-gate: the job keeps its state and its attempt; it waits for the gate instead of failing.
      if (gated) {
        const until = this.#gate.holdUntil(now) ?? now + 1000;
        this.#apply(job, { patch: { attempts: attempt - 1, notBefore: until }, event: { type: 'ingest-held', code: 'AL_REFUSED', message: this.#gate.reason ?? (err as Error).message } });
        if (this.#gate.refusal) this.#log.error({ reason: this.#gate.reason, fix: this.#gate.fix }, 'Assemblyline refuses every ingest; claiming stopped until it accepts one');
        return;
      }
      if (err instanceof BridgeError && err.code === 'NOT_FOUND' && err.upstream === 'mass') {
        this.#apply(job, errorReport('SAMPLE_INVISIBLE', 'sample download answered 404 (TLP above 0, or deleted)', now));
        return;
      }
      if (err instanceof BridgeError && err.upstream === 'assemblyline' && err.status === 413) {
        this.#apply(job, errorReport('AL_FILE_TOO_LARGE', `Assemblyline refused the upload as too large: ${err.message}`, now));
        return;
      }
      throw err;
    }
    this.#gate.onIngestOk(job.id); // ingest-gate
    const now = this.#now();
    const deadline = now + this.#policy.resultDeadlineMs;
    this.#samples.delete(job.id);
    this.#apply(job, {
      patch: { state: 'waiting', ingestId, sid: null, ignoreCache: false, deadline, notBefore: deadline, stepFailures: 0 },
      event: { type: 'ingested', data: { ingestId, attempt, via } }, // hash-first: `via` says which way the file went in
    });
  }

  /** collecting / relating / reporting (analysis report): read results, create related samples, report. */
  async #stepCollect(job: Job): Promise<void> {
    // A report sent before (answer lost, then a crash or exhausted retries): look for it before reading AL
    // again, or an expired submission would send an already reported job back to ingesting.
    const lookedUp = job.state === 'reporting';
    if (lookedUp && (await this.#finishIfReported(job))) return;
    const sid = job.sid;
    if (!sid) {
      this.#apply(job, errorReport('INTERNAL', 'no Assemblyline submission id recorded for this job', this.#now()));
      return;
    }
    const full = await this.#retry(() => this.#al.getSubmissionFull(sid, { signal: this.#signal }));
    if (!full) {
      // ingest-gate: a dead cached sid already replaced by another job's re-ingest: read the replacement instead.
      const replacement = this.#replacements.replacementFor(sid, this.#now());
      if (replacement) {
        this.#apply(job, { patch: { sid: replacement, cacheHit: true, notBefore: this.#now() }, event: { type: 'replacement-sid', message: `submission ${sid} is gone; using its replacement ${replacement}`, data: { sid, replacement } } });
        return;
      }
      if (!job.echoOf) this.#replacements.noteGone(job.id, sid); // ingest-gate
      this.#apply(job, decideResultsMissing(job, this.#policy, this.#now()));
      return;
    }
    const unusable = decideSubmissionState(job, full.state, this.#policy, this.#now());
    if (unusable) {
      this.#apply(job, unusable);
      return;
    }
    this.#replacements.noteCollected(job.id, sid, this.#now()); // ingest-gate
    const nowIso = new Date(this.#now()).toISOString();
    let plan: ReportPlan;
    if (job.echoOf) {
      plan = mapOwnSampleReport({ full, sha256: job.sha256 ?? '', parentSid: sid, cacheHit: job.cacheHit, now: nowIso }, this.#mapping);
    } else {
      const summary = await this.#retry(() => this.#al.getSubmissionSummary(sid, { signal: this.#signal }));
      plan = mapSubmissionToReport(
        { full, summary: summary ?? undefined, cacheHit: job.cacheHit, rootSha256: rootSha256(full, job), now: nowIso },
        this.#mapping,
      );
    }
    if (job.state === 'collecting') {
      job = this.#apply(job, {
        patch: { state: job.echoOf ? 'reporting' : 'relating', score: plan.maxScore },
        event: { type: 'collected', data: { sid, verdict: plan.verdict, related: plan.related.length, cacheHit: job.cacheHit } },
      });
    }
    if (job.state === 'relating') {
      await this.#relate(job, plan, full);
      job = this.#apply(job, { patch: { state: 'reporting' }, event: { type: 'related', data: { related: this.#ledger.relatedSamples(job.id).length } } });
    }
    const report: ReportSubmission = {
      analysisDate: new Date(this.#now()),
      tags: plan.tags,
      additionalMetadata: withClassification(this.#withMarker(plan.additionalMetadata, job), full), // classification
      jsonReportObjects: plan.jsonReportObjects,
    };
    await this.#sendReport(job, report, lookedUp && job.state === 'reporting');
  }

  #withMarker(metadata: Record<string, unknown>, job: Job): Record<string, unknown> {
    const al = metadata.assemblyline && typeof metadata.assemblyline === 'object' ? (metadata.assemblyline as Record<string, unknown>) : {};
    const ingestVia = ingestWayOf(this.#ledger.events(job.id)); // hash-first
    return { ...metadata, assemblyline: { ...al, [REPORT_MARKER_KEY]: job.id, bridge_instance: this.#config.bridge.instanceName, ...(ingestVia ? { ingest_via: ingestVia } : {}) } };
  }

  async #sendErrorReport(job: Job): Promise<void> {
    if (await this.#finishIfReported(job)) return;
    const plan = mapErrorReport({
      code: job.errorCode ?? 'INTERNAL',
      message: job.errorMessage ?? '',
      sid: job.sid,
      ingestId: job.ingestId,
      attempts: job.attempts,
      bridgeVersion: VERSION,
      uiBaseUrl: this.#mapping.uiBaseUrl,
      now: new Date(this.#now()).toISOString(),
    });
    await this.#sendReport(
      job,
      {
        analysisDate: new Date(this.#now()),
        tags: plan.tags,
        errorMessage: plan.errorMessage,
        additionalMetadata: this.#withMarker(plan.additionalMetadata, job),
      },
      true,
    );
  }

  /** Our report on the sample, found by the marker (after a lost answer or a MASS 500-after-save). */
  async #findOurReport(job: Job): Promise<MassReport | null> {
    try {
      const reports = await this.#mass.listSampleReports(job.sampleUrl, { signal: this.#signal });
      return reports.find((r) => (r.additional_metadata?.assemblyline as Record<string, unknown> | undefined)?.[REPORT_MARKER_KEY] === job.id) ?? null;
    } catch (err) {
      if (err instanceof BridgeError && err.code === 'NOT_FOUND') return null; // TLP-hidden sample: cannot look
      throw err;
    }
  }

  /**
   * After an earlier report attempt: when our report is on MASS (found by its marker), end the job with the
   * state that matches the report actually stored (an analysis report → done, an error report → failed).
   */
  async #finishIfReported(job: Job): Promise<boolean> {
    if (!this.#ledger.events(job.id).some((e) => e.type === 'report-attempt')) return false;
    const existing = await this.#retry(() => this.#findOurReport(job));
    if (!existing) return false;
    const state: JobState = existing.error_message == null ? 'done' : 'failed';
    this.#apply(job, {
      patch: { state, massReportUrl: existing.url, notBefore: 0, stepFailures: 0 },
      event: { type: 'report-sent', message: 'report found on MASS by its marker (an earlier answer was lost)', data: { outcome: 'found', error: state === 'failed' } },
    });
    return true;
  }

  /** `lookedUp`: #finishIfReported has just searched for our marker, so the first POST needs no second search. */
  async #sendReport(job: Job, report: ReportSubmission, lookedUp = false): Promise<void> {
    const attemptedBefore = this.#ledger.events(job.id).some((e) => e.type === 'report-attempt');
    let sentBefore = attemptedBefore && !lookedUp;
    const outcome = await this.#retry(async (): Promise<{ kind: 'sent' | 'found'; report: MassReport } | { kind: 'consumed' }> => {
      if (sentBefore) {
        // MASS 500 can mean "report saved, tag copy failed" (MASS.md §6): look before sending again.
        const existing = await this.#findOurReport(job);
        if (existing) return { kind: 'found', report: existing };
      }
      this.#ledger.appendEvent(job.id, { type: 'report-attempt', data: { error: job.errorCode !== null } }, this.#now());
      sentBefore = true;
      try {
        return { kind: 'sent', report: await this.#mass.submitReport(job.scheduledAnalysisUrl, report, { signal: this.#signal }) };
      } catch (err) {
        // 404 = the scheduled analysis is consumed: an earlier attempt of ours was accepted.
        if (err instanceof BridgeError && err.code === 'NOT_FOUND') return { kind: 'consumed' };
        throw err;
      }
    });
    const found = outcome.kind === 'found' ? outcome.report : null;
    const state: JobState = found ? (found.error_message == null ? 'done' : 'failed') : job.errorCode ? 'failed' : 'done';
    // 404 on the first POST: nothing of ours was ever sent, so the item was consumed by someone else or
    // deleted by an admin while we worked on it. There is nothing left to report to: end the job, say so.
    const kind = outcome.kind === 'consumed' && !attemptedBefore ? 'gone' : outcome.kind;
    const message =
      kind === 'sent'
        ? 'report accepted by MASS'
        : kind === 'found'
          ? 'report found on MASS by its marker (an earlier answer was lost)'
          : kind === 'consumed'
            ? 'scheduled analysis already consumed on MASS (an earlier report was accepted)'
            : 'scheduled analysis no longer exists on MASS (consumed elsewhere or deleted by an admin); no report was stored by this bridge';
    this.#apply(job, {
      patch: { state, massReportUrl: outcome.kind === 'consumed' ? job.massReportUrl : outcome.report.url, notBefore: 0, stepFailures: 0 },
      event: { type: 'report-sent', message, code: kind === 'gone' ? 'NOT_FOUND' : null, data: { outcome: kind, error: job.errorCode !== null } },
    });
  }

  // ---------------------------------------------------------------- related samples and relations

  async #relate(job: Job, plan: ReportPlan, full: SubmissionFull): Promise<void> {
    const sid = job.sid ?? '';
    const root = rootSha256(full, job);
    const prefix = this.#config.report.tagPrefix;
    // classification: derived samples never get a wider TLP than the results they come from.
    const derived = derivedTlp(full, this.#config.report.relatedTlp);
    if (!derived.ok) {
      this.#ledger.appendEvent(job.id, { type: 'related-skipped', message: derived.note, data: { classification: derived.classification } }, this.#now());
      this.#jobLog(job).warn({ classification: derived.classification }, derived.note);
      return;
    }
    const tlpLevel = derived.tlpLevel;
    const samples = new Map(this.#ledger.relatedSamples(job.id).map((r) => [r.key, r]));
    const relations = new Set(this.#ledger.relations(job.id).map((r) => r.key));
    const intents = new Set(
      this.#ledger
        .events(job.id)
        .filter((e) => e.type === 'relation-intent')
        .map((e) => String(e.data?.key)),
    );
    const urlOfFile = (sha: string): string => (sha === root ? job.sampleUrl : (samples.get(`file:${sha}`)?.massSampleUrl ?? job.sampleUrl));
    const tags = (...raw: string[]) => raw.map((t) => sanitizeTag(prefix + t)).filter((t): t is string => t !== null);

    for (const item of plan.related) {
      try {
        let rec = samples.get(item.key);
        if (!rec) {
          const massSample = await this.#createRelatedSample(job, item, sid, tlpLevel, tags);
          if (!massSample) continue;
          // The key is new for this job (not in `samples`), so the stored row is exactly this record.
          rec = { jobId: job.id, key: item.key, kind: item.kind, value: item.kind === 'file' ? item.sha256 : item.value, massSampleUrl: massSample.url, createdAt: this.#now() };
          this.#ledger.recordRelatedSample(rec, rec.createdAt);
          if (item.kind === 'file') {
            this.#ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: massSample.url }, this.#now());
          }
          samples.set(item.key, rec);
        }
        const otherUrl = item.kind === 'file' ? urlOfFile(item.parentSha256) : urlOfFile(item.sourceSha256);
        const key = item.kind === 'file' ? `dropped-by:${item.sha256}:${item.parentSha256}` : `${item.relation}:${item.key}:${item.sourceSha256}`;
        if (relations.has(key)) continue;
        await this.#createRelation(job, key, item.relation, rec.massSampleUrl, otherUrl, intents.has(key));
        relations.add(key);
      } catch (err) {
        if (isTransient(err) || this.#signal.aborted) throw err;
        // One related item MASS or AL refuses for good must not block the report; it is recorded and skipped.
        const e = toBridgeError(err);
        this.#ledger.appendEvent(job.id, { type: 'related-failed', code: e.code, message: e.message, data: { key: item.key } }, this.#now());
        this.#jobLog(job).warn({ key: item.key, err: e.toJSON() }, 'related item skipped');
      }
    }
  }

  async #createRelatedSample(
    job: Job,
    item: RelatedItem,
    sid: string,
    tlpLevel: number,
    tags: (...raw: string[]) => string[],
  ): Promise<MassSample | null> {
    const signal = this.#signal;
    if (item.kind === 'file') {
      const maxBytes = this.#config.report.maxExtractedSize;
      if (item.size !== null && item.size > maxBytes) {
        this.#ledger.appendEvent(job.id, { type: 'related-skipped', message: `extracted file larger than ${maxBytes} bytes`, data: { key: item.key } }, this.#now());
        return null;
      }
      // Recorded before the upload: MASS dispatches the new sample back to us at once (echo-back), maybe before we record its URL.
      this.#ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: '' }, this.#now());
      const bytes = await this.#retry(() => this.#al.downloadFileBytes(item.sha256, { sid, maxBytes }, { signal }));
      return this.#retry(() =>
        this.#mass.submitFileSample(
          {
            filename: item.name || item.sha256,
            body: bytes,
            tlpLevel,
            tags: tags('extracted', `relation:${(item.parentRelation || 'extracted').toLowerCase()}`, `sid:${sid}`),
          },
          { signal },
        ),
      );
    }
    const options = { tlpLevel, tags: tags('ioc', `ioc:${item.tagType}`, `sid:${sid}`) };
    switch (item.kind) {
      case 'ip':
        return this.#retry(() => this.#mass.submitIPSample(item.value, options, { signal }));
      case 'domain':
        return this.#retry(() => this.#mass.submitDomainSample(item.value, options, { signal }));
      case 'uri':
        return this.#retry(() => this.#mass.submitURISample(item.value, options, { signal }));
    }
  }

  /**
   * MASS does not deduplicate relations, so a POST is only repeated when a crash fell between the POST
   * and its record. The intent event marks that window; with relation_graph we look before re-posting.
   */
  async #createRelation(job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string, hadIntent: boolean): Promise<void> {
    // Two jobs of the same sample (MASS scheduled it twice) may relate the same pair at once: one at a time per pair.
    const lockKey = `${kind}\n${sampleUrl}\n${otherUrl}`;
    for (let busy = this.#relationLocks.get(lockKey); busy; busy = this.#relationLocks.get(lockKey)) await busy.catch(() => undefined);
    const run = this.#createRelationUnlocked(job, key, kind, sampleUrl, otherUrl, hadIntent);
    this.#relationLocks.set(lockKey, run);
    try {
      await run;
    } finally {
      if (this.#relationLocks.get(lockKey) === run) this.#relationLocks.delete(lockKey);
    }
  }

  async #createRelationUnlocked(job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string, hadIntent: boolean): Promise<void> {
    const signal = this.#signal;
    const record = (r: MassRelation): void =>
      this.#ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: r.url }, this.#now());
    const lookup = async (): Promise<MassRelation | undefined> => {
      if (!this.#mass.getRelationGraph) return undefined;
      const graph = await this.#mass.getRelationGraph(sampleUrl, 1, { signal });
      return graph.find((r) => sameMassUrl(r.sample, sampleUrl) && sameMassUrl(r.other, otherUrl) && relationClassMatches(r._cls, kind));
    };
    // Another job (the same sample scheduled again) may have created this exact relation already.
    const earlier = this.#ledger.findRelation(kind, sampleUrl, otherUrl);
    if (earlier) {
      this.#ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: earlier.massRelationUrl }, this.#now());
      this.#ledger.appendEvent(job.id, { type: 'relation-reused', data: { key, relation: earlier.massRelationUrl, job: earlier.jobId } }, this.#now());
      return;
    }
    let posted = hadIntent;
    const relation = await this.#retry(async () => {
      if (posted) {
        const existing = await lookup();
        if (existing) return existing;
      }
      this.#ledger.appendEvent(job.id, { type: 'relation-intent', data: { key, kind, sampleUrl, otherUrl } }, this.#now());
      posted = true;
      return this.#mass.addRelation(kind, sampleUrl, otherUrl, { signal });
    });
    record(relation);
  }

  // ---------------------------------------------------------------- listener

  async #listenTick(): Promise<void> {
    const b = this.#config.bridge;
    const queue = this.#config.assemblyline.notificationQueue;
    let popped = 0;
    if (!this.#stopping) {
      // No abort signal: the read is destructive, so an answer in flight must be received and stored.
      let messages: Awaited<ReturnType<AssemblylineClient['getMessages']>>;
      try {
        messages = await this.#al.getMessages(queue, b.queuePageSize);
        this.#gate.onApiOk(); // ingest-gate
      } catch (err) {
        this.#gate.onApiError(err, this.#now()); // ingest-gate: the daily API quota stops claiming and ingesting
        throw err;
      }
      popped = messages.length;
      if (popped > 0) {
        const valid = messages.filter((m): m is typeof m & { ingest_id: string } => typeof m?.ingest_id === 'string');
        // A message without ingest_id matches no job; it is logged (not stored) so that an operator can see it.
        if (valid.length < popped) this.#log.warn({ queue, dropped: popped - valid.length, sample: JSON.stringify(messages.find((m) => typeof m?.ingest_id !== 'string')).slice(0, 500) }, 'notification without ingest_id ignored');
        this.#ledger.storeMessages(queue, valid, this.#now());
        for (const m of valid) {
          const t = Date.parse(String(m.notify_time ?? m.ingest_time ?? ''));
          if (Number.isFinite(t)) this.#metrics?.notificationLag((this.#now() - t) / 1000);
        }
      }
    }
    this.#processMessages();
    if (popped >= b.queuePageSize && !this.#stopping) this.loops.listener.wake();
  }

  #processMessages(): void {
    let touched = false;
    for (const stored of this.#ledger.unprocessedMessages(1000)) {
      const view = parseNotification(stored.body);
      const job = this.#ledger.findByIngestId(view.ingestId) ?? (view.bridgeJob ? this.#ledger.get(view.bridgeJob) : undefined);
      if (!job) {
        this.#log.info({ ingestId: view.ingestId }, 'notification for an unknown job: recorded and ignored');
        this.#ledger.markMessageProcessed(stored.seq, null, this.#now());
        continue;
      }
      if (!this.#lock(job.id)) continue; // a step is running on this job; looked at again next round
      try {
        const current = this.#ledger.get(job.id)!;
        const d = decideNotification(current, view, this.#policy, this.#now(), this.#random);
        if (d.kind === 'apply') {
          this.#apply(current, d.transition);
          touched = true;
        } else {
          this.#jobLog(current).debug({ ingestId: view.ingestId, reason: d.reason }, 'notification ignored');
        }
        this.#ledger.markMessageProcessed(stored.seq, job.id, this.#now());
      } finally {
        this.#active.delete(job.id);
      }
    }
    if (touched) this.loops.worker.wake();
  }

  // ---------------------------------------------------------------- reconciler

  /** [Bridge] RetainDays: at most once an hour, the history of long-finished jobs is deleted. */
  #pruneIfDue(): void {
    const days = this.#config.bridge.retainDays;
    const now = this.#now();
    if (!(days > 0) || now - this.#lastPruneAt < PRUNE_INTERVAL_MS) return;
    this.#lastPruneAt = now;
    const removed = this.#ledger.prune(now - days * 86_400_000);
    if (removed.events + removed.messages > 0) this.#log.info({ ...removed, retainDays: days }, 'ledger: pruned the history of long-finished jobs');
  }

  async #reconcileTick(): Promise<void> {
    if (this.#stopping) return;
    this.#pruneIfDue();
    for (const job of this.#ledger.due(['waiting'], this.#now(), 50)) {
      if (this.#stopping) return;
      if (!this.#lock(job.id)) continue;
      try {
        const current = this.#ledger.get(job.id);
        if (!current || current.state !== 'waiting' || current.notBefore > this.#now()) continue;
        let lookup: DeadlineLookup;
        try {
          lookup = await this.#lookupSubmission(current);
        } catch (err) {
          this.#onStepError(job.id, err);
          continue;
        }
        this.#apply(current, decideDeadline(current, lookup, this.#policy, this.#now()));
      } finally {
        this.#active.delete(job.id);
      }
    }
    this.loops.worker.wake();
  }

  /** AL 4.7+: sid == ingest_id for a fresh analysis; older servers: search our correlation metadata. */
  async #lookupSubmission(job: Job): Promise<DeadlineLookup> {
    const signal = this.#signal;
    // A known sid (a cached submission that was still running when collected) first, then the ingest_id.
    for (const id of new Set([job.sid, job.ingestId])) {
      if (!id) continue;
      const sub = await this.#retry(() => this.#al.getSubmission(id, { signal }));
      // 'failed' is collected too: the collect step re-ingests it with ignore_cache (decideSubmissionState).
      if (sub) return sub.state === 'submitted' ? { kind: 'running' } : { kind: 'completed', sid: sub.sid };
    }
    try {
      const query = reconcileQuery(this.#config.assemblyline, job); // ingest-gate
      if (query === null) return { kind: 'missing' };
      const found = await this.#al.searchSubmissions(query, { fl: 'sid,state', rows: 10, sort: 'times.submitted desc' }, { signal });
      const items = found.items as Array<{ sid?: unknown; state?: unknown }>;
      const done = items.find((i) => i.state === 'completed' && typeof i.sid === 'string');
      if (done) return { kind: 'completed', sid: String(done.sid) };
      if (items.some((i) => i.state === 'submitted')) return { kind: 'running' };
    } catch (err) {
      if (isTransient(err)) throw err;
      this.#jobLog(job).debug({ err }, 'submission search unavailable; treating as missing');
    }
    return { kind: 'missing' };
  }

  // ---------------------------------------------------------------- control

  #makeControl(): BridgeControl {
    const waitForLock = async (id: string): Promise<void> => {
      for (let i = 0; i < 600; i++) {
        if (this.#lock(id)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new BridgeError('INTERNAL', `job ${id} is busy; try again`);
    };
    const unfinished = (id: string): Job => {
      const job = this.#ledger.get(id);
      if (!job) throw new BridgeError('NOT_FOUND', `no job ${id}`);
      if (TERMINAL_STATES.includes(job.state)) throw new BridgeError('INTERNAL', `job ${id} is already reported (${job.state})`);
      return job;
    };
    /** Runs an operator action under the job's lock; the job may have finished while we waited for it. */
    const operatorAction = async (id: string, action: (current: Job) => Promise<Job>): Promise<Job> => {
      unfinished(id);
      await waitForLock(id);
      try {
        return await action(unfinished(id));
      } finally {
        this.#active.delete(id);
      }
    };
    return {
      status: (): BridgeStatus => ({
        startedAt: this.#startedAt,
        paused: this.#paused,
        pollTimeSeconds: this.#config.mass.pollTime,
        lastPollAt: this.#lastPollAt,
        upstreams: { mass: { ...this.#health.mass }, assemblyline: { ...this.#health.assemblyline } },
        massApiRoot: this.#config.global.apiRoot,
        assemblylineUiUrl: this.#mapping.uiBaseUrl,
        instanceUuid: this.#config.mass.uuid,
        ingestBlocked: this.#gate.refusal ? { reason: this.#gate.refusal.reason, fix: this.#gate.refusal.fix, since: this.#gate.refusal.since } : null, // ingest-gate
      }),
      pause: () => {
        this.#paused = true;
      },
      resume: () => {
        this.#paused = false;
        this.loops.poller.wake();
      },
      retryJob: (id) =>
        operatorAction(id, (current) => {
          const held = [...this.#ledger.events(id)].reverse().find((e) => e.type === 'held');
          const from = current.state === 'held' ? ((held?.data?.from as JobState | undefined) ?? 'reporting') : current.state;
          const updated = this.#apply(current, {
            patch: { state: from, notBefore: this.#now(), stepFailures: 0 },
            event: { type: 'retry', message: 'retried by operator' },
          });
          this.loops.worker.wake();
          return Promise.resolve(updated);
        }),
      abandonJob: (id, reason) =>
        operatorAction(id, async (current) => {
          await this.#sendErrorReport(this.#apply(current, errorReport('ABANDONED', `abandoned by operator: ${reason}`, this.#now())));
          return this.#ledger.get(id)!;
        }),
    };
  }
}

function rootSha256(full: SubmissionFull, job: Job): string {
  const first = full.files?.[0]?.sha256;
  return (typeof first === 'string' && first ? first : (job.sha256 ?? '')).toLowerCase();
}

const RELATION_CLS: Record<RelationKind, string> = {
  'dropped-by': 'DroppedBy',
  'contacted-by': 'ContactedBy',
  'resolved-by': 'ResolvedBy',
  'retrieved-by': 'RetrievedBy',
};

function relationClassMatches(cls: string, kind: RelationKind): boolean {
  return cls.includes(RELATION_CLS[kind]);
}

export function createBridge(deps: BridgeDeps): Bridge {
  return new BridgeImpl(deps);
}
