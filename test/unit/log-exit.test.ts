/** The logger never keeps the process from exiting, also when the reader of stdout is gone (`| head -1`). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

const LOG_MODULE = new URL('../../src/log.ts', import.meta.url).href;

// Logs one line, waits until the reader has closed the pipe, logs a burst and exits at once:
// pino's default stream left a write in flight and retried EPIPE for ever in its exit flush.
const SCRIPT = `
const { createLogger } = await import(${JSON.stringify(LOG_MODULE)});
for (const pretty of [false, true]) {
  const logger = createLogger({ level: 'info', pretty });
  logger.info('first line');
}
process.stdin.once('data', () => {
  const logger = createLogger({ level: 'info', pretty: process.env.PRETTY === '1' });
  for (let i = 0; i < 50; i++) logger.info({ i }, 'shutting down');
  process.exit(0);
});
`;

for (const pretty of ['0', '1']) {
  test(`a logger (${pretty === '1' ? 'pretty' : 'JSON'}) whose stdout reader is gone lets the process exit`, { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      env: { ...process.env, PRETTY: pretty },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      child.stdout.destroy();
      // Let the pipe's read end close before the burst.
      await new Promise((r) => setTimeout(r, 300));
      child.stdin.write('go\n');
      const exit = await new Promise<number | null | 'still running'>((resolve) => {
        const timer = setTimeout(() => resolve('still running'), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      assert.equal(exit, 0, 'the process exited by itself with code 0');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
}
