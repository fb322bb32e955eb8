import { createHash } from 'node:crypto';

/** What MASS computes for an uploaded file (mass_flask_core FileSample._initialize). */
export interface FileFacts {
  file_size: number;
  md5sum: string;
  sha1sum: string;
  sha256sum: string;
  sha512sum: string;
  ssdeep_hash: string;
  shannon_entropy: number;
  magic_string: string;
  mime_type: string;
}

export function analyseFile(bytes: Buffer): FileFacts {
  const { magic, mime } = guessMagic(bytes);
  return {
    file_size: bytes.length,
    md5sum: digest('md5', bytes),
    sha1sum: digest('sha1', bytes),
    sha256sum: digest('sha256', bytes),
    sha512sum: digest('sha512', bytes),
    ssdeep_hash: ssdeep(bytes),
    shannon_entropy: shannonEntropy(bytes),
    magic_string: magic,
    mime_type: mime,
  };
}

function digest(algorithm: string, bytes: Buffer): string {
  return createHash(algorithm).update(bytes).digest('hex');
}

export function shannonEntropy(bytes: Buffer): number {
  if (bytes.length === 0) return 0;
  const counts = new Uint32Array(256);
  const order: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (counts[b]++ === 0) order.push(b);
  }
  // Same summation order and log as MASS (Counter order, math.log(p, 2)) so the float digits match
  let sum = 0;
  for (const b of order) {
    const p = counts[b] / bytes.length;
    sum += p * (Math.log(p) / Math.LN2);
  }
  return sum === 0 ? 0 : -sum;
}

// ---- ssdeep (context-triggered piecewise hash), written from the published algorithm ----
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ROLLING_WINDOW = 7;
const MIN_BLOCKSIZE = 3;
const HASH_PRIME = 0x01000193;
const HASH_INIT = 0x28021967;
const SPAMSUM_LENGTH = 64;

/**
 * Returns `blocksize:hash1:hash2` exactly as ssdeep/libfuzzy does. Block size b triggers where
 * (rolling + 1) % b == 0, and all block sizes are 3·2^k, so one pass records the highest level each
 * byte triggers; the block-size choice then needs only counts, and a second pass builds the digest.
 * (The textbook loop re-reads the file once per halving: 20 passes for a constant file.)
 */
export function ssdeep(bytes: Buffer): string {
  const n = bytes.length;
  const levels = new Int8Array(n).fill(-1);
  const counts = new Float64Array(40);
  const window = new Uint8Array(ROLLING_WINDOW);
  // All hash state is kept as int32 (the same bits as the uint32 of the algorithm): V8 keeps it in registers.
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let rolling = 0;
  let w = 0;
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    h2 = (h2 - h1 + ROLLING_WINDOW * c) | 0;
    h1 = (h1 + c - window[w]) | 0;
    window[w] = c;
    w = w === ROLLING_WINDOW - 1 ? 0 : w + 1;
    h3 = (h3 << 5) ^ c;
    rolling = (h1 + h2 + h3) | 0;
    // Block size 3·2^k triggers where (rolling + 1) % (3·2^k) == 0, rolling read as unsigned (u). As 2^16 ≡ 1
    // (mod 3), u % 3 == (high 16 bits + low 16 bits) % 3: small integers, no floating point.
    if (((rolling >>> 16) + (rolling & 0xffff) + 1) % 3 !== 0) continue;
    // 3 is odd, so the highest k is the number of trailing zero bits of u + 1 (32 when u + 1 == 2^32).
    const q = (rolling + 1) | 0;
    const k = q === 0 ? 32 : 31 - Math.clz32(q & -q);
    levels[i] = k;
    counts[k]++;
  }
  // counts[k] → number of bytes triggering block size 3·2^k (or any larger one)
  for (let k = counts.length - 2; k >= 0; k--) counts[k] += counts[k + 1];
  let level = 0;
  while (MIN_BLOCKSIZE * 2 ** level * SPAMSUM_LENGTH < n) level++;
  const tail = rolling !== 0 ? 1 : 0;
  while (level > 0 && Math.min(counts[level], SPAMSUM_LENGTH - 1) + tail < SPAMSUM_LENGTH / 2) level--;

  let hashA = HASH_INIT;
  let hashB = HASH_INIT;
  let first = '';
  let second = '';
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    hashA = Math.imul(hashA, HASH_PRIME) ^ c;
    hashB = Math.imul(hashB, HASH_PRIME) ^ c;
    const trigger = levels[i];
    if (trigger >= level) {
      // hash % 64 of the unsigned value: its low 6 bits
      if (first.length < SPAMSUM_LENGTH - 1) {
        first += B64[hashA & 63];
        hashA = HASH_INIT;
      }
      if (trigger >= level + 1 && second.length < SPAMSUM_LENGTH / 2 - 1) {
        second += B64[hashB & 63];
        hashB = HASH_INIT;
      }
    }
  }
  if (tail) {
    first += B64[hashA & 63];
    second += B64[hashB & 63];
  }
  return `${MIN_BLOCKSIZE * 2 ** level}:${eliminateSequences(first)}:${eliminateSequences(second)}`;
}

