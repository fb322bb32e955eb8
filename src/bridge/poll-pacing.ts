/**
 * Pacing of the notification-queue reads (pure: no clock, no sockets; times are passed in as ms).
 *
 * - A full page of messages came: read again at once (the queue may hold more). A page that was not full
 *   drained the queue: the next read is paced as below, with the backoff started again.
 * - Empty read while jobs wait for a notification: back off gradually, FIRST_BACKOFF_MS doubling up to
 *   QueuePollTime, so a 0.2 s analysis is collected within a fraction of a second and a 2 h one costs few reads;
 *   but read no later than when the next waiting job is expected to finish (its wait so far plus the typical
 *   analysis time this bridge has seen, AnalysisTimeEstimator), so a wave of jobs ingested together is collected
 *   when its analyses end rather than after a backoff that grew while they ran.
 * - Nothing waits: read every QueuePollTime (messages of jobs the bridge forgot about are still drained).
 * - Every read spends a token of a bucket refilled at QueueReadsPerMinute / 60 per second and holding at most
 *   queueReadBurst() tokens, so that the reads of any period T stay within burst + T × QueueReadsPerMinute / 60.
 *   Assemblyline counts every API call, queue reads included, against a user's daily API quota: a quota of N
 *   calls a day allows N / 1440 calls a minute.
 */

/** The first wait after an empty read while jobs wait (ms); doubled after each further empty read. */
export const FIRST_BACKOFF_MS = 50;

/** [Bridge] QueueReadsPerMinute when the configuration predates the key. */
export const DEFAULT_QUEUE_READS_PER_MINUTE = 600;

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
  /**
   * The read returned a full page ([Bridge] QueuePageSize messages), so the queue may hold more. False: it
   * drained the queue, and the next read follows the pacing as after an empty one. Absent: taken as full.
   */
  pageFull?: boolean;
  /**
   * Milliseconds from the read until the next waiting job is expected to finish (null: none is expected later,
   * or no estimate yet). Brings the next read forward when it is sooner than the backoff.
   */
  nextExpectedInMs?: number | null;
  /**
   * Waiting jobs whose expected finish is still ahead (they started waiting in this run and the estimate is
   * known). When it covers every waiting job, none is overdue and the next read waits for the next expected finish
   * without backing off; otherwise the backoff reads look for the overdue ones.
   */
  jobsExpectedLater?: number;
  /**
   * Before any estimate: how long the longest-waiting job of this run has waited at the read (ms). The backoff
   * then stays within half of it, so a notification is read at most about half its analysis time late (instead
   * of up to the whole doubled backoff).
   */
  longestWaitMs?: number | null;
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
  if (read.messages > 0 && read.pageFull !== false) {
    // A full page: the queue may hold more right now.
    backoffMs = 0;
    wantMs = 0;
  } else if (read.jobsWaiting > 0) {
    // A page that was not full drained the queue: like an empty read, but the backoff starts again.
    if (read.messages > 0) prev = { ...prev, backoffMs: 0 };
    const expected = read.nextExpectedInMs;
    const known = expected !== null && expected !== undefined && Number.isFinite(expected);
    if (known && (read.jobsExpectedLater ?? 0) >= read.jobsWaiting) {
      // Nothing is overdue: the next notification is due at the next expected finish.
      backoffMs = 0;
      wantMs = Math.min(Math.max(0, expected), cfg.queuePollTimeMs);
    } else {
      backoffMs = prev.backoffMs <= 0 ? FIRST_BACKOFF_MS : Math.min(cfg.queuePollTimeMs, prev.backoffMs * 2);
      wantMs = Math.min(backoffMs, cfg.queuePollTimeMs);
      if (known) wantMs = Math.min(wantMs, Math.max(0, expected));
      else if (read.longestWaitMs !== null && read.longestWaitMs !== undefined && Number.isFinite(read.longestWaitMs)) {
        wantMs = Math.min(wantMs, Math.max(FIRST_BACKOFF_MS, Math.floor(read.longestWaitMs / 2)));
      }
    }
  } else {
    backoffMs = 0;
    wantMs = cfg.queuePollTimeMs;
  }
  const state: QueuePacingState = { backoffMs, tokens, at: now };
  return { delayMs: wantMs + readAllowedIn(state, now + wantMs, cfg), state };
}

