/** `register --instances K`: K instances of the analysis system, found again by a second run, printed as INI sections that load. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCommand } from '../../src/bridge/commands.js';
import { loadConfig } from '../../src/config/load.js';
import { makeConfig, startSimulators } from '../helpers/bridge-harness.js';
import { textSink } from '../helpers/text-sink.js';


const FIRST = '6a1c2f0e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

test('register --instances 3 creates three instances once, prints sections that load as three identities', { timeout: 30_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { seed: false } });
  const config = makeConfig({ ...sims.endpoints, uuid: FIRST });
  // One identity is already named in the configuration, still without a UUID.
  config.mass.identities = [{ name: 'lab', uuid: '', apiKey: '' }];

  const first = textSink();
  assert.equal(await registerCommand({ config, adminKey: sims.mass.adminKey, stdout: first.stream, instances: 3 }), 0);
  assert.equal([...first.text().matchAll(/analysis system instance created: /g)].length, 3, first.text());
  assert.doesNotMatch(first.text(), new RegExp(sims.mass.adminKey));
  const sections = first.text().slice(first.text().indexOf('[AssemblylineAnalysis]'), first.text().indexOf('\nKeep the other'));
  const uuids = [...sections.matchAll(/^UUID = (\S+)$/gm)].map((m) => m[1]);
  assert.equal(uuids.length, 3);
  assert.equal(uuids[0], FIRST);
  assert.equal(new Set(uuids).size, 3);
  assert.match(sections, /^\[AssemblylineAnalysis:lab\]$/m);
  assert.match(sections, /^\[AssemblylineAnalysis:identity3\]$/m);
  assert.match(first.text(), /set \[Bridge\] MaxInFlight to at least 303\n/);
  const system = await sims.admin.getAnalysisSystem('assemblyline');
  for (const uuid of uuids) assert.equal((await sims.admin.getInstance(uuid)).analysis_system, system.url);

  // The same configuration again: nothing new, the same UUIDs.
  const second = textSink();
  assert.equal(await registerCommand({ config, adminKey: sims.mass.adminKey, stdout: second.stream, instances: 3 }), 0);
  assert.doesNotMatch(second.text(), /created/);
  for (const uuid of uuids) assert.match(second.text(), new RegExp(`instance ${uuid} exists`));
  assert.ok(second.text().includes(sections), 'the same sections are printed');

  // Pasted into a configuration, with the keys copied from MASS, the sections are three identities.
  const dir = mkdtempSync(join(tmpdir(), 'register-instances-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ini = join(dir, 'bridge.ini');
  const pasted = sections.replace(/^mass api key =$/gm, () => 'mass api key = pasted-key');
  writeFileSync(ini, ['[GLOBAL]', `ServerURL = ${sims.massOrigin}/`, pasted, '[Assemblyline]', 'URL = https://al.example.org', 'User = u', 'APIKey = k:s', '[Bridge]', 'MaxInFlight = 303', ''].join('\n'));
  const loaded = loadConfig({ file: ini });
  assert.deepEqual(loaded.warnings, []);
  assert.equal(loaded.config.mass.uuid, FIRST);
  assert.deepEqual(loaded.config.mass.identities?.map((i) => [i.name, i.uuid]), [['lab', uuids[1]], ['identity3', uuids[2]]]);
});
