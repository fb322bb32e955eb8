/**
 * What the loops and steps share: configuration, clients (instrumented), the ledger, the policy, the per-job
 * lock and the shutdown signal. `apply` is the one way a step changes a job: it writes the transition to the
 * ledger (which checks it against the state table); the instrumented clients flush the ledger before every
 * upstream request, so the transition is durable before any side effect that depends on it.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import pRetry from 'p-retry';
import type { AssemblylineClient } from '../assemblyline/types.js';
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
import type { BudgetLimits } from './states.js';

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
  ledger: Ledger;
  logger: Logger;
  metrics?: BridgeMetrics;
  now?: () => number;
  random?: () => number;
  /** Test-only hook called at each named side-effect boundary (see crash-point.ts); no-op by default. */
  crashPoint?: (name: string) => void;
}

/** What `on('job', …)` listeners receive after every ledger transition. */
export interface JobUpdate {
  job: Job;
  event: NewEvent;
}

export interface Loops {
  poller: Loop;
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
  lastPollAt: number | null = null;
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
    this.startedAt = this.now();
    // A shutdown or crash may have closed the ledger while a queue read was open: look once at start.
    this.queueReadUncertainAt = this.startedAt;
    this.health = { mass: newHealth(), assemblyline: newHealth() };
    // Group commit: every upstream request first makes the ledger writes durable (one commit shared by the calls
    // of the same turn), so a side effect never depends on a transition a crash could lose.
    const durable = this.ledger;
    this.mass = instrument(deps.mass, 'mass', this.health.mass, deps.metrics, this.now, durable);
    this.pollClient = deps.pollClient ? instrument(deps.pollClient, 'mass', this.health.mass, deps.metrics, this.now, durable) : this.mass;
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
    return pRetry(fn, {
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
    const log = this.jobLog(updated);
    const level = t.event.type === 'retry-later' || t.event.type === 'held' ? 'warn' : 'info';
    log[level]({ event: t.event.type, state: updated.state, code: t.event.code ?? undefined }, t.event.message ?? t.event.type);
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
