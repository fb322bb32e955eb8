/** Configuration: loading (INI + env + *_FILE + CLI), validation, masked printing, docs. */
export type { BridgeConfig } from './types.js';
export { loadConfig, joinApiRoot, formatProblem, ConfigError } from './load.js';
export type { LoadConfigOptions, LoadedConfig, ConfigProblem, ConfigWarning, CliOverrides } from './load.js';
export { describeConfig, renderConfigTable, renderConfigurationDoc, renderExampleIni, MASK } from './describe.js';
export { checkConfigCommand, parseConfigArgs, formatConfigFailure, missingConfigSource, CHECK_CONFIG_USAGE } from './check-config.js';
export type { CommandResult, ParsedConfigArgs } from './check-config.js';
export { CONFIG_KEYS, SECRET_KEYS, SECTIONS, envName, keyId, notificationQueueProblem } from './schema.js';
export type { ConfigKeySpec, SectionName } from './schema.js';
