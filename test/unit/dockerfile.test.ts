import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.js';

const run = promisify(execFile);
const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Array<{ op: string; args: string }> {
  const joined = text.replace(/\\\r?\n/g, ' ');
  return joined
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: m[1].toUpperCase(), args: m[2].replace(/\s+/g, ' ').trim() };
    });
}

const dockerfile = instructions(readFileSync(root('Dockerfile'), 'utf8'));
const ops = (op: string) => dockerfile.filter((i) => i.op === op);
const indexOf = (pred: (i: { op: string; args: string }) => boolean) => dockerfile.findIndex(pred);

/** The Node major version the image is built on and runs on. */
const imageMajor = Number(/^node:(\d+)-slim/.exec(ops('FROM')[0].args)?.[1]);
const nodeMajor = Number(process.versions.node.split('.')[0]);

test('two stages, both FROM node:24-slim (the current LTS); the build stage has the toolchain for better-sqlite3', () => {
  const froms = ops('FROM');
  assert.equal(froms.length, 2);
  for (const f of froms) assert.match(f.args, /^node:24-slim(\s|$)/);
  const lastFrom = dockerfile.lastIndexOf(froms[1]);
  const toolchain = indexOf((i) => i.op === 'RUN' && /apt-get install/.test(i.args));
  assert.ok(toolchain > 0 && toolchain < lastFrom, 'toolchain is installed in the build stage only');
  for (const pkg of ['python3', 'make', 'g++']) assert.ok(dockerfile[toolchain].args.split(' ').includes(pkg), pkg);
});

test('build stage runs npm ci, npm run build, npm prune --omit=dev in that order; runtime copies the result', () => {
  const steps = ops('RUN').map((r) => r.args).filter((a) => a.startsWith('npm '));
  assert.deepEqual(steps, ['npm ci', 'npm run build', 'npm prune --omit=dev']);
  const lastFrom = dockerfile.lastIndexOf(ops('FROM')[1]);
  const runtimeCopies = dockerfile.slice(lastFrom).filter((i) => i.op === 'COPY').map((i) => i.args);
  assert.ok(runtimeCopies.includes('--from=build /app/node_modules ./node_modules'));
  assert.ok(runtimeCopies.includes('--from=build /app/dist ./dist'));
  assert.ok(!dockerfile.slice(lastFrom).some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args)), 'no install in the runtime stage');
});

test('runs as a non-root user, with the ledger on a volume', () => {
  const users = ops('USER');
  assert.equal(users.length, 1);
  assert.doesNotMatch(users[0].args, /^(root|0)(:|$)/);
  const lastFrom = dockerfile.lastIndexOf(ops('FROM')[1]);
  assert.ok(dockerfile.indexOf(users[0]) > lastFrom, 'USER applies to the runtime stage');
  const volume = ops('VOLUME');
  assert.equal(volume.length, 1);
  assert.deepEqual(JSON.parse(volume[0].args), ['/var/lib/mass-al-bridge']);
  assert.ok(dockerfile.some((i) => i.op === 'RUN' && /chown node:node \/var\/lib\/mass-al-bridge/.test(i.args) && i.args.includes('mkdir')));
});

test('HEALTHCHECK asks /ready with node; ENTRYPOINT is exec-form node; CMD runs the mounted config', () => {
  const hc = ops('HEALTHCHECK');
  assert.equal(hc.length, 1);
  const cmd = /CMD (\[.*\])$/.exec(hc[0].args);
  assert.ok(cmd, 'exec-form healthcheck command');
  const argv = JSON.parse(cmd[1]) as string[];
  assert.deepEqual(argv.slice(0, 2), ['node', '-e']);
  assert.match(argv[2], /\/ready/);
  assert.doesNotMatch(hc[0].args, /curl|wget/);

  const entry = ops('ENTRYPOINT');
  assert.equal(entry.length, 1);
  assert.deepEqual(JSON.parse(entry[0].args), ['node', 'dist/cli.js'], 'exec form: node is PID 1 and gets SIGTERM');
  const command = JSON.parse(ops('CMD')[0].args) as string[];
  assert.deepEqual(command, ['run', '--config', '/etc/mass-al-bridge/bridge.ini']);
  assert.ok(ops('COPY').some((c) => c.args === 'config/docker.ini /etc/mass-al-bridge/bridge.ini'), 'the image has a default config at the CMD path');
});