/** libfuzzy (since 2.10) collapses runs of more than three identical characters. */
function eliminateSequences(s: string): string {
  return s.replace(/(.)\1{3,}/g, '$1$1$1');
}

// ---- magic (a tiny stand-in for libmagic covering the types MASS tags) ----
export function guessMagic(bytes: Buffer): { magic: string; mime: string } {
  if (bytes.length === 0) return { magic: 'empty', mime: 'inode/x-empty' };
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') {
    const version = /^\d\.\d/.exec(bytes.subarray(5, 8).toString('latin1'));
    return { magic: `PDF document${version ? `, version ${version[0]}` : ''}`, mime: 'application/pdf' };
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) return { magic: peMagic(bytes), mime: 'application/vnd.microsoft.portable-executable' };
  // libmagic wants a plausible "version needed" field, so "PK\3\4 garbage" stays `data` (rec: e-failure-report broken.docx)
  if (bytes.length >= 30 && bytes.readUInt32LE(0) === 0x04034b50 && bytes.readUInt16LE(4) < 100) {
    const v = bytes.readUInt16LE(4);
    return { magic: `Zip archive data, at least v${Math.floor(v / 10)}.${v % 10} to extract`, mime: 'application/zip' };
  }
  if (bytes.length >= 4 && (bytes.readUInt32LE(0) === 0xa1b2c3d4 || bytes.readUInt32BE(0) === 0xa1b2c3d4)) {
    return { magic: 'pcap capture file, microsecond ts (little-endian) - version 2.4', mime: 'application/vnd.tcpdump.pcap' };
  }
  if (isText(bytes)) {
    const text = bytes.toString('utf8');
    const ascii = bytes.every((b) => b < 0x80);
    const kind = ascii ? 'ASCII text' : 'UTF-8 Unicode text';
    const terminators = /\n/.test(text) ? '' : ', with no line terminators';
    if (/^\s*(<!doctype html|<html)/i.test(text)) return { magic: `HTML document, ${kind}${terminators}`, mime: 'text/html' };
    return { magic: `${kind}${terminators}`, mime: 'text/plain' };
  }
  return { magic: 'data', mime: 'application/octet-stream' };
}

function isText(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) return false;
    if (b === 0x7f) return false;
  }
  // valid UTF-8 survives a round trip
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

const MACHINES: Record<number, string> = { 0x14c: 'Intel 80386', 0x8664: 'x86-64', 0x1c0: 'ARM', 0x1c4: 'ARMv7 Thumb', 0xaa64: 'Aarch64' };

function peMagic(bytes: Buffer): string {
  const fallback = 'PE32 executable (GUI) Intel 80386, for MS Windows';
  if (bytes.length < 0x40) return fallback;
  const peOffset = bytes.readUInt32LE(0x3c);
  if (peOffset + 24 + 70 > bytes.length || bytes.readUInt32LE(peOffset) !== 0x00004550) return fallback;
  const machine = bytes.readUInt16LE(peOffset + 4);
  const characteristics = bytes.readUInt16LE(peOffset + 22);
  const optionalMagic = bytes.readUInt16LE(peOffset + 24);
  const subsystem = bytes.readUInt16LE(peOffset + 24 + 68);
  const kind = optionalMagic === 0x20b ? 'PE32+' : 'PE32';
  const dll = characteristics & 0x2000 ? ' (DLL)' : '';
  const sub = subsystem === 3 ? ' (console)' : subsystem === 2 ? ' (GUI)' : subsystem === 1 ? ' (native)' : '';
  return `${kind} executable${dll}${sub} ${MACHINES[machine] ?? `Unknown PE signature 0x${machine.toString(16)}`}, for MS Windows`;
}
