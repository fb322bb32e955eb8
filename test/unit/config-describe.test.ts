import { withReadmeConfigTable } from '../../src/config/write-docs.js';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkConfigCommand,
  CONFIG_KEYS,
  describeConfig,
  envName,
  loadConfig,
  MASK,
  renderConfigTable,
  renderConfigurationDoc,
  SECRET_KEYS,
} from '../../src/config/index.js';
import { normalizeName, parseIni } from '../../src/config/ini.js';

const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));

const SECRETS = {
  // Random-looking so that no 4-character piece occurs in ordinary output by chance.
  mass: 'Qj7vXk2Lw9.zRt4Yp8Nm',
  al: 'kx9q:Vb3Hq7Zw1Jp5',
  password: 'Wq9;Zx#7"Kv',
  token: 'Tz4Rk8Pw2Mx6',
  readToken: 'Hn5Gd3Ls9Vc1',
};

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'massal-describe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every substring of length >= 4: no part of a secret may show. */
function assertNoPartOf(secret: string, text: string): void {
  for (let i = 0; i + 4 <= secret.length; i++) {
    const part = secret.slice(i, i + 4);
    assert.ok(!text.includes(part), `output contains '${part}', a part of a secret`);
  }
}

function fullConfigFile(t: TestContext): string {
  const dir = tempDir(t);
  const file = join(dir, 'bridge.ini');
  writeFileSync(
    file,
    `[GLOBAL]
ServerURL = http://mass.example.org/
[AssemblylineAnalysis]
UUID = f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51
mass api key = ${SECRETS.mass}
[Assemblyline]
URL = https://al.example.org
User = bridge
Auth = password
Password = ${SECRETS.password}
Services = Extract, PDFId
[API]
Token = ${SECRETS.token}
ReadToken = ${SECRETS.readToken}
`,
  );
  const keyFile = join(dir, 'al_key');
  writeFileSync(keyFile, `${SECRETS.al}\n`);
  return file;
}

