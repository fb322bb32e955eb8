import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CONFIG_KEYS, envName, loadConfig, SECRET_KEYS } from '../../src/config/index.js';

const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));

interface Service {
  build?: unknown;
  image?: string;
  command?: string[];
  profiles?: string[];
  restart?: string;
  stop_grace_period?: string;
  environment?: Record<string, string> | string[];
  secrets?: Array<string | { source: string; target?: string }>;
  volumes?: Array<string | { type?: string; source?: string; target: string; read_only?: boolean }>;
  ports?: Array<string | { host_ip?: string; target: number; published?: string | number }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number };
  depends_on?: Record<string, { condition: string }>;
}

interface Compose {
  services: Record<string, Service>;
  secrets?: Record<string, Record<string, unknown>>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8')) as Compose;
const { bridge, simulators } = compose.services;
const demo = compose.services['bridge-demo'];
/** The services running this repository's image; prometheus and grafana (demo monitoring) use upstream images. */
const OWN = ['bridge', 'bridge-demo', 'simulators'];

function environment(s: Service): Record<string, string> {
  if (!s.environment) return {};
  if (!Array.isArray(s.environment)) return s.environment;
  return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Compose duration ("45s", "1m30s", "1h") in seconds. */
function durationSeconds(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$/.exec(text);
  assert.ok(m && text !== '', `not a compose duration: ${text}`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

/** A long random-looking token or a name:secret pair: what a pasted API key looks like. */
function looksLikeKey(value: string): boolean {
  if (/\s/.test(value) || value.startsWith('/') || value.includes('://') || value.startsWith('${')) return false;
  return value.length >= 20 && /^[A-Za-z0-9+/=._:-]+$/.test(value) && /[A-Z]/.test(value) && /[a-z]/.test(value) && /\d/.test(value);
}

function strings(node: unknown, path = ''): Array<{ path: string; value: string }> {
  if (typeof node === 'string') return [{ path, value: node }];
  if (Array.isArray(node)) return node.flatMap((v, i) => strings(v, `${path}[${i}]`));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => [...strings(k, `${path}.<key>`), ...strings(v, `${path}.${k}`)]);
  return [];
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'massal-compose-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('compose defines the bridge and a demo profile with simulators and a bridge using their config', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), ['bridge', 'bridge-demo', 'grafana', 'prometheus', 'simulators']);
  assert.equal(bridge.profiles, undefined, 'the production bridge starts without a profile');
  assert.deepEqual(simulators.profiles, ['demo']);
  assert.deepEqual(demo.profiles, ['demo']);
  for (const s of OWN.map((n) => compose.services[n])) assert.ok(s.build, 'every service of the bridge builds the image from this repository');

  assert.equal(simulators.command![0], 'simulate');
  const written = simulators.command![simulators.command!.indexOf('--write-config') + 1];
  assert.deepEqual(demo.command, ['run', '--config', written]);
  const sharedTarget = written.slice(0, written.lastIndexOf('/'));
  const mountOf = (s: Service) => s.volumes!.map(String).find((v) => v.split(':')[1] === sharedTarget);
  assert.ok(mountOf(simulators) && mountOf(simulators) === mountOf(demo), 'simulators and bridge-demo share the volume holding the config');
  assert.equal(demo.depends_on?.simulators.condition, 'service_healthy');
  const env = environment(demo);
  assert.match(env.MASSAL_GLOBAL_SERVERURL, /^http:\/\/simulators:\d+\/$/);
  assert.match(env.MASSAL_ASSEMBLYLINE_URL, /^http:\/\/simulators:\d+$/);
});

test('every service has a node-based healthcheck; the bridges check /ready', () => {
  for (const [name, s] of Object.entries(compose.services).filter(([n]) => OWN.includes(n))) {
    assert.ok(s.healthcheck, `${name} has a healthcheck`);
    assert.deepEqual(s.healthcheck.test.slice(0, 3), ['CMD', 'node', '-e'], `${name} checks with node (no curl in slim)`);
  }
  for (const s of [bridge, demo]) assert.match(s.healthcheck!.test[3], /http:\/\/127\.0\.0\.1:8080\/ready/);
});

test('restart policy and stop_grace_period longer than GracePeriod', (t) => {
  assert.equal(bridge.restart, 'unless-stopped');
  assert.equal(demo.restart, 'unless-stopped');
  const dir = tempDir(t);
  const env = composeEnv(dir);
  const grace = loadConfig({ file: root('config/docker.ini'), env }).config.bridge.gracePeriod;
  assert.ok(durationSeconds(bridge.stop_grace_period!) > grace, `stop_grace_period ${bridge.stop_grace_period} must exceed GracePeriod ${grace}`);
  const defaultGrace = Number(CONFIG_KEYS.find((s) => s.key === 'GracePeriod')!.default);
  assert.ok(durationSeconds(demo.stop_grace_period!) > defaultGrace);
  assert.equal(durationSeconds('1m30s'), 90);
});

test('published ports are bound to 127.0.0.1 only', () => {
  const all = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, p })));
  assert.ok(all.length >= 2);
  for (const { name, p } of all) {
    if (typeof p === 'string') assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p}`);
    else assert.equal(p.host_ip, '127.0.0.1', `${name} publishes ${JSON.stringify(p)}`);
  }
  assert.deepEqual(bridge.ports, ['127.0.0.1:8080:8080']);
});

test('secrets are compose secrets read through *_FILE variables, never inline', () => {
  const env = environment(bridge);
  const secretNames = (bridge.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
  for (const id of ['AssemblylineAnalysis.mass api key', 'Assemblyline.APIKey']) {
    const spec = CONFIG_KEYS.find((s) => `${s.section}.${s.key}` === id)!;
    const name = envName(spec.section, spec.key);
    const target = env[`${name}_FILE`];
    assert.ok(target, `${name}_FILE is set`);
    const m = /^\/run\/secrets\/(.+)$/.exec(target);
    assert.ok(m && secretNames.includes(m[1]), `${name}_FILE points at a secret the service mounts`);
    assert.deepEqual(Object.keys(compose.secrets![m[1]]), ['file'], 'the secret comes from a file, not from the compose environment');
  }
  // No service sets a secret variable directly.
  for (const [svc, s] of Object.entries(compose.services)) {
    for (const id of SECRET_KEYS) {
      const [section, key] = [id.slice(0, id.indexOf('.')), id.slice(id.indexOf('.') + 1)];
      assert.equal(environment(s)[envName(section, key)], undefined, `${svc} sets ${envName(section, key)} inline`);
    }
  }
  // Nothing anywhere in the file looks like a key; the detector itself does catch keys.
  assert.ok(looksLikeKey('kx9q:Vb3Hq7Zw1Jp5Tz4Rk8'));
  assert.ok(looksLikeKey('IjZiYjAzODg2ZGQzNzYxMmUwNzQ1MDc1NzYi.kPamXyz0'));
  const suspicious = strings(compose).filter((s) => looksLikeKey(s.value));
  assert.deepEqual(suspicious, []);
});

test('the ledger is on a named volume and the configuration is mounted read-only', () => {
  const volumes = (bridge.volumes ?? []).map(String);
  assert.ok(volumes.includes('ledger:/var/lib/mass-al-bridge'));
  assert.ok(compose.volumes && 'ledger' in compose.volumes);
  const configMount = volumes.find((v) => v.includes(':/etc/mass-al-bridge/bridge.ini'));
  assert.ok(configMount, 'config mounted');
  assert.match(configMount, /:\/etc\/mass-al-bridge\/bridge\.ini:ro$/);
  assert.match(configMount, /config\/docker\.ini/);
});

/** What the bridge container sees: compose's environment, its secret files, plus the values an operator fills in. */
function composeEnv(dir: string): Record<string, string> {
  const env: Record<string, string> = { ...environment(bridge) };
  for (const [name, value] of Object.entries(env)) {
    if (!name.endsWith('_FILE')) continue;
    const file = join(dir, value.replace(/^\/run\/secrets\//, ''));
    writeFileSync(file, name.includes('APIKEY') ? 'bridge:Vb3Hq7Zw1Jp5\n' : 'Qj7vXk2Lw9.zRt4Yp8Nm\n');
    env[name] = file;
  }
  return {
    ...env,
    MASSAL_GLOBAL_SERVERURL: 'http://mass.example.org/',
    MASSAL_ASSEMBLYLINEANALYSIS_UUID: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
    MASSAL_ASSEMBLYLINE_URL: 'https://assemblyline.example.org',
    MASSAL_ASSEMBLYLINE_USER: 'mass-bridge',
  };
}

test('config/docker.ini with the compose secrets loads and matches the volume and the published port', (t) => {
  const { config, warnings, sources } = loadConfig({ file: root('config/docker.ini'), env: composeEnv(tempDir(t)) });
  assert.deepEqual(warnings, []);
  assert.equal(config.bridge.stateDir, '/var/lib/mass-al-bridge');
  assert.equal(config.api.host, '0.0.0.0', 'reachable through the published port');
  assert.equal(config.api.port, Number(String(bridge.ports![0]).split(':').at(-1)));
  assert.match(sources['AssemblylineAnalysis.mass api key'], /^env MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY_FILE /);
  assert.match(sources['Assemblyline.APIKey'], /^env MASSAL_ASSEMBLYLINE_APIKEY_FILE /);
});

test('docker-compose.yml validates against the Compose schema and lint rules (dclint)', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const repo = new URL('../../', import.meta.url).pathname;
  const dclint = join(repo, 'node_modules', '.bin', 'dclint');
  const { stdout, stderr } = await promisify(execFile)(dclint, ['docker-compose.yml'], { cwd: repo }).catch((err: { stdout?: string; stderr?: string; code?: number }) => {
    assert.fail(`dclint rejected docker-compose.yml (exit ${err.code}):\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  });
  assert.doesNotMatch(`${stdout}${stderr}`, /error/i);
});

