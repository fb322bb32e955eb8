/**
 * A bridge process for the reliability tests: the test runs the simulators and passes the whole
 * configuration (simulator URLs, keys, a ledger dir) as JSON in BRIDGE_CHILD_CONFIG.
 * SIGTERM/SIGINT → graceful stop (exit 0); SIGKILL is the crash the tests inflict.
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
