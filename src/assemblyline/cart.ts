/**
 * CaRT ("Compressed and RC4 Transport"), the neutered-file format Assemblyline downloads default to
 * (docs/protocol/ASSEMBLYLINE.md §8). Little-endian layout:
 *   mandatory header (38 B) | optional header | data | optional footer | mandatory footer (28 B)
 * Every encrypted part uses a fresh RC4 keystream from the same 16-byte key.
 * RC4 is implemented here because OpenSSL 3 ships it only in the legacy provider.
 */
import { createHash } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { BridgeError } from '../errors.js';

const HEADER_MAGIC = 'CART';
const FOOTER_MAGIC = 'TRAC';
const MANDATORY_HEADER_LENGTH = 38;
const MANDATORY_FOOTER_LENGTH = 28;
const VERSION = 1;

/** The public default key (digits of pi), used by AL unless a private key is configured. */
export const CART_DEFAULT_KEY: Buffer = Buffer.from([3, 1, 4, 1, 5, 9, 2, 6, 3, 1, 4, 1, 5, 9, 2, 6]);

export interface DecodedCart {
  data: Buffer;
  /** Optional header JSON (e.g. `name`, `classification`, submission metadata). */
  header: Record<string, unknown>;
  /** Optional footer JSON (`length`, `md5`, `sha1`, `sha256`). */
  footer: Record<string, unknown>;
}

export interface DecodeCartOptions {
  /** Needed only when the file was written with a private key (header key is all zeros). */
  key?: Buffer;
  /** Refuse to inflate more than this many bytes (decompression-bomb guard). */
  maxOutputBytes?: number;
}

/** RC4 keystream applied to `input`; a new cipher state per call. */
export function rc4(key: Uint8Array, input: Uint8Array): Buffer {
  if (key.length === 0 || key.length > 256) throw new RangeError('RC4 key must be 1..256 bytes');
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i] + key[i % key.length]) & 0xff;
    const t = s[i];
    s[i] = s[j];
    s[j] = t;
  }
  const out = Buffer.allocUnsafe(input.length);
  for (let n = 0, i = 0, j = 0; n < input.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]) & 0xff;
    const t = s[i];
    s[i] = s[j];
    s[j] = t;
    out[n] = input[n] ^ s[(s[i] + s[j]) & 0xff];
  }
  return out;
}

function invalid(message: string, cause?: unknown): BridgeError {
  return new BridgeError('CART_INVALID', `invalid CaRT file: ${message}`, { cause, upstream: 'assemblyline', transient: false });
}

function readU64(buf: Buffer, offset: number, what: string): number {
  const v = buf.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what} out of range`);
  return Number(v);
}

function parseJsonPart(key: Buffer, part: Buffer, what: string): Record<string, unknown> {
  if (part.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(rc4(key, part).toString('utf8'));
  } catch (err) {
    throw invalid(`${what} is not JSON (wrong key or corrupted)`, err);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export function isCart(buf: Uint8Array): boolean {
  return buf.length >= 4 && Buffer.from(buf.buffer, buf.byteOffset, 4).toString('latin1') === HEADER_MAGIC;
}

/** Decodes a whole CaRT file; throws BridgeError CART_INVALID on any structural or integrity problem. */
export function decodeCart(input: Uint8Array, opts: DecodeCartOptions = {}): DecodedCart {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  if (buf.length < MANDATORY_HEADER_LENGTH + MANDATORY_FOOTER_LENGTH) throw invalid(`too short (${buf.length} bytes)`);
  if (buf.toString('latin1', 0, 4) !== HEADER_MAGIC) throw invalid('missing CART header magic');
  const version = buf.readUInt16LE(4);
  if (version !== VERSION) throw invalid(`unsupported version ${version}`);
  let key: Buffer = buf.subarray(14, 30);
  if (key.every((b) => b === 0)) {
    // A zeroed key field means "private key, not stored in the file".
    if (!opts.key) throw invalid('encrypted with a private key that was not supplied');
    key = opts.key;
  }
  const optHeaderLength = readU64(buf, 30, 'optional header length');

  const footerStart = buf.length - MANDATORY_FOOTER_LENGTH;
  if (buf.toString('latin1', footerStart, footerStart + 4) !== FOOTER_MAGIC) throw invalid('missing TRAC footer magic');
  const optFooterOffset = readU64(buf, footerStart + 12, 'optional footer offset');
  const optFooterLength = readU64(buf, footerStart + 20, 'optional footer length');

  const dataStart = MANDATORY_HEADER_LENGTH + optHeaderLength;
  if (dataStart > footerStart) throw invalid('optional header runs past the footer');
  if (optFooterOffset < dataStart || optFooterOffset + optFooterLength !== footerStart) {
    throw invalid('optional footer offset/length do not match the file layout');
  }

  const header = parseJsonPart(key, buf.subarray(MANDATORY_HEADER_LENGTH, dataStart), 'optional header');
  const footer = parseJsonPart(key, buf.subarray(optFooterOffset, footerStart), 'optional footer');

  let data: Buffer;
  try {
    data = inflateSync(rc4(key, buf.subarray(dataStart, optFooterOffset)), opts.maxOutputBytes === undefined ? {} : { maxOutputLength: opts.maxOutputBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new BridgeError('SAMPLE_TOO_LARGE', `CaRT content is larger than ${opts.maxOutputBytes} bytes`, { cause: err, upstream: 'assemblyline' });
    }
    throw invalid('data does not inflate', err);
  }

  if (footer.length !== undefined && String(footer.length) !== String(data.length)) {
    throw invalid(`length ${data.length} does not match the footer (${String(footer.length)})`);
  }
  for (const algo of ['sha256', 'sha1', 'md5'] as const) {
    const expected = footer[algo];
    if (typeof expected !== 'string') continue;
    const actual = createHash(algo).update(data).digest('hex');
    if (actual !== expected.toLowerCase()) throw invalid(`${algo} mismatch`);
  }
  return { data, header, footer };
}

export interface EncodeCartOptions {
  key?: Buffer;
  /** Write a zeroed key field (the reader must know the key). */
  privateKey?: boolean;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function sortedJson(value: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/** Encodes `data` as CaRT (AL-compatible layout; used by tests for round trips). */
export function encodeCart(data: Uint8Array, header: Record<string, unknown> = {}, opts: EncodeCartOptions = {}): Buffer {
  const key = opts.key ?? CART_DEFAULT_KEY;
  if (key.length !== 16) throw new RangeError('CaRT key must be 16 bytes');
  const optHeader = Object.keys(header).length === 0 ? Buffer.alloc(0) : rc4(key, Buffer.from(sortedJson(header), 'utf8'));
  const body = rc4(key, deflateSync(data, { level: 1 }));
  const footerJson = {
    length: String(data.length),
    md5: createHash('md5').update(data).digest('hex'),
    sha1: createHash('sha1').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  const optFooter = rc4(key, Buffer.from(sortedJson(footerJson), 'utf8'));

  const mandatoryHeader = Buffer.concat([
    Buffer.from(HEADER_MAGIC, 'latin1'),
    Buffer.from([VERSION & 0xff, VERSION >> 8]),
    u64(0),
    opts.privateKey ? Buffer.alloc(16) : key,
    u64(optHeader.length),
  ]);
  const optFooterOffset = mandatoryHeader.length + optHeader.length + body.length;
  const mandatoryFooter = Buffer.concat([Buffer.from(FOOTER_MAGIC, 'latin1'), u64(0), u64(optFooterOffset), u64(optFooter.length)]);
  return Buffer.concat([mandatoryHeader, optHeader, body, optFooter, mandatoryFooter]);
}
