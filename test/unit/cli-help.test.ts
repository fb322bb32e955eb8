import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);
const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

test('--help lists every command', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', cliPath, '--help']);
  for (const cmd of ['run', 'demo', 'simulate', 'register', 'check-config', 'doctor']) {
    assert.match(stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  }
});

test('an unknown command exits 2 with the help', async () => {
  await assert.rejects(run(process.execPath, ['--import', 'tsx', cliPath, 'frobnicate']), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 2);
    assert.match(String(err.stderr), /unknown command 'frobnicate'/);
    return true;
  });
});

/** Runs the CLI without any MASSAL_* variable of the calling environment. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MASSAL_')));
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', cliPath, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

for (const cmd of ['run', 'demo', 'simulate', 'register', 'check-config', 'doctor']) {
  test(`${cmd} --help prints its own usage and exits 0`, async () => {
    const r = await cli(cmd, '--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: mass-al-bridge ${cmd}\\b`));
    assert.equal(r.stderr, '');
  });
}

test('run without --config says so first, instead of a list of missing keys', async () => {
  const r = await cli('run');
  assert.equal(r.code, 2);
  assert.match(r.stderr.split('\n')[0], /no configuration: give --config FILE/);
  assert.doesNotMatch(r.stderr, /is required/);
  assert.match(r.stderr, /Usage: mass-al-bridge run --config FILE/);
});

test('a missing configuration file is one clear error, the same for run and check-config', async () => {
  const missing = join(tmpdir(), `massal-no-such-${process.pid}.ini`);
  const runResult = await cli('run', '--config', missing);
  const checkResult = await cli('check-config', '--config', missing);
  for (const r of [runResult, checkResult]) {
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `mass-al-bridge: invalid configuration (1 problem):\n  - file ${missing}: cannot read the configuration file: no such file (ENOENT)\n`);
  }
});

test('run and check-config list the problems of a configuration in the same format', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'massal-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.ini');
  writeFileSync(file, ['[GLOBAL]', 'ServerURL = http://127.0.0.1:1/', 'SleepTime = 0', '[AssemblylineAnalysis]', 'UUID = not-a-uuid', ''].join('\n'));
  const runResult = await cli('run', '--config', file);
  const checkResult = await cli('check-config', '--config', file);
  assert.equal(runResult.code, 1);
  assert.equal(checkResult.code, 1);
  assert.match(runResult.stderr, /^(warning: .+\n)*mass-al-bridge: invalid configuration \(\d+ problems\):\n( {2}- .+\n)+$/);
  assert.match(runResult.stderr, new RegExp(`  - GLOBAL\\.SleepTime \\(file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3\\): must be between`));
  assert.equal(runResult.stderr, checkResult.stderr);
});
