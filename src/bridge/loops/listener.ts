/**
 * The listener loop: reads the notification queue, stores each batch, then acts on the stored messages. The
 * reads are paced by poll-pacing.ts: at once while messages come, backing off while jobs wait, QueuePollTime
 * when nothing waits, within the [Bridge] QueueReadsPerMinute budget.
 */
import { BridgeError } from '../../errors.js';
import type { BridgeContext, JobUpdate } from '../context.js';
import { decideNotification, parseNotification } from '../decide.js';
import {
  AnalysisTimeEstimator, analysisMsOf, DEFAULT_QUEUE_READS_PER_MINUTE, FIRST_BACKOFF_MS, initialPacing, nextQueueRead, readAllowedIn,
  WaitingSince, type QueuePacingConfig, type QueuePacingState,
} from '../poll-pacing.js';

/** Per bridge: the pacing state and the timer that wakes the listener before its QueuePollTime interval. */
interface Pacer {
  state: QueuePacingState;
  timer: ReturnType<typeof setTimeout> | null;
  /** When the timer fires (ms, ctx.now()). */
  timerAt: number;
  /** Reads made (for tests and the status of the loop). */
  reads: number;
  /** How long analyses take here (ingest to notification), learnt from this run's notifications. */
  analysisTime: AnalysisTimeEstimator;
  /** When the jobs of this run started waiting: the next read is due when the next of them is expected to finish. */
  waitingSince: WaitingSince;
  /** When the read before the latest one was made (ms, ctx.now()); null before the second read. */
  previousReadAt: number | null;
  /** When the latest read was made. */
  lastReadAt: number | null;
}

const pacers = new WeakMap<BridgeContext, Pacer>();

function pacingConfig(ctx: BridgeContext): QueuePacingConfig {
  const b = ctx.config.bridge;
  return { queuePollTimeMs: b.queuePollTime * 1000, readsPerMinute: b.queueReadsPerMinute ?? DEFAULT_QUEUE_READS_PER_MINUTE };
}

function pacerOf(ctx: BridgeContext): Pacer {
  let p = pacers.get(ctx);
  if (!p) {
    const pacer: Pacer = {
      state: initialPacing(pacingConfig(ctx), ctx.now()), timer: null, timerAt: 0, reads: 0,
      analysisTime: new AnalysisTimeEstimator(), waitingSince: new WaitingSince(), previousReadAt: null, lastReadAt: null,
    };
    p = pacer;
    pacers.set(ctx, pacer);
    // A job that starts waiting while the listener sleeps QueuePollTime: look for its notification soon, or when
    // analyses here typically end.
    ctx.events.on('job', (u: JobUpdate) => {
      if (u.job.state !== 'waiting' || ctx.stopping) return;
      const now = ctx.now();
      pacer.waitingSince.add(u.job.stateSince ?? now);
      pacer.state = { ...pacer.state, backoffMs: 0 };
      wakeIn(ctx, pacer, pacer.analysisTime.estimateMs() ?? FIRST_BACKOFF_MS);
    });
  }
  return p;
}

/** Wakes the listener in `ms` unless an earlier wake is already set (the loop's own interval is QueuePollTime). */
function wakeIn(ctx: BridgeContext, p: Pacer, ms: number): void {
  if (ms >= ctx.config.bridge.queuePollTime * 1000 && p.timer === null) return;
  const at = ctx.now() + ms;
  if (p.timer !== null) {
    if (p.timerAt <= at) return;
    clearTimeout(p.timer);
  }
  p.timerAt = at;
  p.timer = setTimeout(() => {
    p.timer = null;
    ctx.loops.listener.wake();
  }, Math.max(0, ms));
  p.timer.unref?.();
}

/** Queue reads this bridge made so far (a cost paced by [Bridge] QueueReadsPerMinute). */
export function queueReads(ctx: BridgeContext): number {
  return pacers.get(ctx)?.reads ?? 0;
}

/**
 * One destructive queue read (stored before it is acted on) if the budget allows it now, then every unprocessed
 * stored message; then the wake-up for the next read.
 */
