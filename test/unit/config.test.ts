import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgeError } from '../../src/errors.js';
import { ConfigError, CONFIG_KEYS, envName, joinApiRoot, loadConfig, SECRET_KEYS, type ConfigProblem } from '../../src/config/index.js';
import { parseIni } from '../../src/config/ini.js';

const MASS_KEY = 'IjZiMassSecretToken.kPamXyz';
const AL_KEY = 'bridgekey:AlSecretValue123';

const MINIMAL = `[GLOBAL]
ServerURL = http://mass.example.org/

[AssemblylineAnalysis]
UUID = f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51
mass api key = ${MASS_KEY}

[Assemblyline]
URL = https://al.example.org
User = bridge
APIKey = ${AL_KEY}
`;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'massal-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeIni(t: TestContext, text: string, name = 'bridge.ini'): string {
  const file = join(tempDir(t), name);
  writeFileSync(file, text);
  return file;
}

/** MINIMAL with `key = value` lines added to (or replacing those in) the given sections. */
function withKeys(changes: Record<string, Record<string, string | null>>): string {
  const sections = new Map<string, Map<string, string>>();
  let current = '';
  for (const line of MINIMAL.split('\n')) {
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) sections.set((current = sec[1]), new Map());
    else if (line.includes('=')) sections.get(current)!.set(line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim());
  }
  for (const [section, keys] of Object.entries(changes)) {
    if (!sections.has(section)) sections.set(section, new Map());
    for (const [k, v] of Object.entries(keys)) {
      if (v === null) sections.get(section)!.delete(k);
      else sections.get(section)!.set(k, v);
    }
  }
  return [...sections].map(([s, keys]) => `[${s}]\n${[...keys].map(([k, v]) => `${k} = ${v}`).join('\n')}\n`).join('\n');
}

function problemsOf(fn: () => unknown): ConfigProblem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

test('a minimal file loads with the documented defaults and derived values', (t) => {
  const file = writeIni(t, MINIMAL);
  const { config, warnings, sources } = loadConfig({ file, env: {}, hostname: 'worker1' });
  assert.deepEqual(warnings, []);
  assert.equal(config.global.apiRoot, 'http://mass.example.org/api/');
  assert.equal(config.global.sleepTime, 3);
  assert.equal(config.mass.pollTime, 10);
  assert.equal(config.mass.systemName, 'assemblyline');
  assert.equal(config.mass.apiKey, MASS_KEY);
  assert.equal(config.assemblyline.auth, 'apikey');
  assert.equal(config.assemblyline.apiKey, AL_KEY);
  assert.equal(config.assemblyline.verifyTls, true);
  assert.equal(config.assemblyline.priority, 0, 'Priority is not sent unless configured (a profile may restrict it)');
  assert.equal(config.assemblyline.neverDrop, false);
  assert.deepEqual(config.assemblyline.metadata, {});
  assert.equal(config.assemblyline.bridgeMetadata, true);
  assert.deepEqual(config.assemblyline.services, []);
  assert.equal(config.assemblyline.uiUrl, 'https://al.example.org');
  assert.equal(config.assemblyline.maxConcurrentCalls, 8);
  assert.equal(config.bridge.instanceName, 'worker1-f27f964c');
  assert.equal(config.bridge.gracePeriod, 30);
  assert.deepEqual(config.report.tagKinds, ['verdict', 'family', 'attack', 'score', 'heuristic']);
  assert.deepEqual(config.report.extractedRelations, ['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED']);
  assert.deepEqual(config.report.staticIocs, []);
  assert.deepEqual(config.api, { listen: '127.0.0.1:8080', host: '127.0.0.1', port: 8080, token: '', readAuth: 'none', readToken: '' });
  assert.equal(sources['GLOBAL.ServerURL'], `file ${file}:2`);
  assert.equal(sources['Assemblyline.Priority'], 'default');
  assert.equal(sources['Assemblyline.UIURL'], 'derived');
  assert.equal(sources['Bridge.InstanceName'], 'derived');
  // Every key of the table has a source entry and a value in the config.
  for (const spec of CONFIG_KEYS) {
    assert.ok(sources[`${spec.section}.${spec.key}`], spec.key);
    assert.notEqual((config[spec.path[0]] as unknown as Record<string, unknown>)[spec.path[1]], undefined, spec.key);
  }
});

