/**
 * The pipeline's public factory: four loops (loops/poller, worker, listener, reconciler) around the durable
 * ledger, the steps of a job in steps/, the state machine as data in states.ts, every decision in decide.ts.
 * Each transition is written to the ledger before the side effect that depends on it (see docs/design.md).
 */
import { EventEmitter } from 'node:events';
import { BridgeError } from '../errors.js';
import type { Job, JobState } from '../ledger/types.js';
import { JOB_STATES, TERMINAL_STATES } from '../ledger/types.js';
import { BridgeContext, MASS_ONLINE_WINDOW_MS, type BridgeDeps, type JobUpdate, type Runnable } from './context.js';
import type { BridgeControl, BridgeStatus, IdentityStatus } from './control.js';
import { errorReport } from './decide.js';
import { Loop, LoopGroup } from './loop.js';
import { budgetOf } from './states.js';
import { listenTick } from './loops/listener.js';
import { logPollFailure, pollTick } from './loops/poller.js';
import { reconcileTick } from './loops/reconciler.js';
import { workerTick } from './loops/worker.js';
import { sendErrorReport } from './steps/report.js';

export { REPORT_MARKER_KEY, type BridgeDeps, type JobUpdate } from './context.js';

export interface RunOnceSummary {
  claimed: number;
  done: number;
  failed: number;
  held: number;
  /** Jobs still not finished when the bound was reached. */
  remaining: number;
  timedOut: boolean;
}

export interface Bridge {
  start(): void;
  /** Stop claiming, let running steps finish or checkpoint within graceMs, then abort them. Safe twice. */
  stop(opts?: { graceMs?: number }): Promise<void>;
  /** One poll-to-idle cycle: claim what one poll returns, drive every job until none is left in flight (or the bound, or stop()). */
  runOnce(opts?: { timeoutMs?: number }): Promise<RunOnceSummary>;
  readonly control: BridgeControl;
  on(event: 'job', listener: (update: JobUpdate) => void): this;
  off(event: 'job', listener: (update: JobUpdate) => void): this;
  /** The loops, for tests and the demo (e.g. pause the listener). */
  readonly loops: { poller: Runnable; worker: Loop; listener: Loop; reconciler: Loop };
}

class BridgeImpl extends EventEmitter implements Bridge {
  readonly control: BridgeControl;
  readonly loops: Bridge['loops'];
  readonly #ctx: BridgeContext;
  #stopPromise: Promise<void> | null = null;

  constructor(deps: BridgeDeps) {
    super();
    const ctx = new BridgeContext(deps, this);
    this.#ctx = ctx;
    const pollMs = () => ctx.config.mass.pollTime * 1000;
    const workerMs = () => Math.max(10, Math.min(250, pollMs()));
    const reconcileMs = () => Math.max(50, Math.min(30_000, ctx.policy.resultDeadlineMs / 4));
    // After a failed fsync of the ledger the runtime's fatal line names the cause and the bridge is stopping: a tick
    // that ends on that error logs no stack of its own. Any other failure is logged by `log` (default: one error line).
    const logTickFailure = (loop: string, log?: (err: unknown) => void) => (err: unknown) => {
      if (err instanceof BridgeError && err.code === 'LEDGER' && ctx.ledger.syncFailed?.()) {
        ctx.log.debug({ loop, code: err.code }, 'loop tick ended: the ledger can make nothing durable any more');
      } else if (log) {
        log(err);
      } else {
        ctx.log.error({ err, loop }, 'loop tick failed');
      }
    };
    this.loops = {
      // One poller per identity: each is that instance's heartbeat and must not wait behind another's poll.
      // [GLOBAL] SleepTime: the wait before polling again after a failed poll.
      poller: new LoopGroup(
        'poller',
        ctx.identities.map(
          (identity, i) =>
            new Loop(i === 0 ? 'poller' : `poller:${identity.name}`, pollMs, () => pollTick(ctx, identity), ctx.log, () => ctx.config.global.sleepTime * 1000,
              logTickFailure(i === 0 ? 'poller' : `poller:${identity.name}`, (err) => logPollFailure(ctx, identity, err)),
            ),
        ),
      ),
      worker: new Loop('worker', workerMs, () => workerTick(ctx), ctx.log, undefined, logTickFailure('worker')),
      listener: new Loop('listener', () => ctx.config.bridge.queuePollTime * 1000, () => listenTick(ctx), ctx.log, undefined, logTickFailure('listener')),
      reconciler: new Loop('reconciler', reconcileMs, () => reconcileTick(ctx), ctx.log, undefined, logTickFailure('reconciler')),
    };
    ctx.loops = this.loops;
    this.control = this.#makeControl();
  }

