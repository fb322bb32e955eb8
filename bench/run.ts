/**
 * `npm run bench [-- memory pipeline mapping ledger hash-first]`: runs the named benchmarks (all by default), each
 * against a baseline measured in the same run, and prints a table of ratios at the end.
 * Exits 1 when a benchmark's correctness check fails or it throws; 2 when BENCH_MAX_MS (default 300 s) passes.
 * Sizes: BENCH_FILE_MB (256), BENCH_PIPELINE_N (200), BENCH_MAPPING_N (2000), BENCH_LEDGER_N (10000).
 */
import { cpus } from 'node:os';
import { killChildren, type BenchOutcome, type Say, type TableRow } from './lib.js';
import { benchHashFirst } from './hash-first.js';
import { benchLedger } from './ledger.js';
import { benchMapping } from './mapping.js';
import { benchMemory } from './memory.js';
import { benchPipeline } from './pipeline.js';

const BENCHES: Record<string, (say: Say) => Promise<BenchOutcome>> = {
  mapping: benchMapping,
  ledger: benchLedger,
  memory: benchMemory,
  pipeline: benchPipeline,
  'hash-first': benchHashFirst,
};

const say: Say = (line = '') => void process.stdout.write(`${line}\n`);

function table(rows: TableRow[]): string[] {
  const head: TableRow = { bench: 'benchmark', baseline: 'baseline', measured: 'measured', ratio: 'ratio' };
  const all = [head, ...rows];
  const w = (k: keyof TableRow) => Math.max(...all.map((r) => r[k].length));
  const line = (r: TableRow) => `${r.bench.padEnd(w('bench'))}  ${r.baseline.padEnd(w('baseline'))}  ${r.measured.padEnd(w('measured'))}  ${r.ratio.padStart(w('ratio'))}`;
  return [line(head), '-'.repeat(line(head).length), ...rows.map(line)];
}

async function main(): Promise<number> {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    say(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    return 64;
  }
  const selected = names.length > 0 ? Object.keys(BENCHES).filter((k) => names.includes(k)) : Object.keys(BENCHES);
  const maxMs = Number(process.env.BENCH_MAX_MS ?? 300_000);
  const watchdog = setTimeout(() => {
    say(`bench: BENCH_MAX_MS (${maxMs} ms) passed; stopping`);
    killChildren();
    process.exit(2);
  }, maxMs);
  watchdog.unref();

  say(`mass-al-bridge benchmarks: ${selected.join(', ')} (node ${process.version}, ${cpus().length} CPUs, loopback only)`);
  const started = performance.now();
  const rows: TableRow[] = [];
  const failed: string[] = [];
  for (const name of selected) {
    say();
    const t0 = performance.now();
    try {
      const outcome = await BENCHES[name](say);
      rows.push(...outcome.rows);
      if (!outcome.ok) failed.push(`${name} (check failed)`);
    } catch (err) {
      say(`${name}: ERROR ${err instanceof Error ? err.message : String(err)}`);
      rows.push({ bench: name, baseline: '-', measured: 'error', ratio: 'n/a' });
      failed.push(`${name} (error)`);
    }
    say(`${name}: took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  clearTimeout(watchdog);
  say();
  for (const l of table(rows)) say(l);
  say();
  say(`total ${((performance.now() - started) / 1000).toFixed(1)} s; ${failed.length === 0 ? 'all checks passed' : `FAILED: ${failed.join(', ')}`}`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    say(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killChildren();
    process.exitCode = 1;
  },
);
