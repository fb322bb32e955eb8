/**
 * What the loops and steps share: configuration, clients (instrumented), the ledger, the policy, the per-job
 * lock and the shutdown signal. `apply` is the one way a step changes a job: it writes the transition to the
 * ledger (which checks it against the state table); the instrumented clients flush the ledger before every
 * upstream request, so the transition is durable before any side effect that depends on it.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import pRetry, { type Options as PRetryOptions } from 'p-retry';
import type { AssemblylineClient } from '../assemblyline/types.js';
import { DEFAULT_IDENTITY } from '../config/identities.js';
import type { BridgeConfig } from '../config/types.js';
import { BridgeError, isTransient } from '../errors.js';
import type { Job, Ledger, NewEvent } from '../ledger/types.js';
import { TERMINAL_STATES } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { defaultMappingOptions } from '../mapping/index.js';
import type { MappingOptions } from '../mapping/types.js';
import type { MassClient, MassSample } from '../mass/types.js';
import type { BridgeMetrics } from '../metrics.js';
import { VERSION } from '../version.js';
import type { UpstreamHealth } from './control.js';
import type { Policy, Transition } from './decide.js';
import { IngestGate } from './ingest-gate.js';
import { ReplacementSids } from './ingest-request.js';
import { instrument, newHealth } from './instrument.js';
import type { Loop } from './loop.js';
import { RepeatedFailures } from './repeated-failures.js';
import type { BudgetLimits } from './states.js';

/**
 * `pRetry(fn, options)`, with the first attempt made directly: most calls succeed at once, and p-retry's set-up
 * (option checks, its own promise chain) is then skipped. A first attempt that fails is handed to pRetry as its
 * attempt 1 (same failure handling, backoff and later attempts). With `options.signal` aborted before the first
 * attempt or by the end of a successful one, it rejects with the signal's reason, as pRetry does.
 */
export async function retryTransient<T>(fn: () => Promise<T>, options: PRetryOptions & { signal: AbortSignal }): Promise<T> {
  if (options.signal.aborted) return pRetry(fn, options);
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    let replayed = false;
    return pRetry(() => {
      if (replayed) return fn();
      replayed = true;
      return Promise.reject(error as Error);
    }, options);
  }
  // pRetry checks the signal after a successful attempt too (and then throws its reason).
  if (options.signal.aborted) return pRetry(fn, options);
  return result;
}

/** Consecutive identical failures of one related item, while its upstream answers other requests, before it is skipped. */
export const SAME_FAILURE_LIMIT = 5;

export interface BridgeDeps {
  config: BridgeConfig;
  mass: MassClient;
  assemblyline: AssemblylineClient;
  /**
   * A MASS client used only for the poll (default: `mass`). The poll is MASS's only heartbeat; with its own
   * connection it never queues behind sample downloads that hold every connection of a shared pool.
   */
  pollClient?: MassClient;
  /**
   * The identities after the first ([AssemblylineAnalysis:NAME] sections), each with its own MASS clients (built
   * with its instance key). `mass`/`pollClient` above are the first identity's, named `default`.
   */
  identities?: IdentityDeps[];
  ledger: Ledger;
  logger: Logger;
  metrics?: BridgeMetrics;
  now?: () => number;
  random?: () => number;
  /** Test-only hook called at each named side-effect boundary (see crash-point.ts); no-op by default. */
  crashPoint?: (name: string) => void;
  /** Upper bound of one poll in ms (default MAX_POLL_MS); tests shorten it. */
  maxPollMs?: number;
}

/** One more instance of the analysis system on MASS served by this bridge, with its clients. */
export interface IdentityDeps {
  name: string;
  uuid: string;
  /** MASS client with this instance's key, for the steps of the jobs this identity claims. */
  mass: MassClient;
  /** Its poll's own one-connection client (default: `mass`). */
  pollClient?: MassClient;
}

/**
 * An identity at run time: an instance of the analysis system on MASS that this bridge polls on its own timer (its
 * poll is its heartbeat) and whose key reports the jobs it claimed.
 */
export interface Identity {
  readonly name: string;
  readonly uuid: string;
  readonly mass: MassClient;
  readonly pollClient: MassClient;
  /** ms of its last successful poll, null before the first. */
  lastPollAt: number | null;
  /** Scheduled analyses MASS listed for this instance at its last successful poll (all pending, ours in flight included). */
  pendingOnMass: number | null;
  /** Secret-free message of the last failed poll, null once a poll succeeds. */
  lastPollError: string | null;
  /** Its failed polls in a row, so that a poll failing the same way every PollTime is logged once a minute. */
  readonly pollFailures: RepeatedFailures;
}

