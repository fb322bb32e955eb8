/** A `mass-al-bridge run` child process against fresh simulators, for the signal tests. */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
export const MASS_KEY = 'IjSignalInstanceKey.sig-123';
export const AL_KEY = 'bridgekey:SignalAlSecret-456';
export const GRACE_SECONDS = 10;

export type Child = ChildProcessByStdio<null, Readable, Readable>;

/** Resolves with the exit code and signal, or with 'still running' once `ms` have passed. */
export function exitWithin(child: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'still running'> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

export function firstLine(child: Child): Promise<string> {
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

export async function setUp(t: { after(fn: () => unknown): void }): Promise<string> {
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

export function startBridge(t: { after(fn: () => unknown): void }, ini: string): Child {
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

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
