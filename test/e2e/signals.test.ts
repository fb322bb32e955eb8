/**
 * `mass-al-bridge run` always ends on a signal, also when whatever read its stdout is gone:
 * `run … | head -1` then Ctrl-C, SIGTERM or SIGHUP with a closed stdout, and a terminal that closes:
 * the bridge exits within [Bridge] GracePeriod.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { requireScript, scriptArgs, shQuote } from '../helpers/pty.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const MASS_KEY = 'IjSignalInstanceKey.sig-123';
const AL_KEY = 'bridgekey:SignalAlSecret-456';
const GRACE_SECONDS = 10;

type Child = ChildProcessByStdio<null, Readable, Readable>;

/** Resolves with the exit code and signal, or with 'still running' once `ms` have passed. */
function exitWithin(child: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

function firstLine(child: Child): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        child.stdout.off('data', onData);
        resolve(buf.slice(0, nl));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the bridge exited (${code}) before writing a line`)));
  });
}

async function setUp(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'massal-signals-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ instanceKey: MASS_KEY, schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => mass.close());
  const al = await createAssemblylineSimulator({ apiKey: AL_KEY, analysisDelayMs: 10, logger: silentLogger() });
  t.after(() => al.close());
  const massOrigin = await mass.listen();
  const alOrigin = await al.listen();
  const ini = join(dir, 'bridge.ini');
  await writeFile(ini, [
    '[GLOBAL]', `ServerURL = ${massOrigin}/`, 'SleepTime = 0.1',
    '[AssemblylineAnalysis]', `UUID = ${mass.instance.uuid}`, `mass api key = ${MASS_KEY}`, 'PollTime = 0.1',
    '[Assemblyline]', `URL = ${alOrigin}`, 'User = mass-bridge', `APIKey = ${AL_KEY}`,
    // Debug logs every poll: plenty of lines in flight when the reader goes away.
    '[Bridge]', `StateDir = ${join(dir, 'state')}`, `GracePeriod = ${GRACE_SECONDS}`, 'LogLevel = debug', 'QueuePollTime = 0.1',
    '[API]', 'Listen = 127.0.0.1:0', '',
  ].join('\n'));
  return ini;
}

function startBridge(t: { after(fn: () => unknown): void }, ini: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', ini], {
    env: { ...process.env, NO_PRETTY_LOGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume();
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

test('run | head -1, then Ctrl-C: the bridge exits within GracePeriod', { timeout: 60_000 }, async (t) => {
  const ini = await setUp(t);
  const child = startBridge(t, ini);
  const line = await firstLine(child);
  assert.match(line, /^\{.*"level"/, 'the first line is a JSON log line');
  // head exits after one line: the read end of the pipe closes while the bridge keeps logging.
  child.stdout.destroy();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(child.exitCode, null, 'a closed stdout alone does not stop the bridge');
  child.kill('SIGINT');
  const exit = await exitWithin(child, GRACE_SECONDS * 1000);
  assert.notEqual(exit, 'still running', 'the bridge ended after SIGINT');
});

// SIGHUP is what a closing terminal sends.
for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  test(`${sig} with a closed stdout: the bridge exits within GracePeriod`, { timeout: 60_000 }, async (t) => {
    const ini = await setUp(t);
    const child = startBridge(t, ini);
    await firstLine(child);
    child.stdout.destroy();
    child.kill(sig);
    const exit = await exitWithin(child, GRACE_SECONDS * 1000);
    assert.ok(exit !== 'still running', `the bridge ended after ${sig}`);
    assert.equal(exit.signal, null, 'ended by its own shutdown, not killed by the signal');
  });
}

test('the terminal closes (pseudo-terminal hung up): the bridge exits within GracePeriod, not orphaned', { timeout: 60_000 }, async (t) => {
  requireScript();
  const ini = await setUp(t);
  // `script` gives the bridge a terminal; killing `script` closes it, as closing a terminal window does.
  const command = `echo PID=$$; exec ${[process.execPath, '--import', 'tsx', CLI, 'run', '--config', ini].map(shQuote).join(' ')}`;
  const terminal = spawn('script', scriptArgs(command), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  terminal.stdout.on('data', (d: Buffer) => (out += d.toString()));
  terminal.stderr.resume();
  let pid = 0;
  t.after(() => {
    if (terminal.exitCode === null) terminal.kill('SIGKILL');
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitFor(() => /PID=(\d+)/.test(out) && /bridge running/.test(out), { timeoutMs: 30_000, what: 'the bridge to run on the terminal' });
  pid = Number(/PID=(\d+)/.exec(out)![1]);
  terminal.kill('SIGKILL');
  const ended = await waitFor(() => !alive(pid), { timeoutMs: GRACE_SECONDS * 1000, intervalMs: 100, what: 'the bridge to end after its terminal closed' }).catch(() => false);
  assert.ok(ended, `the bridge (pid ${pid}) ended after its terminal closed`);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('`run | tee log` on a terminal, then Ctrl-C: the bridge and the pipeline end within GracePeriod', { timeout: 60_000 }, async (t) => {
  requireScript();
  const ini = await setUp(t);
  const bridge = `echo BRIDGE=$$; exec ${[process.execPath, '--import', 'tsx', CLI, 'run', '--config', ini].map(shQuote).join(' ')}`;
  const command = `bash -c ${shQuote(bridge)} | tee ${shQuote(`${ini}.log`)}`;
  const terminal = spawn('script', scriptArgs(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  terminal.stdout.on('data', (d: Buffer) => (out += d.toString()));
  terminal.stderr.resume();
  let pid = 0;
  t.after(() => {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    if (terminal.exitCode === null) terminal.kill('SIGKILL');
  });
  await waitFor(() => /BRIDGE=(\d+)/.test(out) && /bridge running/.test(out), { timeoutMs: 30_000, what: 'the bridge to run, its log going through tee' });
  pid = Number(/BRIDGE=(\d+)/.exec(out)![1]);
  // Ctrl-C: the terminal sends SIGINT to the whole pipeline, tee included.
  terminal.stdin.write('\x03');
  const ended = await waitFor(() => !alive(pid), { timeoutMs: GRACE_SECONDS * 1000, intervalMs: 100, what: 'the bridge to end after Ctrl-C' }).catch(() => false);
  assert.ok(ended, `the bridge (pid ${pid}) ended after Ctrl-C`);
});

test('a fault signal stays fatal: SIGSEGV ends the bridge at once instead of being taken for a shutdown request', { timeout: 60_000 }, async (t) => {
  const ini = await setUp(t);
  // A core file, if the system writes one, lands beside the test's configuration (tsx by its resolved path then).
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, 'run', '--config', ini], {
    env: { ...process.env, NO_PRETTY_LOGS: '1' },
    cwd: dirname(ini),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume();
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await firstLine(child);
  child.stdout.resume();
  child.kill('SIGSEGV');
  const exit = await exitWithin(child, GRACE_SECONDS * 1000);
  assert.ok(exit !== 'still running', 'the bridge ended');
  assert.equal(exit.signal, 'SIGSEGV', 'ended by the fault signal itself (a JS listener would make a real fault loop for ever)');
});
