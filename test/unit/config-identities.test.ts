import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, checkConfigCommand, describeConfig, loadConfig } from '../../src/config/index.js';
import { massIdentities, parseIdentityEnv } from '../../src/config/identities.js';

const U1 = '11111111-1111-4111-8111-111111111111';
const U2 = '22222222-2222-4222-8222-222222222222';
const U3 = '33333333-3333-4333-8333-333333333333';

function iniFile(t: TestContext, extra: string[], maxInFlight = 500): string {
  const dir = mkdtempSync(join(tmpdir(), 'config-identities-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.ini');
  writeFileSync(file, ['[GLOBAL]', 'ServerURL = http://mass.example.org/', '[AssemblylineAnalysis]', `UUID = ${U1}`, 'mass api key = first-key',
    '[Assemblyline]', 'URL = https://al.example.org', 'User = u', 'APIKey = k:s', '[Bridge]', `MaxInFlight = ${maxInFlight}`, ...extra, ''].join('\n'));
  return file;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.key}: ${p.message}`);
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test('without identity sections the configuration has one identity, default, as before', (t) => {
  const { config } = loadConfig({ file: iniFile(t, []) });
  assert.equal(config.mass.identities, undefined);
  assert.deepEqual(massIdentities(config), [{ name: 'default', uuid: U1, apiKey: 'first-key' }]);
});

test('[AssemblylineAnalysis:NAME] sections are more identities; env and _FILE set or override their keys', (t) => {
  const file = iniFile(t, ['[AssemblylineAnalysis:lab-2]', `UUID = ${U2}`, 'mass api key = from-file']);
  const keyFile = join(mkdtempSync(join(tmpdir(), 'config-identities-key-')), 'key');
  t.after(() => rmSync(keyFile, { force: true }));
  writeFileSync(keyFile, 'third-key\n');
  const { config, sources, warnings } = loadConfig({
    file,
    env: {
      MASSAL_ASSEMBLYLINEANALYSIS_LAB_2_MASS_API_KEY: 'from-env',
      // An identity given by its variables alone.
      MASSAL_ASSEMBLYLINEANALYSIS_THIRD_UUID: U3,
      MASSAL_ASSEMBLYLINEANALYSIS_THIRD_MASS_API_KEY_FILE: keyFile,
    },
  });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.mass.identities, [
    { name: 'lab-2', uuid: U2, apiKey: 'from-env' },
    { name: 'third', uuid: U3, apiKey: 'third-key' },
  ]);
  assert.equal(sources['AssemblylineAnalysis:lab-2.mass api key'], 'env MASSAL_ASSEMBLYLINEANALYSIS_LAB_2_MASS_API_KEY');
  assert.match(sources['AssemblylineAnalysis:lab-2.UUID'], /^file .*:\d+$/);
  // check-config prints each identity with its keys masked, and the printed text loads again.
  const printed = describeConfig(config, sources);
  assert.match(printed, /^\[AssemblylineAnalysis:third\]\n; env MASSAL_ASSEMBLYLINEANALYSIS_THIRD_UUID\nUUID = 3{8}-/m);
  assert.ok(!printed.includes('from-env') && !printed.includes('third-key') && !printed.includes('first-key'), 'no key is printed');
});

test('identity problems: a missing UUID or key, a reserved or malformed name, a UUID used twice; unknown keys warn', (t) => {
  const file = iniFile(t, [
    '[AssemblylineAnalysis:nouuid]', 'mass api key = k',
    '[AssemblylineAnalysis:nokey]', `UUID = ${U2}`,
    '[AssemblylineAnalysis:Default]', `UUID = ${U3}`, 'mass api key = k',
    '[AssemblylineAnalysis:twice]', `UUID = ${U1}`, 'mass api key = k',
    '[AssemblylineAnalysis:bad name!]', `UUID = ${U3}`, 'mass api key = k',
  ]);
  const found = problems(() => loadConfig({ file }));
  assert.ok(found.some((p) => /^AssemblylineAnalysis:nouuid\.UUID: is required: set UUID in \[AssemblylineAnalysis:nouuid\] or MASSAL_ASSEMBLYLINEANALYSIS_NOUUID_UUID/.test(p)), found.join('\n'));
  assert.ok(found.some((p) => /^AssemblylineAnalysis:nokey\.mass api key: is required: .*MASSAL_ASSEMBLYLINEANALYSIS_NOKEY_MASS_API_KEY_FILE/.test(p)), found.join('\n'));
  assert.ok(found.some((p) => /^AssemblylineAnalysis:Default: 'default' is the name of the first identity/.test(p)), found.join('\n'));
  assert.ok(found.some((p) => /^AssemblylineAnalysis:twice\.UUID: is also the UUID of \[AssemblylineAnalysis\]/.test(p)), found.join('\n'));
  assert.ok(found.some((p) => /^AssemblylineAnalysis:bad name!: an identity name is/.test(p)), found.join('\n'));
  assert.equal(found.length, 5, found.join('\n'));

  const { warnings } = loadConfig({ file: iniFile(t, ['[AssemblylineAnalysis:lab]', `UUID = ${U2}`, 'mass api key = k', 'PollTime = 3']) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /unknown key 'PollTime' in \[AssemblylineAnalysis:lab\] is ignored: an identity section sets only UUID and mass api key/);
});

test('a mistyped identity section is a configuration error naming [AssemblylineAnalysis:NAME]; other unknown sections still warn', async (t) => {
  // The header's case and separators do not matter: this one is an identity section.
  const cased = loadConfig({ file: iniFile(t, ['[AssemblyLineAnalysis:second]', `UUID = ${U2}`, 'mass api key = k']) });
  assert.deepEqual(cased.config.mass.identities, [{ name: 'second', uuid: U2, apiKey: 'k' }]);

  for (const header of ['AssemblylineAnalysis second', 'AssemblylineAnalyses:second', 'AssemblylineAnalysis.second', 'Assemblyline Analysys : second']) {
    const file = iniFile(t, [`[${header}]`, `UUID = ${U2}`, 'mass api key = k']);
    const found = problems(() => loadConfig({ file }));
    assert.deepEqual(found, [`${header}: section [${header}] is no identity section: write each further identity as [AssemblylineAnalysis:NAME]; did you mean [AssemblylineAnalysis:second]?`]);
    // check-config (and doctor, which loads the same way) fail with the same line.
    const checked = await checkConfigCommand(['--config', file], {});
    assert.equal(checked.exitCode, 1);
    assert.match(checked.stderr, new RegExp(`- ${header.replace(/[.]/g, '\\.')} \\(file .*:\\d+\\): section \\[.*\\] is no identity section: write each further identity as \\[AssemblylineAnalysis:NAME\\]`));
  }
  // A name that cannot name an identity gets no suggestion, but is still an error.
  assert.deepEqual(problems(() => loadConfig({ file: iniFile(t, ['[AssemblylineAnalyses:bad name!]']) })),
    ['AssemblylineAnalyses:bad name!: section [AssemblylineAnalyses:bad name!] is no identity section: write each further identity as [AssemblylineAnalysis:NAME]']);

  // Any other unknown section that sets an identity's UUID or mass api key was meant as an identity: an error.
  for (const header of ['AssemblylineAnalysis2', 'Assemblyline:lab2', 'MassAnalysis:lab2']) {
    const found = problems(() => loadConfig({ file: iniFile(t, [`[${header}]`, `UUID = ${U2}`, 'mass api key = k']) }));
    assert.deepEqual(found, [`${header}: section [${header}] sets an identity's UUID or mass api key but is no identity section: write each further identity as [AssemblylineAnalysis:NAME]`]);
  }
  assert.equal(problems(() => loadConfig({ file: iniFile(t, ['[Extra]', 'Mass API Key = k']) })).length, 1, 'keys match without case, as every key');

  // Unrelated unknown sections (and a mistyped first identity section, without a NAME) stay warnings.
  const { warnings } = loadConfig({ file: iniFile(t, ['[Monitoring]', 'x = 1', '[Assemblyline:second]', 'y = 2', '[AssemblylineAnalyses]', 'z = 3']) });
  assert.deepEqual(warnings.map((w) => w.message), [
    'unknown section [Monitoring] is ignored',
    'unknown section [Assemblyline:second] is ignored',
    'unknown section [AssemblylineAnalyses] is ignored; did you mean [AssemblylineAnalysis]?',
  ]);
});

