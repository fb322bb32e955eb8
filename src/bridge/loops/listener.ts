/** The listener loop: reads the notification queue, stores each batch, then acts on the stored messages. */
import type { BridgeContext } from '../context.js';
import { decideNotification, parseNotification } from '../decide.js';

/** One destructive queue read (stored before it is acted on), then every unprocessed stored message. */
export async function listenTick(ctx: BridgeContext): Promise<void> {
  const b = ctx.config.bridge;
  const queue = ctx.config.assemblyline.notificationQueue;
  let popped = 0;
  if (!ctx.stopping) {
    // No abort signal: the read is destructive, so an answer in flight must be received and stored.
    let messages: Awaited<ReturnType<typeof ctx.al.getMessages>>;
    try {
      messages = await ctx.al.getMessages(queue, b.queuePageSize);
      ctx.gate.onApiOk();
    } catch (err) {
      // The daily API quota stops claiming and ingesting (ingest-gate.ts).
      ctx.gate.onApiError(err, ctx.now());
      // No answer or a reset connection: Assemblyline may have popped messages we never saw.
      uncertainRead(ctx, 'the notification-queue read failed');
      throw err;
    }
    popped = messages.length;
    if (popped > 0) {
      const valid = messages.filter((m): m is typeof m & { ingest_id: string } => typeof m?.ingest_id === 'string');
      // A message without ingest_id matches no job; it is logged (not stored) so that an operator can see it.
      if (valid.length < popped) ctx.log.warn({ queue, dropped: popped - valid.length, sample: JSON.stringify(messages.find((m) => typeof m?.ingest_id !== 'string')).slice(0, 500) }, 'notification without ingest_id ignored');
      try {
        ctx.ledger.storeMessages(queue, valid, ctx.now());
      } catch (err) {
        uncertainRead(ctx, 'a popped batch of notifications could not be stored');
        throw err;
      }
      for (const m of valid) {
        const t = Date.parse(String(m.notify_time ?? m.ingest_time ?? ''));
        if (Number.isFinite(t)) ctx.metrics?.notificationLag((ctx.now() - t) / 1000);
      }
    }
  }
  processMessages(ctx);
  if (popped >= b.queuePageSize && !ctx.stopping) ctx.loops.listener.wake();
}

/** Messages may be lost: the reconciler looks up every waiting job in Assemblyline at once. */
function uncertainRead(ctx: BridgeContext, why: string): void {
  ctx.queueReadUncertainAt = ctx.now();
  ctx.log.warn({ why }, 'notifications may be lost: looking up the waiting jobs in Assemblyline now');
  ctx.loops.reconciler.wake();
}

/** Acts on stored, unprocessed messages in order; a message for a busy job waits for the next round. */
export function processMessages(ctx: BridgeContext): void {
  let touched = false;
  for (const stored of ctx.ledger.unprocessedMessages(1000)) {
    const view = parseNotification(stored.body);
    const job = ctx.ledger.findByIngestId(view.ingestId) ?? (view.bridgeJob ? ctx.ledger.get(view.bridgeJob) : undefined);
    if (!job) {
      ctx.log.info({ ingestId: view.ingestId }, 'notification for an unknown job: recorded and ignored');
      ctx.ledger.markMessageProcessed(stored.seq, null, ctx.now());
      continue;
    }
    if (!ctx.lock(job.id)) continue; // a step is running on this job; looked at again next round
    try {
      const current = ctx.ledger.get(job.id)!;
      const d = decideNotification(current, view, ctx.policy, ctx.now(), ctx.random);
      if (d.kind === 'apply') {
        ctx.apply(current, d.transition);
        touched = true;
      } else {
        ctx.jobLog(current).debug({ ingestId: view.ingestId, reason: d.reason }, 'notification ignored');
      }
      ctx.ledger.markMessageProcessed(stored.seq, job.id, ctx.now());
    } finally {
      ctx.unlock(job.id);
    }
  }
  if (touched) ctx.loops.worker.wake();
}
