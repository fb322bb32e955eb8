/**
 * The poller loops: one per identity, each that identity's heartbeat on MASS; each claims the scheduled analyses its
 * poll returns, oldest first, for its identity.
 */
import { BridgeError, toBridgeError } from '../../errors.js';
import type { MassClient } from '../../mass/types.js';
import type { BridgeContext, Identity, JobUpdate } from '../context.js';
import { recordFailure } from '../instrument.js';

/**
 * One poll of one identity (default: the first): every well-formed, unknown scheduled analysis is claimed for that
 * identity while claiming is allowed. The identity's last poll, the number MASS lists as pending and the last poll
 * error are recorded for the status API.
 */
export async function pollTick(ctx: BridgeContext, identity: Identity = ctx.identities[0]): Promise<void> {
  try {
    await pollAndClaim(ctx, identity);
    identity.lastPollError = null;
    const failures = identity.pollFailures.succeeded();
    if (failures > 0) ctx.log.info({ identity: identity.name, failures }, `poll of identity ${identity.name} works again after ${failures} failure${failures === 1 ? '' : 's'}`);
  } catch (err) {
    if (!ctx.signal.aborted) identity.lastPollError = toBridgeError(err).message;
    throw err;
  }
}

/**
 * Logs a failed poll of the identity (its loop's failure log): the first failure and a changed message at once, the
 * same failure again at most once a minute with the number of those not logged (see repeated-failures.ts).
 */
export function logPollFailure(ctx: BridgeContext, identity: Identity, err: unknown): void {
  const decision = identity.pollFailures.failed(toBridgeError(err).message, ctx.now());
  if (!decision.log) return;
  const unlogged = decision.repeats > 0 ? `; ${decision.repeats} more identical failure${decision.repeats === 1 ? '' : 's'} since the last line` : '';
  ctx.log.error({ err, identity: identity.name, failures: identity.pollFailures.inRow }, `poll of identity ${identity.name} failed${unlogged}`);
}

async function pollAndClaim(ctx: BridgeContext, identity: Identity): Promise<void> {
  // The poll is MASS's only heartbeat: it runs even while paused or at MaxInFlight, and one poll that hangs
  // (a half-open connection, a queue in the connection pool) must not stop the next one.
  const limitMs = Math.min(ctx.maxPollMs, Math.max(100, ctx.config.mass.timeout * 1000));
  const timeout = AbortSignal.timeout(limitMs);
  let items: Awaited<ReturnType<MassClient['poll']>>;
  try {
    items = await identity.pollClient.poll(identity.uuid, { signal: AbortSignal.any([ctx.signal, timeout]) });
  } catch (err) {
    if (timeout.aborted && !ctx.signal.aborted) {
      const e = new BridgeError('TIMEOUT', `MASS poll gave no answer within ${limitMs} ms`, { upstream: 'mass', cause: err });
      // The client saw an abort (not a failure); the status API must still show that MASS is not answering (the
      // first identity's poll speaks for MASS; a further identity's poll error is shown with that identity).
      if (identity === ctx.identities[0]) recordFailure(ctx.health.mass, e, ctx.now());
      throw e;
    }
    throw err;
  }
  identity.lastPollAt = ctx.now();
  identity.pendingOnMass = items.length;
  // The gauge follows the least recently polled identity: its alert fires when any identity stops polling.
  const leastRecent = ctx.lastPollAt;
  if (leastRecent !== null) ctx.metrics?.pollSucceeded(leastRecent);
  // runOnce: each identity claims from its first poll only.
  const once = ctx.claimMode === 'once';
  if (once && ctx.polledOnce.has(identity.name)) return;
  let claimed = 0;
  // MASS lists newest first; claim the oldest first.
  for (const sa of [...items].reverse()) {
    // One malformed item must not stop the claiming of all the others.
    if (typeof sa?.id !== 'string' || !sa.id || typeof sa.url !== 'string' || typeof sa.sample !== 'string') {
      ctx.log.warn({ item: JSON.stringify(sa).slice(0, 500) }, 'scheduled analysis without id, url or sample ignored');
      continue;
    }
    if (ctx.ledger.has(sa.id)) continue;
    if (!ctx.canClaim()) break;
    const { job, created } = ctx.ledger.claim({ id: sa.id, scheduledAnalysisUrl: sa.url, sampleUrl: sa.sample, identity: identity.name }, ctx.now());
    if (created) {
      claimed++;
      ctx.claimedThisRun++;
      if (ctx.log.isLevelEnabled('info')) ctx.jobLog(job).info({ sample: sa.sample, identity: identity.name }, 'claimed scheduled analysis');
      ctx.events.emit('job', { job, event: { type: 'claimed' } } satisfies JobUpdate);
      ctx.crashPoint('after-claim');
    }
  }
  if (once) {
    ctx.polledOnce.add(identity.name);
    if (ctx.identities.every((i) => ctx.polledOnce.has(i.name))) ctx.claimMode = 'never';
  }
  if (claimed > 0) ctx.loops.worker.wake();
}
