/** A named periodic loop with start()/stop() that are safe to call twice, and wake() to run the next tick now. */
import type { Logger } from '../log.js';

export class Loop {
  readonly name: string;
  #interval: () => number;
  #tick: () => Promise<void>;
  #logger: Logger;
  #running = false;
  #done: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  #errorInterval: () => number;
  #logFailure: (err: unknown) => void;

  /**
   * `errorIntervalMs`: the wait after a tick that threw (default: the normal interval). `logFailure`: logs what a
   * tick threw (default: one error line per failed tick).
   */
  constructor(name: string, intervalMs: () => number, tick: () => Promise<void>, logger: Logger, errorIntervalMs?: () => number, logFailure?: (err: unknown) => void) {
    this.name = name;
    this.#interval = intervalMs;
    this.#errorInterval = errorIntervalMs ?? intervalMs;
    this.#tick = tick;
    this.#logger = logger;
    this.#logFailure = logFailure ?? ((err) => this.#logger.error({ err, loop: this.name }, 'loop tick failed'));
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#done = this.#run();
  }

  /** Stops after the current tick; resolves when it has finished. */
  async stop(): Promise<void> {
    this.#running = false;
    this.wake();
    await this.#done;
  }

  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      let failed = false;
      try {
        await this.#tick();
      } catch (err) {
        failed = true;
        this.#logFailure(err);
      }
      if (!this.#running) break;
      if (this.#woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(1, failed ? this.#errorInterval() : this.#interval()));
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = null;
    }
  }
}

/** Several loops started, stopped and woken together (e.g. one poller per identity), under one name. */
export class LoopGroup {
  readonly name: string;
  readonly loops: readonly Loop[];

  constructor(name: string, loops: readonly Loop[]) {
    this.name = name;
    this.loops = loops;
  }

  get running(): boolean {
    return this.loops.some((l) => l.running);
  }

  start(): void {
    for (const l of this.loops) l.start();
  }

  /** Stops every loop after its current tick; resolves when all have finished. */
  async stop(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.stop()));
  }

  wake(): void {
    for (const l of this.loops) l.wake();
  }
}
