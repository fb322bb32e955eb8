/** Ledger records → API representations (ms timestamps become ISO strings, links are added). */
import type { BridgeStatus, IdentityStatus, UpstreamHealth } from '../bridge/control.js';
import { isUp } from '../health.js';
import type { Job, JobEvent, Ledger } from '../ledger/types.js';
import { submissionLink } from '../mapping/index.js';
import type { JobDetailResponse, JobView } from './schemas/jobs.js';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** MASS counts an instance online while its last poll is less than 10 minutes old (MASS.md §3). */
const ONLINE_WINDOW_MS = 10 * 60_000;

/**
 * The identities of a status; a bridge control that does not list them (one identity) gets its one identity,
 * `default`, made from the status itself with `inFlight` jobs.
 */
export function identitiesOf(status: BridgeStatus, inFlight: number, now: number): IdentityStatus[] {
  if (status.identities) return status.identities;
  const online = status.lastPollAt !== null && now - status.lastPollAt < ONLINE_WINDOW_MS;
  return [{ name: 'default', uuid: status.instanceUuid, lastPollAt: status.lastPollAt, pendingOnMass: null, inFlight, online, lastPollError: null }];
}

export function jobView(job: Job, uiUrl: string): JobView {
  return {
    id: job.id,
    state: job.state,
    scheduledAnalysisUrl: job.scheduledAnalysisUrl,
    sampleUrl: job.sampleUrl,
    sha256: job.sha256,
    fileName: job.fileName,
    fileSize: job.fileSize,
    sampleCls: job.sampleCls,
    attempts: job.attempts,
    ingestId: job.ingestId,
    sid: job.sid,
    cacheHit: job.cacheHit,
    score: job.score,
    alFailure: job.alFailure,
    errorCode: job.errorCode,
    errorMessage: job.errorMessage,
    lastError: job.lastError,
    lastErrorCode: job.lastErrorCode,
    massReportUrl: job.massReportUrl,
    notBefore: iso(job.notBefore),
    deadline: isoOrNull(job.deadline),
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    finishedAt: isoOrNull(job.finishedAt),
    assemblylineUrl: submissionLink(uiUrl, job.sid),
    identity: job.identity ?? 'default',
  };
}

function eventView(e: JobEvent) {
  return { seq: e.seq, at: iso(e.at), type: e.type, state: e.state, message: e.message, code: e.code, data: e.data };
}

export function jobDetail(ledger: Ledger, job: Job, uiUrl: string): JobDetailResponse {
  const message = job.errorMessage ?? job.lastError;
  return {
    job: jobView(job, uiUrl),
    events: ledger.events(job.id).map(eventView),
    assemblyline: { sid: job.sid, ingestId: job.ingestId, uiUrl: submissionLink(uiUrl, job.sid) },
    mass: { scheduledAnalysisUrl: job.scheduledAnalysisUrl, sampleUrl: job.sampleUrl, reportUrl: job.massReportUrl },
    relatedSamples: ledger.relatedSamples(job.id).map((r) => ({ key: r.key, kind: r.kind, value: r.value, massSampleUrl: r.massSampleUrl, createdAt: iso(r.createdAt) })),
    relations: ledger.relations(job.id).map((r) => ({ key: r.key, kind: r.kind, sampleUrl: r.sampleUrl, otherUrl: r.otherUrl, massRelationUrl: r.massRelationUrl, createdAt: iso(r.createdAt) })),
    lastError: message === null ? null : { code: job.errorMessage !== null ? job.errorCode : job.lastErrorCode, message },
  };
}

export function upstreamView(h: UpstreamHealth) {
  return {
    ok: isUp(h),
    lastSuccessAt: isoOrNull(h.lastSuccessAt),
    lastErrorAt: isoOrNull(h.lastErrorAt),
    lastError: h.lastError,
    lastErrorCode: h.lastErrorCode,
    consecutiveFailures: h.consecutiveFailures,
  };
}
