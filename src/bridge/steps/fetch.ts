/** Step `claimed`/`fetching`: read the MASS sample and decide (ingest, answer from the parent, error report). */
import { BridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { MassSample } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { decideSample } from '../decide.js';

/** Reads the sample (404 = invisible to this instance) and applies decideSample's transition. */
export async function fetchStep(ctx: BridgeContext, job: Job): Promise<void> {
  let sample: MassSample | 'invisible';
  try {
    sample = await ctx.retry(() => ctx.mass.getSample(job.sampleUrl, { signal: ctx.signal }));
  } catch (err) {
    if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
    sample = 'invisible';
  }
  const own = sample !== 'invisible' && sample.sha256sum ? ctx.ledger.ownSample(sample.sha256sum) : undefined;
  const t = decideSample(sample, ctx.policy, own && own.jobId !== job.id ? { jobId: own.jobId, sid: own.sid } : undefined, ctx.now());
  if (sample !== 'invisible') ctx.samples.set(job.id, sample);
  ctx.apply(job, t);
}
