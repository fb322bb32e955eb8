/** `mass-al-bridge register` against a fresh MASS: creates the system and the instance once, then finds them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/log.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const ADMIN_KEY = 'IjAdminKeyForRegisterTest.signature-xyz';
const UUID = '0b6f5d6e-8c1e-4c59-9a51-3f1d2a7c9e11';

test('register creates the analysis system and the instance, is idempotent, and never prints the admin key', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-register-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ seed: false, adminKey: ADMIN_KEY, schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => mass.close());
  const origin = await mass.listen();
  const keyFile = join(dir, 'admin.key');
  await writeFile(keyFile, `${ADMIN_KEY}\n`, { mode: 0o600 });
  const ini = join(dir, 'bridge.ini');
  // No instance key yet (it only exists once the instance does), no Assemblyline key needed to register.
  await writeFile(ini, ['[GLOBAL]', `ServerURL = ${origin}/`, '[AssemblylineAnalysis]', `UUID = ${UUID}`, '[Assemblyline]', 'URL = https://al.example.org', 'User = mass-bridge', ''].join('\n'));

  const first = await run(process.execPath, ['--import', 'tsx', CLI, 'register', '--config', ini, '--admin-key-file', keyFile]);
  assert.match(first.stdout, /analysis system 'assemblyline' created \(filter: sample-type:filesample\)/);
  assert.match(first.stdout, new RegExp(`instance created: ${UUID}`));
  assert.match(first.stdout, new RegExp(`UUID = ${UUID}`));
  assert.match(first.stdout, /webui\/admin\/analysis_systems\//);

  const second = await run(process.execPath, ['--import', 'tsx', CLI, 'register', '--config', ini, '--admin-key-file', keyFile]);
  assert.match(second.stdout, /analysis system 'assemblyline' exists/);
  assert.match(second.stdout, new RegExp(`instance ${UUID} exists`));

  const auth = { authorization: `APIKEY ${ADMIN_KEY}` };
  const instance = await fetch(`${origin}/api/analysis_system_instance/${UUID}/`, { headers: auth });
  assert.equal(instance.status, 200);
  const list = (await (await fetch(`${origin}/api/analysis_system_instance/`, { headers: auth })).json()) as { results: unknown[] };
  assert.equal(list.results.length, 1, 'one instance, not two');
  for (const out of [first, second]) assert.ok(!`${out.stdout}${out.stderr}`.includes(ADMIN_KEY), 'the admin key is never printed');
});

test('register against `simulate`: the simulate terminal prints the new instance key, and that key polls', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-register-sim-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const sim = spawn(process.execPath, ['--import', 'tsx', CLI, 'simulate', '--mass-port', '0', '--al-port', '0', '--mass-admin-key', ADMIN_KEY], {
    env: { ...process.env, NO_PRETTY_LOGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (sim.exitCode === null) sim.kill('SIGKILL');
  });
  let simOut = '';
  sim.stdout.on('data', (d: Buffer) => (simOut += d.toString()));
  sim.stderr.resume();
  await waitFor(() => simOut.includes('Press Ctrl-C to stop.'), { timeoutMs: 30_000, what: 'the simulators to start' });
  const apiRoot = /API root\s+(\S+)/.exec(simOut)![1];
  const keyFile = join(dir, 'admin.key');
  await writeFile(keyFile, `${ADMIN_KEY}\n`, { mode: 0o600 });
  const ini = join(dir, 'bridge.ini');
  await writeFile(ini, ['[GLOBAL]', `ServerURL = ${apiRoot.replace(/api\/$/, '')}`, '[AssemblylineAnalysis]', 'SystemName = second-system', '[Assemblyline]', 'URL = https://al.example.org', 'User = mass-bridge', ''].join('\n'));

  const registered = await run(process.execPath, ['--import', 'tsx', CLI, 'register', '--config', ini, '--admin-key-file', keyFile]);
  const uuid = /^UUID = (\S+)$/m.exec(registered.stdout)?.[1];
  assert.ok(uuid, registered.stdout);
  assert.match(registered.stdout, /This MASS is the mass-al-bridge simulator, which has no web UI: the terminal running `mass-al-bridge simulate`\nprints the instance key/);

  const line = await waitFor(() => new RegExp(`instance ${uuid} was created; its instance key \\(for \\[AssemblylineAnalysis\\] mass api key\\): (\\S+)`).exec(simOut), { timeoutMs: 15_000, what: 'the simulate terminal to print the new instance key' });
  const poll = await fetch(`${apiRoot}analysis_system_instance/${uuid}/scheduled_analyses/`, { headers: { authorization: `APIKEY ${line[1]}` } });
  assert.equal(poll.status, 200, 'the printed key is the instance key of the new instance');
  assert.ok(!registered.stdout.includes(ADMIN_KEY), 'register never prints the admin key');
  sim.kill('SIGTERM');
  await new Promise((r) => sim.once('exit', r));
});