test('the image default config keeps the ledger on the volume and listens for the published port', () => {
  const { config } = loadConfig({
    file: root('config/docker.ini'),
    env: {
      MASSAL_GLOBAL_SERVERURL: 'http://mass:5000/',
      MASSAL_ASSEMBLYLINEANALYSIS_UUID: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
      MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY: 'x',
      MASSAL_ASSEMBLYLINE_URL: 'http://al:5001',
      MASSAL_ASSEMBLYLINE_USER: 'u',
      MASSAL_ASSEMBLYLINE_APIKEY: 'k:s',
    },
  });
  assert.equal(config.bridge.stateDir, JSON.parse(ops('VOLUME')[0].args)[0]);
  assert.equal(config.api.port, Number(ops('EXPOSE')[0].args));
  assert.equal(config.api.host, '0.0.0.0');
});

test('the image runs a Node version that package.json engines and the README name as supported', () => {
  const engines = (JSON.parse(readFileSync(root('package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  assert.equal(engines, '^20.19.0 || ^24.0.0');
  assert.ok(engines.split('||').some((range) => range.trim().startsWith(`^${imageMajor}.`)), `node:${imageMajor} is within ${engines}`);
  const readme = readFileSync(root('README.md'), 'utf8');
  assert.match(readme, /Node(\.js)? 24 LTS/);
  assert.match(readme, /Node(\.js)? 20\.19/);
});

test('.dockerignore is an allow-list that keeps secrets, ledgers and node_modules out of the context', () => {
  const lines = readFileSync(root('.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.equal(lines[0], '*', 'everything is excluded first');
  const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  const copied = ops('COPY').filter((c) => !c.args.startsWith('--from')).flatMap((c) => c.args.split(' ').slice(0, -1));
  for (const source of copied) assert.ok(allowed.some((a) => source === a || source.startsWith(`${a}/`)), `${source} is in the build context`);
  for (const never of ['node_modules', 'dist', '.git', 'secrets']) assert.ok(!allowed.includes(never), never);
  assert.ok(lines.includes('**/secrets'));
  assert.ok(lines.includes('**/*.sqlite'));
});

test('scripts/docker-steps.sh is valid bash and repeats the Dockerfile build steps in order', async () => {
  const script = root('scripts/docker-steps.sh');
  await run('bash', ['-n', script]);
  const text = readFileSync(script, 'utf8');
  const block = text.slice(text.indexOf("# --- the Dockerfile's RUN steps"), text.indexOf("# --- end of the Dockerfile's RUN steps"));
  const steps = block.split('\n').slice(1).map((l) => l.trim()).filter(Boolean);
  assert.deepEqual(steps, ops('RUN').map((r) => r.args).filter((a) => a.startsWith('npm ')));
  const copyLine = text.split('\n').find((l) => l.startsWith('cp ') && l.includes('package.json'))!;
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) assert.ok(copyLine.includes(`/${f}"`), f);
});

test('scripts/docker-steps.sh refuses a Node other than the image\'s before it builds anything', async (t: TestContext) => {
  const dir = mkdtempSync(join(tmpdir(), 'massal-docker-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A `node` first on PATH that reports another major version.
  writeFileSync(join(dir, 'node'), `#!/bin/sh\necho v${imageMajor - 4}.19.0\n`);
  chmodSync(join(dir, 'node'), 0o755);
  const work = join(dir, 'work');
  const refused = await run('bash', [root('scripts/docker-steps.sh'), work], { env: { ...process.env, PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` } }).then(
    () => null,
    (err: { code?: number; stderr?: string }) => err,
  );
  assert.ok(refused, 'docker-steps.sh must fail on the wrong Node');
  assert.equal(refused.code, 3);
  assert.match(refused.stderr ?? '', new RegExp(`image builds on Node ${imageMajor} \\(Dockerfile FROM node:${imageMajor}-slim\\), but node on PATH is v${imageMajor - 4}\\.19\\.0`));
  assert.ok(!existsSync(work), 'nothing was built');
});

// Slow (npm ci from the registry, native build, a few minutes): runs in CI (CI=true) or with RUN_DOCKER_STEPS=1,
// on the image's Node version only (.ci/run runs it in its Node 24 run).
if ((process.env.RUN_DOCKER_STEPS === '1' || process.env.CI === 'true') && nodeMajor === imageMajor) {
  test('docker build steps succeed outside Docker (CI, or RUN_DOCKER_STEPS=1)', { timeout: 20 * 60_000 }, async (t: TestContext) => {
    const dir = mkdtempSync(join(tmpdir(), 'massal-docker-steps-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const { stdout } = await run('bash', [root('scripts/docker-steps.sh'), dir], { maxBuffer: 64 * 1024 * 1024 });
    assert.match(stdout, /docker-steps: OK \(mass-al-bridge \d+\.\d+\.\d+/);
    assert.ok(existsSync(join(dir, 'dist/cli.js')));
    assert.ok(!existsSync(join(dir, 'node_modules/typescript')));
  });
}
