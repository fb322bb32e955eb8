/**
 * Turns the [Assemblyline] connection settings (paths, seconds) into client options (PEM contents, ms).
 * The only file I/O here is reading the configured PEM files once at start-up.
 */
import { BridgeError } from '../errors.js';
import { readPemFile } from '../config/pem.js';
import type { BridgeConfig } from '../config/types.js';
import type { AssemblylineClientOptions } from './types.js';

export async function assemblylineClientOptionsFromConfig(
  cfg: BridgeConfig['assemblyline'],
  extra: { onInsecure?: () => void } = {},
): Promise<AssemblylineClientOptions> {
  const options: AssemblylineClientOptions = {
    url: cfg.url,
    user: cfg.user,
    auth: cfg.auth,
    verifyTls: cfg.verifyTls,
    timeoutMs: cfg.timeout * 1000,
    maxConcurrentCalls: cfg.maxConcurrentCalls,
    onInsecure: extra.onInsecure,
  };
  if (cfg.auth === 'apikey') options.apiKey = cfg.apiKey;
  if (cfg.auth === 'password') options.password = cfg.password;
  if (cfg.caFile) options.ca = await readPemFile(cfg.caFile, '[Assemblyline] CAFile', 'certificate');
  if (cfg.clientCert || cfg.clientKey) {
    if (!cfg.clientCert || !cfg.clientKey) throw new BridgeError('CONFIG_INVALID', '[Assemblyline] ClientCert and ClientKey must be set together');
    options.clientCert = await readPemFile(cfg.clientCert, '[Assemblyline] ClientCert', 'certificate');
    options.clientKey = await readPemFile(cfg.clientKey, '[Assemblyline] ClientKey', 'private key');
  }
  return options;
}
