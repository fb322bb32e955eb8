/** Step `ingesting`: stream the sample from MASS into Assemblyline's ingest API with our notification queue. */
import type { IngestRequest } from '../../assemblyline/types.js';
import { BridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { MassSample } from '../../mass/types.js';
import type { BridgeContext } from '../context.js';
import { midUploadTap } from '../crash-point.js';
import { decideIngestError } from '../decide.js';
import { ingestHashFirst, type IngestWay } from '../hash-first.js';
import { ingestMetadata, ingestParams, ownParams } from '../ingest-request.js';

/**
 * One ingest attempt (with in-step retries); ends in `waiting` with the ingest_id, or an error report. With
 * [Assemblyline] HashFirst the file is first ingested by its sha256 (hash-first.ts); the upload follows only when
 * Assemblyline does not hold it. While the ingest gate holds every ingest (a configuration refusal, a quota), the
 * job stays in `ingesting` with its attempt given back and waits for the gate (ingest-gate.ts).
 */
export async function ingestStep(ctx: BridgeContext, job: Job): Promise<void> {
  const attempt = job.attempts + 1;
  // While a refusal or the async quota holds every ingest, wait without downloading from MASS.
  const heldUntil = ctx.gate.tryStart(ctx.now(), ctx.inAnalysis(), job.id);
  if (heldUntil !== null) {
    ctx.apply(job, { patch: { notBefore: heldUntil }, event: { type: 'ingest-held', message: ctx.gate.reason ?? 'Assemblyline submission quota is full' } });
    return;
  }
  const al = ctx.config.assemblyline;
  const neverDrop = al.neverDrop || job.neverDrop === true;
  // [Assemblyline] IgnoreCache: every ingest bypasses AL's result cache; otherwise only a re-ingest of lost results does.
  const ignoreCache = al.ignoreCache || job.ignoreCache === true;
  // Counted once the download is open, before the upload: a crash after AL accepted the file still uses up an
  // attempt, but a MASS outage that keeps the download from opening does not burn the attempts AL needs later.
  let counted = false;
  const countAttempt = (): void => {
    if (counted) return;
    counted = true;
    job = ctx.apply(job, { patch: { attempts: attempt }, event: { type: 'ingest-started', data: { attempt, neverDrop, ignoreCache } } });
  };
  // Only what the operator configured, plus never_drop / ignore_cache where this job needs them.
  const params = ingestParams(al, job, ctx.gate.withheld);
  const source: MassSample | string = ctx.samples.get(job.id) ?? job.sampleUrl;
  const request = {
    name: job.fileName ?? job.sha256 ?? job.id,
    metadata: ingestMetadata(al, ctx.config.bridge.instanceName, job, attempt),
    params,
    notificationQueue: al.notificationQueue,
    submissionProfile: al.submissionProfile || undefined,
    type: al.ingestType || undefined,
  };
  let ingestId: string;
  let via: IngestWay;
  // The refusal the ingest gate took over (the job waits for the gate instead of failing).
  let gated: unknown;
  try {
    ({ ingestId, via } = await ctx.retry(async () => {
      try {
        // A file Assemblyline already stores is ingested by its sha256: no MASS download, no upload.
        const byHash = await ingestHashFirst(ctx.al, { enabled: al.hashFirst, sha256: job.sha256, request }, { signal: ctx.signal });
        if (byHash) {
          countAttempt();
          return { ...byHash, via: 'sha256' as const };
        }
        return { ...(await upload(ctx, job, source, request, countAttempt)), via: 'upload' as const };
      } catch (err) {
        // A refusal every ingest would get is not retried here (no new MASS download per retry).
        if (ctx.gate.onIngestError(err, ctx.now(), ownParams(al, job), job.id)) {
          gated = err;
          throw new BridgeError('UPSTREAM_HTTP', (err as Error).message, { upstream: 'assemblyline', cause: err, transient: false });
        }
        throw err;
      }
    }));
  } catch (err) {
    const now = ctx.now();
    ctx.gate.release();
    // The job keeps its state and its attempt; it waits for the gate instead of failing.
    if (gated !== undefined) {
      const until = ctx.gate.holdUntil(now) ?? now + 1000;
      const reason = ctx.gate.reason ?? (err as Error).message;
      // lastError: should the refusal outlast the state's age budget, the error report names it.
      const patch = { attempts: attempt - 1, notBefore: until, lastError: reason, lastErrorCode: gated instanceof BridgeError ? gated.code : 'UPSTREAM_HTTP' };
      ctx.apply(job, { patch, event: { type: 'ingest-held', code: 'AL_REFUSED', message: reason } });
      if (ctx.gate.refusal) ctx.log.error({ reason: ctx.gate.reason, fix: ctx.gate.fix }, 'Assemblyline refuses every ingest; claiming stopped until it accepts one');
      return;
    }
    const t = decideIngestError(err, now);
    if (!t) throw err;
    ctx.apply(job, t);
    return;
  }
  // Assemblyline holds the ingest; the ledger does not know its ingest_id yet.
  ctx.crashPoint('after-ingest-accepted');
  ctx.gate.onIngestOk(job.id);
  const now = ctx.now();
  const deadline = now + ctx.policy.resultDeadlineMs;
  ctx.samples.delete(job.id);
  ctx.apply(job, {
    patch: { state: 'waiting', ingestId, sid: null, ignoreCache: false, deadline, notBefore: deadline, stepFailures: 0 },
    // `via` says which way the file went in (sha256 or upload); the report marker repeats it.
    event: { type: 'ingested', data: { ingestId, attempt, via } },
  });
}

/** Streams the sample from MASS into Assemblyline's ingest API (one try; re-opened by the caller's retries). */
async function upload(
  ctx: BridgeContext,
  job: Job,
  source: MassSample | string,
  request: Omit<IngestRequest, 'body' | 'size'>,
  countAttempt: () => void,
): Promise<{ ingestId: string }> {
  // Re-opened on every attempt: a streamed body cannot be replayed.
  const download = await ctx.mass.downloadSample(source, { signal: ctx.signal });
  // MASS answered the download; its body is not read yet.
  ctx.crashPoint('mid-download');
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
        ...request,
        // Test-only: with a crash point armed, `mid-upload` is reached once part of the file went out.
        body: ctx.crashArmed ? midUploadTap(download.body, () => ctx.crashPoint('mid-upload')) : download.body,
        // A known length goes out as Content-Length instead of chunked encoding (uWSGI and some proxies
        // in front of AL refuse chunked uploads). The download's own Content-Length is the truth for these bytes.
        size: download.size ?? job.fileSize ?? undefined,
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
}
