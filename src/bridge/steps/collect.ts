/** Steps `collecting`/`relating`/`reporting` (analysis report): read results, relate, then report. */
import type { SubmissionFull } from '../../assemblyline/types.js';
import type { Job, JobEvent } from '../../ledger/types.js';
import { withClassification } from '../../mapping/classification.js';
import { extractedChildIn, mapOwnSampleReport, mapSubmissionToReport } from '../../mapping/index.js';
import type { ReportPlan } from '../../mapping/types.js';
import type { ReportSubmission } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { decideEchoNotInParent, decideResultsMissing, decideSubmissionState, errorReport } from '../decide.js';
import { applyOutcome, relatingOutcome } from '../outcome.js';
import { relateStep } from './relate.js';
import { finishIfReported, sendReport, withMarker } from './report.js';

/** sha256 of the file Assemblyline analysed (the unpacked inner file of a CaRT sample), lower case. */
export function alRootSha256(full: SubmissionFull, job: Job): string {
  const first = full.files?.[0]?.sha256;
  return (typeof first === 'string' && first ? first : (job.sha256 ?? '')).toLowerCase();
}

/** collecting / relating / reporting (analysis report): read results, create related samples, report. */
export async function collectStep(ctx: BridgeContext, job: Job): Promise<void> {
  // A report sent before (answer lost, then a crash or exhausted retries): look for it before reading AL
  // again, or an expired submission would send an already reported job back to ingesting.
  const lookedUp = job.state === 'reporting';
  if (lookedUp && (await finishIfReported(ctx, job))) return;
  const sid = job.sid;
  if (!sid) {
    ctx.apply(job, errorReport('INTERNAL', 'no Assemblyline submission id recorded for this job', ctx.now()));
    return;
  }
  // The summary is read alongside the full results (the report needs both); one round trip instead of two.
  const summaryRead = job.echoOf ? null : ctx.retry(() => ctx.al.getSubmissionSummary(sid, { signal: ctx.signal }));
  // Its failure is seen where it is awaited (or not at all when the full results decide otherwise).
  summaryRead?.catch(() => undefined);
  const full = await ctx.retry(() => ctx.al.getSubmissionFull(sid, { signal: ctx.signal }));
  if (!full) {
    // A dead cached sid already replaced by another job's re-ingest: read the replacement instead.
    const replacement = ctx.replacements.replacementFor(sid, ctx.now());
    if (replacement) {
      ctx.apply(job, { patch: { sid: replacement, cacheHit: true, notBefore: ctx.now() }, event: { type: 'replacement-sid', message: `submission ${sid} is gone; using its replacement ${replacement}`, data: { sid, replacement } } });
      return;
    }
    if (!job.echoOf) ctx.replacements.noteGone(job.id, sid);
    ctx.apply(job, decideResultsMissing(job, ctx.policy, ctx.now()));
    return;
  }
  const unusable = decideSubmissionState(job, full.state, ctx.policy, ctx.now());
  if (unusable) {
    ctx.apply(job, unusable);
    return;
  }
  // An echo-back is answered from the parent only when Assemblyline confirms the file is extracted there (the
  // tags on MASS that named the submission may be another bridge's, or stale).
  if (job.echoOf && job.state === 'collecting' && !extractedChildIn(full, job.sha256 ?? '')) {
    ctx.apply(job, decideEchoNotInParent(job, ctx.now()));
    return;
  }
  ctx.replacements.noteCollected(job.id, sid, ctx.now());
  const nowIso = new Date(ctx.now()).toISOString();
  let plan: ReportPlan;
  if (job.echoOf) {
    plan = mapOwnSampleReport({ full, sha256: job.sha256 ?? '', parentSid: sid, cacheHit: job.cacheHit, now: nowIso }, ctx.mapping);
  } else {
    const summary = await summaryRead;
    plan = mapSubmissionToReport(
      // MASS's sha256 of the sample: for a CaRT sample Assemblyline analysed the inner file, whose sha256
      // the mapping reports as analysed_sha256; relations point at the MASS sample either way.
      { full, summary: summary ?? undefined, cacheHit: job.cacheHit, rootSha256: job.sha256 ?? alRootSha256(full, job), now: nowIso },
      ctx.mapping,
    );
  }
  if (job.state === 'collecting') {
    // Nothing to create on MASS (an echo-back, or results without extracted files or IOCs to relate): straight to
    // the report, without a relating state that would do nothing.
    job = ctx.apply(job, {
      patch: { state: job.echoOf || plan.related.length === 0 ? 'reporting' : 'relating', score: plan.maxScore },
      event: { type: 'collected', data: { sid, verdict: plan.verdict, related: plan.related.length, cacheHit: job.cacheHit } },
    });
  }
  if (job.state === 'relating') {
    await relateStep(ctx, job, plan, full);
    job = ctx.apply(job, { patch: { state: 'reporting' }, event: { type: 'related', data: { related: ctx.ledger.relatedSamples(job.id).length } } });
  }
  // The report says what MASS holds: related, skipped (with why) and renamed items, from the ledger. The history is
  // read once for the outcome, the marker and sendReport's check: nothing is written until sendReport's first write.
  const events = ctx.ledger.events(job.id);
  const outcome = relatingOutcome(
    plan,
    { samples: ctx.ledger.relatedSamples(job.id), relations: ctx.ledger.relations(job.id), events },
    budgetSpentReason(events),
  );
  const final = plan.related.length > 0 || outcome.notes.length > 0 ? applyOutcome(plan, outcome) : plan;
  const report: ReportSubmission = {
    analysisDate: new Date(ctx.now()),
    tags: plan.tags,
    // The classification Assemblyline gave the results, under assemblyline.classification.
    additionalMetadata: withClassification(withMarker(ctx, final.additionalMetadata, job, events), full),
    jsonReportObjects: final.jsonReportObjects,
  };
  await sendReport(ctx, job, report, lookedUp && job.state === 'reporting', events);
}

/** Why planned items that were never tried are not on MASS: the relating step's budget was spent (from the job's history). */
function budgetSpentReason(events: readonly JobEvent[]): string {
  const spent = events.findLast((e) => e.type === 'related-budget-spent');
  return spent?.message ?? 'not created: the relating step ended before this item';
}
