/** The reconciler loop: looks up waiting jobs past their deadline in Assemblyline, and prunes old history. */
import { isTransient } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { BridgeContext } from '../context.js';
import { decideDeadline, decideOverAge, decideUncertainRead, type DeadlineLookup } from '../decide.js';
import { reconcileQuery } from '../ingest-request.js';
import { budgetOf } from '../states.js';
import { onStepError } from './worker.js';

const PRUNE_INTERVAL_MS = 3_600_000;

/**
 * [Bridge] RetainDays: at most once an hour, the history of long-finished jobs is deleted, in the ledger's batches
 * (each committed before the next, the event loop free in between).
 */
async function pruneIfDue(ctx: BridgeContext): Promise<void> {
  const days = ctx.config.bridge.retainDays;
  const now = ctx.now();
  if (!(days > 0) || now - ctx.lastPruneAt < PRUNE_INTERVAL_MS) return;
  ctx.lastPruneAt = now;
  const removed = { events: 0, messages: 0 };
  for (;;) {
    const batch = ctx.ledger.prune(now - days * 86_400_000);
    removed.events += batch.events;
    removed.messages += batch.messages;
    if (!batch.more || ctx.stopping) break;
    await ctx.ledger.flush();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (removed.events + removed.messages > 0) ctx.log.info({ ...removed, retainDays: days }, 'ledger: pruned the history of long-finished jobs');
}

/** Waiting jobs whose deadline passed: what Assemblyline knows of their submission decides (decideDeadline). */
export async function reconcileTick(ctx: BridgeContext): Promise<void> {
  if (ctx.stopping) return;
  await pruneIfDue(ctx);
  await recheckAfterUncertainRead(ctx);
  moveOnOverAge(ctx);
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

/**
 * After a queue read with an uncertain outcome (and once at start: a shutdown may have closed the ledger while
 * a read was open): every waiting job is looked up in Assemblyline now, not after ResultDeadline.
 */
async function recheckAfterUncertainRead(ctx: BridgeContext): Promise<void> {
  const since = ctx.queueReadUncertainAt;
  if (since === null) return;
  ctx.queueReadUncertainAt = null;
  let page = ctx.ledger.list({ states: ['waiting'], limit: 500 });
  for (;;) {
    for (const job of page.jobs) {
      if (ctx.stopping) return;
      if (!ctx.lock(job.id)) continue;
      try {
        const current = ctx.ledger.get(job.id);
        if (!current || current.state !== 'waiting') continue;
        let lookup: DeadlineLookup;
        try {
          lookup = await lookupSubmission(ctx, current);
        } catch (err) {
          // Assemblyline not answering: look again on a later tick.
          ctx.queueReadUncertainAt = since;
          ctx.jobLog(current).debug({ err }, 'early lookup after an uncertain queue read failed');
          return;
        }
        const t = decideUncertainRead(current, lookup, ctx.now());
        if (t) ctx.apply(current, t);
      } finally {
        ctx.unlock(job.id);
      }
    }
    if (!page.nextCursor) break;
    page = ctx.ledger.list({ states: ['waiting'], limit: 500, cursor: page.nextCursor });
  }
}

/** No job stays in a state longer than its age budget (states.ts): the oldest of each state is moved on. */
function moveOnOverAge(ctx: BridgeContext): void {
  const now = ctx.now();
  for (const o of ctx.ledger.oldestPerState()) {
    const budget = budgetOf(o.state, ctx.budgetLimits).ageMs;
    if (budget === null || now - o.since <= budget) continue;
    if (!ctx.lock(o.jobId)) continue; // a step is running on it; its own error handling applies the same budget
    try {
      const job = ctx.ledger.get(o.jobId);
      if (!job || job.state !== o.state) continue;
      const gate = { shut: ctx.gate.blocksIngest(now, ctx.inAnalysis()), reason: ctx.gate.reason, fix: ctx.gate.fix };
      ctx.apply(job, decideOverAge(job, now - o.since, budget, now, gate));
    } finally {
      ctx.unlock(o.jobId);
    }
  }
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
    // By the ingest_id Assemblyline sets itself, else by the bridge's own metadata (when it is sent).
    const query = reconcileQuery(ctx.config.assemblyline, job);
    if (query === null) return { kind: 'missing' };
    const found = await ctx.al.searchSubmissions(query, { fl: 'sid,state', rows: 10, sort: 'times.submitted desc' }, { signal });
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
