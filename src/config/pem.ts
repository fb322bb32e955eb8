/**
 * Reads a PEM file named by a configuration key (CAFile, ClientCert, ClientKey) once at start-up.
 * Shared by the MASS and the Assemblyline connection settings.
 */
import { readFile } from 'node:fs/promises';
import { BridgeError } from '../errors.js';

/** What a PEM file must contain: certificates, or a private key. */
export type PemKind = 'certificate' | 'private key';

const MARKERS: Record<PemKind, RegExp> = {
  certificate: /-----BEGIN CERTIFICATE-----/,
  'private key': /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
};

/**
 * The text of the PEM file at `path`. `setting` names the key in messages, e.g. "[AssemblylineAnalysis] CAFile".
 * Throws BridgeError CONFIG_INVALID when the file cannot be read or holds no PEM block of `kind`;
 * the message never echoes the file contents (a key file is a secret).
 */
export async function readPemFile(path: string, setting: string, kind: PemKind): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new BridgeError('CONFIG_INVALID', `${setting}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!MARKERS[kind].test(text)) throw new BridgeError('CONFIG_INVALID', `${setting}: ${path} is not a PEM file of the expected kind (${kind})`);
  return text;
}
