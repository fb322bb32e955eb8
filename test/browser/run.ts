/**
 * `npm run test:e2e`: finds Chromium (test/browser/chromium.ts), then runs every test/browser/*.test.ts
 * with node's test runner and CHROMIUM_PATH set to what it found. Without a Chromium it fails
 * (exit 1) and says what to install; it never passes without having run the browser tests.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findChromium } from './chromium.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const found = findChromium({ env: process.env });
if (found.path === null) {
  console.error(`npm run test:e2e: ${found.message}`);
  process.exit(1);
}
const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `${dir}${f}`);
if (files.length === 0) {
  console.error(`npm run test:e2e: no browser tests (*.test.ts) in ${dir}`);
  process.exit(1);
}
console.log(`npm run test:e2e: Chromium ${found.path} (${found.source}); ${files.length} test file(s)`);
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, CHROMIUM_PATH: found.path },
});
process.exit(run.status ?? 1);
