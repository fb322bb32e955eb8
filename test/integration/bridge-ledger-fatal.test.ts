/**
 * A failed fsync of the ledger's WAL file is fatal (docs/design.md §9, docs/operations.md §4): the bridge logs one
 * fatal line, stops issuing upstream requests, stops its loops, and `run` ends with EXIT_LEDGER_FAILED so that a
 * supervisor restarts it. What is on disk stays the truth: the restarted bridge does the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EXIT_LEDGER_FAILED, openBridgeRuntime, runCommand } from '../../src/bridge/commands.js';
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
  assert.ok(err instanceof BridgeError && err.code === 'LEDGER');
  assert.match(err.message, new RegExp(`fsync of ${ledgerFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-wal failed: EIO`));
  await runtime.bridge.stop();
  for (const [name, loop] of Object.entries(runtime.bridge.loops)) assert.equal(loop.running, false, `the ${name} loop stopped`);
  assert.equal(disk.calls, 1, 'the failed fsync is never retried');

  const before = await sims.massState();
  const ingestsBefore = sims.al.stats().ingests;
  await new Promise((r) => setTimeout(r, 300));
  const after = await sims.massState();
  assert.equal(massCalls(after), massCalls(before), 'no MASS request after the bridge stopped');
  assert.equal(sims.al.stats().ingests, 0, 'nothing reached Assemblyline: every request after the claim needed the failed fsync');
  assert.equal(ingestsBefore, 0);
  assert.equal(after.reports.length, 0);

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

test('run ends by itself with EXIT_LEDGER_FAILED after a failed WAL fsync', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t);
  const config = makeConfig(sims.endpoints);
  await sims.seedFile('fatal-run.bin', 'run stops on a broken disk\n');
  const signal = new AbortController().signal;
  const code = await runCommand({ config, logger: silentLogger(), signal, api: false, ledgerFsync: failingFsync().fsync });
  assert.equal(signal.aborted, false, 'no signal stopped it');
  assert.equal(code, EXIT_LEDGER_FAILED);
  assert.equal(EXIT_LEDGER_FAILED, 3, 'the exit code documented in docs/operations.md and `run --help`');
});
