/** Step `relating`: create the related samples (extracted files, IOCs) and sample relations on MASS. */
import type { SubmissionFull } from '../../assemblyline/types.js';
import { BridgeError, isTransient, toBridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import { extractedFileTags, massSafeFileName, relationTarget, sanitizeTag } from '../../mapping/index.js';
import { derivedTlp } from '../../mapping/classification.js';
import type { RelatedItem, ReportPlan } from '../../mapping/types.js';
import { sameMassUrl } from '../../mass/client.js';
import type { MassRelation, MassSample, RelationKind } from '../../mass/types.js';
import { SAME_FAILURE_LIMIT, type BridgeContext } from '../context.js';
import { refusal, WAIT_CODES } from '../decide.js';
import { uploadExtractedFile } from './extracted-file.js';
import { RELATING_EVENTS, relationKey } from '../outcome.js';


/**
 * Creates every related item of the plan not yet recorded for this job; each one is recorded as it is done.
 * A transient failure or a credential/quota refusal stops the step (it waits with backoff, [Bridge]
 * OutageBudget); the same failure of one item again and again while MASS answers other requests skips
 * that item after SAME_FAILURE_LIMIT tries; a permanent refusal skips it at once. Skips are recorded with
 * the reason, and the report lists them (outcome.ts).
 */
export async function relateStep(ctx: BridgeContext, job: Job, plan: ReportPlan, full: SubmissionFull): Promise<void> {
  const sid = job.sid ?? '';
  const prefix = ctx.config.report.tagPrefix;
  const samples = new Map(ctx.ledger.relatedSamples(job.id).map((r) => [r.key, r]));
  const relations = new Set(ctx.ledger.relations(job.id).map((r) => r.key));
  const history = ctx.ledger.events(job.id);
  const given = new Set(history.filter((e) => e.type === RELATING_EVENTS.skipped || e.type === RELATING_EVENTS.failed).map((e) => String(e.data?.key)));
  const noted = new Set(history.filter((e) => e.type === RELATING_EVENTS.note).map((e) => e.message));
  const failures = new Map<string, number>();
  for (const e of history) if (e.type === 'related-attempt-failed') failures.set(String(e.data?.key), (failures.get(String(e.data?.key)) ?? 0) + 1);
  const tags = (...raw: string[]) => raw.map((t) => sanitizeTag(prefix + t)).filter((t): t is string => t !== null);
  const skip = (item: RelatedItem, reason: string, code: string | null, type: string = RELATING_EVENTS.skipped): void => {
    given.add(item.key);
    ctx.ledger.appendEvent(job.id, { type, code, message: reason, data: { key: item.key } }, ctx.now());
    ctx.jobLog(job).warn({ key: item.key, reason }, 'related item skipped');
  };

  // Derived samples never get a wider TLP than the results they come from; a marking with no TLP equivalent
  // creates none (each item is skipped with the reason, which the report lists).
  const derived = derivedTlp(full, ctx.config.report.relatedTlp);
  if (!derived.ok) {
    for (const item of plan.related) {
      if (given.has(item.key) || samples.has(item.key)) continue;
      given.add(item.key);
      ctx.ledger.appendEvent(job.id, { type: RELATING_EVENTS.skipped, code: 'CLASSIFICATION', message: derived.note, data: { key: item.key, classification: derived.classification } }, ctx.now());
    }
    ctx.jobLog(job).warn({ classification: derived.classification }, derived.note);
    return;
  }
  const tlpLevel = derived.tlpLevel;

  for (const item of plan.related) {
    if (given.has(item.key) && !samples.has(item.key)) continue;
    const target = relationTarget(item, (key) => Boolean(samples.get(key)?.massSampleUrl));
    if (target.action === 'skip') {
      skip(item, target.reason, null);
      continue;
    }
    try {
      let rec = samples.get(item.key);
      if (!rec) {
        const massSample = await createRelatedSample(ctx, job, item, sid, tlpLevel, tags, skip);
        if (!massSample) continue;
        ctx.crashPoint('after-related-sample-answer');
        // The key is new for this job (not in `samples`), so the stored row is exactly this record.
        rec = { jobId: job.id, key: item.key, kind: item.kind, value: item.kind === 'file' ? item.sha256 : item.value, massSampleUrl: massSample.url, createdAt: ctx.now() };
        ctx.ledger.recordRelatedSample(rec, rec.createdAt);
        if (item.kind === 'file') {
          ctx.ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: massSample.url }, ctx.now());
        }
        samples.set(item.key, rec);
      }
      const otherUrl = target.otherKey ? samples.get(target.otherKey)!.massSampleUrl : job.sampleUrl;
      const key = relationKey(item);
      if (relations.has(key)) continue;
      if (target.note && !noted.has(target.note)) {
        noted.add(target.note);
        ctx.ledger.appendEvent(job.id, { type: RELATING_EVENTS.note, message: target.note, data: { key: item.key } }, ctx.now());
      }
      await createRelation(ctx, job, key, item.relation, rec.massSampleUrl, otherUrl);
      relations.add(key);
    } catch (err) {
      const e = ctx.signal.aborted ? ctx.aborted(err) : toBridgeError(err);
      if (e.code === 'ABORTED' || WAIT_CODES.has(e.code)) throw e;
      if (isTransient(e)) {
        // An outage waits (the whole step backs off); one request failing the same way while MASS otherwise
        // answers (e.g. a file MASS cannot store) is given a bounded number of tries.
        if (!(await upstreamAnswers(ctx, job, e))) throw e;
        const count = (failures.get(item.key) ?? 0) + 1;
        failures.set(item.key, count);
        ctx.ledger.appendEvent(job.id, { type: 'related-attempt-failed', code: e.code, message: e.message, data: { key: item.key, status: e.status ?? null, count } }, ctx.now());
        if (count < SAME_FAILURE_LIMIT) throw e;
        skip(item, `${refusal(e)} (${count} times, while answering other requests)`, e.code, RELATING_EVENTS.failed);
        continue;
      }
      // One related item MASS or AL refuses for good must not block the report; it is recorded and skipped.
      skip(item, refusal(e), e.code, RELATING_EVENTS.failed);
    }
  }
}