export async function listenTick(ctx: BridgeContext): Promise<void> {
  const b = ctx.config.bridge;
  const queue = ctx.config.assemblyline.notificationQueue;
  const pacer = pacerOf(ctx);
  const cfg = pacingConfig(ctx);
  if (pacer.timer !== null) {
    clearTimeout(pacer.timer);
    pacer.timer = null;
  }
  let popped = 0;
  const allowedIn = readAllowedIn(pacer.state, ctx.now(), cfg);
  if (allowedIn > 0 && !ctx.stopping) {
    // Woken before the budget has a read: act on stored messages, read when it has one.
    processMessages(ctx);
    wakeIn(ctx, pacer, allowedIn);
    return;
  }
  const before = pacer.state;
  const readAt = ctx.now();
  if (!ctx.stopping) {
    pacer.reads += 1;
    pacer.previousReadAt = pacer.lastReadAt;
    pacer.lastReadAt = readAt;
    // The read is spent even if it fails; the next one after an error follows the loop's error interval.
    pacer.state = nextQueueRead({ jobsWaiting: 1, messages: 0 }, before, readAt, cfg).state;
    // The read is destructive, so a stop request lets an answer in flight arrive and be stored; only when the
    // grace period is over (ctx.signal) is it aborted: every start then looks the waiting jobs up (uncertain read).
    let messages: Awaited<ReturnType<typeof ctx.al.getMessages>>;
    try {
      messages = await ctx.al.getMessages(queue, b.queuePageSize, { signal: ctx.signal });
      ctx.gate.onApiOk();
    } catch (err) {
      // The daily API quota stops claiming and ingesting (ingest-gate.ts).
      ctx.gate.onApiError(err, ctx.now());
      // No answer or a reset connection: Assemblyline may have popped messages we never saw. Not so when the flush
      // before the read failed (LEDGER: the read was never sent), nor when the bridge is stopping (every start
      // looks the waiting jobs up).
      if (!(err instanceof BridgeError && err.code === 'LEDGER') && !ctx.stopping) uncertainRead(ctx, 'the notification-queue read failed');
      throw err;
    }
    popped = messages.length;
    // The batch is off Assemblyline's queue and not yet in the ledger.
    if (popped > 0) ctx.crashPoint('after-queue-pop');
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
  if (ctx.stopping) return;
  const jobsWaiting = ctx.ledger.countByState().waiting ?? 0;
  const estimate = pacer.analysisTime.estimateMs();
  const expectedAt = estimate === null ? null : pacer.waitingSince.nextExpectedAfter(readAt, estimate);
  const oldestStart = estimate === null ? pacer.waitingSince.oldest : null;
  const next = nextQueueRead(
    { jobsWaiting, messages: popped, pageFull: popped >= b.queuePageSize, nextExpectedInMs: expectedAt === null ? null : expectedAt - readAt, jobsExpectedLater: expectedAt === null ? 0 : pacer.waitingSince.size,
      longestWaitMs: oldestStart === null ? null : readAt - oldestStart },
    before, readAt, cfg,
  );
  pacer.state = next.state;
  wakeIn(ctx, pacer, Math.max(0, next.delayMs - (ctx.now() - readAt)));
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
      // The row just read (nothing ran in between): the job as the ledger holds it.
      const current = job;
      const d = decideNotification(current, view, ctx.policy, ctx.now(), ctx.random);
      if (d.kind === 'apply' && current.state === 'waiting') {
        // How long this analysis took: paces the next reads (poll-pacing.ts). Assemblyline's own timing, else the
        // wait up to the read before this one (a lower bound: the message was not there yet, or not read yet).
        const pacer = pacerOf(ctx);
        const seen = pacer.previousReadAt !== null && current.stateSince !== undefined ? pacer.previousReadAt - current.stateSince : null;
        const ms = analysisMsOf(stored.body) ?? seen;
        if (ms !== null && ms >= 0) pacer.analysisTime.observe(ms);
      }
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
