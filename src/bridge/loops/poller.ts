/** The poller loop: MASS's heartbeat; claims the scheduled analyses one poll returns, oldest first. */
import { BridgeError } from '../../errors.js';
import type { MassClient } from '../../mass/types.js';
import type { BridgeContext, JobUpdate } from '../context.js';
import { recordFailure } from '../instrument.js';

/** Upper bound of one poll, whatever [AssemblylineAnalysis] Timeout says: MASS marks us offline after 10 minutes without one. */
const MAX_POLL_MS = 4 * 60_000;

/** One poll: every well-formed, unknown scheduled analysis is claimed while claiming is allowed. */
export async function pollTick(ctx: BridgeContext): Promise<void> {
  // The poll is MASS's only heartbeat: it runs even while paused or at MaxInFlight, and one poll that hangs
  // (a half-open connection, a queue in the connection pool) must not stop the next one.
  const limitMs = Math.min(MAX_POLL_MS, Math.max(100, ctx.config.mass.timeout * 1000));
  const timeout = AbortSignal.timeout(limitMs);
  let items: Awaited<ReturnType<MassClient['poll']>>;
  try {
    items = await ctx.pollClient.poll(ctx.config.mass.uuid, { signal: AbortSignal.any([ctx.signal, timeout]) });
  } catch (err) {
    if (timeout.aborted && !ctx.signal.aborted) {
      const e = new BridgeError('TIMEOUT', `MASS poll gave no answer within ${limitMs} ms`, { upstream: 'mass', cause: err });
      // The client saw an abort (not a failure); the status API must still show that MASS is not answering.
      recordFailure(ctx.health.mass, e, ctx.now());
      throw e;
    }
    throw err;
  }
  ctx.lastPollAt = ctx.now();
  ctx.metrics?.pollSucceeded(ctx.lastPollAt);
  const once = ctx.claimMode === 'once';
  let claimed = 0;
  // MASS lists newest first; claim the oldest first.
  for (const sa of [...items].reverse()) {
    // One malformed item must not stop the claiming of all the others.
    if (typeof sa?.id !== 'string' || !sa.id || typeof sa.url !== 'string' || typeof sa.sample !== 'string') {
      ctx.log.warn({ item: JSON.stringify(sa).slice(0, 500) }, 'scheduled analysis without id, url or sample ignored');
      continue;
    }
    if (ctx.ledger.get(sa.id)) continue;
    if (!ctx.canClaim()) break;
    const { job, created } = ctx.ledger.claim({ id: sa.id, scheduledAnalysisUrl: sa.url, sampleUrl: sa.sample }, ctx.now());
    if (created) {
      claimed++;
      ctx.claimedThisRun++;
      ctx.jobLog(job).info({ sample: sa.sample }, 'claimed scheduled analysis');
      ctx.events.emit('job', { job, event: { type: 'claimed' } } satisfies JobUpdate);
      ctx.crashPoint('after-claim');
    }
  }
  if (once) ctx.claimMode = 'never';
  if (claimed > 0) ctx.loops.worker.wake();
}