test('check-config warns when MaxInFlight cannot hold 101 scheduled analyses per identity', (t) => {
  const two = ['[AssemblylineAnalysis:lab]', `UUID = ${U2}`, 'mass api key = k'];
  assert.deepEqual(loadConfig({ file: iniFile(t, two, 202) }).warnings, []);
  const { warnings } = loadConfig({ file: iniFile(t, two, 100) });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].key, 'Bridge.MaxInFlight');
  assert.match(warnings[0].message, /is below 101 × 2 identities \(202\)/);
  // One identity: the default MaxInFlight (100) is fine, as before.
  assert.deepEqual(loadConfig({ file: iniFile(t, [], 100) }).warnings, []);
});

test('register may leave identity UUIDs and keys empty', (t) => {
  const file = iniFile(t, ['[AssemblylineAnalysis:later]']);
  const { config } = loadConfig({ file, allowMissingSecrets: true, optional: ['AssemblylineAnalysis.UUID'] });
  assert.deepEqual(config.mass.identities, [{ name: 'later', uuid: '', apiKey: '' }]);
});

test('identity variables are told apart from the first identity and the other keys', () => {
  assert.deepEqual(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_LAB_2_UUID'), { name: 'lab_2', field: 'uuid', file: false });
  assert.deepEqual(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_X_MASS_API_KEY_FILE'), { name: 'x', field: 'apiKey', file: true });
  assert.equal(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_UUID'), undefined);
  assert.equal(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY'), undefined);
  assert.equal(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_X_UUID_FILE'), undefined);
  assert.equal(parseIdentityEnv('MASSAL_ASSEMBLYLINEANALYSIS_POLLTIME'), undefined);
});
