import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { BridgeError } from '../../src/errors.js';
import { CART_MAX_OPTIONAL_PART, decodeCartStream, encodeCart, rc4, rc4Stream, type CartStreamInfo } from '../../src/assemblyline/cart.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/assemblyline-fixtures/real/java-client-al4.0/', import.meta.url));
const realCart = readFileSync(`${FIXTURES}al_test.txt.cart`);
const realContent = readFileSync(`${FIXTURES}al_test.txt`);

/** `buf` as a stream cut into pieces of the given sizes (repeated), like a network delivers it. */
function pieces(buf: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    parts.push(buf.subarray(at, at + n));
    at += n;
  }
  return Readable.from(parts, { objectMode: false });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsCode(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BridgeError, `expected BridgeError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('rc4Stream continues one keystream across calls', () => {
  const key = Buffer.from('Secret');
  const data = Buffer.from('Attack at dawn');
  const next = rc4Stream(key);
  assert.deepEqual(Buffer.concat([next(data.subarray(0, 5)), next(data.subarray(5))]), rc4(key, data));
});

test('the real Assemblyline CaRT download decodes as a stream, one byte at a time too', async () => {
  for (const sizes of [[1], [7, 3], [realCart.length]]) {
    const info: CartStreamInfo = {};
    assert.deepEqual(await collect(decodeCartStream(pieces(realCart, sizes), {}, info)), realContent);
    assert.equal(info.footer?.sha256, createHash('sha256').update(realContent).digest('hex'));
    assert.equal(info.header?.classification, 'TLP:WHITE');
  }
});

test('property: any content, any cut of the input, decodes to the content', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200_000 }), fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 5 }), async (content, sizes) => {
      const data = Buffer.from(content);
      const cart = encodeCart(data, { name: 'x' });
      assert.deepEqual(await collect(decodeCartStream(pieces(cart, sizes))), data);
    }),
    { numRuns: 40 },
  );
});

test('a private key, a cap on the content, and broken files are refused as the stream goes', async () => {
  const key = Buffer.from('0123456789abcdef');
  const data = randomBytes(300_000);
  const priv = encodeCart(data, {}, { key, privateKey: true });
  await rejectsCode(collect(decodeCartStream(pieces(priv, [4096]))), 'CART_INVALID', /private key/);
  assert.deepEqual(await collect(decodeCartStream(pieces(priv, [4096]), { key })), data);

  const cart = encodeCart(data);
  await rejectsCode(collect(decodeCartStream(pieces(cart, [4096]), { maxOutputBytes: 100_000 })), 'SAMPLE_TOO_LARGE');
  await rejectsCode(collect(decodeCartStream(pieces(cart.subarray(0, 20), [4096]))), 'CART_INVALID', /too short/);
  await rejectsCode(collect(decodeCartStream(pieces(cart.subarray(0, cart.length - 1), [4096]))), 'CART_INVALID');
  const flipped = Buffer.from(cart);
  flipped[1000] ^= 0xff;
  await rejectsCode(collect(decodeCartStream(pieces(flipped, [4096]))), 'CART_INVALID');
  const notCart = Buffer.from(cart);
  notCart.write('ZIP!', 0, 'latin1');
  await rejectsCode(collect(decodeCartStream(pieces(notCart, [4096]))), 'CART_INVALID', /header magic/);
  // A footer that names other content (a file whose bytes are not what its footer says).
  const other = encodeCart(Buffer.from('other content'));
  const swapped = Buffer.concat([encodeCart(Buffer.from('first content')).subarray(0, -28 - 200), other.subarray(-28 - 200)]);
  await rejectsCode(collect(decodeCartStream(pieces(swapped, [64]))), 'CART_INVALID');
});

test('an optional header or footer above the bound is refused, not buffered', async () => {
  const big = encodeCart(Buffer.from('x'), { name: 'n'.repeat(CART_MAX_OPTIONAL_PART + 10) });
  await rejectsCode(collect(decodeCartStream(pieces(big, [4096]))), 'CART_INVALID', /optional header of/);
});

test('an error of the source is passed on, and destroying the decoder destroys the source', async () => {
  const cart = encodeCart(randomBytes(200_000));
  const broken = new Readable({ read() {} });
  broken.push(cart.subarray(0, 50_000));
  const out = decodeCartStream(broken);
  setImmediate(() => broken.destroy(Object.assign(new Error('socket reset'), { code: 'ECONNRESET' })));
  await assert.rejects(collect(out), /socket reset/);

  const source = new Readable({ read() {} });
  source.push(cart.subarray(0, 100_000));
  const decoder = decodeCartStream(source);
  await new Promise((r) => decoder.once('readable', r));
  decoder.destroy();
  await new Promise((r) => setImmediate(r));
  assert.ok(source.destroyed, 'the source is released');
});
