/**
 * `doctor` against an Assemblyline configured like a locked-down production user: no submission_customize,
 * a profile restricting priority and services, a classification engine. Each misconfiguration gets its own
 * FAIL line with the fix; the right configuration passes without submitting anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { doctorCommand } from '../../src/commands/doctor.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';

const MASS_KEY = 'IjDoctorInstanceKey.sig-123';
const AL_KEY = 'bridgekey:DoctorAlSecret-456';

test('doctor names each deployment misconfiguration with its fix', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-doctor-dep-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mass = await createMassSimulator({ instanceKey: MASS_KEY, schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => mass.close());
  const al = await createAssemblylineSimulator({
    apiKey: AL_KEY, logger: silentLogger(), roles: ['submission_view', 'submission_create', 'file_download'], userClassification: 'TLP:AMBER',
    profiles: [{ name: 'static', displayName: 'Static Analysis', params: { priority: 200 }, restrictedParams: { submission: ['priority', 'services'] }, excludedServices: ['Dynamic Analysis'] }],
    quotas: { asyncSubmissions: 5, dailyApiCalls: 3000 },
  });
  t.after(() => al.close());
  const massOrigin = await mass.listen();
  const alOrigin = await al.listen();
  await mkdir(join(dir, 'state'));
  const ini = join(dir, 'bridge.ini');
  await writeFile(ini, [
    '[GLOBAL]', `ServerURL = ${massOrigin}/`,
    '[AssemblylineAnalysis]', `UUID = ${mass.instance.uuid}`, `mass api key = ${MASS_KEY}`,
    '[Assemblyline]', `URL = ${alOrigin}`, 'User = mass-bridge', `APIKey = ${AL_KEY}`, 'NotificationQueue = doctor-dep',
    '[Bridge]', `StateDir = ${join(dir, 'state')}`, '',
  ].join('\n'));
  const run = async (cli: Record<string, string>): Promise<{ code: number; out: string }> => {
    const { config } = loadConfig({ file: ini, env: {}, cli });
    let out = '';
    const code = await doctorCommand({ config, out: { write: (s: string) => (out += s) } });
    return { code, out };
  };

  const noProfile = await run({});
  assert.equal(noProfile.code, 1);
  assert.match(noProfile.out, /FAIL\] Assemblyline user 'mass-bridge' has no submission_customize role, so every ingest needs a submission profile\n\s+fix: set \[Assemblyline\] SubmissionProfile to one of: static/);
  assert.match(noProfile.out, /FAIL\] Assemblyline refuses the configured ingest parameters: You must specify a submission profile/);

  const priority = await run({ 'Assemblyline.SubmissionProfile': 'static', 'Assemblyline.Priority': '150' });
  assert.equal(priority.code, 1);
  assert.match(priority.out, /may change every parameter except priority, services/);
  assert.match(priority.out, /FAIL\] profile 'static' restricts priority, which the configuration sets[^\n]*\n\s+fix: leave \[Assemblyline\] Priority empty/);
  assert.match(priority.out, /FAIL\] Assemblyline refuses the configured ingest parameters: User isn't allowed to modify the "priority" parameters of Static Analysis profile\n\s+fix: remove the refused setting/);

  const red = await run({ 'Assemblyline.SubmissionProfile': 'static', 'Assemblyline.Classification': 'TLP:RED' });
  assert.equal(red.code, 1);
  assert.match(red.out, /FAIL\] \[Assemblyline\] Classification 'TLP:RED' is above the clearance of user 'mass-bridge' \(TLP:AMBER\)[^\n]*\n\s+fix: lower \[Assemblyline\] Classification to TLP:AMBER or below/);

  const unknown = await run({ 'Assemblyline.SubmissionProfile': 'static', 'Assemblyline.Classification': 'SECRET' });
  assert.match(unknown.out, /FAIL\] \[Assemblyline\] Classification 'SECRET' is not a classification of this Assemblyline\n\s+fix: use one of: TLP:CLEAR, TLP:GREEN/);

  assert.match(unknown.out, /FAIL\] \[Bridge\] QueuePollTime 5 s reads the notification queue 17280 times a day while idle, more than half the daily API quota of 3000\n\s+fix: set \[Bridge\] QueuePollTime to at least 58 seconds/);

  const good = await run({ 'Assemblyline.SubmissionProfile': 'static', 'Assemblyline.Classification': 'TLP:GREEN', 'Assemblyline.Metadata': 'sensor=mass', 'Bridge.QueuePollTime': '60' });
  assert.equal(good.code, 0, good.out);
  assert.match(good.out, /ok \] Assemblyline accepts the configured submission profile and ingest parameters \(dry check, nothing submitted\)/);
  assert.match(good.out, /daily quotas of user 'mass-bridge': 3000 API calls/);
  assert.match(good.out, /metadata sent with every ingest: sensor, mass_scheduled_analysis/);
  assert.equal(al.stats().ingests, 0, 'doctor submitted nothing');

  // A real MASS (doctorCommand was not told otherwise) hands keys out in its web UI: the fix points there.
  const wrongKey = await run({ 'AssemblylineAnalysis.mass api key': 'IjSomeoneElse.sig' });
  assert.match(wrongKey.out, /FAIL\] MASS at .* refused the instance key \(403\)\n\s+fix: copy the instance key again from the MASS web UI \(webui\/admin\/analysis_systems\/\)/);
});
