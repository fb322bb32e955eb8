/**
 * Pacing of the notification-queue reads (pure: no clock, no sockets; times are passed in as ms).
 *
 * - Messages came: read again at once (the queue may hold more, and jobs are finishing).
 * - Empty read while jobs wait for a notification: back off gradually, FIRST_BACKOFF_MS doubling up to
 *   QueuePollTime, so a 0.2 s analysis is collected within a fraction of a second and a 2 h one costs few reads.
 * - Nothing waits: read every QueuePollTime (messages of jobs the bridge forgot about are still drained).
 * - Every read spends a token of a bucket refilled at QueueReadsPerMinute / 60 per second and holding at most
 *   queueReadBurst() tokens, so that the reads of any period T stay within burst + T × QueueReadsPerMinute / 60.
 *   Assemblyline counts every API call, queue reads included, against a user's daily API quota: a quota of N
 *   calls a day allows N / 1440 calls a minute.
 */

/** The first wait after an empty read while jobs wait (ms); doubled after each further empty read. */
export const FIRST_BACKOFF_MS = 50;

/** [Bridge] QueueReadsPerMinute when the configuration predates the key. */
export const DEFAULT_QUEUE_READS_PER_MINUTE = 120;

export interface QueuePacingConfig {
  /** [Bridge] QueuePollTime in ms: the wait between reads while nothing waits, and the longest backoff. */
  queuePollTimeMs: number;
  /** [Bridge] QueueReadsPerMinute: the sustained read budget (≥ 1). */
  readsPerMinute: number;
}

export interface QueuePacingState {
  /** The current backoff after empty reads (ms); 0 when the last read brought messages or nothing waited. */
  backoffMs: number;
  /** Read tokens left at `at` (may be fractional; 1 token = 1 read). */
  tokens: number;
  /** When `tokens` was computed (ms, the caller's clock). */
  at: number;
}

/** Reads allowed at once after a quiet period: ten seconds' worth of the budget, at least 1. */
export function queueReadBurst(cfg: QueuePacingConfig): number {
  return Math.max(1, Math.floor(cfg.readsPerMinute / 6));
}

/** The starting state at time `now` (ms): a full bucket, no backoff. */
export function initialPacing(cfg: QueuePacingConfig, now: number): QueuePacingState {
  return { backoffMs: 0, tokens: queueReadBurst(cfg), at: now };
}

function tokensAt(state: QueuePacingState, now: number, cfg: QueuePacingConfig): number {
  const refill = (Math.max(0, now - state.at) * cfg.readsPerMinute) / 60_000;
  return Math.min(queueReadBurst(cfg), state.tokens + refill);
}

/** Milliseconds until the budget allows a read at `now` (0: read now). */
export function readAllowedIn(state: QueuePacingState, now: number, cfg: QueuePacingConfig): number {
  const t = tokensAt(state, now, cfg);
  return t >= 1 ? 0 : Math.ceil(((1 - t) * 60_000) / cfg.readsPerMinute);
}

export interface QueueReadOutcome {
  /** Jobs waiting for a notification after the read was processed. */
  jobsWaiting: number;
  /** Messages the read returned. */
  messages: number;
}

/**
 * The decision after a read at `now` (ms) that `readAllowedIn` allowed: the wait before the next read (ms) and the
 * new state. While jobs wait the wait is at most max(QueuePollTime, 60 s / QueueReadsPerMinute).
 */
export function nextQueueRead(
  read: QueueReadOutcome,
  prev: QueuePacingState,
  now: number,
  cfg: QueuePacingConfig,
): { delayMs: number; state: QueuePacingState } {
  const tokens = tokensAt(prev, now, cfg) - 1;
  let backoffMs: number;
  let wantMs: number;
  if (read.messages > 0) {
    backoffMs = 0;
    wantMs = 0;
  } else if (read.jobsWaiting > 0) {
    backoffMs = prev.backoffMs <= 0 ? FIRST_BACKOFF_MS : Math.min(cfg.queuePollTimeMs, prev.backoffMs * 2);
    wantMs = Math.min(backoffMs, cfg.queuePollTimeMs);
  } else {
    backoffMs = 0;
    wantMs = cfg.queuePollTimeMs;
  }
  const state: QueuePacingState = { backoffMs, tokens, at: now };
  return { delayMs: wantMs + readAllowedIn(state, now + wantMs, cfg), state };
}
