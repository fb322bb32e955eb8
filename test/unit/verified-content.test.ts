import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifiedContent } from '../../src/assemblyline/verified.js';
import { BridgeError } from '../../src/errors.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const chunks = [Buffer.from('first part, '), Buffer.from('second part, '), Buffer.from('last part')];
const content = Buffer.concat(chunks);

/** What a consumer receives before the stream ends or fails. */
async function received(opts: Parameters<typeof verifiedContent>[0], input = chunks): Promise<{ data: Buffer; error?: BridgeError }> {
  const got: Buffer[] = [];
  try {
    await pipeline(Readable.from(input), verifiedContent(opts), async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) got.push(c);
    });
    return { data: Buffer.concat(got) };
  } catch (err) {
    assert.ok(err instanceof BridgeError, String(err));
    return { data: Buffer.concat(got), error: err };
  }
}

test('content with the right sha256 and size passes unchanged', async () => {
  assert.deepEqual(await received({ sha256: sha256(content).toUpperCase(), size: content.length, maxBytes: content.length }), { data: content });
  assert.deepEqual(await received({ sha256: sha256(Buffer.alloc(0)) }, []), { data: Buffer.alloc(0) });
});

test('a wrong sha256 fails instead of the last chunk: the consumer never has the whole content', async () => {
  const r = await received({ sha256: sha256(Buffer.from('something else')) });
  assert.equal(r.error?.code, 'UPSTREAM_PROTOCOL');
  assert.equal(r.error?.upstream, 'assemblyline');
  assert.equal(r.error?.transient, false);
  assert.match(r.error?.message ?? '', /sha256/);
  assert.ok(r.data.length < content.length, `received ${r.data.length} of ${content.length} bytes`);
});

test('more than maxBytes fails at once with SAMPLE_TOO_LARGE; a length other than size fails', async () => {
  const big = await received({ sha256: sha256(content), maxBytes: 20 });
  assert.equal(big.error?.code, 'SAMPLE_TOO_LARGE');
  assert.ok(big.data.length <= 20);
  const longer = await received({ sha256: sha256(content), size: 20 });
  assert.equal(longer.error?.code, 'UPSTREAM_PROTOCOL');
  assert.match(longer.error?.message ?? '', /more than the 20 bytes expected/);
  const shorter = await received({ sha256: sha256(content), size: content.length + 1 });
  assert.equal(shorter.error?.code, 'UPSTREAM_PROTOCOL');
  assert.ok(shorter.data.length < content.length);
});