/** The value line of `key` and the source named on the comment line above it. */
function entry(out: string, key: string): { line: string; source: string } {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${key} =`) || l.startsWith(`; ${key} =`));
  assert.ok(i > 0, `${key} is printed`);
  assert.match(lines[i - 1], /^; /, `the source of ${key} is on the comment line above it`);
  return { line: lines[i], source: lines[i - 1].slice(2) };
}

test('describeConfig masks every secret and names the source of every value on the line above it', (t) => {
  const file = fullConfigFile(t);
  const keyFile = join(file, '..', 'al_key');
  const { config, sources } = loadConfig({ file, env: { MASSAL_ASSEMBLYLINE_APIKEY_FILE: keyFile, MASSAL_BRIDGE_CONCURRENCY: '6' }, cli: { 'Assemblyline.Priority': '99' } });
  const out = describeConfig(config, sources);
  for (const secret of Object.values(SECRETS)) assertNoPartOf(secret, out);
  assert.deepEqual(entry(out, 'mass api key'), { line: `; mass api key = ${MASK}`, source: `file ${file}:5` });
  assert.match(entry(out, 'APIKey').source, /^env MASSAL_ASSEMBLYLINE_APIKEY_FILE \(.*al_key\)$/);
  assert.equal(entry(out, 'APIKey').line, `; APIKey = ${MASK}`);
  assert.equal(entry(out, 'Password').line, `; Password = ${MASK}`);
  assert.equal(entry(out, 'Token').line, `; Token = ${MASK}`);
  assert.equal(entry(out, 'ReadToken').line, `; ReadToken = ${MASK}`);
  assert.deepEqual(entry(out, 'Concurrency'), { line: 'Concurrency = 6', source: 'env MASSAL_BRIDGE_CONCURRENCY' });
  assert.deepEqual(entry(out, 'Priority'), { line: 'Priority = 99', source: 'cli' });
  assert.equal(entry(out, 'Services').line, 'Services = Extract,PDFId');
  assert.deepEqual(entry(out, 'UIURL'), { line: 'UIURL = https://al.example.org', source: 'derived' });
  assert.deepEqual(entry(out, 'GracePeriod'), { line: 'GracePeriod = 30', source: 'default' });
  assert.match(out, /^; MASS API root: http:\/\/mass\.example\.org\/api\/$/m);
  // Every key that is not a set secret is printed once, under its section, with no comment in its value.
  const doc = parseIni(out);
  assert.deepEqual(doc.problems, []);
  assert.equal(doc.entries.length, CONFIG_KEYS.length - SECRET_KEYS.length);
  for (const e of doc.entries) assert.ok(!e.value.includes(';'), `${e.key} has no comment in its value`);
});

test('check-config prints a configuration that check-config accepts, with the same effective values', async (t) => {
  const file = fullConfigFile(t);
  const dir = join(file, '..');
  const secretEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries({ MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY: SECRETS.mass, MASSAL_ASSEMBLYLINE_PASSWORD: SECRETS.password, MASSAL_API_TOKEN: SECRETS.token, MASSAL_API_READTOKEN: SECRETS.readToken, MASSAL_ASSEMBLYLINE_APIKEY: SECRETS.al })) {
    writeFileSync(join(dir, name), value);
    secretEnv[`${name}_FILE`] = join(dir, name);
  }
  const first = await checkConfigCommand(['--config', file, '--set', 'Bridge.LogLevel=debug'], { MASSAL_ASSEMBLYLINE_APIKEY_FILE: secretEnv.MASSAL_ASSEMBLYLINE_APIKEY_FILE, MASSAL_BRIDGE_CONCURRENCY: '6' });
  assert.equal(first.exitCode, 0, first.stderr);
  const printed = join(dir, 'printed.ini');
  writeFileSync(printed, first.stdout);
  // The secrets come back the way an operator supplies them: *_FILE variables.
  const second = await checkConfigCommand(['--config', printed], secretEnv);
  assert.equal(second.exitCode, 0, second.stderr);
  assert.equal(second.stderr, '', 'no warning about the printed file');
  const before = loadConfig({ file, env: { MASSAL_ASSEMBLYLINE_APIKEY_FILE: secretEnv.MASSAL_ASSEMBLYLINE_APIKEY_FILE, MASSAL_BRIDGE_CONCURRENCY: '6' }, cli: { 'Bridge.LogLevel': 'debug' } }).config;
  const after = loadConfig({ file: printed, env: secretEnv }).config;
  assert.deepEqual(after, before);
});

test('an empty secret prints as empty, not as a mask', (t) => {
  const file = fullConfigFile(t);
  const { config, sources } = loadConfig({ file, env: { MASSAL_API_TOKEN: '' }, cli: { 'Assemblyline.Auth': 'password' } });
  assert.deepEqual(entry(describeConfig(config, sources), 'Token'), { line: 'Token = ', source: 'env MASSAL_API_TOKEN' });
});

test('check-config prints the masked configuration and exits 0', async (t) => {
  const file = fullConfigFile(t);
  const result = await checkConfigCommand(['check-config', '--config', file, '--set', 'Bridge.LogLevel=debug'], { MASSAL_ASSEMBLYLINE_TTL: '7', MASSAL_ASEMBLYLINE_TTL: '8' });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.deepEqual(entry(result.stdout, 'LogLevel'), { line: 'LogLevel = debug', source: 'cli' });
  assert.deepEqual(entry(result.stdout, 'TTL'), { line: 'TTL = 7', source: 'env MASSAL_ASSEMBLYLINE_TTL' });
  assert.match(result.stderr, /^warning: MASSAL_ASEMBLYLINE_TTL \(env MASSAL_ASEMBLYLINE_TTL\): unknown variable .* did you mean MASSAL_ASSEMBLYLINE_TTL\?$/m);
  for (const secret of Object.values(SECRETS)) assertNoPartOf(secret, result.stdout + result.stderr);
});

test('check-config lists every problem on stderr, no secret, and exits 1', async (t) => {
  const file = fullConfigFile(t);
  const result = await checkConfigCommand(['--config=' + file], {
    MASSAL_ASSEMBLYLINE_AUTH: 'apikey',
    MASSAL_ASSEMBLYLINE_APIKEY: 'Vq8Zr3Kx7Wn2',
    MASSAL_ASSEMBLYLINE_PRIORITY: '1',
  });
  assert.equal(result.exitCode, 1);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /invalid configuration \(2 problems\)/);
  assert.match(result.stderr, /Assemblyline\.APIKey \(env MASSAL_ASSEMBLYLINE_APIKEY\): must be '<key name>:<secret>'/);
  assert.match(result.stderr, /Assemblyline\.Priority \(env MASSAL_ASSEMBLYLINE_PRIORITY\): must be between 2 and 250/);
  assertNoPartOf('Vq8Zr3Kx7Wn2', result.stderr);
  for (const secret of Object.values(SECRETS)) assertNoPartOf(secret, result.stderr);
});

test('check-config usage: --help exits 0, bad arguments exit 2', async () => {
  const help = await checkConfigCommand(['--help'], {});
  assert.equal(help.exitCode, 0);
  assert.match(help.stdout, /check-config \[--config FILE\]/);
  const bad = await checkConfigCommand(['--config'], {});
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--config needs a file name/);
  const unknown = await checkConfigCommand(['--frob', '--set', 'nodot'], {});
  assert.equal(unknown.exitCode, 2);
  assert.match(unknown.stderr, /--set needs Section\.Key=value/);
  assert.match(unknown.stderr, /unknown argument '--frob'/);
});

test('config/example.ini loads (secrets from *_FILE) and lists exactly the known keys', (t) => {
  const file = root('config/example.ini');
  const dir = tempDir(t);
  const env: Record<string, string> = {};
  for (const [key, value] of [['AssemblylineAnalysis.mass api key', SECRETS.mass], ['Assemblyline.APIKey', SECRETS.al]]) {
    const [section, name] = [key.slice(0, key.indexOf('.')), key.slice(key.indexOf('.') + 1)];
    const secretFile = join(dir, normalizeName(name));
    writeFileSync(secretFile, `${value}\n`);
    env[`${envName(section, name)}_FILE`] = secretFile;
  }
  const { config, warnings, sources } = loadConfig({ file, env });
  assert.deepEqual(warnings, []);
  assert.equal(config.mass.apiKey, SECRETS.mass);
  assert.match(sources['GLOBAL.ServerURL'], /example\.ini:\d+$/);

  const doc = parseIni(readFileSync(file, 'utf8'));
  assert.deepEqual(doc.problems, []);
  const inFile = doc.entries.map((e) => `${normalizeName(e.section)}.${normalizeName(e.key)}`).sort();
  const known = CONFIG_KEYS.map((s) => `${normalizeName(s.section)}.${normalizeName(s.key)}`).sort();
  assert.deepEqual(inFile, known);
  // Every key is documented with its default right above it; no secret has a value in the example.
  const text = readFileSync(file, 'utf8').split('\n');
  for (const e of doc.entries) {
    assert.match(text[e.line - 2], /^; Default: /, `${e.key} has no default comment`);
  }
  for (const id of SECRET_KEYS) {
    const [section, key] = [id.slice(0, id.indexOf('.')), id.slice(id.indexOf('.') + 1)];
    assert.equal(doc.entries.find((e) => e.section === section && e.key === key)?.value, '', `${id} must be empty in the example`);
  }
});

test('the README configuration table is what renderConfigTable() produces (regenerate: npm run docs:config)', () => {
  const readme = readFileSync(root('README.md'), 'utf8');
  assert.equal(readme, withReadmeConfigTable(readme));
  assert.ok(readme.includes(renderConfigTable()));
});

test('docs/configuration.md is what renderConfigTable() produces (regenerate: node --import tsx src/config/write-docs.ts)', () => {
  const doc = readFileSync(root('docs/configuration.md'), 'utf8');
  assert.equal(doc, renderConfigurationDoc());
  assert.ok(doc.includes(renderConfigTable()));
  for (const spec of CONFIG_KEYS) assert.ok(doc.includes(`\`${envName(spec.section, spec.key)}\``), spec.key);
});