  // ---------------------------------------------------------------- lifecycle

  start(): void {
    if (this.#ctx.stopping) throw new BridgeError('INTERNAL', 'bridge was stopped; create a new one');
    for (const loop of Object.values(this.loops)) loop.start();
  }

  stop(opts: { graceMs?: number } = {}): Promise<void> {
    if (!this.#stopPromise) this.#stopPromise = this.#stop(opts.graceMs ?? this.#ctx.config.bridge.gracePeriod * 1000);
    return this.#stopPromise;
  }

  async #stop(graceMs: number): Promise<void> {
    const ctx = this.#ctx;
    ctx.stopping = true;
    ctx.log.info({ graceMs }, 'stopping: no new claims; waiting for running steps');
    const graceOver = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), graceMs);
      t.unref();
    });
    const drained = (async () => {
      await Promise.all([this.loops.poller.stop(), this.loops.reconciler.stop(), this.loops.worker.stop()]);
      // The listener finishes its current (destructive) read and persists it before stopping.
      await this.loops.listener.stop();
      await ctx.queue.onIdle();
      return 'idle' as const;
    })();
    const outcome = await Promise.race([drained, graceOver]);
    if (outcome === 'timeout') {
      ctx.log.warn('grace period over: aborting running steps (they checkpoint in the ledger)');
      ctx.abort.abort(ctx.aborted());
      const bound = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
      await Promise.race([drained, bound]);
    }
    // What the steps wrote after their last upstream call (a job's final state) is made durable before stop returns;
    // after a failed fsync of the ledger nothing can be (the runtime's fatal line said so): no commit is tried.
    if (!ctx.ledger.syncFailed?.()) {
      await ctx.ledger.flush().catch((err: unknown) => {
        if (ctx.ledger.syncFailed?.()) ctx.log.debug('ledger commit at stop skipped: the ledger can make nothing durable any more');
        else ctx.log.error({ err }, 'ledger commit at stop failed');
      });
    }
    ctx.log.info('stopped');
  }

  async runOnce(opts: { timeoutMs?: number } = {}): Promise<RunOnceSummary> {
    const ctx = this.#ctx;
    const bound = opts.timeoutMs ?? Math.max(60_000, ctx.policy.resultDeadlineMs * (ctx.policy.maxAttempts + 1) + 60_000);
    const started = ctx.now();
    ctx.claimMode = 'once';
    ctx.claimedThisRun = 0;
    ctx.polledOnce.clear();
    this.start();
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        // stop() (a signal) ends the wait at once; the summary then counts what is still unfinished.
        if (ctx.stopping) return resolve();
        if (ctx.claimMode === 'never' && ctx.ledger.inFlight() === 0) return resolve();
        if (ctx.now() - started > bound) {
          timedOut = true;
          return resolve();
        }
        setTimeout(check, 50);
      };
      check();
    });
    await this.stop();
    const finished = ctx.ledger.finishedSince(started);
    return {
      claimed: ctx.claimedThisRun,
      done: finished.filter((f) => f.state === 'done').length,
      failed: finished.filter((f) => f.state === 'failed').length,
      held: ctx.ledger.countByState().held,
      remaining: ctx.ledger.inFlight(),
      timedOut,
    };
  }

  // ---------------------------------------------------------------- operator control

  #makeControl(): BridgeControl {
    const ctx = this.#ctx;
    const waitForLock = async (id: string): Promise<void> => {
      for (let i = 0; i < 600; i++) {
        if (ctx.lock(id)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new BridgeError('INTERNAL', `job ${id} is busy; try again`);
    };
    const unfinished = (id: string): Job => {
      const job = ctx.ledger.get(id);
      if (!job) throw new BridgeError('NOT_FOUND', `no job ${id}`);
      if (TERMINAL_STATES.includes(job.state)) throw new BridgeError('INTERNAL', `job ${id} is already reported (${job.state})`);
      return job;
    };
    /**
     * Runs an operator action under the job's lock; the job may have finished while we waited for it. The answer
     * the operator reads is durable: the ledger is flushed before it is returned.
     */
    const operatorAction = async (id: string, action: (current: Job) => Promise<Job>): Promise<Job> => {
      unfinished(id);
      await waitForLock(id);
      try {
        const updated = await action(unfinished(id));
        await ctx.ledger.flush();
        return updated;
      } finally {
        ctx.unlock(id);
      }
    };
    const identityStatus = (): IdentityStatus[] => {
      const inFlight = ctx.ledger.inFlightByIdentity();
      const now = ctx.now();
      return ctx.identities.map((i) => ({
        name: i.name,
        uuid: i.uuid,
        lastPollAt: i.lastPollAt,
        pendingOnMass: i.pendingOnMass,
        inFlight: inFlight[i.name] ?? 0,
        online: i.lastPollAt !== null && now - i.lastPollAt < MASS_ONLINE_WINDOW_MS,
        lastPollError: i.lastPollError,
      }));
    };
    return {
      status: (): BridgeStatus => ({
        startedAt: ctx.startedAt,
        paused: ctx.paused,
        pollTimeSeconds: ctx.config.mass.pollTime,
        lastPollAt: ctx.lastPollAt,
        upstreams: { mass: { ...ctx.health.mass }, assemblyline: { ...ctx.health.assemblyline } },
        massApiRoot: ctx.config.global.apiRoot,
        assemblylineUiUrl: ctx.mapping.uiBaseUrl,
        instanceUuid: ctx.config.mass.uuid,
        identities: identityStatus(),
        stateBudgetsMs: Object.fromEntries(JOB_STATES.map((s) => [s, budgetOf(s, ctx.budgetLimits).ageMs])),
        ingestBlocked: ctx.gate.refusal ? { reason: ctx.gate.refusal.reason, fix: ctx.gate.refusal.fix, since: ctx.gate.refusal.since } : null,
      }),
      pause: () => {
        ctx.paused = true;
      },
      resume: () => {
        ctx.paused = false;
        this.loops.poller.wake();
      },
      retryJob: (id) =>
        operatorAction(id, (current) => {
          const held = [...ctx.ledger.events(id)].reverse().find((e) => e.type === 'held');
          const from = current.state === 'held' ? ((held?.data?.from as JobState | undefined) ?? 'reporting') : current.state;
          const updated = ctx.apply(current, {
            patch: { state: from, notBefore: ctx.now(), stepFailures: 0 },
            event: { type: 'retry', message: 'retried by operator' },
          });
          this.loops.worker.wake();
          return Promise.resolve(updated);
        }),
      abandonJob: (id, reason) =>
        operatorAction(id, async (current) => {
          await sendErrorReport(ctx.forJob(current), ctx.apply(current, errorReport('ABANDONED', `abandoned by operator: ${reason}`, ctx.now())));
          return ctx.ledger.get(id)!;
        }),
    };
  }
}

/** The bridge, not started: `start()` runs the four loops, `runOnce()` one poll-to-idle cycle. */
export function createBridge(deps: BridgeDeps): Bridge {
  return new BridgeImpl(deps);
}
