/**
 * `mass-al-bridge run` on a terminal (a pseudo-terminal from util-linux `script`; in test/tools/, run by
 * `npm run test:e2e`): the terminal closes, or `run | tee log` then Ctrl-C: the bridge exits within
 * [Bridge] GracePeriod.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { waitFor } from '../helpers/wait.js';
import { requireScript, scriptArgs, shQuote } from '../helpers/pty.js';
import { CLI, GRACE_SECONDS, setUp, alive } from '../helpers/bridge-process.js';

test('the terminal closes (pseudo-terminal hung up): the bridge exits within GracePeriod, not orphaned', { timeout: 60_000 }, async (t) => {
  requireScript();
  const ini = await setUp(t);
  // `script` gives the bridge a terminal; killing `script` closes it, as closing a terminal window does.
  const command = `echo PID=$$; exec ${[process.execPath, '--import', 'tsx', CLI, 'run', '--config', ini].map(shQuote).join(' ')}`;
  const terminal = spawn('script', scriptArgs(command), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  terminal.stdout.on('data', (d: Buffer) => (out += d.toString()));
  terminal.stderr.resume();
  let pid = 0;
  t.after(() => {
    if (terminal.exitCode === null) terminal.kill('SIGKILL');
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitFor(() => /PID=(\d+)/.test(out) && /bridge running/.test(out), { timeoutMs: 30_000, what: 'the bridge to run on the terminal' });
  pid = Number(/PID=(\d+)/.exec(out)![1]);
  terminal.kill('SIGKILL');
  const ended = await waitFor(() => !alive(pid), { timeoutMs: GRACE_SECONDS * 1000, intervalMs: 100, what: 'the bridge to end after its terminal closed' }).catch(() => false);
  assert.ok(ended, `the bridge (pid ${pid}) ended after its terminal closed`);
});

test('`run | tee log` on a terminal, then Ctrl-C: the bridge and the pipeline end within GracePeriod', { timeout: 60_000 }, async (t) => {
  requireScript();
  const ini = await setUp(t);
  const bridge = `echo BRIDGE=$$; exec ${[process.execPath, '--import', 'tsx', CLI, 'run', '--config', ini].map(shQuote).join(' ')}`;
  const command = `bash -c ${shQuote(bridge)} | tee ${shQuote(`${ini}.log`)}`;
  const terminal = spawn('script', scriptArgs(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  terminal.stdout.on('data', (d: Buffer) => (out += d.toString()));
  terminal.stderr.resume();
  let pid = 0;
  t.after(() => {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    if (terminal.exitCode === null) terminal.kill('SIGKILL');
  });
  await waitFor(() => /BRIDGE=(\d+)/.test(out) && /bridge running/.test(out), { timeoutMs: 30_000, what: 'the bridge to run, its log going through tee' });
  pid = Number(/BRIDGE=(\d+)/.exec(out)![1]);
  // Ctrl-C: the terminal sends SIGINT to the whole pipeline, tee included.
  terminal.stdin.write('\x03');
  const ended = await waitFor(() => !alive(pid), { timeoutMs: GRACE_SECONDS * 1000, intervalMs: 100, what: 'the bridge to end after Ctrl-C' }).catch(() => false);
  assert.ok(ended, `the bridge (pid ${pid}) ended after Ctrl-C`);
});
