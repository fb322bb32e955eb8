/**
 * The one multipart encoder both clients use: the exact bytes the reference clients send (MASS
 * report and file upload, Assemblyline ingest), a Content-Length that matches the bytes, streamed
 * parts read only as pulled and released when the body ends early.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { buildMultipart, newBoundary } from '../../src/http/multipart.js';
import { buildIngestMultipart } from '../../src/assemblyline/multipart.js';
import { BridgeError } from '../../src/errors.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('a plain field and a file part, byte for byte as python requests writes them', async () => {
  const mp = buildMultipart(
    [
      { name: 'metadata', contentType: 'application/json', data: Buffer.from('{"tags":[]}') },
      { name: 'summary', filename: 'summary.json', contentType: 'application/json', data: Buffer.from('{"a":1}') },
      { name: 'note', filename: 'a"b\r\n.txt', data: Buffer.alloc(0) },
    ],
    { boundary: 'b0undary' },
  );
  const expected =
    '--b0undary\r\nContent-Disposition: form-data; name="metadata"\r\nContent-Type: application/json\r\n\r\n{"tags":[]}\r\n' +
    '--b0undary\r\nContent-Disposition: form-data; name="summary"; filename="summary.json"\r\nContent-Type: application/json\r\n\r\n{"a":1}\r\n' +
    '--b0undary\r\nContent-Disposition: form-data; name="note"; filename="a%22b%0D%0A.txt"\r\n\r\n\r\n' +
    '--b0undary--\r\n';
  const body = await collect(mp.open());
  assert.equal(body.toString('utf8'), expected);
  assert.equal(mp.contentType, 'multipart/form-data; boundary=b0undary');
  assert.equal(mp.length, body.length);
  assert.equal(mp.replayable, true);
  assert.equal((await collect(mp.open())).toString('utf8'), expected, 'a Buffer-only body can be sent again');
});

test('the default boundary is 32 hex digits, new for every body', () => {
  const a = newBoundary();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, newBoundary());
  assert.match(buildMultipart([]).contentType, /^multipart\/form-data; boundary=[0-9a-f]{32}$/);
});

test('the Assemblyline ingest body: json part without Content-Type, then bin with the file name', async () => {
  const req = {
    name: 'sample "1".exe',
    body: Buffer.from('MZ\x90\x00'),
    metadata: { bridge_job: 'j1' },
    params: { priority: 150 },
    notificationQueue: 'q',
  };
  const mp = buildIngestMultipart(req);
  const boundary = /boundary=([0-9a-f]{32})$/.exec(mp.contentType)?.[1];
  assert.ok(boundary, mp.contentType);
  const json = JSON.stringify({ name: req.name, metadata: req.metadata, params: req.params, notification_queue: 'q', type: 'MASS' });
  const expected = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n${json}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="bin"; filename="sample %221%22.exe"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    req.body,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const body = await collect(mp.open());
  assert.deepEqual(body, expected);
  assert.equal(mp.length, expected.length);
});

test('a streamed part: length from its size, data pulled through, body sendable once', async () => {
  const file = Buffer.alloc(200_000, 7);
  const source = Readable.from([file.subarray(0, 65536), file.subarray(65536)], { objectMode: false });
  const mp = buildMultipart([{ name: 'file', filename: 'f.bin', contentType: 'binary/octet-stream', data: source, size: file.length }], { boundary: 'x' });
  assert.equal(mp.replayable, false);
  const body = await collect(mp.open());
  assert.equal(mp.length, body.length);
  const head = '--x\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: binary/octet-stream\r\n\r\n';
  assert.deepEqual(body.subarray(head.length, head.length + file.length), file);
  assert.throws(() => mp.open(), /only once/);

  const unknown = buildMultipart([{ name: 'file', filename: 'f', data: Readable.from([Buffer.from('abc')]) }]);
  assert.equal(unknown.length, undefined, 'no size: the body goes out chunked');
});

test('a body that ends early releases its streamed source', async () => {
  const source = new PassThrough();
  source.write(Buffer.alloc(1024));
  const mp = buildMultipart([{ name: 'file', filename: 'f', data: source, size: 10_000 }]);
  const body = mp.open();
  await new Promise<void>((resolve) => body.once('data', () => resolve()));
  body.destroy();
  await new Promise<void>((resolve) => (source.destroyed ? resolve() : source.once('close', () => resolve())));
  assert.equal(source.destroyed, true);
});

test('an ingest whose source fails reports a source failure, not an Assemblyline one', async () => {
  const source = new Readable({
    read() {
      this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    },
  });
  const mp = buildIngestMultipart({ name: 'x', body: source, metadata: {}, params: { priority: 150 }, notificationQueue: 'q' });
  await assert.rejects(collect(mp.open()), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'NETWORK');
    assert.match(err.message, /^reading the file to ingest failed: socket hang up/);
    assert.equal(err.upstream, undefined);
    return true;
  });
});

test('a streamed part is read only as fast as the body is: a reader that stops leaves the source paused, not drained into memory', async () => {
  let produced = 0;
  const source = new Readable({
    read() {
      produced += 65536;
      this.push(produced <= 64 * 65536 ? Buffer.alloc(65536, 1) : null);
    },
  });
  const mp = buildMultipart([{ name: 'file', filename: 'f', data: source, size: 64 * 65536 }], { boundary: 'b' });
  const body = mp.open();
  await new Promise<void>((resolve) => body.once('readable', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Nothing read yet: the body and the source hold at most their buffers' worth, far from the 4 MiB file.
  assert.ok(produced <= 8 * 65536, `${produced} bytes produced before anything was read`);
  const all = await collect(body);
  assert.equal(all.length, mp.length);
  assert.equal(produced, 65 * 65536);
});

test('a streamed part that failed or was closed before the body reached it fails the body instead of leaving it unfinished', async () => {
  const failed = new PassThrough();
  failed.on('error', () => {});
  failed.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  const first = buildIngestMultipart({ name: 'x', body: failed, metadata: {}, params: {}, notificationQueue: 'q' });
  await assert.rejects(collect(first.open()), (err: unknown) => err instanceof BridgeError && /socket hang up/.test(err.message));

  const closed = new PassThrough();
  closed.write(Buffer.alloc(10));
  const second = buildMultipart([{ name: 'file', filename: 'f', data: closed, size: 100 }]);
  const body = second.open();
  const read = collect(body);
  await new Promise((resolve) => setImmediate(resolve));
  closed.destroy();
  await assert.rejects(read, /premature close/i);
});
