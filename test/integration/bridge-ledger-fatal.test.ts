/**
 * A failed fsync of the ledger's WAL file is fatal (docs/design.md §9, docs/operations.md §4): the bridge logs one
 * fatal line, stops issuing upstream requests, stops its loops, and `run` ends with EXIT_LEDGER_FAILED so that a
 * supervisor restarts it. What is on disk stays the truth: the restarted bridge does the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EXIT_LEDGER_FAILED, openBridgeRuntime, runCommand } from '../../src/bridge/commands.js';
import { demoCommand } from '../../src/commands/demo.js';
import { BridgeError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { makeConfig, reportsBySample, startSimulators, type MassSimState } from '../helpers/bridge-harness.js';
import { textSink } from '../helpers/text-sink.js';
import { waitFor } from '../helpers/wait.js';

/** An fsync that fails like a disk that lost a write-back (EIO), after a turn of the event loop as the real one. */
function failingFsync(): { calls: number; fsync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void } {
  const out = {
    calls: 0,
    fsync(_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) {
      out.calls++;
      setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' })));
    },
  };
  return out;
}

const massCalls = (state: MassSimState): number =>
  Object.values(state.calls).reduce((n, byRoute) => n + Object.values(byRoute).reduce((m, c) => m + c, 0), 0);

test('a failed WAL fsync: one fatal line naming the ledger file, the loops stop, no upstream request follows; a restart finishes the work', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t);
  const config = makeConfig(sims.endpoints);
  const ledgerFile = join(config.bridge.stateDir, 'bridge.sqlite');
  const sample = await sims.seedFile('fatal.bin', 'a sample claimed before the disk broke\n');
  const disk = failingFsync();
  const log = textSink();
  const runtime = await openBridgeRuntime(config, createLogger({ level: 'info', destination: log.stream }), { ledgerFsync: disk.fsync });
  sims.defer(async () => {
    await runtime.bridge.stop({ graceMs: 500 });
    await runtime.close();
  });
  runtime.bridge.start();

  // The claim is the first write; the request after it (the sample download) needs its fsync, which fails.
  const err = await runtime.fatal;
  const atFatal = await sims.massState();
  const alAtFatal = sims.al.stats();
  assert.ok(err instanceof BridgeError && err.code === 'LEDGER');
  assert.match(err.message, new RegExp(`fsync of ${ledgerFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-wal failed: EIO`));
  // The runtime stops the loops by itself: nobody calls bridge.stop() here.
  await waitFor(() => Object.values(runtime.bridge.loops).every((loop) => !loop.running), { timeoutMs: 5_000, what: 'every loop stopped without a stop() call' });

  await new Promise((r) => setTimeout(r, 300));
  const after = await sims.massState();
  assert.equal(massCalls(after), massCalls(atFatal), 'no MASS request after the fatal line (no poll either)');
  assert.deepEqual(sims.al.stats(), alAtFatal, 'no Assemblyline request after the fatal line');
  assert.equal(alAtFatal.ingests, 0, 'nothing reached Assemblyline: every request after the claim needed the failed fsync');
  assert.equal(after.reports.length, 0);
  assert.equal(disk.calls, 1, 'the failed fsync is never retried');

  const lines = log
    .text()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string; ledger?: string; code?: string });
  const fatal = lines.filter((l) => l.level === 60);
  assert.equal(fatal.length, 1, `one fatal line (got: ${JSON.stringify(fatal)})`);
  assert.equal(fatal[0].ledger, ledgerFile);
  assert.equal(fatal[0].code, 'EIO');
  assert.match(fatal[0].msg, /EIO: i\/o error, fsync/);
  for (const secret of [config.mass.apiKey, config.assemblyline.apiKey]) assert.ok(!log.text().includes(secret), 'no secret in the log');
  await runtime.close();

  // A restart on the same ledger (a working disk) finishes the scheduled analysis: at-least-once.
  const restarted = await openBridgeRuntime(config, silentLogger());
  sims.defer(async () => {
    await restarted.bridge.stop({ graceMs: 500 });
    await restarted.close();
  });
  restarted.bridge.start();
  await waitFor(async () => reportsBySample(await sims.massState()).get(sample.url)?.length === 1, { timeoutMs: 30_000, what: 'the report after the restart' });
});

test('run (with its status API) ends by itself with EXIT_LEDGER_FAILED after a failed WAL fsync, logging one error-or-worse line: the fatal one', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t);
  const config = makeConfig(sims.endpoints);
  await sims.seedFile('fatal-run.bin', 'run stops on a broken disk\n');
  const signal = new AbortController().signal;
  const log = textSink();
  const code = await runCommand({ config, logger: createLogger({ level: 'debug', destination: log.stream }), signal, api: true, ledgerFsync: failingFsync().fsync });
  assert.equal(signal.aborted, false, 'no signal stopped it');
  assert.equal(code, EXIT_LEDGER_FAILED);
  assert.equal(EXIT_LEDGER_FAILED, 3, 'the exit code documented in docs/operations.md and `run --help`');
  const lines = logLines(log.text());
  assert.ok(lines.some((l) => l.msg === 'status API listening'), 'the status API ran');
  assert.equal(lines.filter((l) => l.level === 60).length, 1, 'one fatal line');
  const loud = lines.filter((l) => l.level >= 50);
  assert.equal(loud.length, 1, `nothing but the fatal line at level error or above (got: ${JSON.stringify(loud.map((l) => l.msg))})`);
  assert.ok(!lines.some((l) => /notifications may be lost/.test(l.msg)), 'no warning about a queue read that never went out');
});

test('run --once after a failed WAL fsync says so instead of a finished summary, and exits with EXIT_LEDGER_FAILED', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t);
  const config = makeConfig(sims.endpoints);
  await sims.seedFile('fatal-once.bin', 'run --once on a broken disk\n');
  const log = textSink();
  const code = await runCommand({ config, logger: createLogger({ level: 'info', destination: log.stream }), signal: new AbortController().signal, once: true, api: false, ledgerFsync: failingFsync().fsync });
  assert.equal(code, EXIT_LEDGER_FAILED);
  const lines = logLines(log.text());
  assert.ok(!lines.some((l) => l.msg === 'run --once finished'), 'no line that reads like success');
  const last = lines.find((l) => /run --once stopped/.test(l.msg));
  assert.ok(last && last.level >= 40 && last.ledgerFailed === true, `a line says the run stopped on the ledger (got: ${JSON.stringify(lines.map((l) => l.msg))})`);
});

test('demo after a failed WAL fsync says why the bridge stopped and exits with EXIT_LEDGER_FAILED instead of waiting to settle', { timeout: 60_000 }, async () => {
  const out = textSink();
  const code = await demoCommand({
    exitWhenDone: true, apiPort: 0, out: out.stream, isTTY: false, logger: silentLogger(), signal: new AbortController().signal, ledgerFsync: failingFsync().fsync,
  });
  assert.equal(code, EXIT_LEDGER_FAILED);
  const text = out.text();
  assert.match(text, /The bridge stopped: ledger fsync of \S+bridge\.sqlite-wal failed: EIO/);
  assert.doesNotMatch(text, /did not settle/);
  assert.doesNotMatch(text, /APIKEY|apikey/i, 'no key in the output');
});

function logLines(text: string): Array<{ level: number; msg: string; ledgerFailed?: boolean }> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; msg: string; ledgerFailed?: boolean });
}
