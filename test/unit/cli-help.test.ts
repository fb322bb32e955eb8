import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

test('--help lists every command', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', cli, '--help']);
  for (const cmd of ['run', 'demo', 'simulate', 'register', 'check-config', 'doctor']) {
    assert.match(stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  }
});

test('an unknown command exits 2 with the help', async () => {
  await assert.rejects(run(process.execPath, ['--import', 'tsx', cli, 'frobnicate']), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 2);
    assert.match(String(err.stderr), /unknown command 'frobnicate'/);
    return true;
  });
});
