/**
 * CaRT ("Compressed and RC4 Transport"), the neutered-file format Assemblyline downloads default to
 * (docs/protocol/ASSEMBLYLINE.md §8). Little-endian layout:
 *   mandatory header (38 B) | optional header | data | optional footer | mandatory footer (28 B)
 * Every encrypted part uses a fresh RC4 keystream from the same 16-byte key.
 * RC4 is implemented here because OpenSSL 3 ships it only in the legacy provider.
 */
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { createInflate, deflateSync, inflateSync } from 'node:zlib';
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

/**
 * A stateful RC4 keystream from `key` (1..256 bytes): each call XORs its input with the next bytes of the
 * same keystream, so a part can be decrypted chunk by chunk as it arrives.
 */
export function rc4Stream(key: Uint8Array): (input: Uint8Array) => Buffer {
  if (key.length === 0 || key.length > 256) throw new RangeError('RC4 key must be 1..256 bytes');
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i] + key[i % key.length]) & 0xff;
    const t = s[i];
    s[i] = s[j];
    s[j] = t;
  }
  let i = 0;
  let j = 0;
  return (input) => {
    const out = Buffer.allocUnsafe(input.length);
    for (let n = 0; n < input.length; n++) {
      i = (i + 1) & 0xff;
      j = (j + s[i]) & 0xff;
      const t = s[i];
      s[i] = s[j];
      s[j] = t;
      out[n] = input[n] ^ s[(s[i] + s[j]) & 0xff];
    }
    return out;
  };
}

