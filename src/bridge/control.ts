/** What the bridge exposes to the status API and the CLI: read-only status plus operator actions. */
import type { Job } from '../ledger/types.js';

export interface UpstreamHealth {
  /** ms since epoch of the last successful call, null before the first. */
  lastSuccessAt: number | null;
  lastErrorAt: number | null;
  /** Secret-free message of the last error. */
  lastError: string | null;
  lastErrorCode: string | null;
  consecutiveFailures: number;
  /**
   * Calls the upstream refuses for a reason an operator must fix (credentials 401/403, a daily quota), by
   * operation (e.g. `submit_ip`), until that operation succeeds again. Jobs needing them wait; /ready says why.
   */
  refusals?: Record<string, { code: string; message: string; at: number }>;
}

export interface BridgeStatus {
  startedAt: number;
  paused: boolean;
  /** Seconds between MASS polls (for the /ready rule "a poll within 2 × PollTime"). */
  pollTimeSeconds: number;
  /**
   * ms of the last successful MASS poll, null before the first. With several identities: the least recent of their
   * last polls (null while one has not polled yet).
   */
  lastPollAt: number | null;
  upstreams: { mass: UpstreamHealth; assemblyline: UpstreamHealth };
  massApiRoot: string;
  assemblylineUiUrl: string;
  /** UUID of the first identity ([AssemblylineAnalysis] UUID). */
  instanceUuid: string;
  /** Every identity (instance of the analysis system on MASS) this bridge serves, the first (`default`) first. */
  identities?: IdentityStatus[];
  /** Each state's age budget in ms (null = none): a job longer in the state is moved on by the reconciler. */
  stateBudgetsMs?: Record<string, number | null>;
  /** Set while Assemblyline refuses every ingest (configuration or daily quota): claiming is stopped until it is fixed. */
  ingestBlocked?: { reason: string; fix: string; since: number } | null;
}

/** One identity as the status API, the status page and the metrics show it. */
export interface IdentityStatus {
  /** `default` for [AssemblylineAnalysis], else NAME of [AssemblylineAnalysis:NAME]. */
  name: string;
  uuid: string;
  /** ms of its last successful poll, null before the first. */
  lastPollAt: number | null;
  /** Scheduled analyses MASS listed for the instance at that poll (every pending one, those in flight included). */
  pendingOnMass: number | null;
  /** Jobs it claimed that are not reported yet (held jobs excluded). */
  inFlight: number;
  /** MASS counts the instance online (a poll less than 10 minutes ago) and schedules work to it. */
  online: boolean;
  /** Secret-free message of its last failed poll; null once a poll succeeds. */
  lastPollError: string | null;
}

export interface BridgeControl {
  status(): BridgeStatus;
  /** Stop claiming new work; polling (the MASS heartbeat) goes on. Idempotent. */
  pause(): void;
  resume(): void;
  /** Puts a held or failed-but-unreported job back to work; throws BridgeError NOT_FOUND / INTERNAL when it cannot. */
  retryJob(id: string): Promise<Job>;
  /** Sends the error report for the job (reason in error_message) and ends it as failed. */
  abandonJob(id: string, reason: string): Promise<Job>;
}