test('apiRoot is ServerURL joined with APIEndpoint and always ends with a slash', (t) => {
  assert.equal(joinApiRoot('http://mass.example.org/', 'api/'), 'http://mass.example.org/api/');
  assert.equal(joinApiRoot('http://mass.example.org', 'api'), 'http://mass.example.org/api/');
  assert.equal(joinApiRoot('http://mass.example.org/mass/', '/api/'), 'http://mass.example.org/mass/api/');
  assert.equal(joinApiRoot('http://localhost:5000', ''), 'http://localhost:5000/');
  const file = writeIni(t, withKeys({ GLOBAL: { ServerURL: 'http://localhost:5000', APIEndpoint: 'v1/api' } }));
  assert.equal(loadConfig({ file, env: {} }).config.global.apiRoot, 'http://localhost:5000/v1/api/');
});

test('section and key names are case-insensitive and keys may contain spaces', (t) => {
  const file = writeIni(
    t,
    `[global]
serverurl: http://mass.example.org/
[ASSEMBLYLINEANALYSIS]
uuid = abc
MASS API KEY = ${MASS_KEY}
Poll Time = 7
[assemblyline]
url = https://al.example.org
user = bridge
apikey = ${AL_KEY}
never-drop = yes
`,
  );
  const { config } = loadConfig({ file, env: {} });
  assert.equal(config.global.serverUrl, 'http://mass.example.org/');
  assert.equal(config.mass.apiKey, MASS_KEY);
  assert.equal(config.mass.pollTime, 7);
  assert.equal(config.assemblyline.neverDrop, true);
});

test('values keep ;, # and quotes; continuation lines extend a value', (t) => {
  const file = writeIni(t, withKeys({ Assemblyline: { Password: `"p;a#ss"`, Services: 'Extract,\n    PDFId' } }));
  const { config } = loadConfig({ file, env: {} });
  assert.equal(config.assemblyline.password, '"p;a#ss"');
  assert.deepEqual(config.assemblyline.services, ['Extract', 'PDFId']);
});

test('precedence: command line over environment over file over defaults', (t) => {
  const file = writeIni(t, withKeys({ Assemblyline: { Priority: '100' }, Bridge: { Concurrency: '2', MaxInFlight: '20' } }));
  const env = { MASSAL_ASSEMBLYLINE_PRIORITY: '120', MASSAL_BRIDGE_CONCURRENCY: '3' };
  const list = loadConfig({ file, env, cli: [{ section: 'Assemblyline', key: 'Priority', value: '200' }] });
  assert.equal(list.config.assemblyline.priority, 200);
  assert.equal(list.sources['Assemblyline.Priority'], 'cli');
  assert.equal(list.config.bridge.concurrency, 3);
  assert.equal(list.sources['Bridge.Concurrency'], 'env MASSAL_BRIDGE_CONCURRENCY');
  assert.equal(list.config.bridge.maxInFlight, 20);
  assert.match(list.sources['Bridge.MaxInFlight'], /^file .*bridge\.ini:\d+$/);
  assert.equal(list.config.bridge.queuePageSize, 100);
  assert.equal(list.sources['Bridge.QueuePageSize'], 'default');

  const record = loadConfig({ file, env, cli: { 'assemblyline.priority': '210', 'AssemblylineAnalysis.mass api key': 'cli-key' } });
  assert.equal(record.config.assemblyline.priority, 210);
  assert.equal(record.config.mass.apiKey, 'cli-key');
});

