/** `npm run demo` as a user runs it, with --exit-when-done, output to a pipe: it must settle and print an honest, deterministic summary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { assertSummary, DEMO_ARGS, ESC, runDemo } from '../helpers/demo-run.js';
import { waitFor } from '../helpers/wait.js';

test('demo --exit-when-done, output to a pipe: plain progress lines, each once, and one deterministic summary', { timeout: 240_000 }, async (t) => {
  const { code, out } = await runDemo(process.execPath, DEMO_ARGS, t);
  assert.equal(code, 0, out);
  assert.ok(!out.includes('\r') && !out.includes(ESC), 'no terminal control characters in a pipe');
  const progress = out.split('\n').filter((l) => / reported /.test(l));
  assert.ok(progress.length >= 1);
  for (let i = 1; i < progress.length; i++) assert.notEqual(progress[i], progress[i - 1], 'a progress line is not repeated');
  assertSummary(out);
});

test('demo stopped with Ctrl-C (SIGINT) before it settles says it was stopped, not that it ran out of time', { timeout: 120_000 }, async (t) => {
  const child = spawn(process.execPath, DEMO_ARGS, { env: { ...process.env, NO_PRETTY_LOGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // The first progress line: the bridge runs and the first analyses are reported, most are still pending.
  await waitFor(() => / reported /.test(out), { timeoutMs: 60_000, what: 'the first progress line' });
  child.kill('SIGINT');
  const code = await exited;
  assert.notEqual(code, 0, `an interrupted demo does not exit 0\n${out}`);
  assert.match(out, /The demo was stopped before every analysis was reported/, out);
  assert.doesNotMatch(out, /did not settle in time/);
});
