/** Regenerates docs/configuration.md from the key table: `node --import tsx src/config/write-docs.ts`. */
import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from './describe.js';

const target = new URL('../../docs/configuration.md', import.meta.url);
writeFileSync(target, renderConfigurationDoc());
process.stdout.write(`wrote ${target.pathname}\n`);
