/**
 * A whole flow through the real CLI (`run --config`) at trace log level, then every byte the
 * bridge printed, every status-API answer, every report and relation on MASS and the check-config
 * output are searched for the secrets. The flow includes an error report and upstream errors
 * (a 503 from MASS), so error paths are scanned too.
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
const MASS_INSTANCE_KEY = 'IjMassInstanceSecret42Zq.kPamTopSecretSignature';
const AL_SECRET = 'AlSecretPart-9f8e7d6c5b4a';
const AL_APIKEY = `bridgekey:${AL_SECRET}`;
const API_TOKEN = 'status-api-token-Vx7Qp2Lm';
const READ_TOKEN = 'status-read-token-Kd3Wn8Rf';

test('no secret appears in logs, status API answers or check-config output', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-secrets-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ instanceKey: MASS_INSTANCE_KEY, schedulerIntervalMs: 200, logger: silentLogger() });
  t.after(() => mass.close());
  const al = await createAssemblylineSimulator({ apiKey: AL_APIKEY, analysisDelayMs: 100, logger: silentLogger() });
  t.after(() => al.close());
  const massOrigin = await mass.listen();
  const alOrigin = await al.listen();

  // The AL key comes from a *_FILE secret, the MASS key and the token from the INI file.
  const alKeyFile = join(dir, 'al-apikey');
  await writeFile(alKeyFile, `${AL_APIKEY}\n`, { mode: 0o600 });
  const ini = join(dir, 'bridge.ini');
  await writeFile(
    ini,
    [
      '[GLOBAL]', `ServerURL = ${massOrigin}/`, 'APIEndpoint = api/', 'SleepTime = 0.2',
      '[AssemblylineAnalysis]', 'PollTime = 0.2', `UUID = ${mass.instance.uuid}`, `mass api key = ${MASS_INSTANCE_KEY}`,
      '[Assemblyline]', `URL = ${alOrigin}`, 'User = mass-bridge', 'NotificationQueue = secrets-test',
      '[Bridge]', `StateDir = ${join(dir, 'state')}`, 'QueuePollTime = 0.1', 'LogLevel = trace', 'GracePeriod = 5',
      '[API]', 'Listen = 127.0.0.1:0', `Token = ${API_TOKEN}`, `ReadToken = ${READ_TOKEN}`, '',
    ].join('\n'),
  );
  const env = { ...process.env, MASSAL_ASSEMBLYLINE_APIKEY_FILE: alKeyFile, NO_PRETTY_LOGS: '1' };

  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '--config', ini], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const apiAddress = await waitFor(() => /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], { timeoutMs: 30_000, what: 'the status API address in the log' });

  // The bridge's first sample read answers 503 (an upstream error on the way, logged).
  await fetch(`${massOrigin}/_sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'GET', path_prefix: '/api/sample/', status: 503, times: 1 }),
  });
  const seeded = await fetch(`${massOrigin}/_sim/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ file_name: 'secret-flow.exe', content_text: `MZ flow\nAL-SIM: ${JSON.stringify({ score: 1000, iocs: [{ type: 'network.dynamic.ip', value: '203.0.113.9' }], extracted: [{ name: 'x.dll', relation: 'EXTRACTED' }] })}\n` }),
  });
  assert.equal(seeded.status, 201);
  const sample = (await seeded.json()) as { url: string };
  // An analysis that ends in an error report (Assemblyline's "File too large" failure).
  const failing = await fetch(`${massOrigin}/_sim/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ file_name: 'too-large.bin', content_text: `big\nAL-SIM: {"failure": "File too large"}\n` }),
  });
  const failed = (await failing.json()) as { url: string };
  let massState = '';
  await waitFor(
    async () => {
      massState = await (await fetch(`${massOrigin}/_sim/state`)).text();
      const st = JSON.parse(massState) as { reports: Array<{ sample: string; error_message: string | null }> };
      return st.reports.some((r) => r.sample === sample.url) && st.reports.some((r) => r.sample === failed.url && r.error_message);
    },
    { timeoutMs: 40_000, what: 'the analysis report and the error report on MASS' },
  );

  const bodies: string[] = [];
  const get = async (path: string, init?: RequestInit) => {
    // Reads carry the read token ([API] ReadToken); writes bring their own header.
    const res = await fetch(`${apiAddress}${path}`, init ?? { headers: { authorization: `Bearer ${READ_TOKEN}` } });
    const text = await res.text();
    bodies.push(`${path} ${res.status} ${JSON.stringify([...res.headers])} ${text}`);
    return { status: res.status, text };
  };
  await get('/api/v1/status');
  const jobs = JSON.parse((await get('/api/v1/jobs')).text) as { jobs: Array<{ id: string }> };
  assert.ok(jobs.jobs.length >= 1, 'the job is listed');
  for (const j of jobs.jobs) await get(`/api/v1/jobs/${j.id}`);
  await get('/metrics');
  await get('/ready');
  await get('/');
  assert.equal((await get('/api/v1/pause', { method: 'POST', headers: { authorization: 'Bearer wrong-token' } })).status, 401);
  assert.equal((await get('/api/v1/pause', { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } })).status, 200);
  await get('/api/v1/resume', { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } });

  child.kill('SIGTERM');
  assert.equal(await exited, 0, 'SIGTERM ends the bridge with exit code 0');

  const check = spawn(process.execPath, ['--import', 'tsx', CLI, 'check-config', '--config', ini], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let checkOut = '';
  check.stdout.on('data', (d: Buffer) => (checkOut += d.toString()));
  check.stderr.on('data', (d: Buffer) => (checkOut += d.toString()));
  assert.equal(await new Promise((res) => check.on('exit', res)), 0);
  assert.match(checkOut, /mass api key = \*+/i, 'check-config shows the key masked');

  assert.ok(output.length > 1000, 'the trace-level run logged a real flow');
  assert.ok(bodies.some((b) => b.includes('MASS answered 503')), 'the upstream error reached the status API (and is scanned)');
  assert.match(output, /Assemblyline refused the file/, 'the error report was logged (and scanned)');
  for (const [name, secret] of Object.entries({ MASS_INSTANCE_KEY, AL_SECRET, API_TOKEN, READ_TOKEN })) {
    assert.ok(!output.includes(secret), `${name} is not in the bridge output`);
    assert.ok(!massState.includes(secret), `${name} is not in any report or relation on MASS`);
    for (const b of bodies) assert.ok(!b.includes(secret), `${name} is not in the API answer ${b.slice(0, 40)}`);
    assert.ok(!checkOut.includes(secret), `${name} is not in the check-config output`);
  }
});