/**
 * After a transient failure: does the upstream that failed answer other requests? (MASS: the analysed
 * sample; Assemblyline: the submission.) A failing probe means an outage, which is waited out.
 */
async function upstreamAnswers(ctx: BridgeContext, job: Job, e: BridgeError): Promise<boolean> {
  try {
    if (e.upstream === 'assemblyline') {
      await ctx.al.getSubmission(job.sid ?? job.ingestId ?? '', { signal: ctx.signal });
    } else {
      await ctx.mass.getSample(job.sampleUrl, { signal: ctx.signal });
    }
    return true;
  } catch (err) {
    return err instanceof BridgeError && err.code === 'NOT_FOUND';
  }
}

async function createRelatedSample(
  ctx: BridgeContext,
  job: Job,
  item: RelatedItem,
  sid: string,
  tlpLevel: number,
  tags: (...raw: string[]) => string[],
  skip: (item: RelatedItem, reason: string, code: string | null) => void,
): Promise<MassSample | null> {
  const signal = ctx.signal;
  const prefix = ctx.config.report.tagPrefix;
  if (item.kind === 'file') {
    const maxBytes = ctx.config.report.maxExtractedSize;
    if (item.size !== null && item.size > maxBytes) {
      skip(item, `extracted file larger than MaxExtractedSize (${item.size} > ${maxBytes} bytes)`, null);
      return null;
    }
    const original = item.name || item.sha256;
    const { name, renamed } = massSafeFileName(original, item.sha256);
    // Recorded before the upload: MASS dispatches the new sample back to us at once (echo-back), maybe before we record its URL.
    ctx.ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: '' }, ctx.now());
    try {
      const sample = await uploadExtractedFile(ctx, {
        sha256: item.sha256,
        sid,
        filename: name,
        size: item.size,
        tlpLevel,
        // Another bridge of the system recognises the file by these tags when MASS schedules it there (fetch.ts).
        tags: extractedFileTags(prefix, item.parentRelation, sid),
      });
      if (renamed) ctx.ledger.appendEvent(job.id, { type: RELATING_EVENTS.renamed, data: { key: item.key, from: original, to: name } }, ctx.now());
      return sample;
    } catch (err) {
      // No MASS sample was made: a later genuine scheduling of this file must not be answered from our submission.
      ctx.ledger.forgetOwnSample(item.sha256, job.id);
      // Larger than Assemblyline said (or it said nothing): the upload was cut at MaxExtractedSize; listed in the report.
      if (err instanceof BridgeError && err.code === 'SAMPLE_TOO_LARGE') {
        skip(item, err.message, null);
        return null;
      }
      throw err;
    }
  }
  const options = { tlpLevel, tags: tags('ioc', `ioc:${item.tagType}`, `sid:${sid}`) };
  switch (item.kind) {
    case 'ip':
      return ctx.retry(() => ctx.mass.submitIPSample(item.value, options, { signal }));
    case 'domain':
      return ctx.retry(() => ctx.mass.submitDomainSample(item.value, options, { signal }));
    case 'uri':
      return ctx.retry(() => ctx.mass.submitURISample(item.value, options, { signal }));
  }
}

