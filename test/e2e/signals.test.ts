/**
 * `mass-al-bridge run` always ends on a signal, also when whatever read its stdout is gone:
 * `run … | head -1` then Ctrl-C, SIGTERM or SIGHUP with a closed stdout: the bridge exits within
 * [Bridge] GracePeriod. The pseudo-terminal cases are in test/tools/signals-terminal.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CLI, GRACE_SECONDS, exitWithin, firstLine, setUp, startBridge } from '../helpers/bridge-process.js';

test('run | head -1, then Ctrl-C: the bridge exits within GracePeriod', { timeout: 60_000 }, async (t) => {
  const ini = await setUp(t);
  const child = startBridge(t, ini);
  const line = await firstLine(child);
  assert.match(line, /^\{.*"level"/, 'the first line is a JSON log line');
  // head exits after one line: the read end of the pipe closes while the bridge keeps logging.
  child.stdout.destroy();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(child.exitCode, null, 'a closed stdout alone does not stop the bridge');
  child.kill('SIGINT');
  const exit = await exitWithin(child, GRACE_SECONDS * 1000);
  assert.notEqual(exit, 'still running', 'the bridge ended after SIGINT');
});

// SIGHUP is what a closing terminal sends.
for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  test(`${sig} with a closed stdout: the bridge exits within GracePeriod`, { timeout: 60_000 }, async (t) => {
    const ini = await setUp(t);
    const child = startBridge(t, ini);
    await firstLine(child);
    child.stdout.destroy();
    child.kill(sig);
    const exit = await exitWithin(child, GRACE_SECONDS * 1000);
    assert.ok(exit !== 'still running', `the bridge ended after ${sig}`);
    assert.equal(exit.signal, null, 'ended by its own shutdown, not killed by the signal');
  });
}

test('a fault signal stays fatal: SIGSEGV ends the bridge at once instead of being taken for a shutdown request', { timeout: 60_000 }, async (t) => {
  const ini = await setUp(t);
  // A core file, if the system writes one, lands beside the test's configuration (tsx by its resolved path then).
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, 'run', '--config', ini], {
    env: { ...process.env, NO_PRETTY_LOGS: '1' },
    cwd: dirname(ini),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume();
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await firstLine(child);
  child.stdout.resume();
  child.kill('SIGSEGV');
  const exit = await exitWithin(child, GRACE_SECONDS * 1000);
  assert.ok(exit !== 'still running', 'the bridge ended');
  assert.equal(exit.signal, 'SIGSEGV', 'ended by the fault signal itself (a JS listener would make a real fault loop for ever)');
});

test('SIGTERM while a notification-queue read hangs: the bridge exits within GracePeriod (the read is aborted when the grace is over)', { timeout: 60_000 }, async (t) => {
  const ini = await setUp(t);
  const alUrl = /^URL = (\S+)$/m.exec(await readFile(ini, 'utf8'))?.[1];
  assert.ok(alUrl, 'the configuration names the Assemblyline simulator');
  // Every queue read now takes 40 s, far longer than GracePeriod.
  const fault = await fetch(`${alUrl}/_sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path_prefix: '/api/v4/ingest/get_message_list/', delay_ms: 40_000, times: 20 }),
  });
  assert.equal(fault.status, 201);
  const child = startBridge(t, ini);
  await firstLine(child);
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise((r) => setTimeout(r, 1500)); // a queue read is in flight by now (QueuePollTime 0.1 s)
  child.kill('SIGTERM');
  const exit = await exitWithin(child, (GRACE_SECONDS + 2) * 1000);
  assert.notEqual(exit, 'still running', 'the bridge ended within GracePeriod (plus a little for the exit itself)');
  // The fault fired where intended: the hanging read was still running when the grace period ended.
  assert.match(log, /grace period over: aborting running steps/);
});
