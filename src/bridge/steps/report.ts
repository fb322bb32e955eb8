/** Step `reporting`: send the analysis or error report to MASS exactly once (found again by its marker). */
import { BridgeError } from '../../errors.js';
import type { Job, JobState } from '../../ledger/types.js';
import { mapErrorReport } from '../../mapping/index.js';
import type { MassReport, ReportSubmission } from '../../mass/types.js';
import { VERSION } from '../../version.js';
import { REPORT_MARKER_KEY, type BridgeContext } from '../context.js';

/** The report's additional_metadata with our marker (job id and bridge instance) under `assemblyline`. */
export function withMarker(ctx: BridgeContext, metadata: Record<string, unknown>, job: Job): Record<string, unknown> {
  const al = metadata.assemblyline && typeof metadata.assemblyline === 'object' ? (metadata.assemblyline as Record<string, unknown>) : {};
  return { ...metadata, assemblyline: { ...al, [REPORT_MARKER_KEY]: job.id, bridge_instance: ctx.config.bridge.instanceName } };
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
  await sendReport(
    ctx,
    job,
    {
      analysisDate: new Date(ctx.now()),
      tags: plan.tags,
      errorMessage: plan.errorMessage,
      additionalMetadata: withMarker(ctx, plan.additionalMetadata, job),
    },
    true,
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
  const state: JobState = existing.error_message == null ? 'done' : 'failed';
  ctx.apply(job, {
    patch: { state, massReportUrl: existing.url, notBefore: 0, stepFailures: 0 },
    event: { type: 'report-sent', message: 'report found on MASS by its marker (an earlier answer was lost)', data: { outcome: 'found', error: state === 'failed' } },
  });
  return true;
}

/** `lookedUp`: finishIfReported has just searched for our marker, so the first POST needs no second search. */
export async function sendReport(ctx: BridgeContext, job: Job, report: ReportSubmission, lookedUp = false): Promise<void> {
  const attemptedBefore = ctx.ledger.events(job.id).some((e) => e.type === 'report-attempt');
  let sentBefore = attemptedBefore && !lookedUp;
  const outcome = await ctx.retry(async (): Promise<{ kind: 'sent' | 'found'; report: MassReport } | { kind: 'consumed' }> => {
    if (sentBefore) {
      // MASS 500 can mean "report saved, tag copy failed" (MASS.md §6): look before sending again.
      const existing = await findOurReport(ctx, job);
      if (existing) return { kind: 'found', report: existing };
    }
    ctx.ledger.appendEvent(job.id, { type: 'report-attempt', data: { error: job.errorCode !== null } }, ctx.now());
    sentBefore = true;
    try {
      return { kind: 'sent', report: await ctx.mass.submitReport(job.scheduledAnalysisUrl, report, { signal: ctx.signal }) };
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
  ctx.apply(job, {
    patch: { state, massReportUrl: outcome.kind === 'consumed' ? job.massReportUrl : outcome.report.url, notBefore: 0, stepFailures: 0 },
    event: { type: 'report-sent', message, code: kind === 'gone' ? 'NOT_FOUND' : null, data: { outcome: kind, error: job.errorCode !== null } },
  });
}
