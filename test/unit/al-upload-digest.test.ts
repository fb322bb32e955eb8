import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Readable } from 'node:stream';
import { HashPool } from '../../src/simulators/assemblyline/hash-pool.js';
import { parseMultipart, readBody } from '../../src/simulators/assemblyline/multipart.js';
import { UploadDigest } from '../../src/simulators/assemblyline/upload-digest.js';
import { countBytes, entropy } from '../../src/simulators/assemblyline/util.js';

const pool = new HashPool();
after(() => pool.close());

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

/** Cuts `raw` into chunks of random sizes (a deterministic generator seeded with `seed`). */
function cut(raw: Buffer, seed: number): Buffer[] {
  const chunks: Buffer[] = [];
  let rnd = seed;
  for (let at = 0; at < raw.length; ) {
    rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (rnd % 70_000);
    chunks.push(raw.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/**
 * Reads `raw` as the simulator reads an ingest body (shared memory, random chunk cuts, with or without a
 * Content-Length) with a digest watching, then asks the digest for the `bin` part the parser finds.
 */
async function digestOf(raw: Buffer, seed: number, announced = true) {
  const digest = new UploadDigest(BOUNDARY, pool);
  const read = await readBody(Readable.from(cut(raw, seed)), announced ? String(raw.length) : undefined, raw.length + 1, { shared: true, watcher: digest });
  assert.ok(read.equals(raw));
  assert.ok(read.buffer instanceof SharedArrayBuffer);
  const bin = parseMultipart(read, BOUNDARY).find((p) => p.name === 'bin')!;
  const start = bin.data.byteOffset - read.byteOffset;
  return { facts: await digest.facts(read, start, start + bin.data.length), bin: bin.data };
}

const expected = (data: Buffer) => ({
  md5: createHash('md5').update(data).digest('hex'),
  sha1: createHash('sha1').update(data).digest('hex'),
  sha256: createHash('sha256').update(data).digest('hex'),
  entropy: entropy(data),
});

test('an upload hashed on the hash threads while it arrives gives the hashes and entropy of the bin part, wherever the part sits and however the body is cut', async () => {
  const tricky = Buffer.concat([Buffer.from(`\r\n--${BOUNDARY.slice(0, 10)}\r\n\r\n`, 'latin1'), randomBytes(5000)]);
  const files = [Buffer.from('x'), Buffer.from('AL-SIM: {}\n'), tricky, randomBytes(300_000), Buffer.alloc(200_000, 0x0d)];
  const json = Buffer.from(JSON.stringify({ name: 'x', params: { priority: 150 } }));
  let seed = 1;
  for (const file of files) {
    const layouts = [
      [{ name: 'json', data: json }, { name: 'bin', filename: 'f.bin', data: file }],
      [{ name: 'bin', filename: 'f.bin', data: file }, { name: 'json', data: json }],
      [{ name: 'json', data: json }, { name: 'bin', filename: 'f.bin', data: file }, { name: 'extra', data: randomBytes(500) }],
      // More than one batch for the threads after the part: what was handed over is past the part's end.
      [{ name: 'json', data: json }, { name: 'bin', filename: 'f.bin', data: file }, { name: 'extra', data: randomBytes(2_500_000) }],
    ];
    for (const layout of layouts) {
      const raw = body(layout);
      const { facts, bin } = await digestOf(raw, seed++, seed % 3 !== 0);
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

test('a digest asked for another range of the body, or of another body, answers null', async () => {
  const file = randomBytes(10_000);
  const raw = body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: 'a', data: file }]);
  const read = async (digest: UploadDigest) => readBody(Readable.from([raw]), String(raw.length), raw.length, { shared: true, watcher: digest });
  const bin = parseMultipart(raw, BOUNDARY).find((p) => p.name === 'bin')!;
  const start = bin.data.byteOffset - raw.byteOffset;
  const shifted = new UploadDigest(BOUNDARY, pool);
  const shiftedBody = await read(shifted);
  assert.equal(shifted.facts(shiftedBody, start + 1, start + bin.data.length), null);
  const other = new UploadDigest('other-boundary', pool);
  const otherBody = await read(other);
  assert.equal(other.facts(otherBody, start, start + bin.data.length), null);
  const elsewhere = new UploadDigest(BOUNDARY, pool);
  await read(elsewhere);
  assert.equal(elsewhere.facts(Buffer.from(raw), start, start + bin.data.length), null);
  // One use: a second question is not answered from hashes already finished.
  const once = new UploadDigest(BOUNDARY, pool);
  const onceBody = await read(once);
  assert.deepEqual(await once.facts(onceBody, start, start + bin.data.length), expected(file));
  assert.equal(once.facts(onceBody, start, start + bin.data.length), null);
});

test('a body that is not read whole (longer than announced) leaves no digest to ask for', async () => {
  const file = randomBytes(3_000_000);
  const raw = body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: 'a', data: file }]);
  const digest = new UploadDigest(BOUNDARY, pool);
  const refused = await readBody(Readable.from(cut(raw, 5)), String(raw.length - 10), raw.length, { shared: true, watcher: digest }).then(
    () => 'read',
    (err: { code?: string }) => err.code,
  );
  assert.equal(refused, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH');
  assert.equal(digest.facts(Buffer.from(raw), 0, 10), null);
});

test('several large files hashed at once on the threads each get their own digest, equal to node:crypto and a byte-by-byte entropy', async () => {
  const reference = (data: Buffer) => {
    const counts = new Array<number>(256).fill(0);
    for (const b of data) counts[b]++;
    let e = 0;
    for (const c of counts) if (c > 0) e -= (c / data.length) * Math.log2(c / data.length);
    return Math.round(e * 1000) / 1000;
  };
  const text = Buffer.alloc(3_000_001);
  for (let i = 0; i < text.length; i++) text[i] = 97 + ((i * 7919) % 26);
  const files = [randomBytes(5_000_003), Buffer.alloc(4_194_304, 0), text, Buffer.concat([Buffer.alloc(2_000_000, 0xff), randomBytes(1_500_001)])];
  const results = await Promise.all(
    files.map((file, i) => digestOf(body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: `f${i}`, data: file }]), 11 + i)),
  );
  for (const [i, file] of files.entries()) {
    const { facts } = results[i];
    assert.ok(facts, `file ${i}: a digest`);
    assert.equal(facts.md5, createHash('md5').update(file).digest('hex'));
    assert.equal(facts.sha1, createHash('sha1').update(file).digest('hex'));
    assert.equal(facts.sha256, createHash('sha256').update(file).digest('hex'));
    assert.equal(facts.entropy, reference(file), `file ${i}: entropy`);
  }
  assert.equal(results[1].facts?.entropy, 0);
});

test('a closed hash pool answers no digest (the caller hashes inline) and closing twice is safe', async () => {
  const closed = new HashPool();
  await closed.close();
  await closed.close();
  const file = randomBytes(2_000_000);
  const raw = body([{ name: 'json', data: Buffer.from('{}') }, { name: 'bin', filename: 'a', data: file }]);
  const digest = new UploadDigest(BOUNDARY, closed);
  const read = await readBody(Readable.from([raw]), String(raw.length), raw.length, { shared: true, watcher: digest });
  const start = parseMultipart(read, BOUNDARY).find((p) => p.name === 'bin')!.data.byteOffset - read.byteOffset;
  assert.equal(digest.facts(read, start, start + file.length), null);
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