/** MASS counts an instance online while its last poll is less than 10 minutes old (MASS.md §3 "Heartbeat"). */
export const MASS_ONLINE_WINDOW_MS = 10 * 60_000;

/** Upper bound of one poll, whatever [AssemblylineAnalysis] Timeout says: MASS marks us offline after 10 minutes without one. */
export const MAX_POLL_MS = 4 * 60_000;

/** What `on('job', …)` listeners receive after every ledger transition. */
export interface JobUpdate {
  job: Job;
  event: NewEvent;
}

/** What the bridge starts, stops and wakes: a Loop, or a group of them (one poller per identity). */
export interface Runnable {
  readonly name: string;
  readonly running: boolean;
  start(): void;
  stop(): Promise<void>;
  wake(): void;
}

export interface Loops {
  /** One poll loop per identity, started, stopped and woken together. */
  poller: Runnable;
  worker: Loop;
  listener: Loop;
  reconciler: Loop;
}

/** Marker in every report's additional_metadata.assemblyline: finds our report after a lost answer. */
export const REPORT_MARKER_KEY = 'bridge_job';

/** Assemblyline failing this many times in a row stops claiming new work. */
export const AL_FAILURE_THRESHOLD = 3;

/** Default [Bridge] OutageBudget (seconds) when the configuration predates the key. */
export const DEFAULT_OUTAGE_BUDGET_S = 12 * 3600;

export class BridgeContext {
  readonly config: BridgeConfig;
  readonly ledger: Ledger;
  readonly mass: MassClient;
  readonly pollClient: MassClient;
  readonly al: AssemblylineClient;
  readonly log: Logger;
  readonly metrics?: BridgeMetrics;
  readonly now: () => number;
  readonly random: () => number;
  /** Test-only hook at each named side-effect boundary (see crash-point.ts). */
  readonly crashPoint: (name: string) => void;
  /** True when a crash-point hook was given: only then do the steps add the test-only taps (crash-point.ts). */
  readonly crashArmed: boolean;
  /** Upper bound of one poll (ms): MAX_POLL_MS unless the deps shorten it. */
  readonly maxPollMs: number;
  readonly policy: Policy;
  readonly mapping: MappingOptions;
  readonly health: { mass: UpstreamHealth; assemblyline: UpstreamHealth };
  readonly queue: PQueue;
  readonly events: EventEmitter;
  /** Per-job lock: a job is touched by one loop at a time. */
  readonly active = new Set<string>();
  /** Sample JSON read by the fetch step, reused by the ingest step that usually follows at once. */
  readonly samples = new Map<string, MassSample>();
  /** Relation creations in progress, by kind + endpoints (see steps/relate.ts). */
  readonly relationLocks = new Map<string, Promise<void>>();
  readonly abort = new AbortController();
  readonly startedAt: number;
  loops!: Loops;
  paused = false;
  stopping = false;
  claimMode: 'always' | 'once' | 'never' = 'always';
  claimedThisRun = 0;
  /** With claimMode 'once': the identities whose one claiming poll has happened. */
  readonly polledOnce = new Set<string>();
  /** Every identity, the first ([AssemblylineAnalysis], `default`) first. */
  readonly identities: readonly Identity[];
  lastPruneAt = Number.NEGATIVE_INFINITY;
  /** Set when a notification-queue read had an uncertain outcome: waiting jobs are looked up at once. */
  queueReadUncertainAt: number | null;
  /** Configuration refusals and quotas of Assemblyline that hold every ingest (see ingest-gate.ts). */
  readonly gate: IngestGate;
  /** Replacement sids of dead cached submissions (see ingest-request.ts). */
  readonly replacements = new ReplacementSids();

