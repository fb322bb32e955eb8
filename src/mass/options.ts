/**
 * Turns the MASS connection settings ([GLOBAL] ServerURL, APIEndpoint, ServerAliases and
 * [AssemblylineAnalysis] key, Timeout, VerifyTLS, CAFile) into MASS client options (PEM contents, ms).
 * The only file I/O here is reading the configured CA file once at start-up.
 */
import { readPemFile } from '../config/pem.js';
import type { BridgeConfig } from '../config/types.js';
import type { MassClientOptions } from './types.js';

/**
 * Client options for the MASS of `config`. `apiKey` replaces the instance key (the register command
 * uses an admin key); `onInsecure` is called once by the client when VerifyTLS is off for an https:// MASS.
 * Throws BridgeError CONFIG_INVALID when CAFile cannot be read or is not a PEM certificate file.
 */
export async function massClientOptionsFromConfig(
  config: Pick<BridgeConfig, 'global' | 'mass'>,
  extra: { apiKey?: string; onInsecure?: () => void } = {},
): Promise<MassClientOptions> {
  const options: MassClientOptions = {
    apiRoot: config.global.apiRoot,
    apiKey: extra.apiKey ?? config.mass.apiKey,
    timeoutMs: config.mass.timeout * 1000,
    verifyTls: config.mass.verifyTls,
    aliases: config.global.serverAliases,
    onInsecure: extra.onInsecure,
  };
  if (config.mass.caFile) options.ca = await readPemFile(config.mass.caFile, '[AssemblylineAnalysis] CAFile', 'certificate');
  return options;
}
