/**
 * When to log a failure that repeats on every tick of a loop: a poll with a wrong key fails once per poll, 3600
 * times an hour at PollTime 1. Pure: the caller passes the time.
 */

/** The least time between two log lines of the same repeated failure (ms). */
export const REPEAT_LOG_INTERVAL_MS = 60_000;

/** What to do with one failure: nothing, or log a line (`repeats`: identical failures not logged since the last line). */
export type FailureLogDecision = { log: false } | { log: true; repeats: number };

/**
 * One loop's failures in a row. The first failure is logged, as is a failure whose message differs from the
 * previous one; an identical failure at most once per `intervalMs`, with the number of those left out since.
 */
export class RepeatedFailures {
  readonly intervalMs: number;
  #message: string | null = null;
  #loggedAt = 0;
  #unlogged = 0;
  #inRow = 0;

  constructor(intervalMs = REPEAT_LOG_INTERVAL_MS) {
    this.intervalMs = intervalMs;
  }

  /** Failures since the last success. */
  get inRow(): number {
    return this.#inRow;
  }

  /** A failure with `message` (secret-free) at `now` (ms): whether to log it. */
  failed(message: string, now: number): FailureLogDecision {
    this.#inRow++;
    if (message === this.#message && now - this.#loggedAt < this.intervalMs) {
      this.#unlogged++;
      return { log: false };
    }
    const repeats = this.#unlogged;
    this.#message = message;
    this.#loggedAt = now;
    this.#unlogged = 0;
    return { log: true, repeats };
  }

  /** A success: returns the failures in a row it ends (0 when the previous tick succeeded too). */
  succeeded(): number {
    const ended = this.#inRow;
    this.#inRow = 0;
    this.#message = null;
    this.#unlogged = 0;
    return ended;
  }
}
