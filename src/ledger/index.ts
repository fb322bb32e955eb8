export { openLedger, MIGRATIONS } from './sqlite.js';
export * from './types.js';
