/** Step `claimed`/`fetching`: read the MASS sample and decide (ingest, answer from the parent, error report). */
import { BridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import { extractedInSids } from '../../mapping/index.js';
import type { MassSample } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { decideSample, type OwnSampleOrigin } from '../decide.js';

/**
 * Reads the sample (404 = invisible to this instance) and applies decideSample's transition. An echo-back (a file
 * a bridge extracted and submitted to MASS) is recognised without any further call: by this bridge's ledger, else
 * by the tags every bridge of the system stores with an extracted file on MASS (another process extracted it).
 */
export async function fetchStep(ctx: BridgeContext, job: Job): Promise<void> {
  let sample: MassSample | 'invisible';
  try {
    sample = await ctx.retry(() => ctx.mass.getSample(job.sampleUrl, { signal: ctx.signal }));
  } catch (err) {
    if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
    sample = 'invisible';
  }
  const t = decideSample(sample, ctx.policy, sample === 'invisible' ? undefined : echoOrigin(ctx, job, sample), ctx.now());
  if (sample !== 'invisible') ctx.samples.set(job.id, sample);
  ctx.apply(job, t);
}

/** The submission an extracted file comes from: this bridge's ledger first, then the sample's tags on MASS. */
function echoOrigin(ctx: BridgeContext, job: Job, sample: MassSample): OwnSampleOrigin | undefined {
  if (!sample.sha256sum) return undefined;
  const own = ctx.ledger.ownSample(sample.sha256sum);
  if (own) return own.jobId !== job.id ? { jobId: own.jobId, sid: own.sid } : undefined;
  const [sid] = extractedInSids(sample.tags, ctx.config.report.tagPrefix);
  return sid ? { jobId: null, sid } : undefined;
}
