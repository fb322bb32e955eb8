/** The worker loop: drives every due job in a work state through its steps, Concurrency at a time. */
import { toBridgeError } from '../../errors.js';
import type { Job, JobState } from '../../ledger/types.js';
import type { BridgeContext } from '../context.js';
import { decideStepError } from '../decide.js';
import { WORK_STATES } from '../states.js';
import { collectStep } from '../steps/collect.js';
import { fetchStep } from '../steps/fetch.js';
import { ingestStep } from '../steps/ingest.js';
import { sendErrorReport } from '../steps/report.js';

/** Work states past the Assemblyline analysis: results are read, related and reported to MASS. */
const FINISHING_STATES: ReadonlySet<JobState> = new Set<JobState>(['collecting', 'relating', 'reporting']);
/** The work states of each group, as the due queries ask for them (no lists built per tick). */
const FINISHING: JobState[] = WORK_STATES.filter((s) => FINISHING_STATES.has(s));
const STARTING: JobState[] = WORK_STATES.filter((s) => !FINISHING_STATES.has(s));
/** While the ingest gate holds every ingest, ingesting jobs are not picked (no hold written per job). */
const STARTING_GATE_SHUT: JobState[] = STARTING.filter((s) => s !== 'ingesting');

/** Starts a driver for each due, unlocked job while the queue has room; jobs with results to report first. */
export async function workerTick(ctx: BridgeContext): Promise<void> {
  if (ctx.stopping) return;
  const free = ctx.queue.concurrency - ctx.queue.pending - ctx.queue.size;
  if (free <= 0) return;
  const gateShut = ctx.gate.blocksIngest(ctx.now(), ctx.inAnalysis());
  // Finishing work first: a job with results to report goes before new work (oldest first within each group), so
  // reports reach MASS while new samples are still being ingested instead of after the last ingest.
  const now = ctx.now();
  const limit = free + ctx.active.size;
  const finishing = ctx.ledger.dueIds(FINISHING, now, limit);
  const due = finishing.length >= limit ? finishing : [...finishing, ...ctx.ledger.dueIds(gateShut ? STARTING_GATE_SHUT : STARTING, now, limit - finishing.length)];
  let started = 0;
  for (const id of due) {
    if (started >= free) break;
    if (!ctx.lock(id)) continue;
    started++;
    void ctx.queue
      .add(() => drive(ctx, id))
      .catch((err: unknown) => ctx.log.error({ err, job: id }, 'job driver crashed'))
      .finally(() => {
        ctx.unlock(id);
        ctx.loops.worker.wake();
      });
  }
}

/** Runs consecutive steps of one job while it stays due (the caller holds the job's lock). */
async function drive(ctx: BridgeContext, id: string): Promise<void> {
  let job = ctx.ledger.get(id);
  for (let i = 0; i < 16 && !ctx.stopping; i++) {
    if (!job || !WORK_STATES.includes(job.state) || job.notBefore > ctx.now()) return;
    try {
      await runStep(ctx, job);
    } catch (err) {
      onStepError(ctx, id, err);
      return;
    }
    // Read after the step, and the job the next step starts from (nothing runs in between).
    const after = ctx.ledger.get(id);
    if (!after || (after.updatedAt === job.updatedAt && after.state === job.state)) return;
    job = after;
  }
}

/** A step failed after its in-step retries: decideStepError says wait, error-report or hold. */
export function onStepError(ctx: BridgeContext, id: string, err: unknown): void {
  const job = ctx.ledger.get(id);
  if (!job) return;
  const e = ctx.signal.aborted ? ctx.aborted(err) : toBridgeError(err);
  const d = decideStepError(job, e, ctx.policy, ctx.now(), ctx.random);
  if (d.kind === 'checkpoint') {
    ctx.jobLog(job).info({ state: job.state }, 'step interrupted by shutdown; resumes after restart');
    return;
  }
  ctx.apply(job, d.transition);
}

/** The step of the job's state, with the MASS client of the identity that claimed the job. */
export async function runStep(base: BridgeContext, job: Job): Promise<void> {
  const ctx = base.forJob(job);
  switch (job.state) {
    case 'claimed':
    case 'fetching':
      return fetchStep(ctx, job);
    case 'ingesting':
      return ingestStep(ctx, job);
    case 'collecting':
    case 'relating':
      return collectStep(ctx, job);
    case 'reporting':
      return job.errorCode ? sendErrorReport(ctx, job) : collectStep(ctx, job);
    default:
      return;
  }
}
