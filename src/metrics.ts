/**
 * The bridge's Prometheus metrics (prom-client), names prefixed massal_. The bridge records
 * events through this interface; the status API serves `registry`.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { isUp, type UpstreamHealthReading } from './health.js';
import type { JobState } from './ledger/types.js';
import { VERSION } from './version.js';

export type UpstreamTarget = 'mass' | 'assemblyline';

export interface BridgeMetrics {
  readonly registry: Registry;
  /**
   * One upstream HTTP call: operation e.g. poll, download, ingest, get_messages, submission_full, submit_report.
   * `identity`: for MASS calls, the identity whose key made the call (`default` or NAME of [AssemblylineAnalysis:NAME]);
   * absent for Assemblyline calls, whose series then have no `identity` label.
   */
  upstreamRequest(target: UpstreamTarget, operation: string, outcome: 'ok' | 'error', seconds: number, identity?: string): void;
  /** A job reached done or failed; seconds from claim to report. */
  jobFinished(state: 'done' | 'failed', seconds: number): void;
  /** Seconds between AL's notify_time (or ingest) and the bridge reading the message. */
  notificationLag(seconds: number): void;
  /** A successful MASS poll at this time (ms since epoch). */
  pollSucceeded(atMs: number): void;
  /** Called before each scrape with fresh ledger numbers. */
  setLedgerGauges(input: { byState: Record<JobState, number>; inFlight: number; ledgerBytes: number; writeErrors?: number; commits?: number }): void;
  /**
   * Called before each scrape with the bridge status (paused, upstream health, oldest in-flight age).
   * Optional so hand-written fakes of this interface stay valid; createMetrics implements it.
   */
  setStatusGauges?(input: StatusGaugesInput): void;
  /**
   * Called before each scrape: seconds the job longest in each unfinished state has been in it (0 when none).
   * Optional so hand-written fakes of this interface stay valid; createMetrics implements it.
   */
  setOldestJobAges?(ages: Record<string, number>): void;
}

export interface StatusGaugesInput {
  paused: boolean;
  /** ms since epoch of the last successful MASS poll, null before the first. */
  lastPollAt: number | null;
  oldestInFlightAgeSeconds: number;
  upstreams: Record<UpstreamTarget, UpstreamHealthReading>;
  /** Per identity (label `identity`: `default` for [AssemblylineAnalysis], else NAME of [AssemblylineAnalysis:NAME]). */
  identities?: Array<{ name: string; lastPollAt: number | null; pendingOnMass: number | null; inFlight: number; online: boolean }>;
}

