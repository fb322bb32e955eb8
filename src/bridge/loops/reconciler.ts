/** The reconciler loop: looks up waiting jobs past their deadline in Assemblyline, and prunes old history. */
import { isTransient } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { BridgeContext } from '../context.js';
import { decideDeadline, type DeadlineLookup } from '../decide.js';
import { onStepError } from './worker.js';

const PRUNE_INTERVAL_MS = 3_600_000;

/** [Bridge] RetainDays: at most once an hour, the history of long-finished jobs is deleted. */
function pruneIfDue(ctx: BridgeContext): void {
  const days = ctx.config.bridge.retainDays;
  const now = ctx.now();
  if (!(days > 0) || now - ctx.lastPruneAt < PRUNE_INTERVAL_MS) return;
  ctx.lastPruneAt = now;
  const removed = ctx.ledger.prune(now - days * 86_400_000);
  if (removed.events + removed.messages > 0) ctx.log.info({ ...removed, retainDays: days }, 'ledger: pruned the history of long-finished jobs');
}

/** Waiting jobs whose deadline passed: what Assemblyline knows of their submission decides (decideDeadline). */
export async function reconcileTick(ctx: BridgeContext): Promise<void> {
  if (ctx.stopping) return;
  pruneIfDue(ctx);
  for (const job of ctx.ledger.due(['waiting'], ctx.now(), 50)) {
    if (ctx.stopping) return;
    if (!ctx.lock(job.id)) continue;
    try {
      const current = ctx.ledger.get(job.id);
      if (!current || current.state !== 'waiting' || current.notBefore > ctx.now()) continue;
      let lookup: DeadlineLookup;
      try {
        lookup = await lookupSubmission(ctx, current);
      } catch (err) {
        onStepError(ctx, job.id, err);
        continue;
      }
      ctx.apply(current, decideDeadline(current, lookup, ctx.policy, ctx.now()));
    } finally {
      ctx.unlock(job.id);
    }
  }
  ctx.loops.worker.wake();
}

/** AL 4.7+: sid == ingest_id for a fresh analysis; older servers: search our correlation metadata. */
export async function lookupSubmission(ctx: BridgeContext, job: Job): Promise<DeadlineLookup> {
  const signal = ctx.signal;
  // A known sid (a cached submission that was still running when collected) first, then the ingest_id.
  for (const id of new Set([job.sid, job.ingestId])) {
    if (!id) continue;
    const sub = await ctx.retry(() => ctx.al.getSubmission(id, { signal }));
    // 'failed' is collected too: the collect step re-ingests it with ignore_cache (decideSubmissionState).
    if (sub) return sub.state === 'submitted' ? { kind: 'running' } : { kind: 'completed', sid: sub.sid };
  }
  try {
    const found = await ctx.al.searchSubmissions(`metadata.bridge_job:"${job.id}"`, { fl: 'sid,state', rows: 10, sort: 'times.submitted desc' }, { signal });
    const items = found.items as Array<{ sid?: unknown; state?: unknown }>;
    const done = items.find((i) => i.state === 'completed' && typeof i.sid === 'string');
    if (done) return { kind: 'completed', sid: String(done.sid) };
    if (items.some((i) => i.state === 'submitted')) return { kind: 'running' };
  } catch (err) {
    if (isTransient(err)) throw err;
    ctx.jobLog(job).debug({ err }, 'submission search unavailable; treating as missing');
  }
  return { kind: 'missing' };
}
