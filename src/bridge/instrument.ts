/**
 * Wraps the upstream clients so every call that changes something upstream first makes the ledger's pending writes
 * durable (the bridge passes its ledger as `durable`), then records a metric and updates the upstream's health
 * (consecutive failures drive backpressure and the status API).
 */
import { BridgeError, isTransient } from '../errors.js';
/** Re-exported for callers that read it here; the definition lives in health.ts so metrics need no bridge module. */
export { isUp } from '../health.js';
import type { BridgeMetrics, UpstreamTarget } from '../metrics.js';
import type { UpstreamHealth } from './control.js';

export function newHealth(): UpstreamHealth {
  return { lastSuccessAt: null, lastErrorAt: null, lastError: null, lastErrorCode: null, consecutiveFailures: 0 };
}

const OPERATIONS: Record<string, string> = {
  poll: 'poll',
  getInstance: 'get_instance',
  getScheduledAnalysis: 'get_scheduled_analysis',
  getSample: 'get_sample',
  downloadSample: 'download',
  submitReport: 'submit_report',
  listSampleReports: 'list_reports',
  submitFileSample: 'submit_file',
  submitIPSample: 'submit_ip',
  submitDomainSample: 'submit_domain',
  submitURISample: 'submit_uri',
  addRelation: 'add_relation',
  getRelationGraph: 'relation_graph',
  findSamples: 'find_samples',
  ingest: 'ingest',
  ingestBySha256: 'ingest_sha256', // hash-first
  getMessages: 'get_messages',
  getSubmission: 'submission',
  getSubmissionFull: 'submission_full',
  getSubmissionSummary: 'submission_summary',
  isCompleted: 'is_completed',
  searchSubmissions: 'search',
  downloadFile: 'file_download',
  downloadFileBytes: 'file_download',
  openFile: 'file_download',
  fileChildren: 'file_children',
};

/**
 * Operations that change nothing upstream: they start without waiting for the ledger's pending writes to become
 * durable (docs/design.md §9). A kill before the next commit loses those writes whether or not a read was on its
 * way, and nothing MASS or Assemblyline holds can depend on them. Every other operation changes upstream state
 * (a report, a sample, a relation, an ingest — the sha256 one creates a submission when it hits — and the
 * notification-queue read, which removes what it returns) and waits for the flush. The MASS poll's only effect,
 * the instance's heartbeat, depends on nothing in the ledger.
 */
export const READ_ONLY_OPERATIONS: ReadonlySet<string> = new Set([
  'poll',
  'getInstance',
  'getScheduledAnalysis',
  'getSample',
  'downloadSample',
  'listSampleReports',
  'getRelationGraph',
  'findSamples',
  'getSubmission',
  'getSubmissionFull',
  'getSubmissionSummary',
  'isCompleted',
  'searchSubmissions',
  'downloadFile',
  'downloadFileBytes',
  'openFile',
  'fileChildren',
]);

/** Counts one failed call of the upstream in its health (what the status API and backpressure read). */
export function recordFailure(health: UpstreamHealth, err: unknown, now: number): void {
  health.lastErrorAt = now;
  health.lastError = err instanceof Error ? err.message : String(err);
  health.lastErrorCode = err instanceof BridgeError ? err.code : 'INTERNAL';
  health.consecutiveFailures++;
}

/** An answer that proves the upstream works even though the call failed (404, refused sample, ...). */
function countsAsFailure(err: unknown): boolean {
  if (!(err instanceof BridgeError)) return true;
  if (err.code === 'ABORTED' || err.code === 'NOT_FOUND') return false;
  // CONFIG_INVALID from a call: the upstream cannot be used as configured (e.g. its TLS certificate is not trusted).
  return isTransient(err) || err.code === 'AUTH' || err.code === 'QUOTA_DAILY' || (err.code === 'CONFIG_INVALID' && err.upstream !== undefined);
}

/**
 * Request options may carry `sourceFailed(): boolean` (see IngestSource in steps/ingest.ts): true when the
 * body being uploaded failed on its side, so the upload's failure does not count against this upstream.
 */
function sourceFailed(args: unknown[]): boolean {
  const last = args.at(-1) as { sourceFailed?: unknown } | undefined;
  return typeof last === 'object' && last !== null && typeof last.sourceFailed === 'function' && (last.sourceFailed as () => unknown)() === true;
}

/** What the wrapper needs of the ledger: how many writes are not yet durable, and a flush that makes them so. */
export interface Durability {
  pending(): number;
  flush(): Promise<void>;
}

/**
 * `client` with every upstream operation (OPERATIONS) wrapped. With `durable` (the bridge's ledger), a method that
 * changes upstream state (any not in READ_ONLY_OPERATIONS) is called only once every ledger write is durable
 * (committed and fsynced): the wrapper flushes (group commit) until `pending()` is 0, so no such request is issued
 * while anything written before it could still be lost (docs/design.md §9). Reads, and calls made while nothing is
 * pending, start synchronously. A failed commit fails the call without counting against the
 * upstream. `identity` labels the calls' metric: the identity whose MASS key the client carries (none for Assemblyline).
 */
export function instrument<T extends object>(
  client: T,
  target: UpstreamTarget,
  health: UpstreamHealth,
  metrics: BridgeMetrics | undefined,
  clock: () => number,
  durable?: Durability,
  identity?: string,
): T {
  return new Proxy(client, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || !(prop in OPERATIONS)) return value;
      const operation = OPERATIONS[prop];
      const waitsForDurability = durable !== undefined && !READ_ONLY_OPERATIONS.has(prop);
      return async (...args: unknown[]) => {
        // Writes of other jobs may land between the commit and this continuation: loop until none is pending.
        if (waitsForDurability) while (durable.pending() > 0) await durable.flush();
        const started = performance.now();
        try {
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args);
          metrics?.upstreamRequest(target, operation, 'ok', (performance.now() - started) / 1000, identity);
          health.lastSuccessAt = clock();
          health.consecutiveFailures = 0;
          if (health.refusals?.[operation]) delete health.refusals[operation];
          return result;
        } catch (err) {
          metrics?.upstreamRequest(target, operation, 'error', (performance.now() - started) / 1000, identity);
          if (sourceFailed(args)) {
            // The data we were sending broke (e.g. a MASS download feeding an Assemblyline upload): not this upstream's fault.
          } else if (countsAsFailure(err)) {
            recordFailure(health, err, clock());
            if (err instanceof BridgeError && (err.code === 'AUTH' || err.code === 'QUOTA_DAILY')) {
              health.refusals = { ...health.refusals, [operation]: { code: err.code, message: err.message, at: clock() } };
            }
          } else if (err instanceof BridgeError && err.code === 'NOT_FOUND') {
            health.lastSuccessAt = clock();
            health.consecutiveFailures = 0;
          }
          throw err;
        }
      };
    },
  });
}
