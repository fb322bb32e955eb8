/** Step `ingesting`: stream the sample from MASS into Assemblyline's ingest API with our notification queue. */
import type { IngestParams } from '../../assemblyline/types.js';
import { BridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { MassSample } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { decideIngestError } from '../decide.js';

/** One ingest attempt (with in-step retries); ends in `waiting` with the ingest_id, or an error report. */
export async function ingestStep(ctx: BridgeContext, job: Job): Promise<void> {
  const attempt = job.attempts + 1;
  const neverDrop = ctx.config.assemblyline.neverDrop || job.neverDrop === true;
  const ignoreCache = job.ignoreCache === true;
  // Counted once the download is open, before the upload: a crash after AL accepted the file still uses up an
  // attempt, but a MASS outage that keeps the download from opening does not burn the attempts AL needs later.
  let counted = false;
  const countAttempt = (): void => {
    if (counted) return;
    counted = true;
    job = ctx.apply(job, { patch: { attempts: attempt }, event: { type: 'ingest-started', data: { attempt, neverDrop, ignoreCache } } });
  };
  const al = ctx.config.assemblyline;
  const params: IngestParams = {
    // Always explicit: AL otherwise applies the profile default (1000) capped to 250 (ASSEMBLYLINE.md §3.3).
    priority: al.priority,
    deep_scan: al.deepScan,
    never_drop: neverDrop,
    ignore_cache: ignoreCache,
    generate_alert: false,
    description: `MASS scheduled analysis ${job.id}`,
  };
  if (al.classification) params.classification = al.classification;
  if (al.ttl > 0) params.ttl = al.ttl;
  if (al.services.length > 0) params.services = { selected: al.services };
  const source: MassSample | string = ctx.samples.get(job.id) ?? job.sampleUrl;
  let ingestId: string;
  try {
    ({ ingestId } = await ctx.retry(async () => {
      // Re-opened on every attempt: a streamed body cannot be replayed.
      const download = await ctx.mass.downloadSample(source, { signal: ctx.signal });
      let broken: unknown;
      download.body.once('error', (err: unknown) => {
        broken = err;
      });
      // Read by the instrumentation: a MASS download that breaks is not an Assemblyline failure (no AL backpressure).
      const requestOptions = { signal: ctx.signal, sourceFailed: () => broken !== undefined };
      try {
        countAttempt();
        return await ctx.al.ingest(
          {
            name: job.fileName ?? job.sha256 ?? job.id,
            body: download.body,
            // A known length goes out as Content-Length instead of chunked encoding (uWSGI and some proxies
            // in front of AL refuse chunked uploads). The download's own Content-Length is the truth for these bytes.
            size: download.size ?? job.fileSize ?? undefined,
            metadata: {
              mass_scheduled_analysis: job.id,
              mass_sample: job.sampleUrl,
              bridge_instance: ctx.config.bridge.instanceName,
              bridge_job: job.id,
              bridge_attempt: String(attempt),
            },
            params,
            notificationQueue: al.notificationQueue,
            submissionProfile: al.submissionProfile || undefined,
            type: al.ingestType || undefined,
          },
          requestOptions,
        );
      } catch (err) {
        if (broken === undefined || ctx.signal.aborted) throw err;
        const cause = broken instanceof Error ? broken.message : String(broken);
        throw broken instanceof BridgeError && broken.upstream === 'mass'
          ? broken
          : new BridgeError('NETWORK', `the MASS download of the sample broke during the upload to Assemblyline: ${cause}`, { upstream: 'mass', cause: broken });
      } finally {
        download.body.destroy();
      }
    }));
  } catch (err) {
    const t = decideIngestError(err, ctx.now());
    if (!t) throw err;
    ctx.apply(job, t);
    return;
  }
  const now = ctx.now();
  const deadline = now + ctx.policy.resultDeadlineMs;
  ctx.samples.delete(job.id);
  ctx.apply(job, {
    patch: { state: 'waiting', ingestId, sid: null, ignoreCache: false, deadline, notBefore: deadline, stepFailures: 0 },
    event: { type: 'ingested', data: { ingestId, attempt } },
  });
}