  constructor(deps: BridgeDeps, events: EventEmitter) {
    this.events = events;
    this.config = deps.config;
    this.ledger = deps.ledger;
    this.log = deps.logger;
    this.metrics = deps.metrics;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.crashPoint = deps.crashPoint ?? (() => undefined);
    this.crashArmed = deps.crashPoint !== undefined;
    this.maxPollMs = deps.maxPollMs ?? MAX_POLL_MS;
    this.startedAt = this.now();
    // A shutdown or crash may have closed the ledger while a queue read was open: look once at start.
    this.queueReadUncertainAt = this.startedAt;
    this.health = { mass: newHealth(), assemblyline: newHealth() };
    // Group commit: every upstream request first makes the ledger writes durable (one commit shared by the calls
    // of the same turn), so a side effect never depends on a transition a crash could lose.
    const durable = this.ledger;
    this.mass = instrument(deps.mass, 'mass', this.health.mass, deps.metrics, this.now, durable, DEFAULT_IDENTITY);
    this.pollClient = deps.pollClient ? instrument(deps.pollClient, 'mass', this.health.mass, deps.metrics, this.now, durable, DEFAULT_IDENTITY) : this.mass;
    const identity = (name: string, uuid: string, mass: MassClient, pollClient: MassClient): Identity => ({ name, uuid, mass, pollClient, lastPollAt: null, pendingOnMass: null, lastPollError: null, pollFailures: new RepeatedFailures() });
    this.identities = [
      identity(DEFAULT_IDENTITY, deps.config.mass.uuid, this.mass, this.pollClient),
      ...(deps.identities ?? []).map((d) => {
        const mass = instrument(d.mass, 'mass', this.health.mass, deps.metrics, this.now, durable, d.name);
        // The poll of a further identity keeps its own health record: a wrong key of one identity is that identity's
        // problem (its poll error and /ready name it), not "MASS is down" while the other identities work. A MASS
        // outage still shows on the shared record through the first identity's poll and every step.
        return identity(d.name, d.uuid, mass, d.pollClient ? instrument(d.pollClient, 'mass', newHealth(), deps.metrics, this.now, durable, d.name) : mass);
      }),
    ];
    if (new Set(this.identities.map((i) => i.name)).size !== this.identities.length) {
      throw new BridgeError('CONFIG_INVALID', `identity names must differ: ${this.identities.map((i) => i.name).join(', ')}`);
    }
    this.al = instrument(deps.assemblyline, 'assemblyline', this.health.assemblyline, deps.metrics, this.now, durable);
    const b = this.config.bridge;
    this.policy = {
      maxAttempts: Math.max(1, b.maxAttempts),
      resultDeadlineMs: b.resultDeadline * 1000,
      retryBaseMs: b.retryBaseDelay * 1000,
      retryMaxMs: b.retryMaxDelay * 1000,
      maxFileSize: Math.min(b.maxFileSize, this.config.assemblyline.maxFileSize || b.maxFileSize),
      reanalyseOwnSamples: b.reanalyseOwnSamples,
      outageMs: (b.outageBudget ?? DEFAULT_OUTAGE_BUDGET_S) * 1000,
    };
    const r = this.config.report;
    this.mapping = defaultMappingOptions({
      uiBaseUrl: this.config.assemblyline.uiUrl || this.config.assemblyline.url,
      bridgeVersion: VERSION,
      tagKinds: r.tagKinds,
      maxTags: r.maxTags,
      tagPrefix: r.tagPrefix,
      maxSectionBody: r.maxSectionBody,
      extractedFiles: r.extractedFiles,
      extractedRelations: r.extractedRelations,
      maxDepth: r.maxDepth,
      maxExtracted: r.maxExtracted,
      maxExtractedSize: r.maxExtractedSize,
      networkIocs: r.networkIocs,
      staticIocs: r.staticIocs,
      maxIocs: r.maxIocs,
      iocMinVerdict: r.iocMinVerdict,
    });
    // An async quota slot frees when a submission finishes, which the bridge sees at the next queue read.
    // A blocked gate probes once per RetryMaxDelay (at most a minute).
    this.gate = new IngestGate({ asyncQuotaWaitMs: Math.max(50, b.queuePollTime * 1000), probeIntervalMs: Math.min(60_000, Math.max(100, b.retryMaxDelay * 1000)) });
    this.queue = new PQueue({ concurrency: Math.max(1, b.concurrency) });
    // One shutdown signal is shared by every in-flight call.
    setMaxListeners(0, this.abort.signal);
  }

  /**
   * ms of the least recent successful poll over all identities (null while one has not polled yet): the bridge is
   * only as reachable for MASS as its least recently seen instance. With one identity, its last poll.
   */
  get lastPollAt(): number | null {
    let oldest: number | null = null;
    for (const i of this.identities) {
      if (i.lastPollAt === null) return null;
      if (oldest === null || i.lastPollAt < oldest) oldest = i.lastPollAt;
    }
    return oldest;
  }

  /** Whether MASS counts the identity online (a poll within 10 minutes), so that its scheduler gives it work. */
  isOnline(identity: Identity): boolean {
    return identity.lastPollAt !== null && this.now() - identity.lastPollAt < MASS_ONLINE_WINDOW_MS;
  }