/** RC4 keystream applied to `input`; a new cipher state per call. */
export function rc4(key: Uint8Array, input: Uint8Array): Buffer {
  return rc4Stream(key)(input);
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

/** Largest optional header or optional footer the stream decoder accepts (AL writes a few hundred bytes). */
export const CART_MAX_OPTIONAL_PART = 64 * 1024;

export interface CartStreamInfo {
  /** Optional header JSON, once the header has been read. */
  header?: Record<string, unknown>;
  /** Optional footer JSON, once the whole input has been read. */
  footer?: Record<string, unknown>;
}

/**
 * Decodes a CaRT file as it streams in: the content comes out chunk by chunk, memory stays bounded
 * (a few chunks plus at most CART_MAX_OPTIONAL_PART bytes held back for the footer) whatever the size.
 * The optional header and footer each must not exceed CART_MAX_OPTIONAL_PART bytes. The data part
 * is RC4-decrypted and inflated as it arrives; the last bytes are held back until the input ends,
 * then the mandatory footer says where the data stopped. Before the output ends, the content's
 * length and sha256 are checked against the optional footer. Errors: BridgeError CART_INVALID (layout,
 * key, inflate, footer mismatch), SAMPLE_TOO_LARGE (more than `maxOutputBytes` of content); an error of
 * `source` is passed on. Destroying the returned stream destroys `source`. `info` receives the header
 * and footer as they are read.
 */
export function decodeCartStream(source: Readable, opts: DecodeCartOptions = {}, info: CartStreamInfo = {}): Readable {
  const held: Buffer[] = [];
  let heldLength = 0;
  let position = 0; // input bytes consumed so far
  let dataStart = -1;
  let released = 0; // absolute offset up to which input went to the data cipher
  let key: Buffer | undefined;
  let decrypt: ((b: Uint8Array) => Buffer) | undefined;

  const take = (n: number): Buffer => {
    const all = held.length === 1 ? held[0] : Buffer.concat(held, heldLength);
    held.length = 0;
    const out = all.subarray(0, n);
    if (all.length > n) held.push(all.subarray(n));
    heldLength = all.length - n;
    return out;
  };
  const parseHeader = (): void => {
    if (dataStart >= 0 || heldLength < MANDATORY_HEADER_LENGTH) return;
    const head = Buffer.concat(held, heldLength).subarray(0, MANDATORY_HEADER_LENGTH);
    if (head.toString('latin1', 0, 4) !== HEADER_MAGIC) throw invalid('missing CART header magic');
    const version = head.readUInt16LE(4);
    if (version !== VERSION) throw invalid(`unsupported version ${version}`);
    let k: Buffer = Buffer.from(head.subarray(14, 30));
    if (k.every((b) => b === 0)) {
      if (!opts.key) throw invalid('encrypted with a private key that was not supplied');
      k = opts.key;
    }
    const optHeaderLength = readU64(head, 30, 'optional header length');
    if (optHeaderLength > CART_MAX_OPTIONAL_PART) throw invalid(`optional header of ${optHeaderLength} bytes (at most ${CART_MAX_OPTIONAL_PART} are read)`);
    key = k;
    dataStart = MANDATORY_HEADER_LENGTH + optHeaderLength;
  };

  const framer = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        held.push(chunk);
        heldLength += chunk.length;
        position += chunk.length;
        parseHeader();
        if (dataStart < 0 || position < dataStart) return done();
        if (decrypt === undefined) {
          const start = take(dataStart);
          info.header = parseJsonPart(key!, start.subarray(MANDATORY_HEADER_LENGTH), 'optional header');
          decrypt = rc4Stream(key!);
          released = dataStart;
        }
        // Keep the last bytes back: the footer's size is known only at the end.
        const excess = heldLength - (CART_MAX_OPTIONAL_PART + MANDATORY_FOOTER_LENGTH);
        if (excess > 0) {
          this.push(decrypt(take(excess)));
          released += excess;
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (decrypt === undefined || heldLength < MANDATORY_FOOTER_LENGTH) throw invalid(`too short (${position} bytes)`);
        const tail = take(heldLength);
        const footerStart = position - MANDATORY_FOOTER_LENGTH;
        const mandatory = tail.subarray(tail.length - MANDATORY_FOOTER_LENGTH);
        if (mandatory.toString('latin1', 0, 4) !== FOOTER_MAGIC) throw invalid('missing TRAC footer magic');
        const optFooterOffset = readU64(mandatory, 12, 'optional footer offset');
        const optFooterLength = readU64(mandatory, 20, 'optional footer length');
        if (optFooterOffset < dataStart || optFooterOffset + optFooterLength !== footerStart) {
          throw invalid('optional footer offset/length do not match the file layout');
        }
        if (optFooterOffset < released) throw invalid(`optional footer of ${optFooterLength} bytes (at most ${CART_MAX_OPTIONAL_PART} are read)`);
        const rel = (abs: number) => abs - released;
        info.footer = parseJsonPart(key!, tail.subarray(rel(optFooterOffset), rel(footerStart)), 'optional footer');
        const last = tail.subarray(0, rel(optFooterOffset));
        if (last.length > 0) this.push(decrypt(last));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });

  const inflated = pipeline(source, framer, createInflate(), () => undefined);
  async function* checked(): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let length = 0;
    try {
      for await (const chunk of inflated as AsyncIterable<Buffer>) {
        length += chunk.length;
        if (opts.maxOutputBytes !== undefined && length > opts.maxOutputBytes) {
          throw new BridgeError('SAMPLE_TOO_LARGE', `CaRT content is larger than ${opts.maxOutputBytes} bytes`, { upstream: 'assemblyline' });
        }
        hash.update(chunk);
        yield chunk;
      }
    } catch (err) {
      // zlib's errors (Z_DATA_ERROR, Z_BUF_ERROR for a cut stream, ...) mean a broken file, not a transport problem.
      const code = (err as { code?: unknown } | null)?.code;
      throw typeof code === 'string' && code.startsWith('Z_') ? invalid('data does not inflate', err) : err;
    }
    const footer = info.footer ?? {};
    if (footer.length !== undefined && String(footer.length) !== String(length)) {
      throw invalid(`length ${length} does not match the footer (${String(footer.length)})`);
    }
    const expected = footer.sha256;
    if (typeof expected === 'string' && hash.digest('hex') !== expected.toLowerCase()) throw invalid('sha256 mismatch');
  }
  return Readable.from(checked(), { objectMode: false });
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
