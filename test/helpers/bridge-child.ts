/**
 * A bridge process for the reliability tests: the test runs the simulators and passes the whole
 * configuration (simulator URLs, keys, a ledger dir) as JSON in BRIDGE_CHILD_CONFIG.
 * SIGTERM/SIGINT → graceful stop (exit 0); SIGKILL is the crash the tests inflict.
 * With BRIDGE_CHILD_HEAP_MS=N and node's --expose-gc, it prints `heap-after-gc <bytes>` on stdout every N ms:
 * the heap still in use after a full collection, what a leak makes grow (RSS also follows V8's heap sizing).
 */
import { runCommand } from '../../src/bridge/commands.js';
import type { BridgeConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';

const raw = process.env.BRIDGE_CHILD_CONFIG;
if (!raw) {
  process.stderr.write('BRIDGE_CHILD_CONFIG is not set\n');
  process.exit(2);
}
const config = JSON.parse(raw) as BridgeConfig;
const logger = createLogger({ level: process.env.BRIDGE_CHILD_LOG ?? 'warn', destination: process.stderr as never });
const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => controller.abort());

const heapEveryMs = Number(process.env.BRIDGE_CHILD_HEAP_MS ?? 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (heapEveryMs > 0 && gc) {
  setInterval(() => {
    gc();
    process.stdout.write(`heap-after-gc ${process.memoryUsage().heapUsed}\n`);
  }, heapEveryMs).unref();
}

runCommand({ config, logger, signal: controller.signal, api: false }).then(
  (code) => {
    process.stdout.write(`bridge-child exit ${code}\n`);
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bridge-child failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
