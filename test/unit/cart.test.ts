import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { BridgeError } from '../../src/errors.js';
import { CART_DEFAULT_KEY, decodeCart, encodeCart, isCart, rc4 } from '../../src/assemblyline/cart.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/assemblyline-fixtures/real/java-client-al4.0/', import.meta.url));
const realCart = readFileSync(`${FIXTURES}al_test.txt.cart`);
const realContent = readFileSync(`${FIXTURES}al_test.txt`);

function assertCartInvalid(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BridgeError, `expected BridgeError, got ${String(err)}`);
    assert.equal(err.code, 'CART_INVALID');
    assert.equal(err.transient, false);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('RC4 matches the RFC 6229 / Wikipedia test vectors', () => {
  assert.equal(rc4(Buffer.from('Key'), Buffer.from('Plaintext')).toString('hex'), 'bbf316e8d940af0ad3');
  assert.equal(rc4(Buffer.from('Wiki'), Buffer.from('pedia')).toString('hex'), '1021bf0420');
  assert.equal(rc4(Buffer.from('Secret'), Buffer.from('Attack at dawn')).toString('hex'), '45a01f645fc35b383552544b9bf5');
});

test('a real Assemblyline CaRT download decodes to the original bytes with its header metadata', () => {
  assert.ok(isCart(realCart));
  const decoded = decodeCart(realCart);
  assert.deepEqual(decoded.data, realContent);
  assert.equal(decoded.data.toString('utf8'), 'Hello!');
  const sha256 = createHash('sha256').update(realContent).digest('hex');
  assert.deepEqual(decoded.header, { classification: 'TLP:WHITE', name: sha256 });
  assert.equal(decoded.footer.sha256, sha256);
  assert.equal(decoded.footer.length, '6');
});

test('encode then decode returns the data and header', () => {
  const data = Buffer.from('MZ\x90\x00 not a real PE, but bytes all the same', 'latin1');
  const cart = encodeCart(data, { name: 'sample.exe', classification: 'TLP:CLEAR' });
  const decoded = decodeCart(cart);
  assert.deepEqual(decoded.data, data);
  assert.deepEqual(decoded.header, { classification: 'TLP:CLEAR', name: 'sample.exe' });
});

test('a private-key CaRT needs the key', () => {
  const key = Buffer.from('0123456789abcdef');
  const cart = encodeCart(Buffer.from('secret sample'), { name: 'x' }, { key, privateKey: true });
  assertCartInvalid(() => decodeCart(cart), /private key/);
  assert.equal(decodeCart(cart, { key }).data.toString(), 'secret sample');
});

test('corrupted CaRT files are refused with CART_INVALID', () => {
  assertCartInvalid(() => decodeCart(Buffer.alloc(0)), /too short/);
  assertCartInvalid(() => decodeCart(realCart.subarray(0, 50)), /too short/);

  const badMagic = Buffer.from(realCart);
  badMagic.write('CARX', 0, 'latin1');
  assertCartInvalid(() => decodeCart(badMagic), /header magic/);

  const badVersion = Buffer.from(realCart);
  badVersion.writeUInt16LE(2, 4);
  assertCartInvalid(() => decodeCart(badVersion), /version/);

  const badFooterMagic = Buffer.from(realCart);
  badFooterMagic.write('XRAC', realCart.length - 28, 'latin1');
  assertCartInvalid(() => decodeCart(badFooterMagic), /footer magic/);

  assertCartInvalid(() => decodeCart(realCart.subarray(0, realCart.length - 1)), /footer/);

  const badOffset = Buffer.from(realCart);
  badOffset.writeBigUInt64LE(10n, realCart.length - 16);
  assertCartInvalid(() => decodeCart(badOffset), /layout/);

  const hugeHeader = Buffer.from(realCart);
  hugeHeader.writeBigUInt64LE(1n << 60n, 30);
  assertCartInvalid(() => decodeCart(hugeHeader));

  // One flipped bit inside the compressed data: inflate or the footer hash must catch it.
  const flippedData = Buffer.from(realCart);
  flippedData[38 + 104 + 5] ^= 0x01;
  assertCartInvalid(() => decodeCart(flippedData));

  const wrongKey = Buffer.from(realCart);
  wrongKey[14] ^= 0xff;
  assertCartInvalid(() => decodeCart(wrongKey), /not JSON/);
});

test('content that does not match the footer hash is refused', () => {
  const key = CART_DEFAULT_KEY;
  const a = encodeCart(Buffer.from('first content'), {}, { key });
  const b = encodeCart(Buffer.from('other content'), {}, { key });
  // Same lengths, so b's data section fits in a's frame; the footer hash of a no longer matches.
  const dataStart = 38;
  const aFooterOffset = Number(a.readBigUInt64LE(a.length - 16));
  const bFooterOffset = Number(b.readBigUInt64LE(b.length - 16));
  assert.equal(aFooterOffset, bFooterOffset);
  const spliced = Buffer.concat([a.subarray(0, dataStart), b.subarray(dataStart, bFooterOffset), a.subarray(aFooterOffset)]);
  assertCartInvalid(() => decodeCart(spliced), /sha256 mismatch/);
});

test('the decompression limit stops a CaRT that inflates past maxOutputBytes', () => {
  const cart = encodeCart(Buffer.alloc(1 << 20));
  assert.throws(() => decodeCart(cart, { maxOutputBytes: 1000 }), (err: unknown) => err instanceof BridgeError && err.code === 'SAMPLE_TOO_LARGE');
  assert.equal(decodeCart(cart, { maxOutputBytes: 1 << 20 }).data.length, 1 << 20);
});

test('property: any bytes and header survive an encode/decode round trip', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 4096 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 40 }), { maxKeys: 4 }),
      fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }),
      (bytes, header, key) => {
        const cart = encodeCart(bytes, header, key ? { key: Buffer.from(key) } : {});
        const decoded = decodeCart(cart);
        assert.deepEqual(new Uint8Array(decoded.data), bytes);
        assert.deepEqual(decoded.header, Object.fromEntries(Object.entries(header)));
      },
    ),
    { numRuns: 200 },
  );
});