export function createMetrics(options: { collectProcessMetrics?: boolean; version?: string } = {}): BridgeMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'massal_' });

  const upstreamRequests = new Counter({
    name: 'massal_upstream_requests_total',
    help: 'Upstream HTTP calls by target, operation and outcome; MASS calls also by identity',
    labelNames: ['target', 'operation', 'outcome', 'identity'] as const,
    registers: [registry],
  });
  const upstreamLatency = new Histogram({
    name: 'massal_upstream_request_duration_seconds',
    help: 'Latency of upstream HTTP calls',
    labelNames: ['target', 'operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const jobsFinished = new Counter({
    name: 'massal_jobs_finished_total',
    help: 'Jobs that ended with a report on MASS, by outcome (done = analysis report, failed = error report)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'massal_job_duration_seconds',
    help: 'Time from claiming a scheduled analysis to its report on MASS',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
    registers: [registry],
  });
  const notificationLagHist = new Histogram({
    name: 'massal_notification_lag_seconds',
    help: 'Delay between Assemblyline writing a notification and the bridge reading it',
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const lastPoll = new Gauge({
    name: 'massal_last_successful_poll_timestamp_seconds',
    help: 'Unix time of the last successful MASS poll',
    registers: [registry],
  });
  const jobsByState = new Gauge({
    name: 'massal_jobs',
    help: 'Jobs in the ledger by state',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const inFlight = new Gauge({ name: 'massal_jobs_in_flight', help: 'Jobs claimed and not yet reported', registers: [registry] });
  const ledgerWriteErrorsSeen = { value: 0 };
  const ledgerWriteErrors = new Counter({
    name: 'massal_ledger_write_errors_total',
    help: 'Ledger writes that failed (disk full, I/O error, lock timeout) since the bridge started',
    registers: [registry],
  });
  const ledgerCommitsSeen = { value: 0 };
  const ledgerCommits = new Counter({
    name: 'massal_ledger_commits_total',
    help: 'Ledger commits (each one fsync) since the bridge started; one commit makes every write pending at that moment durable',
    registers: [registry],
  });
  const ledgerBytes = new Gauge({ name: 'massal_ledger_size_bytes', help: 'Size of the ledger on disk', registers: [registry] });
  const paused = new Gauge({ name: 'massal_paused', help: '1 while an operator has paused claiming new work', registers: [registry] });
  const oldestInFlight = new Gauge({
    name: 'massal_oldest_in_flight_age_seconds',
    help: 'Age of the oldest claimed, not yet reported job (0 when none)',
    registers: [registry],
  });
  const oldestByState = new Gauge({
    name: 'massal_oldest_job_age_seconds',
    help: 'Seconds the job longest in this unfinished state has been in it (0 when none)',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const upstreamUp = new Gauge({
    name: 'massal_upstream_up',
    help: '1 when the last call to the upstream succeeded',
    labelNames: ['target'] as const,
    registers: [registry],
  });
  const upstreamFailures = new Gauge({
    name: 'massal_upstream_consecutive_failures',
    help: 'Failed upstream calls since the last success',
    labelNames: ['target'] as const,
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'massal_upstream_last_success_timestamp_seconds',
    help: 'Unix time of the last successful call to the upstream',
    labelNames: ['target'] as const,
    registers: [registry],
  });
  const identityPending = new Gauge({
    name: 'massal_identity_pending_on_mass',
    help: 'Scheduled analyses MASS listed for the identity at its last successful poll (in flight included)',
    labelNames: ['identity'] as const,
    registers: [registry],
  });
  const identityLastPoll = new Gauge({
    name: 'massal_identity_last_poll_timestamp_seconds',
    help: "Unix time of the identity's last successful poll (its heartbeat on MASS)",
    labelNames: ['identity'] as const,
    registers: [registry],
  });
  const identityInFlight = new Gauge({
    name: 'massal_identity_jobs_in_flight',
    help: 'Jobs the identity claimed that are not reported yet',
    labelNames: ['identity'] as const,
    registers: [registry],
  });
  const identityOnline = new Gauge({
    name: 'massal_identity_online',
    help: '1 while MASS counts the identity online (a poll less than 10 minutes ago) and schedules work to it',
    labelNames: ['identity'] as const,
    registers: [registry],
  });
  const buildInfo = new Gauge({ name: 'massal_build_info', help: 'Always 1; the version label says which build runs', labelNames: ['version'] as const, registers: [registry] });
  buildInfo.set({ version: options.version ?? VERSION }, 1);

  return {
    registry,
    upstreamRequest(target, operation, outcome, seconds, identity) {
      // Identity names come from the configuration (a few per bridge): a bounded label.
      upstreamRequests.inc(identity === undefined ? { target, operation, outcome } : { target, operation, outcome, identity });
      upstreamLatency.observe({ target, operation }, seconds);
    },
    jobFinished(state, seconds) {
      jobsFinished.inc({ outcome: state });
      jobDuration.observe(seconds);
    },
    notificationLag(seconds) {
      notificationLagHist.observe(Math.max(0, seconds));
    },
    pollSucceeded(atMs) {
      lastPoll.set(atMs / 1000);
    },
    setLedgerGauges({ byState, inFlight: n, ledgerBytes: bytes, writeErrors, commits }) {
      // The ledger counts; the counters catch up at each scrape (they never go down).
      if (writeErrors !== undefined) {
        const seen = ledgerWriteErrorsSeen.value;
        if (writeErrors > seen) ledgerWriteErrors.inc(writeErrors - seen);
        ledgerWriteErrorsSeen.value = Math.max(seen, writeErrors);
      }
      if (commits !== undefined) {
        const seen = ledgerCommitsSeen.value;
        if (commits > seen) ledgerCommits.inc(commits - seen);
        ledgerCommitsSeen.value = Math.max(seen, commits);
      }
      for (const [state, count] of Object.entries(byState)) jobsByState.set({ state }, count);
      inFlight.set(n);
      ledgerBytes.set(bytes);
    },
    setOldestJobAges(ages) {
      for (const [state, seconds] of Object.entries(ages)) oldestByState.set({ state }, seconds);
    },
    setStatusGauges({ paused: isPaused, lastPollAt, oldestInFlightAgeSeconds, upstreams, identities }) {
      for (const i of identities ?? []) {
        const identity = i.name;
        if (i.pendingOnMass !== null) identityPending.set({ identity }, i.pendingOnMass);
        if (i.lastPollAt !== null) identityLastPoll.set({ identity }, i.lastPollAt / 1000);
        identityInFlight.set({ identity }, i.inFlight);
        identityOnline.set({ identity }, i.online ? 1 : 0);
      }
      paused.set(isPaused ? 1 : 0);
      if (lastPollAt !== null) lastPoll.set(lastPollAt / 1000);
      oldestInFlight.set(oldestInFlightAgeSeconds);
      for (const target of ['mass', 'assemblyline'] as const) {
        const h = upstreams[target];
        upstreamUp.set({ target }, isUp(h) ? 1 : 0);
        upstreamFailures.set({ target }, h.consecutiveFailures);
        if (h.lastSuccessAt !== null) lastSuccess.set({ target }, h.lastSuccessAt / 1000);
      }
    },
  };
}
