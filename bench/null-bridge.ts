/**
 * The null bridge: the upstream calls the bridge makes for a sample, in straight-line code with no ledger and no
 * bookkeeping: poll MASS, read the sample document, try the ingest by sha256 (HashFirst, as the bridge), stream the
 * download into an Assemblyline ingest with a
 * notification queue, read the queue, fetch the submission (full + summary), map it, report to MASS. Work runs
 * in one p-queue of `concurrency` like the bridge's steps; at most `maxInFlight` scheduled analyses are taken.
 * No retries, no crash safety: any failure ends the run. It is the ceiling the pipeline benchmark compares with.
 */
import PQueue from 'p-queue';
import { createAssemblylineClient } from '../src/assemblyline/client.js';
import { ingestHashFirst } from '../src/bridge/hash-first.js';
import { defaultMappingOptions } from '../src/mapping/index.js';
import { mapSubmissionToReport } from '../src/mapping/report.js';
import { createMassClient } from '../src/mass/client.js';
import type { ScheduledAnalysis } from '../src/mass/types.js';

export interface NullBridgeOptions {
  massApiRoot: string;
  massKey: string;
  instanceUuid: string;
  alUrl: string;
  alUser: string;
  alApiKey: string;
  queue: string;
  concurrency: number;
  maxInFlight: number;
  /** Most Assemblyline calls in flight (the client's limiter; the bridge's [Assemblyline] MaxConcurrentCalls). */
  maxConcurrentCalls?: number;
  pollMs: number;
  /** [Assemblyline] HashFirst: ask Assemblyline to ingest by sha256 before downloading, as the bridge does. */
  hashFirst?: boolean;
  /** Wait after an empty queue read (ms). */
  queueIdleMs: number;
  /** Reports to send before the run ends. */
  n: number;
  /** Called after each report MASS accepted. */
  onReport?: () => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs until `n` reports are sent; resolves with the number of queue reads made. Rejects on any upstream failure. */
export async function runNullBridge(o: NullBridgeOptions): Promise<{ queueReads: number }> {
  // As many MASS connections as the bridge's steps get (one per running step, at least 8).
  const mass = createMassClient({ apiRoot: o.massApiRoot, apiKey: o.massKey, connections: Math.max(8, o.concurrency) });
  const al = createAssemblylineClient({ url: o.alUrl, user: o.alUser, auth: 'apikey', apiKey: o.alApiKey, maxConcurrentCalls: o.maxConcurrentCalls });
  const work = new PQueue({ concurrency: o.concurrency });
  const seen = new Set<string>();
  const pending = new Map<string, { sa: ScheduledAnalysis; sha256: string }>();
  let inFlight = 0;
  let reported = 0;
  let queueReads = 0;
  let failure: unknown;
  const done = (): boolean => reported >= o.n || failure !== undefined;
  const fail = (err: unknown): void => {
    failure ??= err;
  };

  const start = async (sa: ScheduledAnalysis): Promise<void> => {
    const sample = await mass.getSample(sa.sample);
    const request = {
      name: sample.file_names?.[0] ?? sample.id,
      metadata: { mass_scheduled_analysis: sa.id, mass_sample: sa.sample },
      params: { priority: 150, deep_scan: false, never_drop: false, ignore_cache: false, generate_alert: false, description: sa.id },
      notificationQueue: o.queue,
    };
    // The bridge's hash-first try: Assemblyline answers 404 for a file it does not hold, then the upload follows.
    const byHash = await ingestHashFirst(al, { enabled: o.hashFirst === true, sha256: sample.sha256sum, request });
    let ingestId = byHash?.ingestId;
    if (ingestId === undefined) {
      const download = await mass.downloadSample(sample);
      ingestId = (await al.ingest({ ...request, body: download.body, size: download.size ?? undefined })).ingestId;
    }
    pending.set(ingestId, { sa, sha256: sample.sha256sum ?? '' });
  };

  const finish = async (sa: ScheduledAnalysis, sha256: string, sid: string): Promise<void> => {
    // Both at once, as the bridge reads them.
    const [full, summary] = await Promise.all([al.getSubmissionFull(sid), al.getSubmissionSummary(sid)]);
    const plan = mapSubmissionToReport({ full, summary: summary ?? undefined, cacheHit: false, rootSha256: sha256, now: new Date().toISOString() }, defaultMappingOptions());
    await mass.submitReport(sa.url, { analysisDate: new Date(), tags: plan.tags, additionalMetadata: plan.additionalMetadata, jsonReportObjects: plan.jsonReportObjects });
    inFlight--;
    reported++;
    o.onReport?.();
  };

  const poller = (async () => {
    while (!done()) {
      if (inFlight < o.maxInFlight) {
        for (const sa of await mass.poll(o.instanceUuid)) {
          if (seen.has(sa.url) || inFlight >= o.maxInFlight) continue;
          seen.add(sa.url);
          inFlight++;
          work.add(() => start(sa)).catch(fail);
        }
      }
      await sleep(o.pollMs);
    }
  })().catch(fail);

  const listener = (async () => {
    while (!done()) {
      const messages = await al.getMessages(o.queue, 100);
      queueReads++;
      for (const m of messages) {
        const p = pending.get(m.ingest_id);
        if (!p) continue;
        pending.delete(m.ingest_id);
        work.add(() => finish(p.sa, p.sha256, m.submission.sid)).catch(fail);
      }
      if (messages.length === 0) await sleep(o.queueIdleMs);
    }
  })().catch(fail);

  try {
    await Promise.all([poller, listener]);
    await work.onIdle();
    if (failure !== undefined) throw failure;
    return { queueReads };
  } finally {
    await Promise.allSettled([mass.close(), al.close()]);
  }
}
