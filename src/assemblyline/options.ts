/**
 * Turns the [Assemblyline] connection settings (paths, seconds) into client options (PEM contents, ms).
 * The only file I/O here is reading the configured PEM files once at start-up.
 */
import { readFile } from 'node:fs/promises';
import { BridgeError } from '../errors.js';
import type { BridgeConfig } from '../config/types.js';
import type { AssemblylineClientOptions } from './types.js';

async function readPem(path: string, setting: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new BridgeError('CONFIG_INVALID', `[Assemblyline] ${setting}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  // Never echo the file contents: a key file is a secret.
  if (!marker.test(text)) throw new BridgeError('CONFIG_INVALID', `[Assemblyline] ${setting}: ${path} is not a PEM file of the expected kind`);
  return text;
}

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
  if (cfg.caFile) options.ca = await readPem(cfg.caFile, 'CAFile', /-----BEGIN CERTIFICATE-----/);
  if (cfg.clientCert || cfg.clientKey) {
    if (!cfg.clientCert || !cfg.clientKey) throw new BridgeError('CONFIG_INVALID', '[Assemblyline] ClientCert and ClientKey must be set together');
    options.clientCert = await readPem(cfg.clientCert, 'ClientCert', /-----BEGIN CERTIFICATE-----/);
    options.clientKey = await readPem(cfg.clientKey, 'ClientKey', /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  }
  return options;
}
