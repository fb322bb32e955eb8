/**
 * `run` with [API] ReadToken: the running CLI's status API refuses reads without the token and keeps
 * /health and /ready open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const READ_TOKEN = 'read-only-token-Pq7Zx2';

test('run with [API] ReadToken: reads need the token, /health and /ready do not', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-readauth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ schedulerIntervalMs: 200, logger: silentLogger() });
  t.after(() => mass.close());
  const al = await createAssemblylineSimulator({ logger: silentLogger() });
  t.after(() => al.close());
  const massOrigin = await mass.listen();
  const alOrigin = await al.listen();
  const ini = join(dir, 'bridge.ini');
  await writeFile(
    ini,
    [
      '[GLOBAL]', `ServerURL = ${massOrigin}/`, 'SleepTime = 0.2',
      '[AssemblylineAnalysis]', 'PollTime = 0.2', `UUID = ${mass.instance.uuid}`, `mass api key = ${mass.instance.key}`,
      '[Assemblyline]', `URL = ${alOrigin}`, `User = ${al.user}`, `APIKey = ${al.apiKey}`, 'NotificationQueue = readauth-test',
      '[Bridge]', `StateDir = ${join(dir, 'state')}`, 'LogLevel = info', 'GracePeriod = 2',
      '[API]', 'Listen = 127.0.0.1:0', `ReadToken = ${READ_TOKEN}`, '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', ini], { env: { ...process.env, NO_PRETTY_LOGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const api = await waitFor(() => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], { timeoutMs: 30_000, what: 'the status API address' });
  assert.equal((await fetch(`${api}/api/v1/status`)).status, 401, 'a read without the token is refused');
  assert.equal((await fetch(`${api}/api/v1/status`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).status, 200);
  assert.equal((await fetch(`${api}/health`)).status, 200);
  assert.notEqual((await fetch(`${api}/ready`)).status, 401);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