test('demo monitoring: Prometheus scrapes bridge-demo with the alert rules, Grafana gets the dashboard; pinned images, read-only mounts', () => {
  const { prometheus, grafana } = compose.services;
  for (const [name, s] of [['prometheus', prometheus], ['grafana', grafana]] as const) {
    assert.deepEqual(s.profiles, ['demo'], `${name} is part of the demo profile only`);
    assert.match(s.image ?? '', /^[a-z/]+:v?\d+\.\d+\.\d+$/, `${name} image is pinned to a release`);
    assert.equal(s.build, undefined);
    assert.deepEqual(s.healthcheck?.test.slice(0, 2), ['CMD', 'wget'], `${name} has a healthcheck (busybox wget in its image)`);
    for (const v of (s.volumes ?? []).map(String)) {
      const [source, , mode] = v.split(':');
      assert.equal(mode, 'ro', `${name} mounts ${v} read-only`);
      assert.ok(existsSync(root(source.replace(/^\.\//, ''))), `${name} mounts ${source}, which exists in the repository`);
    }
  }
  assert.ok(prometheus.volumes!.map(String).includes('./deploy/prometheus:/etc/prometheus:ro'));
  const prom = parse(readFileSync(root('deploy/prometheus/prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    scrape_configs: Array<{ metrics_path: string; static_configs: Array<{ targets: string[] }> }>;
  };
  assert.deepEqual(prom.rule_files, ['alerts.yml']);
  const listen = environment(demo).MASSAL_API_LISTEN.split(':')[1];
  assert.deepEqual(prom.scrape_configs[0].static_configs[0].targets, [`bridge-demo:${listen}`]);
  assert.equal(prom.scrape_configs[0].metrics_path, '/metrics');
  const datasources = parse(readFileSync(root('deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: Array<{ url: string; type: string }> };
  assert.deepEqual(datasources.datasources.map((d) => [d.type, d.url]), [['prometheus', 'http://prometheus:9090']]);
  const providers = parse(readFileSync(root('deploy/grafana/provisioning/dashboards/mass-al-bridge.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
  const dashboardMount = grafana.volumes!.map(String).find((v) => v.startsWith('./deploy/grafana/mass-al-bridge.json:'))!;
  assert.ok(dashboardMount.split(':')[1].startsWith(`${providers.providers[0].options.path}/`), 'the dashboard is mounted where the provider reads');
});
