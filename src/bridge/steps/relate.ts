/** Step `relating`: create the related samples (extracted files, IOCs) and sample relations on MASS. */
import type { SubmissionFull } from '../../assemblyline/types.js';
import { isTransient, toBridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import { sanitizeTag } from '../../mapping/index.js';
import type { RelatedItem, ReportPlan } from '../../mapping/types.js';
import { sameMassUrl } from '../../mass/client.js';
import type { MassRelation, MassSample, RelationKind } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { alRootSha256 } from './collect.js';

/** Creates every related item of the plan not yet recorded for this job; each one is recorded as it is done. */
export async function relateStep(ctx: BridgeContext, job: Job, plan: ReportPlan, full: SubmissionFull): Promise<void> {
  const sid = job.sid ?? '';
  const root = alRootSha256(full, job);
  const prefix = ctx.config.report.tagPrefix;
  const tlpLevel = ctx.config.report.relatedTlp;
  const samples = new Map(ctx.ledger.relatedSamples(job.id).map((r) => [r.key, r]));
  const relations = new Set(ctx.ledger.relations(job.id).map((r) => r.key));
  const intents = new Set(
    ctx.ledger
      .events(job.id)
      .filter((e) => e.type === 'relation-intent')
      .map((e) => String(e.data?.key)),
  );
  const urlOfFile = (sha: string): string => (sha === root ? job.sampleUrl : (samples.get(`file:${sha}`)?.massSampleUrl ?? job.sampleUrl));
  const tags = (...raw: string[]) => raw.map((t) => sanitizeTag(prefix + t)).filter((t): t is string => t !== null);

  for (const item of plan.related) {
    try {
      let rec = samples.get(item.key);
      if (!rec) {
        const massSample = await createRelatedSample(ctx, job, item, sid, tlpLevel, tags);
        if (!massSample) continue;
        // The key is new for this job (not in `samples`), so the stored row is exactly this record.
        rec = { jobId: job.id, key: item.key, kind: item.kind, value: item.kind === 'file' ? item.sha256 : item.value, massSampleUrl: massSample.url, createdAt: ctx.now() };
        ctx.ledger.recordRelatedSample(rec, rec.createdAt);
        if (item.kind === 'file') {
          ctx.ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: massSample.url }, ctx.now());
        }
        samples.set(item.key, rec);
      }
      const otherUrl = item.kind === 'file' ? urlOfFile(item.parentSha256) : urlOfFile(item.sourceSha256);
      const key = item.kind === 'file' ? `dropped-by:${item.sha256}:${item.parentSha256}` : `${item.relation}:${item.key}:${item.sourceSha256}`;
      if (relations.has(key)) continue;
      await createRelation(ctx, job, key, item.relation, rec.massSampleUrl, otherUrl, intents.has(key));
      relations.add(key);
    } catch (err) {
      if (isTransient(err) || ctx.signal.aborted) throw err;
      // One related item MASS or AL refuses for good must not block the report; it is recorded and skipped.
      const e = toBridgeError(err);
      ctx.ledger.appendEvent(job.id, { type: 'related-failed', code: e.code, message: e.message, data: { key: item.key } }, ctx.now());
      ctx.jobLog(job).warn({ key: item.key, err: e.toJSON() }, 'related item skipped');
    }
  }
}

async function createRelatedSample(
  ctx: BridgeContext,
  job: Job,
  item: RelatedItem,
  sid: string,
  tlpLevel: number,
  tags: (...raw: string[]) => string[],
): Promise<MassSample | null> {
  const signal = ctx.signal;
  if (item.kind === 'file') {
    const maxBytes = ctx.config.report.maxExtractedSize;
    if (item.size !== null && item.size > maxBytes) {
      ctx.ledger.appendEvent(job.id, { type: 'related-skipped', message: `extracted file larger than ${maxBytes} bytes`, data: { key: item.key } }, ctx.now());
      return null;
    }
    // Recorded before the upload: MASS dispatches the new sample back to us at once (echo-back), maybe before we record its URL.
    ctx.ledger.recordOwnSample(item.sha256, { jobId: job.id, sid, parentSha256: item.parentSha256, massSampleUrl: '' }, ctx.now());
    const bytes = await ctx.retry(() => ctx.al.downloadFileBytes(item.sha256, { sid, maxBytes }, { signal }));
    return ctx.retry(() =>
      ctx.mass.submitFileSample(
        {
          filename: item.name || item.sha256,
          body: bytes,
          tlpLevel,
          tags: tags('extracted', `relation:${(item.parentRelation || 'extracted').toLowerCase()}`, `sid:${sid}`),
        },
        { signal },
      ),
    );
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
 * MASS does not deduplicate relations, so a POST is only repeated when a crash fell between the POST
 * and its record. The intent event marks that window; with relation_graph we look before re-posting.
 */
async function createRelation(ctx: BridgeContext, job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string, hadIntent: boolean): Promise<void> {
  // Two jobs of the same sample (MASS scheduled it twice) may relate the same pair at once: one at a time per pair.
  const lockKey = `${kind}\n${sampleUrl}\n${otherUrl}`;
  for (let busy = ctx.relationLocks.get(lockKey); busy; busy = ctx.relationLocks.get(lockKey)) await busy.catch(() => undefined);
  const run = createRelationUnlocked(ctx, job, key, kind, sampleUrl, otherUrl, hadIntent);
  ctx.relationLocks.set(lockKey, run);
  try {
    await run;
  } finally {
    if (ctx.relationLocks.get(lockKey) === run) ctx.relationLocks.delete(lockKey);
  }
}

async function createRelationUnlocked(ctx: BridgeContext, job: Job, key: string, kind: RelationKind, sampleUrl: string, otherUrl: string, hadIntent: boolean): Promise<void> {
  const signal = ctx.signal;
  const record = (r: MassRelation): void =>
    ctx.ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: r.url }, ctx.now());
  const lookup = async (): Promise<MassRelation | undefined> => {
    if (!ctx.mass.getRelationGraph) return undefined;
    const graph = await ctx.mass.getRelationGraph(sampleUrl, 1, { signal });
    return graph.find((r) => sameMassUrl(r.sample, sampleUrl) && sameMassUrl(r.other, otherUrl) && relationClassMatches(r._cls, kind));
  };
  // Another job (the same sample scheduled again) may have created this exact relation already.
  const earlier = ctx.ledger.findRelation(kind, sampleUrl, otherUrl);
  if (earlier) {
    ctx.ledger.recordRelation({ jobId: job.id, key, kind, sampleUrl, otherUrl, massRelationUrl: earlier.massRelationUrl }, ctx.now());
    ctx.ledger.appendEvent(job.id, { type: 'relation-reused', data: { key, relation: earlier.massRelationUrl, job: earlier.jobId } }, ctx.now());
    return;
  }
  let posted = hadIntent;
  const relation = await ctx.retry(async () => {
    if (posted) {
      const existing = await lookup();
      if (existing) return existing;
    }
    ctx.ledger.appendEvent(job.id, { type: 'relation-intent', data: { key, kind, sampleUrl, otherUrl } }, ctx.now());
    posted = true;
    return ctx.mass.addRelation(kind, sampleUrl, otherUrl, { signal });
  });
  record(relation);
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
