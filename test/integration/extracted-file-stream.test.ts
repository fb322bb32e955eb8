/**
 * Extracted files go from Assemblyline to MASS as a stream (bridge/steps/extracted-file.ts): memory does not
 * grow with the file's size (raw download and the CaRT fallback), and a file that fails a check while it
 * streams (wrong sha256, longer than MaxExtractedSize) never becomes a MASS sample.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createDeflate } from 'node:zlib';
import { CART_DEFAULT_KEY, rc4, rc4Stream } from '../../src/assemblyline/cart.js';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import type { BridgeContext } from '../../src/bridge/context.js';
import { uploadExtractedFile, type ExtractedFileUpload } from '../../src/bridge/steps/extracted-file.js';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassClient } from '../../src/mass/types.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';

const MiB = 1024 * 1024;
const FILE_MIB = 64;
const AL_KEY = 'bridgekey:ExtractedStreamSecret-1';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** `mib` MiB of incompressible bytes made chunk by chunk (never held whole): the same bytes on every call. */
function* generated(mib: number, seed: Buffer): Generator<Buffer> {
  for (let i = 0; i < mib; i++) {
    const chunk = Buffer.from(seed);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

function digest(chunks: Iterable<Buffer>): { sha256: string; size: number } {
  const h = createHash('sha256');
  let size = 0;
  for (const c of chunks) {
    h.update(c);
    size += c.length;
  }
  return { sha256: h.digest('hex'), size };
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** A CaRT file of `content` written as it streams (the layout of ASSEMBLYLINE.md §8, default key, no optional header). */
async function* cartOf(content: Iterable<Buffer>, facts: { sha256: string; size: number }): AsyncGenerator<Buffer> {
  yield Buffer.concat([Buffer.from('CART', 'latin1'), Buffer.from([1, 0]), u64(0), CART_DEFAULT_KEY, u64(0)]);
  const encrypt = rc4Stream(CART_DEFAULT_KEY);
  const deflate = createDeflate({ level: 1 });
  let written = 38;
  const feed = (async () => {
    for (const c of content) if (!deflate.write(c)) await once(deflate, 'drain');
    deflate.end();
  })();
  for await (const c of deflate) {
    const out = encrypt(c as Buffer);
    written += out.length;
    yield out;
  }
  await feed;
  const footer = rc4(CART_DEFAULT_KEY, Buffer.from(JSON.stringify({ length: String(facts.size), sha256: facts.sha256 }), 'utf8'));
  yield footer;
  yield Buffer.concat([Buffer.from('TRAC', 'latin1'), u64(0), u64(written), u64(footer.length)]);
}

interface FakeAl {
  url: string;
  /** Content served for a sha256: a fresh iterable per download. */
  files: Map<string, () => Iterable<Buffer>>;
  /** A stored CaRT file per sha256, served for encoding=cart (else one is made from `files` as it is sent). */
  cartFiles: Map<string, string>;
  rawDisabled: boolean;
  /** Send no Content-Length on raw downloads. */
  chunked: boolean;
}

async function listen(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  t.after(() => server.closeAllConnections());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Assemblyline's file download (ASSEMBLYLINE.md §6.6), streaming what `files` makes. */
async function startFakeAl(t: TestContext): Promise<FakeAl> {
  const al: FakeAl = { url: '', files: new Map(), cartFiles: new Map(), rawDisabled: false, chunked: false };
  al.url = await listen(t, (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const sha256 = /^\/api\/v4\/file\/download\/([0-9a-f]{64})\/$/.exec(u.pathname)?.[1];
    const make = sha256 ? al.files.get(sha256) : undefined;
    const env = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ api_error_message: message, api_response: '', api_server_version: '4.7.4', api_status_code: status }));
    };
    if (!make || !sha256) return env(404, 'The file was not found in the system.');
    if (u.searchParams.get('encoding') === 'raw') {
      if (al.rawDisabled) return env(403, 'RAW file download has been disabled by administrators.');
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (!al.chunked) headers['content-length'] = String(digest(make()).size);
      res.writeHead(200, headers);
      Readable.from(make()).pipe(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const stored = al.cartFiles.get(sha256);
    (stored ? createReadStream(stored) : Readable.from(cartOf(make(), digest(make())))).pipe(res);
  });
  return al;
}

interface Upload {
  complete: boolean;
  fileSha256?: string;
  fileSize?: number;
}

/**
 * MASS `sample/submit_file/` that keeps nothing: it hashes the file part as it arrives (its part header is in
 * the first chunk; after it come the file, CRLF and the metadata part) and answers a sample.
 */
async function startFakeMass(t: TestContext): Promise<{ url: string; uploads: Upload[] }> {
  const uploads: Upload[] = [];
  const url = await listen(t, (req, res) => {
    const boundary = /boundary=(\S+)/.exec(req.headers['content-type'] ?? '')?.[1] ?? '';
    const upload: Upload = { complete: false };
    uploads.push(upload);
    const hash = createHash('sha256');
    let started = false;
    let size = 0;
    let tail = Buffer.alloc(0);
    req.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (!started) {
        started = true;
        data = chunk.subarray(chunk.indexOf('\r\n\r\n') + 4);
      }
      tail = Buffer.concat([tail, data]);
      if (tail.length > 4096) {
        const out = tail.subarray(0, tail.length - 4096);
        hash.update(out);
        size += out.length;
        tail = Buffer.from(tail.subarray(tail.length - 4096));
      }
    });
    req.on('end', () => {
      const end = tail.indexOf(`\r\n--${boundary}`);
      hash.update(tail.subarray(0, end));
      Object.assign(upload, { complete: true, fileSha256: hash.digest('hex'), fileSize: size + end });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: `${url}/api/sample/1/`, id: '1', _cls: 'Sample.FileSample' }));
    });
  });
  return { url, uploads };
}

