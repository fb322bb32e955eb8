/** `mass-al-bridge doctor`: right configuration → all ok; each classic mistake → its own FAIL line and fix. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openLedger } from '../../src/ledger/sqlite.js';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { waitFor } from '../helpers/wait.js';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const MASS_KEY = 'IjDoctorInstanceKey.sig-123';
const AL_KEY = 'bridgekey:DoctorAlSecret-456';

async function doctor(ini: string, ...set: string[]): Promise<{ code: number; out: string }> {
  const args = ['--import', 'tsx', CLI, 'doctor', '--config', ini, ...set.flatMap((s) => ['--set', s])];
  try {
    const { stdout, stderr } = await exec(process.execPath, args);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('doctor checks MASS, Assemblyline and the ledger without side effects, and names each mistake', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-doctor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ instanceKey: MASS_KEY, schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => mass.close());
  const al = await createAssemblylineSimulator({ apiKey: AL_KEY, analysisDelayMs: 10, logger: silentLogger() });
  t.after(() => al.close());
  const massOrigin = await mass.listen();
  const alOrigin = await al.listen();
  const ini = join(dir, 'bridge.ini');
  await writeFile(ini, [
    '[GLOBAL]', `ServerURL = ${massOrigin}/`,
    '[AssemblylineAnalysis]', `UUID = ${mass.instance.uuid}`, `mass api key = ${MASS_KEY}`,
    '[Assemblyline]', `URL = ${alOrigin}`, 'User = mass-bridge', `APIKey = ${AL_KEY}`, 'NotificationQueue = doctor-queue',
    '[Bridge]', `StateDir = ${join(dir, 'state')}`, '',
  ].join('\n'));

  // A notification already waiting in the bridge's queue must still be there after the doctor ran.
  const ingest = await fetch(`${alOrigin}/api/v4/ingest/`, {
    method: 'POST',
    headers: { 'x-user': 'mass-bridge', 'x-apikey': AL_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ plaintext: 'waiting message\n', name: 'w.txt', notification_queue: 'doctor-queue', params: { priority: 100 } }),
  });
  assert.equal(ingest.status, 200);
  await waitFor(() => al.stats().messagesQueued === 1, { what: 'a queued notification' });

  // The doctor changes nothing: a StateDir that does not exist is a finding, not something it creates.
  const stateDir = join(dir, 'state');
  const noDir = await doctor(ini);
  assert.equal(noDir.code, 1, noDir.out);
  assert.match(noDir.out, /\[FAIL\] \[Bridge\] StateDir .*state does not exist\n\s+fix: fix StateDir if it has a typo/);
  assert.equal(existsSync(stateDir), false, 'the doctor did not create StateDir');

  // An existing StateDir without a ledger: a note (the first run creates it), and still nothing created.
  mkdirSync(stateDir);
  const noLedger = await doctor(ini);
  assert.equal(noLedger.code, 0, noLedger.out);
  assert.match(noLedger.out, /\[note\] there is no ledger in .*state \(no bridge\.sqlite\)\n\s+so: a new installation gets its ledger at the first `mass-al-bridge run`; if the bridge has run before, StateDir points at the wrong directory/);
  assert.deepEqual(readdirSync(stateDir), [], 'the doctor created no ledger');

  openLedger(join(stateDir, 'bridge.sqlite')).close();
  const before = readdirSync(stateDir).sort();
  const good = await doctor(ini);
  assert.equal(good.code, 0, good.out);
  assert.deepEqual(readdirSync(stateDir).sort(), before, 'the doctor left StateDir as it found it');
  assert.doesNotMatch(good.out, /FAIL/);
  assert.match(good.out, /accepts the instance key/);
  assert.match(good.out, new RegExp(`the key belongs to instance ${mass.instance.uuid}`));
  assert.match(good.out, /belongs to analysis system 'assemblyline' \(tag filter: sample-type:filesample\)/);
  assert.match(good.out, /accepts user 'mass-bridge' for ingest and notification queue 'doctor-queue'/);
  assert.match(good.out, /the ledger .* is usable: 0 jobs/);
  const state = (await (await fetch(`${alOrigin}/_sim/state`)).json()) as { queues: Record<string, number> };
  assert.deepEqual(Object.values(state.queues), [1], 'the doctor popped nothing from the notification queue');

  const wrongMassKey = await doctor(ini, 'AssemblylineAnalysis.mass api key=IjSomeoneElse.sig');
  assert.equal(wrongMassKey.code, 1);
  assert.match(wrongMassKey.out, /\[FAIL\] MASS at .* refused the instance key \(403\)\n\s+fix: the MASS simulator has no web UI: copy the instance key again from the terminal running `mass-al-bridge simulate`/);

  const otherInstance = (await (await fetch(`${massOrigin}/api/analysis_system_instance/`, {
    method: 'POST',
    headers: { authorization: `APIKEY ${mass.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ analysis_system: `${massOrigin}/api/analysis_system/assemblyline/` }),
  })).json()) as { uuid: string };
  const mismatched = await doctor(ini, `AssemblylineAnalysis.UUID=${otherInstance.uuid}`);
  assert.equal(mismatched.code, 1);
  assert.match(mismatched.out, /\[FAIL\] the instance key does not belong to instance .* \(the poll answers 404\)/);

  const wrongAlKey = await doctor(ini, 'Assemblyline.APIKey=bridgekey:wrong');
  assert.equal(wrongAlKey.code, 1);
  assert.match(wrongAlKey.out, /\[FAIL\] Assemblyline at .* refused the credentials/);

  for (const r of [good, wrongMassKey, mismatched, wrongAlKey]) {
    assert.ok(!r.out.includes(MASS_KEY) && !r.out.includes('DoctorAlSecret-456'), 'no secret in the doctor output');
  }
});
