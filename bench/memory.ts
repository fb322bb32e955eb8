/**
 * Streaming memory: a large sample goes MASS download → Assemblyline ingest through the real clients,
 * streamed vs buffered into memory first. The simulators run in a child process (bench/sim-server.ts);
 * each mode runs in its own fresh worker process (bench/stream-worker.ts) that measures only itself.
 */
import { QUICK, envInt, fmtRatio, getJson, mib, startSimServer, startTsChild, type BenchOutcome, type Say } from './lib.js';
import type { StreamMode, WorkerResult } from './stream-worker.js';

interface AlState {
  ingests: Array<{ ingest_id: string; sha256: string }>;
}

/** Extra memory above the worker's own post-warm-up baseline. */
function extra(r: WorkerResult): { rss: number; js: number } {
  return {
    rss: Math.max(0, r.peak.rss - r.baseline.rss),
    // heapUsed + arrayBuffers: JS objects plus Buffer/ArrayBuffer backing stores (where a buffered file lives).
    js: Math.max(0, r.peak.heapUsed - r.baseline.heapUsed) + Math.max(0, r.peak.arrayBuffers - r.baseline.arrayBuffers),
  };
}

/** The streaming process's peak RSS stays under this whatever the sample's size (the bridge never holds a sample). */
const MAX_PEAK_RSS = 200 * 1048576;

export async function benchMemory(say: Say): Promise<BenchOutcome> {
  const fileMb = envInt('BENCH_FILE_MB', QUICK ? 32 : 256);
  say(`memory: seeding a ${fileMb} MiB sample into the MASS simulator (child process)…`);
  const t0 = performance.now();
  const sims = await startSimServer({ alDelayMs: 50, fileMb });
  try {
    say(`memory: seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s; running each mode in a fresh worker process`);
    const big = sims.info.samples.big;
    const results = {} as Record<StreamMode, WorkerResult>;
    for (const mode of ['buffered', 'streaming'] as const) {
      const worker = await startTsChild<WorkerResult>('bench/stream-worker.ts', [`--mode=${mode}`], {
        nodeArgs: ['--expose-gc'],
        env: { BENCH_SIM_INFO: JSON.stringify(sims.info) },
        readyTimeoutMs: 240_000,
      });
      await worker.stop();
      results[mode] = worker.value;
    }
    // Both ingests must have carried exactly the seeded bytes.
    const al = await getJson<AlState>(`${sims.info.alOrigin}/_sim/state`);
    let ok = true;
    for (const mode of ['buffered', 'streaming'] as const) {
      const r = results[mode];
      const ingest = al.ingests.find((i) => i.ingest_id === r.ingestId);
      const good = ingest?.sha256 === big.sha256 && r.bytes === big.size;
      ok &&= good;
      const x = extra(r);
      say(
        `memory: ${mode.padEnd(9)} moved ${mib(r.bytes)} in ${(r.ms / 1000).toFixed(2)} s` +
          `${r.downloadMs === undefined ? '' : ` (download ${(r.downloadMs / 1000).toFixed(2)} s, then ingest)`}; ` +
          `peak extra RSS ${mib(x.rss)}, peak extra heap+arrayBuffers ${mib(x.js)} (${r.samples} samples at 20 ms); ` +
          `Assemblyline got sha256 ${good ? 'equal to the MASS sample' : 'DIFFERENT from the MASS sample'}`,
      );
    }
    const s = extra(results.streaming);
    const b = extra(results.buffered);
    const rssRatio = s.rss / b.rss;
    const jsRatio = s.js / b.js;
    say(`memory: streaming uses ${fmtRatio(rssRatio)} the extra RSS of buffering (${fmtRatio(jsRatio)} of its heap+arrayBuffers)`);
    say(`memory: check: both ingests carried the seeded ${mib(big.size)} (sha256 match): ${ok ? 'OK' : 'FAILED'}`);
    return {
      ok,
      rows: [
        {
          bench: `memory: peak RSS streaming ${fileMb} MiB`,
          baseline: `buffered ${mib(results.buffered.peak.rss)}`,
          measured: `streaming ${mib(results.streaming.peak.rss)}`,
          ratio: fmtRatio(results.streaming.peak.rss / results.buffered.peak.rss),
          target: `streaming < ${mib(MAX_PEAK_RSS)}`,
          met: results.streaming.peak.rss < MAX_PEAK_RSS,
        },
        { bench: `memory: peak extra RSS, ${fileMb} MiB`, baseline: `buffered ${mib(b.rss)}`, measured: `streaming ${mib(s.rss)}`, ratio: fmtRatio(rssRatio), target: '-', met: true },
        { bench: 'memory: peak extra heap+arrayBuffers', baseline: `buffered ${mib(b.js)}`, measured: `streaming ${mib(s.js)}`, ratio: fmtRatio(jsRatio), target: '-', met: true },
      ],
    };
  } finally {
    await sims.stop();
  }
}