/**
 * Ingest to notification (ms) as Assemblyline timed it: the message's `notify_time` minus its `ingest_time`
 * (ASSEMBLYLINE.md §4.3; `notify_time` exists since late 2023). Null when either is missing, unparsable or
 * without a zone (it would be read in this host's time zone), or the difference is negative. Free of the bridge's own read latency, unlike the time the bridge saw.
 */
export function analysisMsOf(message: Record<string, unknown>): number | null {
  const ingest = utcMs(message.ingest_time);
  const notify = utcMs(message.notify_time);
  const ms = notify - ingest;
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

/** An ISO 8601 time with its zone (Assemblyline writes UTC with `Z`) in ms; NaN without a zone (local time). */
function utcMs(v: unknown): number {
  return typeof v === 'string' && /(Z|[+-]\d\d:?\d\d)$/i.test(v.trim()) ? Date.parse(v) : NaN;
}

/** Observed analysis times kept by AnalysisTimeEstimator. */
export const ANALYSIS_TIME_SAMPLES = 50;
/** Observations needed before the estimate is used (fewer: plain backoff). */
export const MIN_ANALYSIS_TIME_SAMPLES = 5;

/**
 * The typical time from ingest to notification (ms), from the last ANALYSIS_TIME_SAMPLES jobs: their 20th
 * percentile, so most notifications come after the read it schedules (an early read is one empty read, after
 * which the backoff goes on) and a few cache hits do not pull every read forward. Pure: observations are passed in.
 */
export class AnalysisTimeEstimator {
  #samples: number[] = [];

  /** Records one job's wait (ms) from entering `waiting` to its notification being acted on; ignores bad values. */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#samples.push(ms);
    if (this.#samples.length > ANALYSIS_TIME_SAMPLES) this.#samples.shift();
  }

  /** The estimate in ms, or null before MIN_ANALYSIS_TIME_SAMPLES observations. */
  estimateMs(): number | null {
    if (this.#samples.length < MIN_ANALYSIS_TIME_SAMPLES) return null;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) * 0.2)];
  }
}

/** Entries WaitingSince keeps at most. */
export const MAX_WAITING_SINCE = 100_000;

/**
 * When jobs entered `waiting` (ms, ascending as they are added): answers "when is the next one expected to finish
 * after time t", forgetting entries whose expected time has passed. Jobs that finish early stay until their
 * expected time passes (at most one extra early read each). Pure: times are passed in.
 */
export class WaitingSince {
  #times: number[] = [];
  #head = 0;

  /**
   * A job started waiting at `at` (ms). Out-of-order times are kept in order. At most MAX_WAITING_SINCE entries
   * are kept (the oldest go first): without an estimate nothing expires, e.g. while no notification arrives.
   */
  add(at: number): void {
    if (this.size >= MAX_WAITING_SINCE) {
      this.#head++;
      this.#compact();
    }
    const last = this.#times.at(-1);
    if (last !== undefined && at < last) {
      let i = this.#times.length;
      while (i > this.#head && this.#times[i - 1] > at) i--;
      this.#times.splice(i, 0, at);
    } else {
      this.#times.push(at);
    }
  }

  /**
   * The earliest expected finish (start + estimateMs) later than `after` (ms), or null; entries expected at or
   * before `after` are dropped.
   */
  nextExpectedAfter(after: number, estimateMs: number): number | null {
    while (this.#head < this.#times.length && this.#times[this.#head] + estimateMs <= after) this.#head++;
    this.#compact();
    return this.#head < this.#times.length ? this.#times[this.#head] + estimateMs : null;
  }

  /** Drops the forgotten entries from the array once they are most of it. */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The earliest start kept (ms), or null. */
  get oldest(): number | null {
    return this.#head < this.#times.length ? this.#times[this.#head] : null;
  }

  /** Entries kept (for tests). */
  get size(): number {
    return this.#times.length - this.#head;
  }
}
