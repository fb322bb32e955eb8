/** `npm run demo` as a user runs it, with --exit-when-done, output to a pipe: it must settle and print an honest, deterministic summary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSummary, DEMO_ARGS, ESC, runDemo } from '../helpers/demo-run.js';

test('demo --exit-when-done, output to a pipe: plain progress lines, each once, and one deterministic summary', { timeout: 240_000 }, async (t) => {
  const { code, out } = await runDemo(process.execPath, DEMO_ARGS, t);
  assert.equal(code, 0, out);
  assert.ok(!out.includes('\r') && !out.includes(ESC), 'no terminal control characters in a pipe');
  const progress = out.split('\n').filter((l) => / reported /.test(l));
  assert.ok(progress.length >= 1);
  for (let i = 1; i < progress.length; i++) assert.notEqual(progress[i], progress[i - 1], 'a progress line is not repeated');
  assertSummary(out);
});