/** The parts of a BridgeContext that uploadExtractedFile reads. */
function context(t: TestContext, alUrl: string, mass: MassClient, maxExtractedSize: number): BridgeContext {
  const al = createAssemblylineClient({ url: alUrl, user: 'bridge', auth: 'apikey', apiKey: AL_KEY });
  t.after(() => al.close());
  t.after(() => mass.close());
  return { signal: new AbortController().signal, config: { report: { maxExtractedSize } }, retry: <T>(fn: () => Promise<T>) => fn(), al, mass } as unknown as BridgeContext;
}

/** Peak of heapUsed + arrayBuffers above the level before `run`, sampled every 100 ms after a full GC. */
async function peakExtraMemory<T>(run: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const base = used();
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, used() - base)), 100);
  try {
    const result = await run();
    peak = Math.max(peak, used() - base);
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

const upload = (sha256: string, size: number | null): ExtractedFileUpload => ({ sha256, sid: 'sid-1', filename: 'dropped.bin', size, tlpLevel: 0, tags: [] });

for (const mode of ['raw', 'CaRT'] as const) {
  test(`a 64 MiB extracted file streams from Assemblyline to MASS (${mode}): extra memory stays far below the file's size`, { timeout: 120_000 }, async (t) => {
    const seed = randomBytes(MiB);
    const facts = digest(generated(FILE_MIB, seed));
    const al = await startFakeAl(t);
    al.files.set(facts.sha256, () => generated(FILE_MIB, seed));
    al.rawDisabled = mode === 'CaRT';
    if (mode === 'CaRT') {
      // Stored beforehand, as Assemblyline stores files: the fake server's own encoding stays out of the measurement.
      const dir = await mkdtemp(join(tmpdir(), 'extracted-stream-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const file = join(dir, 'file.cart');
      await pipeline(Readable.from(cartOf(generated(FILE_MIB, seed), facts)), createWriteStream(file));
      al.cartFiles.set(facts.sha256, file);
    }
    const fake = await startFakeMass(t);
    const mass = createMassClient({ apiRoot: `${fake.url}/api/`, apiKey: 'mass-key-1234', timeoutMs: 60_000 });
    const ctx = context(t, al.url, mass, 100 * MiB);

    const { result, peak } = await peakExtraMemory(() => uploadExtractedFile(ctx, upload(facts.sha256, mode === 'CaRT' ? facts.size : null)));
    assert.equal(result.url, `${fake.url}/api/sample/1/`);
    assert.equal(fake.uploads.length, 1);
    assert.deepEqual(fake.uploads[0], { complete: true, fileSha256: facts.sha256, fileSize: facts.size }, 'MASS got exactly the file');
    t.diagnostic(`peak extra heap+arrayBuffers ${(peak / MiB).toFixed(1)} MiB`);
    assert.ok(peak < 16 * MiB, `peak extra heap+arrayBuffers ${(peak / MiB).toFixed(1)} MiB stays below 16 MiB for a 64 MiB file`);
  });
}

test('a file whose content does not match its sha256 never becomes a MASS sample (raw and CaRT)', { timeout: 60_000 }, async (t) => {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => sim.close());
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  const al = await startFakeAl(t);
  const claimed = createHash('sha256').update('what Assemblyline says it is').digest('hex');
  const wrong = [randomBytes(300_000), randomBytes(5)];
  al.files.set(claimed, () => wrong);
  const mass = createMassClient({ apiRoot: `${origin}/api/`, apiKey: sim.instance.key });
  const ctx = context(t, al.url, mass, 10 * MiB);
  const before = (await (await fetch(`${origin}/_sim/state`)).json()) as { samples: number };
  for (const rawDisabled of [false, true]) {
    al.rawDisabled = rawDisabled;
    await assert.rejects(uploadExtractedFile(ctx, upload(claimed, null)), (err: unknown) => {
      assert.ok(err instanceof BridgeError);
      assert.equal(err.upstream, 'assemblyline');
      assert.equal(err.transient, false);
      assert.match(err.message, /sha256/);
      return true;
    });
  }
  const after = (await (await fetch(`${origin}/_sim/state`)).json()) as { samples: number };
  assert.equal(after.samples, before.samples, 'MASS created no sample');
});

test('a file larger than MaxExtractedSize is cut while it streams (size unknown in advance) and MASS creates no sample', { timeout: 60_000 }, async (t) => {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => sim.close());
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  const al = await startFakeAl(t);
  al.chunked = true;
  const seed = randomBytes(MiB);
  const facts = digest(generated(3, seed));
  al.files.set(facts.sha256, () => generated(3, seed));
  const mass = createMassClient({ apiRoot: `${origin}/api/`, apiKey: sim.instance.key });
  const ctx = context(t, al.url, mass, 2 * MiB);
  const before = (await (await fetch(`${origin}/_sim/state`)).json()) as { samples: number };
  for (const rawDisabled of [false, true]) {
    al.rawDisabled = rawDisabled;
    await assert.rejects(uploadExtractedFile(ctx, upload(facts.sha256, null)), (err: unknown) => {
      assert.ok(err instanceof BridgeError);
      assert.equal(err.code, 'SAMPLE_TOO_LARGE');
      assert.match(err.message, /MaxExtractedSize/);
      return true;
    });
  }
  const after = (await (await fetch(`${origin}/_sim/state`)).json()) as { samples: number };
  assert.equal(after.samples, before.samples, 'MASS created no sample');
  // Within the cap the same file goes through, and MASS holds it under its sha256.
  const roomy = context(t, al.url, createMassClient({ apiRoot: `${origin}/api/`, apiKey: sim.instance.key }), 4 * MiB);
  const sample = await uploadExtractedFile(roomy, upload(facts.sha256, facts.size));
  assert.equal((sample as unknown as { file?: unknown; sha256sum?: string }).sha256sum, facts.sha256);
});
