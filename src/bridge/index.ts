/** Public surface of the pipeline. */
export { createBridge, REPORT_MARKER_KEY, type Bridge, type BridgeDeps, type JobUpdate, type RunOnceSummary } from './bridge.js';
export { runCommand, registerCommand, openBridgeRuntime, type RunCommandOptions, type RegisterCommandOptions, type BridgeRuntime } from './commands.js';
export type { BridgeControl, BridgeStatus, UpstreamHealth } from './control.js';
