/** `mass-al-bridge register` against a fresh MASS: creates the system and the instance once, then finds them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/log.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';

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
