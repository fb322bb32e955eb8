import { deflateSync, inflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { sortedJson } from './util.js';

/** Default CaRT key: the first digits of pi, twice (ASSEMBLYLINE.md §8). */
export const DEFAULT_CART_KEY = Buffer.from([3, 1, 4, 1, 5, 9, 2, 6, 3, 1, 4, 1, 5, 9, 2, 6]);
const HEADER_LEN = 38;
const FOOTER_LEN = 28;

/** RC4 written out: OpenSSL 3 no longer offers it through node:crypto by default. */
export function rc4(key: Buffer, data: Buffer): Buffer {
  const s = new Uint8Array(256);
  for (let i = 0; i < 256; i++) s[i] = i;
  let j = 0;
  for (let i = 0; i < 256; i++) {
    j = (j + s[i] + key[i % key.length]) & 0xff;
    const t = s[i]; s[i] = s[j]; s[j] = t;
  }
  const out = Buffer.alloc(data.length);
  let i = 0;
  j = 0;
  for (let n = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + s[i]) & 0xff;
    const t = s[i]; s[i] = s[j]; s[j] = t;
    out[n] = data[n] ^ s[(s[i] + s[j]) & 0xff];
  }
  return out;
}

/** Compact JSON with sorted keys, as in the real AL download (fixture al_test.txt.cart). */
function pyJson(obj: Record<string, unknown>): string {
  return sortedJson(obj);
}

export function encodeCart(content: Buffer, optionalHeader: Record<string, unknown> = {}, key: Buffer = DEFAULT_CART_KEY): Buffer {
  const optHeader = rc4(key, Buffer.from(pyJson(optionalHeader), 'utf8'));
  const header = Buffer.alloc(HEADER_LEN);
  header.write('CART', 0, 'ascii');
  header.writeUInt16LE(1, 4);
  header.writeBigUInt64LE(0n, 6);
  key.copy(header, 14);
  header.writeBigUInt64LE(BigInt(optHeader.length), 30);
  // AL writes the data as a level-1 zlib stream (with header), RC4 restarted for this part.
  const data = rc4(key, deflateSync(content, { level: 1 }));
  const footerJson = pyJson({
    length: String(content.length),
    md5: createHash('md5').update(content).digest('hex'),
    sha1: createHash('sha1').update(content).digest('hex'),
    sha256: createHash('sha256').update(content).digest('hex'),
  });
  const optFooter = rc4(key, Buffer.from(footerJson, 'utf8'));
  const footerPos = HEADER_LEN + optHeader.length + data.length;
  const footer = Buffer.alloc(FOOTER_LEN);
  footer.write('TRAC', 0, 'ascii');
  footer.writeBigUInt64LE(0n, 4);
  footer.writeBigUInt64LE(BigInt(footerPos), 12);
  footer.writeBigUInt64LE(BigInt(optFooter.length), 20);
  return Buffer.concat([header, optHeader, data, optFooter, footer]);
}

export function isCart(buf: Buffer): boolean {
  return buf.length >= HEADER_LEN + FOOTER_LEN && buf.subarray(0, 4).toString('latin1') === 'CART' && buf.readUInt16LE(4) === 1;
}

export interface DecodedCart {
  content: Buffer;
  header: Record<string, unknown>;
  footer: Record<string, unknown>;
}

export function decodeCart(buf: Buffer, privateKey?: Buffer): DecodedCart {
  if (!isCart(buf)) throw new Error('not a CaRT file');
  const tail = buf.subarray(buf.length - FOOTER_LEN);
  if (tail.subarray(0, 4).toString('latin1') !== 'TRAC') throw new Error('CaRT footer magic missing');
  let key = buf.subarray(14, 30);
  if (key.every((b) => b === 0)) {
    if (!privateKey) throw new Error('CaRT uses a private key');
    key = privateKey;
  }
  const optHeaderLen = Number(buf.readBigUInt64LE(30));
  const footerPos = Number(tail.readBigUInt64LE(12));
  const footerLen = Number(tail.readBigUInt64LE(20));
  const header = optHeaderLen ? (JSON.parse(rc4(key, buf.subarray(HEADER_LEN, HEADER_LEN + optHeaderLen)).toString('utf8')) as Record<string, unknown>) : {};
  const content = inflateSync(rc4(key, buf.subarray(HEADER_LEN + optHeaderLen, footerPos)));
  const footer = footerLen ? (JSON.parse(rc4(key, buf.subarray(footerPos, footerPos + footerLen)).toString('utf8')) as Record<string, unknown>) : {};
  return { content, header, footer };
}
