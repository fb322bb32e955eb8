/**
 * One measurement of the streaming-memory benchmark, in a fresh process so both modes start from the
 * same memory state: MASS download → Assemblyline ingest of the seeded `big` sample through the real
 * clients, either streamed (the Readable goes straight into the ingest) or buffered first.
 * Reads the simulator info (JSON) from env BENCH_SIM_INFO; prints one JSON line (WorkerResult).
 *
 *   node --expose-gc --import tsx bench/stream-worker.ts --mode=streaming|buffered
 */
import { get as httpGet, request as httpRequest, type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { createAssemblylineClient } from '../src/assemblyline/client.js';
import type { AssemblylineClient } from '../src/assemblyline/types.js';
import { createMassClient } from '../src/mass/client.js';
import type { MassClient } from '../src/mass/types.js';
import { memNow, memSampler, type MemSnapshot, type SeededSample, type SimServerInfo } from './lib.js';

export type StreamMode = 'streaming' | 'buffered' | 'plain';

/** What the `plain` mode reads from env BENCH_PLAIN_INFO: the plain source and sink (bench/plain-server.ts). */
export interface PlainInfo {
  sourceUrl: string;
  sinkUrl: string;
}

export interface WorkerResult {
  mode: StreamMode;
  bytes: number;
  ms: number;
  ingestId: string;
  /** Buffered mode: time until the whole file was in memory (the ingest took the rest). */
  downloadMs?: number;
  baseline: MemSnapshot;
  peak: MemSnapshot;
  samples: number;
  /** CPU time (user + system, ms) this process used for the measured transfer. */
  cpuMs: number;
}

const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

const gc = (globalThis as { gc?: () => void }).gc;

async function transfer(mass: MassClient, al: AssemblylineClient, sample: SeededSample, mode: 'streaming' | 'buffered', signal: AbortSignal): Promise<{ ingestId: string; bytes: number; downloadMs?: number }> {
  const t0 = performance.now();
  const download = await mass.downloadSample(sample.url, { signal });
  const common = {
    name: `bench-${mode}.bin`,
    metadata: { bench: 'memory', mode },
    params: { priority: 150 },
    notificationQueue: 'bench-memory',
  };
  if (mode === 'streaming') {
    try {
      const { ingestId } = await al.ingest({ ...common, body: download.body, size: download.size }, { signal });
      return { ingestId, bytes: download.size ?? sample.size };
    } finally {
      download.body.destroy();
    }
  }
  // The fairest buffering baseline: one allocation of the announced size, chunks copied in (no concat doubling).
  const size = download.size ?? sample.size;
  const whole = Buffer.allocUnsafe(size);
  let offset = 0;
  for await (const chunk of download.body as AsyncIterable<Buffer>) {
    if (offset + chunk.length > size) throw new Error('download is longer than its Content-Length');
    chunk.copy(whole, offset);
    offset += chunk.length;
  }
  if (offset !== size) throw new Error(`download ended after ${offset} of ${size} bytes`);
  const downloadMs = performance.now() - t0;
  const { ingestId } = await al.ingest({ ...common, body: whole }, { signal });
  return { ingestId, bytes: offset, downloadMs };
}

/**
 * The plain loopback copy: node:http GET from the plain source piped into a node:http POST to the plain sink, the
 * same bytes with nothing else done to them (no multipart, no client, no simulator).
 */
async function plainCopy(plain: PlainInfo, signal: AbortSignal): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const source = await new Promise<IncomingMessage>((resolve, reject) => {
    httpGet(plain.sourceUrl, { signal }, resolve).on('error', reject);
  });
  const size = Number(source.headers['content-length']);
  const answer = await new Promise<string>((resolve, reject) => {
    const req = httpRequest(plain.sinkUrl, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, signal }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
    source.pipe(req);
  });
  const { bytes } = JSON.parse(answer) as { bytes: number };
  if (bytes !== size) throw new Error(`the plain sink received ${bytes} of ${size} bytes`);
  return { bytes, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { mode: { type: 'string' } }, strict: true });
  const mode = values.mode;
  if (mode !== 'streaming' && mode !== 'buffered' && mode !== 'plain') throw new Error('--mode=streaming|buffered|plain required');
  if (mode === 'plain') {
    const plain = JSON.parse(process.env.BENCH_PLAIN_INFO ?? 'null') as PlainInfo | null;
    if (!plain) throw new Error('BENCH_PLAIN_INFO required');
    const signal = AbortSignal.timeout(Number(process.env.BENCH_WORKER_MAX_MS ?? 180_000));
    const sampler = memSampler(20);
    const baseline = memNow();
    const cpu0 = process.cpuUsage();
    const { bytes, ms } = await plainCopy(plain, signal);
    const cpuMs = cpuMsSince(cpu0);
    const result: WorkerResult = { mode, bytes, ms, ingestId: '', baseline, peak: sampler.stop(), samples: sampler.samples(), cpuMs };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const info = JSON.parse(process.env.BENCH_SIM_INFO ?? 'null') as SimServerInfo | null;
  if (!info?.samples.big || !info.samples.warmup) throw new Error('BENCH_SIM_INFO with seeded big and warmup samples required');
  const signal = AbortSignal.timeout(Number(process.env.BENCH_WORKER_MAX_MS ?? 180_000));

  // The bridge's own view: MASS as the instance, Assemblyline with the bridge user's API key.
  const mass = createMassClient({ apiRoot: `${info.massOrigin}/api/`, apiKey: info.instanceKey, timeoutMs: 120_000 });
  const al = createAssemblylineClient({ url: info.alOrigin, user: info.alUser, auth: 'apikey', apiKey: info.alApiKey, timeoutMs: 120_000 });
  try {
    // Warm-up: loads and JITs every code path and opens the connections, so the baseline includes them.
    await transfer(mass, al, info.samples.warmup, mode, signal);
    for (let i = 0; i < 3; i++) {
      gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    const baseline = memNow();
    const sampler = memSampler(20);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { ingestId, bytes, downloadMs } = await transfer(mass, al, info.samples.big, mode, signal);
    const ms = performance.now() - t0;
    const cpuMs = cpuMsSince(cpu0);
    const peak = sampler.stop();
    const result: WorkerResult = { mode, bytes, ms, ingestId, downloadMs, baseline, peak, samples: sampler.samples(), cpuMs };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await Promise.allSettled([mass.close(), al.close()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`stream-worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
