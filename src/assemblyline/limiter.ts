/**
 * A counting semaphore: at most `limit` Assemblyline calls run at once, because AL answers
 * 503 to a user with more than 10 concurrent API calls (uploads and polls included). Waiters are served
 * first come, first served, except that a waiter marked `first` goes ahead of the others (behind earlier
 * `first` ones): the bridge marks its notification-queue reads so, because one read serves every job whose
 * notification it brings, while the other calls serve one job each.
 */
import { BridgeError } from '../errors.js';

export class CallLimiter {
  #active = 0;
  readonly #waiting: Array<{ grant: () => void; first: boolean }> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves to a release function (safe to call twice) once a slot is free. `first`: served before every
   * waiter not marked `first`. Rejects with BridgeError ABORTED when `signal` aborts before the slot is granted.
   */
  async acquire(signal?: AbortSignal, first = false): Promise<() => void> {
    if (signal?.aborted) throw new BridgeError('ABORTED', 'operation aborted', { cause: signal.reason });
    if (this.#active < this.limit) {
      this.#active++;
      return this.#releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        first,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new BridgeError('ABORTED', 'operation aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (first) {
        // Behind the `first` waiters already queued, ahead of every other.
        const at = this.#waiting.findIndex((w) => !w.first);
        this.#waiting.splice(at < 0 ? this.#waiting.length : at, 0, entry);
      } else this.#waiting.push(entry);
    });
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter so a newcomer cannot jump the queue.
      if (next) next.grant();
      else this.#active--;
    };
  }
}
