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
  /** ms of the last successful MASS poll, null before the first. */
  lastPollAt: number | null;
  upstreams: { mass: UpstreamHealth; assemblyline: UpstreamHealth };
  massApiRoot: string;
  assemblylineUiUrl: string;
  instanceUuid: string;
  /** Each state's age budget in ms (null = none): a job longer in the state is moved on by the reconciler. */
  stateBudgetsMs?: Record<string, number | null>;
  /** Set while Assemblyline refuses every ingest (configuration or daily quota): claiming is stopped until it is fixed. */
  ingestBlocked?: { reason: string; fix: string; since: number } | null;
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