/**
 * MASS does not deduplicate relations (MASS.md §8): every POST makes a new one. So a relation is looked up before
 * it is posted: in the ledger (another job of this bridge made it), then on MASS in the relations around `other`
 * (another bridge of the system made it, or an earlier POST of ours whose answer was lost reached MASS).
 */
async function createRelation(ctx: BridgeContext, job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string): Promise<void> {
  // Two jobs of the same sample (MASS scheduled it twice) may relate the same pair at once: one at a time per pair.
  const lockKey = `${kind}\n${sampleUrl}\n${otherUrl}`;
  for (let busy = ctx.relationLocks.get(lockKey); busy; busy = ctx.relationLocks.get(lockKey)) await busy.catch(() => undefined);
  const run = createRelationUnlocked(ctx, job, key, kind, sampleUrl, otherUrl);
  ctx.relationLocks.set(lockKey, run);
  try {
    await run;
  } finally {
    if (ctx.relationLocks.get(lockKey) === run) ctx.relationLocks.delete(lockKey);
  }
}

async function createRelationUnlocked(ctx: BridgeContext, job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string): Promise<void> {
  const signal = ctx.signal;
  const record = (r: MassRelation): void => {
    ctx.crashPoint('after-relation-answer');
    ctx.ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: r.url }, ctx.now());
  };
  // Another job of this bridge (the same sample scheduled again) may have created this exact relation already.
  const earlier = ctx.ledger.findRelation(kind, sampleUrl, otherUrl);
  if (earlier) {
    ctx.ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: earlier.massRelationUrl }, ctx.now());
    ctx.ledger.appendEvent(job.id, { type: 'relation-reused', data: { key, relation: earlier.massRelationUrl, job: earlier.jobId } }, ctx.now());
    return;
  }
  const relation = await ctx.retry(async () => {
    // Looked up again before every POST, also the retry after a lost answer: the gap to the POST is one round trip.
    const existing = await findRelationOnMass(ctx, job, key, kind, sampleUrl, otherUrl);
    if (existing) {
      ctx.ledger.appendEvent(job.id, { type: 'relation-found', message: 'relation already on MASS; not posted again', data: { key, relation: existing.url } }, ctx.now());
      return existing;
    }
    ctx.ledger.appendEvent(job.id, { type: 'relation-intent', data: { key, kind, sampleUrl, otherUrl } }, ctx.now());
    return ctx.mass.addRelation(kind, sampleUrl, otherUrl, { signal });
  });
  record(relation);
}

/**
 * The relation on MASS, from `GET sample/<other>/relation_graph/?depth=1` (every relation touching `other`, the
 * analysed sample or the extracted file that produced `sample`: a short list, unlike the graph of a common IP).
 * undefined when it is not there, or when the lookup is not available (404: no relation_graph on this server,
 * or `other` hidden from this instance by its TLP; 405/501): then it is posted, and a duplicate is the accepted
 * price, never a missing relation.
 */
async function findRelationOnMass(ctx: BridgeContext, job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string): Promise<MassRelation | undefined> {
  if (!ctx.mass.getRelationGraph) return undefined;
  let graph: MassRelation[];
  try {
    graph = await ctx.mass.getRelationGraph(otherUrl, 1, { signal: ctx.signal });
  } catch (err) {
    if (err instanceof BridgeError && (err.code === 'NOT_FOUND' || err.status === 405 || err.status === 501)) {
      ctx.ledger.appendEvent(job.id, { type: 'relation-lookup-unavailable', code: err.code, message: `relation lookup unavailable (${refusal(err)}); posting the relation`, data: { key } }, ctx.now());
      return undefined;
    }
    throw err;
  }
  return graph.find((r) => sameMassUrl(r.sample, sampleUrl) && sameMassUrl(r.other, otherUrl) && relationClassMatches(r._cls, kind));
}

const RELATION_CLS: Record<RelationKind, string> = {
  'dropped-by': 'DroppedBy',
  'contacted-by': 'ContactedBy',
  'resolved-by': 'ResolvedBy',
  'retrieved-by': 'RetrievedBy',
};

function relationClassMatches(cls: string, kind: RelationKind): boolean {
  return cls.includes(RELATION_CLS[kind]);
}
