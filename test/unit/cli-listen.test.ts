/**
 * A port another program holds: `run` and `simulate` say which address is in use and which option chooses another,
 * in one line without a stack, and exit 1. Ports that cannot be right (not a number, above 65535, the same for both
 * simulators) are usage errors naming the option: exit 2 before anything listens.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** A port on 127.0.0.1 held by another server until the test ends. */
async function busyPort(t: TestContext): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

/** Runs the CLI (no MASSAL_* variable of the calling environment, JSON logs); ends it after 60 s at most. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MASSAL_'))), NO_PRETTY_LOGS: '1' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cliPath, ...args], { env, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

function assertOneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, no stack: ${stderr}`);
  return lines[0];
}

test('run with [API] Listen on a port in use names the address and how to choose another', { timeout: 90_000 }, async (t) => {
  const port = await busyPort(t);
  const dir = mkdtempSync(join(tmpdir(), 'cli-listen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ini = join(dir, 'bridge.ini');
  // Nothing answers at these upstream addresses: the status API listens before the bridge makes any request.
  writeFileSync(
    ini,
    [
      '[GLOBAL]',
      'ServerURL = http://127.0.0.1:9/',
      '[AssemblylineAnalysis]',
      'UUID = f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
      'mass api key = test-instance-key',
      '[Assemblyline]',
      'URL = http://127.0.0.1:9',
      'User = mass-bridge',
      'APIKey = bridge:test-secret',
      '[Bridge]',
      `StateDir = ${join(dir, 'state')}`,
      'LogLevel = error',
      '[API]',
      `Listen = 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const r = await cli('run', '--config', ini);
  assert.equal(r.code, 1, r.stderr);
  const line = assertOneLine(r.stderr);
  assert.match(line, new RegExp(`^mass-al-bridge: the status API cannot listen on 127\\.0\\.0\\.1:${port}: another program uses that address`));
  assert.match(line, /\[API\] Listen/);
  assert.match(line, /MASSAL_API_LISTEN/);
  assert.match(line, /--set API\.Listen=/);
});

test('simulate on a MASS or Assemblyline port in use names the address and the flag that chooses another', { timeout: 90_000 }, async (t) => {
  const port = await busyPort(t);
  const mass = await cli('simulate', '--mass-port', String(port), '--al-port', '0');
  assert.equal(mass.code, 1, mass.stderr);
  assert.match(assertOneLine(mass.stderr), new RegExp(`^mass-al-bridge: the MASS simulator cannot listen on 127\\.0\\.0\\.1:${port}: .*--mass-port N`));
  const al = await cli('simulate', '--mass-port', '0', '--al-port', String(port));
  assert.equal(al.code, 1, al.stderr);
  assert.match(assertOneLine(al.stderr), new RegExp(`^mass-al-bridge: the Assemblyline simulator cannot listen on 127\\.0\\.0\\.1:${port}: .*--al-port N`));
});

test('simulate with a port that is not a port number names the option and exits 2', { timeout: 90_000 }, async () => {
  for (const [option, value] of [['--mass-port', '70000'], ['--mass-port', 'abc'], ['--al-port', '-1'], ['--al-port', '1.5'], ['--al-port', '']] as const) {
    const args = option === '--mass-port' ? [`--mass-port=${value}`, '--al-port', '0'] : ['--mass-port', '0', `--al-port=${value}`];
    const r = await cli('simulate', ...args);
    assert.equal(r.code, 2, `${option} ${value}: ${r.stderr}`);
    const first = r.stderr.split('\n')[0];
    assert.equal(first, `mass-al-bridge simulate: ${option} must be a port number from 0 to 65535 (0: any free port), not '${value}'`);
    assert.doesNotMatch(r.stderr, /RangeError|ERR_SOCKET_BAD_PORT|\n\s+at /, 'no raw Node error or stack');
  }
});

test('simulate with the same port for MASS and Assemblyline is a usage error naming both options', { timeout: 60_000 }, async () => {
  const r = await cli('simulate', '--mass-port', '5002', '--al-port', '5002');
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.split('\n')[0], 'mass-al-bridge simulate: --mass-port and --al-port are both 5002: the two simulators need a port each (0: any free port)');
  assert.doesNotMatch(r.stderr, /another program/);
});

test('simulate on an address that is not one of this machine says so and names --host', { timeout: 60_000 }, async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it, so the listen fails at once.
  const r = await cli('simulate', '--host', '192.0.2.1', '--mass-port', '0', '--al-port', '0');
  assert.equal(r.code, 1, r.stderr);
  assert.match(assertOneLine(r.stderr), /^mass-al-bridge: the MASS simulator cannot listen on 192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine; choose another address with --host ADDRESS$/);
});