  /**
   * The identity whose key works on the job: the one that claimed it. A job of an identity no longer configured is
   * taken over by the identity polled most recently (online if any is; MASS lets any instance report any scheduled
   * analysis, MASS.md §1), the first identity while none has polled yet.
   */
  identityOf(job: Pick<Job, 'identity'>): Identity {
    const name = job.identity ?? DEFAULT_IDENTITY;
    const own = this.identities.find((i) => i.name === name);
    if (own) return own;
    let best = this.identities[0];
    for (const i of this.identities) if ((i.lastPollAt ?? -Infinity) > (best.lastPollAt ?? -Infinity)) best = i;
    return best;
  }

  /**
   * The context as the steps of one job see it: `mass` is the MASS client of the identity that claimed the job;
   * everything else is this context itself (a prototype view, so the shared state, lock and queue stay one).
   */
  forJob(job: Pick<Job, 'identity'>): BridgeContext {
    const identity = this.identityOf(job);
    if (identity.mass === this.mass) return this;
    return Object.create(this, { mass: { value: identity.mass, enumerable: true } }) as BridgeContext;
  }

  /** The numbers the state table's budgets are made of. */
  get budgetLimits(): BudgetLimits {
    return { maxAttempts: this.policy.maxAttempts, outageMs: this.policy.outageMs ?? DEFAULT_OUTAGE_BUDGET_S * 1000, resultDeadlineMs: this.policy.resultDeadlineMs, sameFailureLimit: SAME_FAILURE_LIMIT };
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** One upstream call with StepRetries attempts and exponential backoff for transient failures. */
  retry<T>(fn: () => Promise<T>): Promise<T> {
    const b = this.config.bridge;
    return retryTransient(fn, {
      retries: Math.max(0, b.stepRetries - 1),
      minTimeout: b.retryBaseDelay * 1000,
      maxTimeout: b.retryMaxDelay * 1000,
      randomize: true,
      signal: this.signal,
      shouldRetry: ({ error }) => !this.signal.aborted && isTransient(error),
    });
  }

  jobLog(job: Job): Logger {
    return this.log.child({ job: job.id, sha256: job.sha256 ?? undefined, ingestId: job.ingestId ?? undefined, sid: job.sid ?? undefined });
  }

  /** Writes a transition (the ledger checks it against the state table), logs it and tells the listeners. */
  apply(job: Job, t: Transition): Job {
    // A new state starts with a clean failure count (backoff and the report-500 limit count per step).
    const patch = t.patch.state !== undefined && t.patch.state !== job.state && t.patch.stepFailures === undefined ? { ...t.patch, stepFailures: 0 } : t.patch;
    const updated = this.ledger.update(job.id, patch, t.event, this.now());
    const level = t.event.type === 'retry-later' || t.event.type === 'held' ? 'warn' : 'info';
    // The job's child logger only for a line that is written (a child costs more than the level check).
    if (this.log.isLevelEnabled(level)) this.jobLog(updated)[level]({ event: t.event.type, state: updated.state, code: t.event.code ?? undefined }, t.event.message ?? t.event.type);
    if (TERMINAL_STATES.includes(updated.state) && !TERMINAL_STATES.includes(job.state)) {
      this.metrics?.jobFinished(updated.state as 'done' | 'failed', Math.max(0, (this.now() - updated.createdAt) / 1000));
      this.samples.delete(job.id);
    }
    this.events.emit('job', { job: updated, event: t.event } satisfies JobUpdate);
    return updated;
  }

  lock(id: string): boolean {
    if (this.active.has(id)) return false;
    this.active.add(id);
    return true;
  }

  unlock(id: string): void {
    this.active.delete(id);
  }

  canClaim(): boolean {
    if (this.paused || this.stopping || this.claimMode === 'never') return false;
    // The ingest gate counts the ingesting jobs only while it blocks.
    if (!this.gate.canClaim() && !this.gate.canClaim(this.ledger.countByState().ingesting)) return false;
    if (this.health.assemblyline.consecutiveFailures >= AL_FAILURE_THRESHOLD) return false;
    return this.ledger.inFlight() < this.config.bridge.maxInFlight;
  }

  /** Submissions of the bridge still running in Assemblyline (each holds an async quota slot), once the quota is known. */
  inAnalysis(): number {
    return this.gate.asyncLimit === null ? 0 : this.ledger.countByState().waiting;
  }

  /** The error the shutdown gives every in-flight call. */
  aborted(cause?: unknown): BridgeError {
    return new BridgeError('ABORTED', 'bridge shutting down', cause === undefined ? {} : { cause });
  }
}
