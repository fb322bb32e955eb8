/**
 * `npm run demo` on an 80-column terminal (a pseudo-terminal from util-linux `script`; in test/tools/, run by
 * `npm run test:e2e`, as it needs more than Node and npm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireScript, scriptArgs, shQuote } from '../helpers/pty.js';
import { assertSummary, CSI, DEMO_ARGS, runDemo } from '../helpers/demo-run.js';

test('demo --exit-when-done on an 80-column terminal: no line wider than the terminal, one progress line redrawn in place', { timeout: 240_000 }, async (t) => {
  requireScript();
  const command = `stty cols 80 rows 24; exec ${[process.execPath, ...DEMO_ARGS].map(shQuote).join(' ')}`;
  const { code, out: raw } = await runDemo('script', scriptArgs(command), t);
  assert.equal(code, 0, raw);
  const out = raw.replace(/\r\n/g, '\n');
  // Every redraw of the progress line starts with \r and clears the rest of the line; none wraps.
  const physical = out.split('\n');
  for (const line of physical) {
    for (const segment of line.split('\r')) {
      const visible = segment.replace(CSI, '');
      assert.ok(visible.length <= 80, `a line fits 80 columns: '${visible}' has ${visible.length}`);
    }
  }
  assert.equal(physical.filter((l) => / reported /.test(l)).length, 1, 'the progress bar occupies one line, however often it is redrawn');
  const plain = physical.map((l) => l.split('\r').at(-1)!.replace(CSI, '')).join('\n');
  assertSummary(plain);
});
