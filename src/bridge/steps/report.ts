/** Step `reporting`: send the analysis or error report to MASS exactly once (found again by its marker). */
import { BridgeError } from '../../errors.js';
import type { Job, JobEvent } from '../../ledger/types.js';
import { mapErrorReport } from '../../mapping/index.js';
import type { MassReport, ReportSubmission } from '../../mass/types.js';
import { VERSION } from '../../version.js';
import { REPORT_MARKER_KEY, type BridgeContext } from '../context.js';
import { decideReportSent } from '../decide.js';
import { ingestWayOf } from '../hash-first.js';

/**
 * The report's additional_metadata with our marker (job id and bridge instance) under `assemblyline`, and
 * `ingest_via` (sha256 or upload) once the job was ingested. `events`: the job's history, read from the ledger
 * unless the caller has just read it.
 */
export function withMarker(ctx: BridgeContext, metadata: Record<string, unknown>, job: Job, events: readonly JobEvent[] = ctx.ledger.events(job.id)): Record<string, unknown> {
  const al = metadata.assemblyline && typeof metadata.assemblyline === 'object' ? (metadata.assemblyline as Record<string, unknown>) : {};
  const ingestVia = ingestWayOf(events);
  return { ...metadata, assemblyline: { ...al, [REPORT_MARKER_KEY]: job.id, bridge_instance: ctx.config.bridge.instanceName, ...(ingestVia ? { ingest_via: ingestVia } : {}) } };
}

/** Sends the job's error report (errorCode/errorMessage) unless an earlier attempt is already on MASS. */
export async function sendErrorReport(ctx: BridgeContext, job: Job): Promise<void> {
  if (await finishIfReported(ctx, job)) return;
  const plan = mapErrorReport({
    code: job.errorCode ?? 'INTERNAL',
    message: job.errorMessage ?? '',
    sid: job.sid,
    ingestId: job.ingestId,
    attempts: job.attempts,
    bridgeVersion: VERSION,
    uiBaseUrl: ctx.mapping.uiBaseUrl,
    now: new Date(ctx.now()).toISOString(),
  });
  // One read of the history for the marker and the report's own check (nothing is written in between).
  const events = ctx.ledger.events(job.id);
  await sendReport(
    ctx,
    job,
    {
      analysisDate: new Date(ctx.now()),
      tags: plan.tags,
      errorMessage: plan.errorMessage,
      additionalMetadata: withMarker(ctx, plan.additionalMetadata, job, events),
    },
    true,
    events,
  );
}

/** Our report on the sample, found by the marker (after a lost answer or a MASS 500-after-save). */
export async function findOurReport(ctx: BridgeContext, job: Job): Promise<MassReport | null> {
  try {
    const reports = await ctx.mass.listSampleReports(job.sampleUrl, { signal: ctx.signal });
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
export async function finishIfReported(ctx: BridgeContext, job: Job): Promise<boolean> {
  if (!ctx.ledger.events(job.id).some((e) => e.type === 'report-attempt')) return false;
  const existing = await ctx.retry(() => findOurReport(ctx, job));
  if (!existing) return false;
  ctx.apply(job, decideReportSent(job, 'found', existing.error_message != null, existing.url));
  return true;
}

/**
 * `lookedUp`: finishIfReported has just searched for our marker, so the first POST needs no second search.
 * `events`: the job's history as the ledger holds it now (the caller read it with no write since), else read here.
 */
export async function sendReport(ctx: BridgeContext, job: Job, report: ReportSubmission, lookedUp = false, events: readonly JobEvent[] = ctx.ledger.events(job.id)): Promise<void> {
  const attemptedBefore = events.some((e) => e.type === 'report-attempt');
  let sentBefore = attemptedBefore && !lookedUp;
  // Whether any POST of this report (now or before a restart) may have reached MASS before the current one.
  let postedBefore = attemptedBefore;
  type Outcome = { kind: 'sent' | 'found'; report: MassReport } | { kind: 'consumed' | 'gone' | 'stored' };
  let outcome = await ctx.retry(async (): Promise<Outcome> => {
    if (sentBefore) {
      // MASS 500 can mean "report saved, tag copy failed" (MASS.md §6): look before sending again.
      const existing = await findOurReport(ctx, job);
      if (existing) return { kind: 'found', report: existing };
    }
    const earlierPost = postedBefore;
    ctx.ledger.appendEvent(job.id, { type: 'report-attempt', data: { error: job.errorCode !== null } }, ctx.now());
    sentBefore = true;
    postedBefore = true;
    try {
      return { kind: 'sent', report: await ctx.mass.submitReport(job.scheduledAnalysisUrl, report, { signal: ctx.signal }) };
    } catch (err) {
      // 404 = the scheduled analysis is consumed: an earlier POST of ours was accepted. With no earlier POST,
      // it was consumed elsewhere or deleted by an admin while we worked on it.
      if (err instanceof BridgeError && err.code === 'NOT_FOUND') return { kind: earlierPost ? 'consumed' : 'gone' };
      // Any 2xx means MASS stored the report, with or without a body (204).
      if (err instanceof BridgeError && err.status !== undefined && err.status >= 200 && err.status < 300) return { kind: 'stored' };
      throw err;
    }
  });
  if (outcome.kind === 'consumed' || outcome.kind === 'stored' || outcome.kind === 'gone') {
    // Our report may be on MASS: find it for its URL and its kind (best effort; the job ends either way).
    const existing = await findOurReport(ctx, job).catch(() => null);
    if (existing) outcome = { kind: 'found', report: existing };
  }
  ctx.crashPoint('after-report-answer');
  const found = outcome.kind === 'found' ? outcome.report : null;
  const url = outcome.kind === 'sent' || outcome.kind === 'found' ? outcome.report.url : job.massReportUrl;
  ctx.apply(job, decideReportSent(job, outcome.kind, found ? found.error_message != null : null, url));
}
