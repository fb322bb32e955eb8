/**
 * A large sample streamed MASS → bridge → Assemblyline (the bridge's clients, streaming, in a fresh worker process)
 * against a plain loopback copy of the same bytes (node:http GET piped into a node:http POST between two plain
 * servers, each in its own process, like the simulators) in the same run. Targets: at least MIN_RATE_RATIO of the
 * plain copy's rate, and the streaming process's peak RSS under MAX_PEAK_RSS.
 */
import { randomBytes } from 'node:crypto';
import { QUICK, cpuSecondsOf, envInt, fmtNum, fmtRatio, getJson, mib, startSimServer, startTsChild, type BenchOutcome, type Say } from './lib.js';
import type { PlainInfo, WorkerResult } from './stream-worker.js';

interface AlState {
  ingests: Array<{ ingest_id: string; sha256: string }>;
}

const MIN_RATE_RATIO = 0.5;
const MAX_PEAK_RSS = 200 * 1048576;

const rate = (r: WorkerResult): number => r.bytes / 1048576 / (r.ms / 1000);

export async function benchLarge(say: Say): Promise<BenchOutcome> {
  const fileMb = envInt('BENCH_LARGE_MB', QUICK ? 64 : 1024);
  const seedHex = randomBytes(32).toString('hex');
  say(`large: seeding a ${fileMb} MiB sample into the MASS simulator (its own process; MASS hashes it, ssdeep included)…`);
  const t0 = performance.now();
  const sims = await startSimServer({ alDelayMs: 50, fileMb, seedHex });
  const ends: Array<{ value: { url: string }; child: { pid?: number }; stop(): Promise<void> }> = [];
  try {
    say(`large: seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    ends.push(await startTsChild<{ url: string }>('bench/plain-server.ts', ['--role=source', `--mb=${fileMb}`, `--seed=${seedHex}`], { readyTimeoutMs: 60_000 }));
    ends.push(await startTsChild<{ url: string }>('bench/plain-server.ts', ['--role=sink'], { readyTimeoutMs: 60_000 }));
    const plainInfo: PlainInfo = { sourceUrl: ends[0].value.url, sinkUrl: ends[1].value.url };
    // CPU time (ms) each process used during a transfer: the two servers' from /proc, the worker's own count.
    const serverPids = { plain: [ends[0].child.pid ?? 0, ends[1].child.pid ?? 0], streaming: [sims.pids.mass, sims.pids.al] };
    const cpu = new Map<WorkerResult, number[]>();
    const worker = async (mode: 'plain' | 'streaming'): Promise<WorkerResult> => {
      const pids = serverPids[mode];
      const before = pids.map(cpuSecondsOf);
      const w = await startTsChild<WorkerResult>('bench/stream-worker.ts', [`--mode=${mode}`], {
        // BENCH_WORKER_NODE_ARGS (e.g. `--cpu-prof`): extra node flags for the transfer's process.
        nodeArgs: ['--expose-gc', ...(process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean)],
        env: { BENCH_SIM_INFO: JSON.stringify(sims.info), BENCH_PLAIN_INFO: JSON.stringify(plainInfo), BENCH_WORKER_MAX_MS: '600000' },
        readyTimeoutMs: 600_000,
      });
      const after = pids.map(cpuSecondsOf);
      await w.stop();
      cpu.set(w.value, [...pids.map((_, i) => (after[i] - before[i]) * 1000), w.value.cpuMs]);
      return w.value;
    };
    // Plain copy before and after the bridge's transfer; the faster one is the baseline (the harder target).
    const plainA = await worker('plain');
    const streaming = await worker('streaming');
    const plainB = await worker('plain');
    const plain = rate(plainA) >= rate(plainB) ? plainA : plainB;
    for (const [label, r] of [['plain copy', plainA], ['bridge streaming', streaming], ['plain copy', plainB]] as const) {
      say(`large: ${label.padEnd(16)} ${mib(r.bytes)} in ${(r.ms / 1000).toFixed(2)} s = ${fmtNum(rate(r))} MiB/s, peak RSS ${mib(r.peak.rss)}`);
      const [source, sink, transfer] = cpu.get(r) ?? [];
      const names = r.mode === 'plain' ? ['source', 'sink', 'copier'] : ['MASS simulator', 'AL simulator', 'bridge'];
      say(`large:   CPU ms: ${names[0]} ${fmtNum(source, 0)}, ${names[1]} ${fmtNum(sink, 0)}, ${names[2]} ${fmtNum(transfer, 0)} (wall ${fmtNum(r.ms, 0)})`);
    }
    const al = await getJson<AlState>(`${sims.info.alOrigin}/_sim/state`);
    const big = sims.info.samples.big;
    const ingest = al.ingests.find((i) => i.ingest_id === streaming.ingestId);
    const ok = ingest?.sha256 === big.sha256 && streaming.bytes === big.size && plainA.bytes === big.size;
    say(`large: check: Assemblyline holds the seeded ${mib(big.size)} (sha256 match), the plain sink got every byte: ${ok ? 'OK' : 'FAILED'}`);
    const ratio = rate(streaming) / rate(plain);
    return {
      ok,
      rows: [
        {
          bench: `large: ${fileMb} MiB MASS → bridge → AL`,
          baseline: `plain ${fmtNum(rate(plain))} MiB/s`,
          measured: `bridge ${fmtNum(rate(streaming))} MiB/s`,
          ratio: fmtRatio(ratio),
          target: `≥ ${fmtRatio(MIN_RATE_RATIO)}`,
          met: ratio >= MIN_RATE_RATIO,
        },
        {
          bench: `large: peak RSS, ${fileMb} MiB streamed`,
          baseline: `plain ${mib(plain.peak.rss)}`,
          measured: `bridge ${mib(streaming.peak.rss)}`,
          ratio: fmtRatio(streaming.peak.rss / plain.peak.rss),
          target: `< ${mib(MAX_PEAK_RSS)}`,
          met: streaming.peak.rss < MAX_PEAK_RSS,
        },
      ],
    };
  } finally {
    for (const e of ends) await e.stop();
    await sims.stop();
  }
}
