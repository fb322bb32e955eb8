import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { Readable } from 'node:stream';
import { parseMultipart, readBody } from '../../src/simulators/assemblyline/multipart.js';
import { UploadDigest } from '../../src/simulators/assemblyline/upload-digest.js';
import { countBytes, entropy } from '../../src/simulators/assemblyline/util.js';

const BOUNDARY = '----bench-boundary-7d3';

function body(parts: Array<{ name: string; filename?: string; data: Buffer }>): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
    chunks.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n\r\n`, 'latin1'), p.data, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`, 'latin1'));
  return Buffer.concat(chunks);
}

/** Streams `raw` through a digest in chunks of random sizes, then asks it for the `bin` part the parser finds. */
async function digestOf(raw: Buffer, seed: number) {
  const digest = new UploadDigest(BOUNDARY);
  digest.resume();
  let rnd = seed;
  for (let at = 0; at < raw.length; ) {
    rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (rnd % 70_000);
    digest.write(raw.subarray(at, at + size));
    at += size;
  }
  digest.end();
  await once(digest, 'finish');
  const bin = parseMultipart(raw, BOUNDARY).find((p) => p.name === 'bin')!;
  const start = bin.data.byteOffset - raw.byteOffset;
  return { facts: digest.facts(raw, start, start + bin.data.length), bin: bin.data };
}

const expected = (data: Buffer) => ({
  md5: createHash('md5').update(data).digest('hex'),
  sha1: createHash('sha1').update(data).digest('hex'),
  sha256: createHash('sha256').update(data).digest('hex'),
  entropy: entropy(data),
});

test('an upload hashed while it arrives gives the hashes and entropy of the bin part, wherever the part sits and however the body is cut', async () => {
  const tricky = Buffer.concat([Buffer.from(`\r\n--${BOUNDARY.slice(0, 10)}\r\n\r\n`, 'latin1'), randomBytes(5000)]);
  const files = [Buffer.from('x'), Buffer.from('AL-SIM: {}\n'), tricky, randomBytes(300_000), Buffer.alloc(200_000, 0x0d)];
  const json = Buffer.from(JSON.stringify({ name: 'x', params: { priority: 150 } }));
  let seed = 1;
  for (const file of files) {
    const layouts = [
      [{ name: 'json', data: json }, { name: 'bin', filename: 'f.bin', data: file }],
      [{ name: 'bin', filename: 'f.bin', data: file }, { name: 'json', data: json }],
      [{ name: 'json', data: json }, { name: 'bin', filename: 'f.bin', data: file }, { name: 'extra', data: randomBytes(500) }],
    ];
    for (const layout of layouts) {
      const raw = body(layout);
      const { facts, bin } = await digestOf(raw, seed++);
      assert.ok(bin.equals(file));
      // A part followed by more bytes than the digest holds back cannot be finished from the stream: null, never a wrong digest.
      if (facts === null) {
        assert.ok(layout[layout.length - 1].name !== 'bin', `the last part is bin, yet no digest (file of ${file.length} bytes)`);
        continue;
      }
      assert.deepEqual(facts, expected(file), `file of ${file.length} bytes, parts ${layout.map((p) => p.name).join(',')}`);
    }
  }
});

test('the usual ingest body (json part, then the file) is always digested while it arrives', async () => {
  for (let i = 0; i < 20; i++) {
    const file = randomBytes(1 + i * 9973);
    const raw = body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: 'a', data: file }]);
    const { facts } = await digestOf(raw, i + 7);
    assert.deepEqual(facts, expected(file));
  }
});

test('a digest asked for another range of the body answers null', async () => {
  const file = randomBytes(10_000);
  const raw = body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: 'a', data: file }]);
  const digest = new UploadDigest(BOUNDARY);
  digest.resume();
  digest.end(raw);
  await once(digest, 'finish');
  const bin = parseMultipart(raw, BOUNDARY).find((p) => p.name === 'bin')!;
  const start = bin.data.byteOffset - raw.byteOffset;
  assert.equal(digest.facts(raw, start + 1, start + bin.data.length), null);
  assert.equal(new UploadDigest('other-boundary').facts(raw, start, start + bin.data.length), null);
});

test('the byte count behind the entropy matches a count byte by byte, at every alignment and length', () => {
  const data = randomBytes(4099);
  for (const [from, to] of [[0, 0], [0, 1], [1, 2], [1, 7], [2, 4099], [3, 4096], [0, 4099], [5, 13]]) {
    const bytes = data.subarray(from, to);
    const counted = new Float64Array(256);
    countBytes(counted, bytes);
    const expected = new Float64Array(256);
    for (const b of bytes) expected[b]++;
    assert.deepEqual(counted, expected, `bytes [${from}, ${to})`);
  }
  assert.equal(entropy(Buffer.alloc(1000, 7)), 0);
  assert.equal(entropy(Buffer.from([0, 1, 2, 3, 0, 1, 2, 3])), 2);
});

test('an upload body is read whole into one buffer, and refused when larger than the limit or than its Content-Length', async () => {
  const data = randomBytes(200_000);
  const chunks = (b: Buffer) => Readable.from([b.subarray(0, 1), b.subarray(1, 70_000), b.subarray(70_000)]);
  assert.ok((await readBody(chunks(data), String(data.length), 1_000_000)).equals(data));
  assert.ok((await readBody(chunks(data), undefined, 1_000_000)).equals(data));
  const code = (p: Promise<unknown>) => p.then(() => 'read', (err: { code?: string; statusCode?: number }) => `${err.code} ${err.statusCode}`);
  assert.equal(await code(readBody(chunks(data), String(data.length), 100_000)), 'FST_ERR_CTP_BODY_TOO_LARGE 413');
  assert.equal(await code(readBody(chunks(data), undefined, 100_000)), 'FST_ERR_CTP_BODY_TOO_LARGE 413');
  assert.equal(await code(readBody(chunks(data), String(data.length - 1), 1_000_000)), 'FST_ERR_CTP_INVALID_CONTENT_LENGTH 400');
  assert.equal(await code(readBody(chunks(data), String(data.length + 1), 1_000_000)), 'FST_ERR_CTP_INVALID_CONTENT_LENGTH 400');
});