test('every key has a MASSAL_<SECTION>_<KEY> variable; a config can come from the environment alone', () => {
  assert.equal(envName('AssemblylineAnalysis', 'mass api key'), 'MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY');
  assert.equal(envName('Assemblyline', 'APIKey'), 'MASSAL_ASSEMBLYLINE_APIKEY');
  assert.equal(envName('Bridge', 'StateDir'), 'MASSAL_BRIDGE_STATEDIR');
  assert.equal(envName('API', 'Listen'), 'MASSAL_API_LISTEN');
  const names = CONFIG_KEYS.map((s) => envName(s.section, s.key));
  assert.equal(new Set(names).size, names.length, 'environment names are unique');
  for (const n of names) assert.match(n, /^MASSAL_[A-Z0-9_]+$/);

  const { config, sources } = loadConfig({
    env: {
      MASSAL_GLOBAL_SERVERURL: 'http://mass:5000',
      MASSAL_ASSEMBLYLINEANALYSIS_UUID: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
      MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY: MASS_KEY,
      MASSAL_ASSEMBLYLINE_URL: 'http://al:5001',
      MASSAL_ASSEMBLYLINE_USER: 'bridge',
      MASSAL_ASSEMBLYLINE_APIKEY: AL_KEY,
      MASSAL_BRIDGE_STATEDIR: '/var/lib/mass-al-bridge',
      MASSAL_REPORT_STATICIOCS: 'IP, domain',
      MASSAL_API_LISTEN: '[::1]:0',
      PATH: '/usr/bin',
    },
  });
  assert.equal(config.global.apiRoot, 'http://mass:5000/api/');
  assert.equal(config.bridge.stateDir, '/var/lib/mass-al-bridge');
  assert.deepEqual(config.report.staticIocs, ['ip', 'domain']);
  assert.equal(config.api.host, '::1');
  assert.equal(config.api.port, 0);
  assert.equal(sources['AssemblylineAnalysis.mass api key'], 'env MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY');
});

test('secrets can be read from *_FILE; only the trailing newline is removed', (t) => {
  const dir = tempDir(t);
  const files = { mass: join(dir, 'mass_key'), al: join(dir, 'al_key'), token: join(dir, 'token'), password: join(dir, 'pw') };
  writeFileSync(files.mass, `${MASS_KEY}\n`);
  writeFileSync(files.al, `${AL_KEY}\r\n`);
  writeFileSync(files.token, ' tok en ');
  writeFileSync(files.password, 'pw\n');
  const file = writeIni(t, withKeys({ AssemblylineAnalysis: { 'mass api key': null }, Assemblyline: { APIKey: null } }));
  const { config, sources } = loadConfig({
    file,
    env: {
      MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY_FILE: files.mass,
      MASSAL_ASSEMBLYLINE_APIKEY_FILE: files.al,
      MASSAL_API_TOKEN_FILE: files.token,
      MASSAL_ASSEMBLYLINE_PASSWORD_FILE: files.password,
    },
  });
  assert.equal(config.mass.apiKey, MASS_KEY);
  assert.equal(config.assemblyline.apiKey, AL_KEY);
  assert.equal(config.api.token, ' tok en ');
  assert.equal(config.assemblyline.password, 'pw');
  assert.equal(sources['Assemblyline.APIKey'], `env MASSAL_ASSEMBLYLINE_APIKEY_FILE (${files.al})`);
  assert.deepEqual([...SECRET_KEYS].sort(), ['API.ReadToken', 'API.Token', 'Assemblyline.APIKey', 'Assemblyline.Password', 'AssemblylineAnalysis.mass api key']);
});

test('*_FILE problems: both forms set, missing file, empty file; non-secrets have no _FILE form', (t) => {
  const dir = tempDir(t);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n');
  const file = writeIni(t, MINIMAL);
  const problems = problemsOf(() =>
    loadConfig({
      file,
      env: {
        MASSAL_ASSEMBLYLINE_APIKEY: AL_KEY,
        MASSAL_ASSEMBLYLINE_APIKEY_FILE: join(dir, 'al_key'),
        MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY_FILE: join(dir, 'missing'),
        MASSAL_API_TOKEN_FILE: empty,
      },
    }),
  );
  assert.deepEqual(
    problems.map((p) => p.key).sort(),
    ['API.Token', 'Assemblyline.APIKey', 'AssemblylineAnalysis.mass api key'],
  );
  assert.match(problems.find((p) => p.key === 'Assemblyline.APIKey')!.message, /both MASSAL_ASSEMBLYLINE_APIKEY and MASSAL_ASSEMBLYLINE_APIKEY_FILE/);
  const missing = problems.find((p) => p.key === 'AssemblylineAnalysis.mass api key')!;
  assert.match(missing.message, /cannot read the secret file: ENOENT/);
  assert.equal(missing.source, `env MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY_FILE (${join(dir, 'missing')})`);
  assert.match(problems.find((p) => p.key === 'API.Token')!.message, /empty/);

  const { warnings } = loadConfig({ file, env: { MASSAL_BRIDGE_STATEDIR_FILE: empty } });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /unknown variable MASSAL_BRIDGE_STATEDIR_FILE/);
});

