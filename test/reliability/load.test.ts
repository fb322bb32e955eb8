/**
 * Load and memory: 10 000 scheduled analyses through the simulators in one run. The bridge runs in its own
 * process (test/helpers/bridge-child.ts, the production runCommand), so the RSS sampled from
 * /proc/<pid>/status is the bridge's alone. Checked at the end: the invariant (one report per scheduled
 * analysis, nothing pending on MASS, no relation twice, every job finished in the ledger) and the RSS bounds.
 * The run is bounded in time by the test's timeout; its speed is printed, never asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { makeConfig, startSimulators, type Simulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const CHILD = fileURLToPath(new URL('../helpers/bridge-child.ts', import.meta.url));
const MiB = 1024 * 1024;

/** Scheduled analyses in the run: plain files, droppers, and the droppers' extracted files MASS dispatches back. */
const ANALYSES = 10_000;
const DROPPERS = 100;
const PLAIN = ANALYSES - 2 * DROPPERS;
/** Each dropper: one dropped file (dropped-by) and one contacted IP (contacted-by). */
const RELATIONS = 2 * DROPPERS;

/**
 * The bridge process's resident memory must stay under MAX_RSS for the whole run (observed: about 170 MiB steady
 * on Node 20, 250–330 MiB on Node 24 without forced collections, start-up with tsx compiling the sources
 * included), and its heap must not grow with the number of analyses done: the heap in use after a full
 * collection (the child runs with --expose-gc and collects every HEAP_EVERY_MS) over the last tenth of the run
 * stays within MAX_HEAP_GROWTH of the second tenth. A leak of 10 KiB per analysis (about 100 MiB over the run)
 * fails it. RSS growth alone is not the measure: it follows V8's heap sizing, which differs between Node versions.
 */
const MAX_RSS = 320 * MiB;
const MAX_HEAP_GROWTH = 24 * MiB;
const HEAP_EVERY_MS = 1000;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const mib = (n: number): string => `${(n / MiB).toFixed(0)} MiB`;

async function seed(sims: Simulators): Promise<void> {
  const one = async (i: number): Promise<void> => {
    if (i < PLAIN) {
      await sims.seedFile(`plain-${i}.bin`, `plain sample ${i} of the load test\n`);
      return;
    }
    const d = i - PLAIN;
    const scenario = {
      score: 700,
      extracted: [{ name: `dropped-${d}.dll`, relation: 'DYNAMIC' }],
      iocs: [{ type: 'network.dynamic.ip', value: `10.${d >> 8}.${d & 255}.1`, safelisted: false }],
    };
    await sims.seedFile(`dropper-${d}.exe`, `dropper ${d}\nAL-SIM: ${JSON.stringify(scenario)}\n`);
  };
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < PLAIN + DROPPERS) await one(next++);
  }));
}

