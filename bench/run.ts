/**
 * `npm run bench [-- [--quick] [--record] [--real-mass <API root>] <names>]`: runs the named benchmarks (all but
 * real-mass by default; memory and pipeline with --quick), each against a baseline measured in the same run, and
 * prints a table of ratios and targets at the end. Names: mapping, ledger, memory, large, pipeline, latency,
 * poll-cost, hash-first, history, identities, real-mass. real-mass runs only when named or given `--real-mass` (it needs a
 * MASS server; see bench/real-mass.ts).
 * Exits 1 when a target is missed, a benchmark's correctness check fails or it throws; 2 when BENCH_MAX_MS
 * (default 900 s; 180 s with --quick) passes; 64 on an unknown name or option, a --real-mass without its URL or a
 * BENCH_MAX_MS that is not a whole number of ms. `--record` appends the table with the machine
 * to docs/benchmarks.md. Sizes: see docs/benchmarks.md (BENCH_* variables).
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { QUICK, REPO_ROOT, envInt, killChildren, type BenchOutcome, type Say, type TableRow } from './lib.js';
import { benchHashFirst } from './hash-first.js';
import { benchHistory } from './history.js';
import { benchIdentities } from './identities.js';
import { benchLarge } from './large.js';
import { benchLatency } from './latency.js';
import { benchLedger } from './ledger.js';
import { benchMapping } from './mapping.js';
import { benchMemory } from './memory.js';
import { benchPipeline } from './pipeline.js';
import { benchPollCost } from './poll-cost.js';
import { benchRealMass } from './real-mass.js';

const BENCHES: Record<string, (say: Say) => Promise<BenchOutcome>> = {
  mapping: benchMapping,
  ledger: benchLedger,
  memory: benchMemory,
  large: benchLarge,
  pipeline: benchPipeline,
  latency: benchLatency,
  'poll-cost': benchPollCost,
  'hash-first': benchHashFirst,
  history: benchHistory,
  identities: benchIdentities,
  'real-mass': benchRealMass,
};

/** Run only when named or given `--real-mass <API root>`: it needs a MASS server of the user's. */
const NOT_DEFAULT = new Set(['real-mass']);

const say: Say = (line = '') => void process.stdout.write(`${line}\n`);

function table(rows: TableRow[]): string[] {
  type Cells = Record<'bench' | 'baseline' | 'measured' | 'ratio' | 'target' | 'met', string>;
  const head: Cells = { bench: 'benchmark', baseline: 'baseline', measured: 'measured', ratio: 'ratio', target: 'target', met: 'met' };
  const all: Cells[] = [head, ...rows.map((r) => ({ ...r, met: r.target === '-' ? '' : r.met ? 'yes' : 'MISSED' }))];
  const w = (k: keyof Cells) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Cells) =>
    `${r.bench.padEnd(w('bench'))}  ${r.baseline.padEnd(w('baseline'))}  ${r.measured.padEnd(w('measured'))}  ${r.ratio.padStart(w('ratio'))}  ${r.target.padEnd(w('target'))}  ${r.met}`.trimEnd();
  return [line(head), '-'.repeat(line(head).length), ...all.slice(1).map(line)];
}

async function main(): Promise<number> {
  const flags = new Set(['--quick', '--record']);
  const argv = process.argv.slice(2);
  const realMassAt = argv.indexOf('--real-mass');
  // `--real-mass <API root>` takes a value (an http(s) URL, not the next benchmark's name) and selects real-mass.
  if (realMassAt >= 0 && !/^https?:\/\//i.test(argv[realMassAt + 1] ?? '')) {
    say(`--real-mass needs the MASS API root as its value, e.g. --real-mass http://mass.example.org/api/ (got ${JSON.stringify(argv[realMassAt + 1] ?? '')})`);
    return 64;
  }
  const names = argv.filter((a, i) => !flags.has(a) && (realMassAt < 0 || (i !== realMassAt && i !== realMassAt + 1)));
  if (realMassAt >= 0 && !names.includes('real-mass')) names.push('real-mass');
  const options = names.filter((n) => n.startsWith('-'));
  if (options.length > 0) {
    say(`unknown option(s): ${options.join(', ')}; options: --quick, --record, --real-mass <API root>`);
    return 64;
  }
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    say(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    return 64;
  }
  const defaults = QUICK ? ['memory', 'pipeline'] : Object.keys(BENCHES).filter((k) => !NOT_DEFAULT.has(k));
  const selected = Object.keys(BENCHES).filter((k) => (names.length > 0 ? names : defaults).includes(k));
  let maxMs: number;
  try {
    maxMs = envInt('BENCH_MAX_MS', QUICK && !selected.includes('real-mass') ? 180_000 : 900_000);
  } catch (err) {
    say(`bench: ${(err as Error).message}`);
    return 64;
  }
  const watchdog = setTimeout(() => {
    say(`bench: BENCH_MAX_MS (${maxMs} ms) passed; stopping`);
    killChildren();
    process.exit(2);
  }, maxMs);
  watchdog.unref();

  const machine = `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg()[0].toFixed(1)} at start`;
  say(`mass-al-bridge benchmarks${QUICK ? ' (--quick)' : ''}: ${selected.join(', ')} (${machine}, loopback only)`);
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
      rows.push({ bench: name, baseline: '-', measured: 'error', ratio: 'n/a', target: '-', met: false });
      failed.push(`${name} (error)`);
    }
    say(`${name}: took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  clearTimeout(watchdog);
  for (const r of rows) if (r.target !== '-' && !r.met) failed.push(`${r.bench} (target ${r.target} missed)`);
  say();
  const lines = table(rows);
  for (const l of lines) say(l);
  say();
  const verdict = failed.length === 0 ? 'all checks passed, all targets met' : `FAILED: ${failed.join(', ')}`;
  const total = `total ${((performance.now() - started) / 1000).toFixed(1)} s`;
  say(`${total}; ${verdict}`);
  if (process.argv.includes('--record')) {
    const args = process.argv.slice(2).join(' ');
    const entry = [
      '',
      `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: \`npm run bench${args ? ` -- ${args}` : ''}\``,
      '',
      `Machine: ${machine}. ${total}; ${verdict}.`,
      '',
      '```',
      ...lines,
      '```',
      '',
    ];
    appendFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), entry.join('\n'));
    say('appended to docs/benchmarks.md');
  }
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