test('booleans accept true/false, yes/no, on/off, 1/0 in any case', (t) => {
  for (const [text, value] of [['TRUE', true], ['yes', true], ['On', true], ['1', true], ['false', false], ['NO', false], ['off', false], ['0', false]] as const) {
    const file = writeIni(t, withKeys({ Assemblyline: { DeepScan: text } }));
    assert.equal(loadConfig({ file, env: {} }).config.assemblyline.deepScan, value, text);
  }
});

interface Case {
  name: string;
  changes: Record<string, Record<string, string | null>>;
  key: string;
  message: RegExp;
}

const INVALID: Case[] = [
  { name: 'ServerURL missing', changes: { GLOBAL: { ServerURL: null } }, key: 'GLOBAL.ServerURL', message: /is required: set ServerURL in \[GLOBAL\] or MASSAL_GLOBAL_SERVERURL/ },
  { name: 'ServerURL not http', changes: { GLOBAL: { ServerURL: 'ftp://mass.example.org/' } }, key: 'GLOBAL.ServerURL', message: /http:\/\/ or https:\/\// },
  { name: 'ServerURL not a URL', changes: { GLOBAL: { ServerURL: 'mass.example.org' } }, key: 'GLOBAL.ServerURL', message: /absolute/ },
  { name: 'ServerURL with an inline comment', changes: { GLOBAL: { ServerURL: 'http://mass.example.org/ ; my MASS' } }, key: 'GLOBAL.ServerURL', message: /must not contain spaces: '; my MASS' reads as part of the value .*put the comment on a line of its own/ },
  { name: 'Assemblyline URL with a space', changes: { Assemblyline: { URL: 'https://al.example.org/my al' } }, key: 'Assemblyline.URL', message: /must not contain spaces; write a space in a path as %20/ },
  { name: 'ServerURL with credentials', changes: { GLOBAL: { ServerURL: 'http://u:p@mass.example.org/' } }, key: 'GLOBAL.ServerURL', message: /user name or password/ },
  { name: 'APIEndpoint as URL', changes: { GLOBAL: { APIEndpoint: 'http://x/api/' } }, key: 'GLOBAL.APIEndpoint', message: /relative/ },
  { name: 'SleepTime not a number', changes: { GLOBAL: { SleepTime: 'soon' } }, key: 'GLOBAL.SleepTime', message: /number of seconds \(got 'soon'\)/ },
  { name: 'PollTime below 0.1', changes: { AssemblylineAnalysis: { PollTime: '0.05' } }, key: 'AssemblylineAnalysis.PollTime', message: /between 0.1 and/ },
  { name: 'UUID missing', changes: { AssemblylineAnalysis: { UUID: null } }, key: 'AssemblylineAnalysis.UUID', message: /required/ },
  { name: 'UUID too long', changes: { AssemblylineAnalysis: { UUID: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51-x' } }, key: 'AssemblylineAnalysis.UUID', message: /at most 36/ },
  { name: 'UUID with slash', changes: { AssemblylineAnalysis: { UUID: 'a/b' } }, key: 'AssemblylineAnalysis.UUID', message: /must not contain '\/'/ },
  { name: 'SystemName too short', changes: { AssemblylineAnalysis: { SystemName: 'al' } }, key: 'AssemblylineAnalysis.SystemName', message: /at least 3/ },
  { name: 'mass api key missing', changes: { AssemblylineAnalysis: { 'mass api key': null } }, key: 'AssemblylineAnalysis.mass api key', message: /MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY_FILE/ },
  { name: 'MASS Timeout zero', changes: { AssemblylineAnalysis: { Timeout: '0' } }, key: 'AssemblylineAnalysis.Timeout', message: /between 1 and 3600/ },
  { name: 'AL URL missing', changes: { Assemblyline: { URL: null } }, key: 'Assemblyline.URL', message: /required/ },
  { name: 'UIURL not a URL', changes: { Assemblyline: { UIURL: 'al-ui' } }, key: 'Assemblyline.UIURL', message: /absolute/ },
  { name: 'Auth unknown', changes: { Assemblyline: { Auth: 'oauth' } }, key: 'Assemblyline.Auth', message: /one of apikey, password/ },
  { name: 'Auth certificate (removed)', changes: { Assemblyline: { Auth: 'certificate' } }, key: 'Assemblyline.Auth', message: /not an Assemblyline authentication method.*set Auth = apikey.*keep ClientCert\/ClientKey/ },
  { name: 'Metadata not key=value', changes: { Assemblyline: { Metadata: 'sensor' } }, key: 'Assemblyline.Metadata', message: /'sensor' is not key=value/ },
  { name: 'Metadata key twice', changes: { Assemblyline: { Metadata: 'a=1, a=2' } }, key: 'Assemblyline.Metadata', message: /'a' is given twice/ },
  { name: 'Metadata key of the bridge', changes: { Assemblyline: { Metadata: 'bridge_job=evil' } }, key: 'Assemblyline.Metadata', message: /'bridge_job' is one the bridge sets itself/ },
  { name: 'User missing for apikey', changes: { Assemblyline: { User: null } }, key: 'Assemblyline.User', message: /required with Auth = apikey/ },
  { name: 'APIKey missing for apikey', changes: { Assemblyline: { APIKey: null } }, key: 'Assemblyline.APIKey', message: /required with Auth = apikey.*MASSAL_ASSEMBLYLINE_APIKEY_FILE/ },
  { name: 'APIKey not name:secret', changes: { Assemblyline: { APIKey: 'JustTheSecretPart' } }, key: 'Assemblyline.APIKey', message: /<key name>:<secret>/ },
  { name: 'Password missing for password auth', changes: { Assemblyline: { Auth: 'password', APIKey: null } }, key: 'Assemblyline.Password', message: /required with Auth = password/ },
  { name: 'ClientCert without ClientKey', changes: { Assemblyline: { ClientCert: '/etc/hostname' } }, key: 'Assemblyline.ClientKey', message: /go together/ },
  { name: 'CAFile missing', changes: { Assemblyline: { CAFile: '/nonexistent/ca.pem' } }, key: 'Assemblyline.CAFile', message: /'\/nonexistent\/ca.pem' does not exist/ },
  { name: 'CAFile a directory', changes: { Assemblyline: { CAFile: '/' } }, key: 'Assemblyline.CAFile', message: /is not a file/ },
  { name: 'VerifyTLS not boolean', changes: { Assemblyline: { VerifyTLS: 'maybe' } }, key: 'Assemblyline.VerifyTLS', message: /true\/false, yes\/no, on\/off or 1\/0/ },
  { name: 'queue with slash', changes: { Assemblyline: { NotificationQueue: 'mass/bridge' } }, key: 'Assemblyline.NotificationQueue', message: /'\/'/ },
  { name: 'queue shaped like a user key', changes: { Assemblyline: { NotificationQueue: 'ABCD-bridge' } }, key: 'Assemblyline.NotificationQueue', message: /upper-case hex/ },
  { name: 'queue empty', changes: { Assemblyline: { NotificationQueue: '' } }, key: 'Assemblyline.NotificationQueue', message: /required/ },
  { name: 'Priority 1', changes: { Assemblyline: { Priority: '1' } }, key: 'Assemblyline.Priority', message: /between 2 and 250 \(Assemblyline always drops priority 1/ },
  { name: 'Priority above 250', changes: { Assemblyline: { Priority: '251' } }, key: 'Assemblyline.Priority', message: /between 2 and 250/ },
  { name: 'Priority not a number', changes: { Assemblyline: { Priority: 'high' } }, key: 'Assemblyline.Priority', message: /whole number \(got 'high'\)/ },
  { name: 'TTL negative', changes: { Assemblyline: { TTL: '-1' } }, key: 'Assemblyline.TTL', message: /between 0 and/ },
  { name: 'MaxConcurrentCalls zero', changes: { Assemblyline: { MaxConcurrentCalls: '0' } }, key: 'Assemblyline.MaxConcurrentCalls', message: /between 1/ },
  { name: 'Concurrency zero', changes: { Bridge: { Concurrency: '0' } }, key: 'Bridge.Concurrency', message: /between 1 and 256/ },
  { name: 'StateDir empty', changes: { Bridge: { StateDir: '' } }, key: 'Bridge.StateDir', message: /required/ },
  { name: 'RetryMaxDelay below base', changes: { Bridge: { RetryBaseDelay: '10', RetryMaxDelay: '5' } }, key: 'Bridge.RetryMaxDelay', message: /not be smaller than RetryBaseDelay/ },
  { name: 'LogLevel unknown', changes: { Bridge: { LogLevel: 'verbose' } }, key: 'Bridge.LogLevel', message: /one of fatal, error/ },
  { name: 'Tags unknown kind', changes: { Report: { Tags: 'verdict,colour' } }, key: 'Report.Tags', message: /unknown value\(s\) colour/ },
  { name: 'TagPrefix with space', changes: { Report: { TagPrefix: 'al tag:' } }, key: 'Report.TagPrefix', message: /MASS tag rule/ },
  { name: 'RelatedTLP 4', changes: { Report: { RelatedTLP: '4' } }, key: 'Report.RelatedTLP', message: /between 0 and 3/ },
  { name: 'MaxDepth 7', changes: { Report: { MaxDepth: '7' } }, key: 'Report.MaxDepth', message: /between 0 and 6/ },
  { name: 'ExtractedRelations unknown', changes: { Report: { ExtractedRelations: 'EXTRACTED,UPLOADED' } }, key: 'Report.ExtractedRelations', message: /UPLOADED/ },
  { name: 'StaticIOCs unknown', changes: { Report: { StaticIOCs: 'ip,email' } }, key: 'Report.StaticIOCs', message: /email; allowed: ip, domain, uri/ },
  { name: 'Listen without host', changes: { API: { Listen: '8080' } }, key: 'API.Listen', message: /host:port/ },
  { name: 'Listen port out of range', changes: { API: { Listen: 'localhost:70000' } }, key: 'API.Listen', message: /host:port/ },
];

for (const c of INVALID) {
  test(`invalid: ${c.name}`, (t) => {
    const file = writeIni(t, withKeys(c.changes));
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    const p = problems.find((x) => x.key === c.key);
    assert.ok(p, `no problem for ${c.key}; got ${JSON.stringify(problems)}`);
    assert.match(p.message, c.message);
    assert.match(p.source, /^(file .*bridge\.ini:\d+|not set)$/);
  });
}

test('every problem is listed at once, each with its file line or variable', (t) => {
  const file = writeIni(t, withKeys({ Assemblyline: { Priority: '1', NotificationQueue: 'a/b' }, Bridge: { Concurrency: '0' } }));
  let error: unknown;
  try {
    loadConfig({ file, env: { MASSAL_REPORT_RELATEDTLP: '9' } });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  assert.ok(error instanceof BridgeError);
  assert.equal(error.code, 'CONFIG_INVALID');
  assert.equal(error.transient, false);
  assert.deepEqual(error.problems.map((p) => p.key).sort(), ['Assemblyline.NotificationQueue', 'Assemblyline.Priority', 'Bridge.Concurrency', 'Report.RelatedTLP']);
  const lineOf = (key: string) => withKeys({ Assemblyline: { Priority: '1', NotificationQueue: 'a/b' }, Bridge: { Concurrency: '0' } }).split('\n').findIndex((l) => l.startsWith(`${key} =`)) + 1;
  assert.equal(error.problems.find((p) => p.key === 'Assemblyline.Priority')!.source, `file ${file}:${lineOf('Priority')}`);
  assert.equal(error.problems.find((p) => p.key === 'Report.RelatedTLP')!.source, 'env MASSAL_REPORT_RELATEDTLP');
  assert.match(error.message, /4 problems/);
  assert.match(error.message, /Bridge\.Concurrency \(file .*\): must be between 1 and 256/);
});

test('syntax problems name the line and never echo a stray line (it may be a secret)', (t) => {
  const file = writeIni(t, `ServerURL = http://x/\n${MINIMAL}\n[Bridge]\nStateDir = a\nstatedir = b\nAlSecretPastedAlone\n[broken\n`);
  const problems = problemsOf(() => loadConfig({ file, env: {} }));
  const syntax = problems.filter((p) => p.key === '(syntax)');
  assert.deepEqual(syntax.map((p) => p.source.replace(file, 'F')), ['file F:1', 'file F:16', 'file F:17', 'file F:18']);
  assert.match(syntax[0].message, /before any \[section\]/);
  assert.match(syntax[1].message, /set twice \(first on line 15\)/);
  assert.doesNotMatch(JSON.stringify(problems), /AlSecretPastedAlone/);
  assert.deepEqual(parseIni('[a]\n[a]\n').problems, [{ line: 2, message: 'section [a] appears twice' }]);
});

test('two identity sections whose names differ only in case are named as such, not as one section twice', (t) => {
  const file = writeIni(
    t,
    `${MINIMAL}\n[AssemblylineAnalysis:Lab2]\nUUID = 0b7c3a1e-2f4d-4c3b-9a8e-1d2c3b4a5f60\n\n[AssemblylineAnalysis:lab2]\nUUID = 1c8d4b2f-3a5e-4d4c-8b9f-2e3d4c5b6a71\n`,
  );
  const problems = problemsOf(() => loadConfig({ file, env: {} }));
  const clash = problems.find((p) => p.key === '(syntax)' && /lab2/i.test(p.message));
  assert.ok(clash, JSON.stringify(problems));
  assert.doesNotMatch(clash.message, /appears twice/);
  assert.match(clash.message, /section \[AssemblylineAnalysis:lab2\] and \[AssemblylineAnalysis:Lab2\] \(line \d+\) differ only in case/);
  assert.match(parseIni('[Lab-2]\n[lab2]\n').problems[0].message, /differ only in case, spaces, dashes or underscores/);
});

test('a missing configuration file is a problem, not a crash', () => {
  const problems = problemsOf(() => loadConfig({ file: '/nonexistent/bridge.ini', env: {} }));
  assert.ok(problems.some((p) => p.source === 'file /nonexistent/bridge.ini' && /ENOENT/.test(p.message)));
});

test('secrets never appear in problems or in the error message', (t) => {
  const file = writeIni(t, withKeys({ Assemblyline: { APIKey: 'NoColonSecretValue' }, API: { Token: 'tok' } }));
  let error: unknown;
  try {
    loadConfig({ file, env: { MASSAL_API_LISTEN: 'nope' } });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const text = `${error.message}\n${JSON.stringify(error.problems)}\n${JSON.stringify(error)}`;
  assert.doesNotMatch(text, /NoColonSecretValue/);
  assert.match(text, /<key name>:<secret>/);
});

test('unknown keys, sections and variables are warnings that name the closest known key', (t) => {
  const file = writeIni(t, withKeys({ Assemblyline: { Priorty: '100' }, Bridge: { Priority: '3' }, Assemblyine: { URL: 'x' }, Bridge2: {} }));
  const { config, warnings } = loadConfig({ file, env: { MASSAL_ASSEMBLYLINE_PRIORTY: '5', MASSAL_SOMETHING_ELSE_ENTIRELY: 'x' } });
  assert.equal(config.assemblyline.priority, 0);
  const byKey = new Map(warnings.map((w) => [w.key, w]));
  assert.equal(byKey.get('Assemblyline.Priorty')!.suggestion, '[Assemblyline] Priority');
  assert.match(byKey.get('Assemblyline.Priorty')!.message, /unknown key 'Priorty' in \[Assemblyline\] is ignored; did you mean \[Assemblyline\] Priority\?/);
  assert.match(byKey.get('Assemblyline.Priorty')!.source, /bridge\.ini:\d+$/);
  assert.equal(byKey.get('Bridge.Priority')!.suggestion, '[Assemblyline] Priority');
  assert.equal(byKey.get('Assemblyine')!.suggestion, '[Assemblyline]');
  assert.equal(byKey.get('Bridge2')!.suggestion, '[Bridge]');
  assert.equal(byKey.get('MASSAL_ASSEMBLYLINE_PRIORTY')!.suggestion, 'MASSAL_ASSEMBLYLINE_PRIORITY');
  assert.equal(byKey.get('MASSAL_SOMETHING_ELSE_ENTIRELY')!.suggestion, undefined);
  assert.equal(warnings.length, 6);
});

test('an unknown command-line key is an error with a suggestion', (t) => {
  const file = writeIni(t, MINIMAL);
  const problems = problemsOf(() => loadConfig({ file, env: {}, cli: { 'Bridge.Concurency': '2' } }));
  assert.deepEqual(problems, [{ source: 'cli', key: 'Bridge.Concurency', message: 'unknown key; did you mean [Bridge] Concurrency?' }]);
});

test('questionable but valid values give warnings', (t) => {
  const file = writeIni(
    t,
    withKeys({
      AssemblylineAnalysis: { UUID: 'bridge-1', PollTime: '900' },
      Assemblyline: { VerifyTLS: 'off', MaxConcurrentCalls: '12', MaxFileSize: '1000' },
      Bridge: { MaxFileSize: '2000', ResultDeadline: '200000', Concurrency: '8', MaxInFlight: '4' },
    }),
  );
  const { warnings } = loadConfig({ file, env: {} });
  assert.deepEqual(warnings.map((w) => w.key).sort(), [
    'Assemblyline.MaxConcurrentCalls',
    'Assemblyline.VerifyTLS',
    'AssemblylineAnalysis.PollTime',
    'AssemblylineAnalysis.UUID',
    'Bridge.MaxFileSize',
    'Bridge.MaxInFlight',
    'Bridge.ResultDeadline',
  ]);
  assert.match(warnings.find((w) => w.key === 'AssemblylineAnalysis.UUID')!.message, /not shaped like a uuid/);
});

test('a client certificate combines with API-key auth; Metadata and BridgeMetadata load', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'tls'));
  const cert = join(dir, 'tls', 'client.pem');
  const key = join(dir, 'tls', 'client.key');
  writeFileSync(cert, 'CERT');
  writeFileSync(key, 'KEY');
  const file = writeIni(t, withKeys({ Assemblyline: { ClientCert: cert, ClientKey: key, CAFile: cert, Metadata: 'sensor = mass, case=42', BridgeMetadata: 'false' } }));
  const { config } = loadConfig({ file, env: {} });
  assert.equal(config.assemblyline.auth, 'apikey');
  assert.equal(config.assemblyline.clientKey, key);
  assert.deepEqual(config.assemblyline.metadata, { sensor: 'mass', case: '42' });
  assert.equal(config.assemblyline.bridgeMetadata, false);
  assert.equal(config.assemblyline.priority, 0, 'Priority is not sent unless configured');
});

test('register mode: missing secrets and keys named optional are allowed', (t) => {
  const file = writeIni(t, withKeys({ AssemblylineAnalysis: { UUID: null, 'mass api key': null }, Assemblyline: { APIKey: null } }));
  const strict = problemsOf(() => loadConfig({ file, env: {} }));
  assert.deepEqual(strict.map((p) => p.key).sort(), ['Assemblyline.APIKey', 'AssemblylineAnalysis.UUID', 'AssemblylineAnalysis.mass api key']);
  const { config } = loadConfig({ file, env: {}, allowMissingSecrets: true, optional: ['AssemblylineAnalysis.UUID'] });
  assert.equal(config.mass.uuid, '');
  assert.equal(config.mass.apiKey, '');
  assert.equal(config.global.apiRoot, 'http://mass.example.org/api/');
  // Only secrets are relaxed: a missing URL still fails.
  const file2 = writeIni(t, withKeys({ GLOBAL: { ServerURL: null } }));
  assert.deepEqual(problemsOf(() => loadConfig({ file: file2, env: {}, allowMissingSecrets: true })).map((p) => p.key), ['GLOBAL.ServerURL']);
});