test(`load: ${ANALYSES} scheduled analyses in one run; the bridge's RSS stays under ${mib(MAX_RSS)} and does not grow`, { timeout: 30 * 60_000 }, async (t) => {
  const started = Date.now();
  // The default tag filter (file samples): the dropped files come back as work, the IP samples do not.
  const sims = await startSimulators(t, { mass: { schedulerIntervalMs: 100 }, al: { analysisDelayMs: 10 } });
  await seed(sims);
  t.diagnostic(`seeded ${PLAIN + DROPPERS} samples in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // A long ResultDeadline: on a busy machine the reconciler would only add lookups, not change the outcome.
  const config = makeConfig(sims.endpoints, { bridge: { resultDeadline: 600, gracePeriod: 10 } });
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD], {
    env: { ...process.env, BRIDGE_CHILD_CONFIG: JSON.stringify(config), BRIDGE_CHILD_LOG: 'warn', BRIDGE_CHILD_HEAP_MS: String(HEAP_EVERY_MS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => void (output = (output + d.toString()).slice(-8000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // The heap after a full collection, as the child reports it, with the analyses finished when it came.
  let finishedNow = 0;
  const heap: Array<{ finished: number; bytes: number }> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = /^heap-after-gc (\d+)$/.exec(line);
    if (m) heap.push({ finished: finishedNow, bytes: Number(m[1]) });
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const pid = child.pid;
  assert.ok(pid !== undefined, 'the bridge process started');

  // Progress comes from the bridge's own ledger (read-only; WAL lets it read while the bridge writes).
  const ledgerFile = join(config.bridge.stateDir, 'bridge.sqlite');
  let ledger: Database.Database | undefined;
  t.after(() => ledger?.close());
  const rss: Array<{ finished: number; bytes: number }> = [];
  const bridgeStarted = Date.now();
  let lastNote = 0;
  await waitFor(
    () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the bridge exited early\n${output}`);
      let finished = 0;
      try {
        ledger ??= new Database(ledgerFile, { readonly: true, fileMustExist: true });
        finished = (ledger.prepare("SELECT count(*) AS n FROM jobs WHERE state IN ('done', 'failed')").get() as { n: number }).n;
      } catch {
        // The bridge has not created its ledger yet.
      }
      finishedNow = finished;
      rss.push({ finished, bytes: rssBytes(pid) });
      if (Date.now() - lastNote > 30_000) {
        lastNote = Date.now();
        t.diagnostic(`${((Date.now() - bridgeStarted) / 1000).toFixed(0)} s: ${finished} analyses finished, bridge RSS ${mib(rss.at(-1)!.bytes)}`);
      }
      return finished >= ANALYSES;
    },
    { timeoutMs: 25 * 60_000, intervalMs: 250, what: `${ANALYSES} finished analyses in the ledger`, rethrow: true },
  );
  const seconds = (Date.now() - bridgeStarted) / 1000;

  // MASS's view: settled once the last report is in.
  const state = await waitFor(
    async () => {
      const s = await sims.massState();
      return s.reports.length >= ANALYSES && s.scheduled_pending === 0 && s.analysis_requests === 0 ? s : null;
    },
    { timeoutMs: 60_000, intervalMs: 1000, what: 'MASS settled' },
  );
  rss.push({ finished: ANALYSES, bytes: rssBytes(pid) });

  child.kill('SIGTERM');
  const exit = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), (config.bridge.gracePeriod + 20) * 1000).unref())]);
  assert.deepEqual(exit, { code: 0, signal: null }, `the bridge stops cleanly after the run\n${output}`);

  const peak = Math.max(...rss.map((r) => r.bytes));
  const early = median(rss.filter((r) => r.finished >= ANALYSES / 10 && r.finished < ANALYSES / 5).map((r) => r.bytes));
  const late = median(rss.filter((r) => r.finished >= ANALYSES * 0.9).map((r) => r.bytes));
  const heapEarly = median(heap.filter((r) => r.finished >= ANALYSES / 10 && r.finished < ANALYSES / 5).map((r) => r.bytes));
  const heapLate = median(heap.filter((r) => r.finished >= ANALYSES * 0.9).map((r) => r.bytes));
  t.diagnostic(
    `${ANALYSES} analyses in ${seconds.toFixed(0)} s (${(ANALYSES / seconds).toFixed(0)}/s); bridge RSS peak ${mib(peak)}, ` +
      `second tenth ${mib(early)}, last tenth ${mib(late)} (${rss.length} samples); heap after GC second tenth ${mib(heapEarly)}, ` +
      `last tenth ${mib(heapLate)} (${heap.length} samples)`,
  );

  // The invariant.
  assert.equal(state.reports.length, ANALYSES, 'one report per scheduled analysis, no extra report');
  const markers = new Set(state.reports.map((r) => (r.additional_metadata.assemblyline as Record<string, unknown>).bridge_job));
  assert.equal(markers.size, ANALYSES, 'every report answers a different scheduled analysis');
  assert.deepEqual(state.reports.filter((r) => r.error_message !== null).map((r) => r.error_message), [], 'no error report');
  assert.equal(state.scheduled_pending, 0, 'nothing pending on MASS');
  assert.equal(state.analysis_requests, 0);
  const pairs = state.relations.map((r) => `${r._cls} ${r.sample} ${r.other}`);
  assert.equal(new Set(pairs).size, pairs.length, 'no relation twice');
  assert.equal(state.relations.length, RELATIONS);
  const unfinished = ledger!.prepare("SELECT state, count(*) AS n FROM jobs WHERE state NOT IN ('done', 'failed') GROUP BY state").all();
  assert.deepEqual(unfinished, [], 'nothing left in flight in the ledger');

  // Memory.
  assert.ok(peak < MAX_RSS, `bridge RSS peak ${mib(peak)} < ${mib(MAX_RSS)}`);
  assert.ok(heapEarly > 0 && heapLate > 0, `the heap after GC was reported in both tenths (${heap.length} reports)`);
  assert.ok(
    heapLate - heapEarly < MAX_HEAP_GROWTH,
    `the bridge's heap after GC grew by ${mib(heapLate - heapEarly)} from the second to the last tenth of the run (bound ${mib(MAX_HEAP_GROWTH)})`,
  );
});
