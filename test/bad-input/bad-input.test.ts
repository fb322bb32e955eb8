/**
 * The bad-input corpus: every file in ./cases is one test. Each case feeds one bad input at the layer
 * where it arrives from an upstream — the mapping's normalise functions, or the real MASS / Assemblyline
 * client against a scripted server on loopback — and checks a clear error or note, no crash, and that
 * nothing else is disturbed (the same client answers a good request next; a trap origin gets nothing).
 *
 * Case fields: description, layer ('map-report' | 'normalise-message' | 'al-client' | 'mass-client'),
 * the input (full / message / generate, or call + answer + sample/url), and expect. In strings,
 * {MASS}, {AL} and {TRAP} stand for the scripted server's and the trap's origins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import { BridgeError } from '../../src/errors.js';
import { defaultMappingOptions, mapSubmissionToReport } from '../../src/mapping/index.js';
import { normaliseMessage } from '../../src/mapping/normalize.js';
import { createMassClient } from '../../src/mass/client.js';
import { startTrap, type Recorder } from '../helpers/host-proxy.js';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  bodyBase64?: string;
  generateBytes?: number;
  contentLength?: boolean;
}

interface Case {
  description: string;
  layer: 'map-report' | 'normalise-message' | 'al-client' | 'mass-client';
  full?: unknown;
  message?: unknown;
  generate?: { kind: 'extracted' | 'tags'; count: number };
  call?: string;
  answer?: Answer;
  sample?: Record<string, unknown>;
  url?: string;
  expect: {
    kind?: 'analysis';
    error?: { code?: string; message?: string };
    result?: { path: string; equals: unknown };
    trapUntouched?: boolean;
    serverWroteLessThan?: number;
    maxRelatedFiles?: number;
    maxTags?: number;
    noteMatches?: string;
    fileNamesSafe?: boolean;
    [field: string]: unknown;
  };
}

const CASES = new URL('./cases/', import.meta.url);
const ROOT = '66604483e3e657a90aba61ea5f7dcfb7d41c033fa6d4576129a990526fd285d9';
const MASS_TAG = /^[\w:\-_/+.]+$/;
const AL_KEY = 'bridge:al-secret-key-123456';
const MASS_KEY = 'mass-instance-secret-abcdef';

const hex64 = (i: number) => i.toString(16).padStart(64, '0');

/** The generated large documents (too big for a data file). */
function generated(g: NonNullable<Case['generate']>): unknown {
  if (g.kind === 'extracted') {
    const children: Record<string, unknown> = {};
    const extracted: unknown[] = [];
    for (let i = 1; i <= g.count; i++) {
      children[hex64(i)] = { name: [`file-${i}.bin`], score: 0, sha256: hex64(i), children: {} };
      extracted.push({ name: `file-${i}.bin`, sha256: hex64(i), description: 'extracted', parent_relation: 'EXTRACTED' });
    }
    return {
      sid: 'bigtree', max_score: 100, files: [{ name: 'root.zip', sha256: ROOT }],
      file_tree: { [ROOT]: { name: ['root.zip'], score: 100, sha256: ROOT, children } },
      results: { [`${ROOT}.Extract.v1.c0`]: { sha256: ROOT, response: { service_name: 'Extract', extracted }, result: { score: 100, sections: [] } } },
    };
  }
  const tags = Array.from({ length: g.count }, (_, i) => ({ type: 'attribution.family', value: `FAMILY_${i}`, safelisted: false }));
  return {
    sid: 'manytags', max_score: 1000, files: [{ name: 'tagged.exe', sha256: ROOT }],
    results: { [`${ROOT}.Tagger.v1.c0`]: { sha256: ROOT, response: { service_name: 'Tagger' }, result: { score: 1000, sections: [{ title_text: 'tags', body_format: 'TEXT', body: 'x', tags }] } } },
  };
}

function at(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.split('.')) v = (v as Record<string, unknown> | null)?.[part];
  return v;
}

function fill(text: string, origins: Record<string, string>): string {
  return text.replace(/\{(MASS|AL|TRAP)\}/g, (_, k: string) => origins[k]);
}

/** A server that answers the first request with the case's answer and later ones with `good`; counts bytes written. */
async function scripted(answer: Answer | undefined, good: (req: IncomingMessage) => { status: number; body: string }, origins: Record<string, string>) {
  let first = true;
  let written = 0;
  const requests: Array<{ method: string; url: string }> = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    req.resume();
    res.on('error', () => {});
    if (!first || !answer) {
      const g = good(req);
      res.writeHead(g.status, { 'content-type': 'application/json' }).end(g.body);
      return;
    }
    first = false;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(answer.headers ?? {})) headers[k] = fill(v, origins);
    if (answer.generateBytes) {
      if (answer.contentLength) headers['content-length'] = String(answer.generateBytes);
      res.writeHead(answer.status, headers);
      const chunk = Buffer.alloc(1 << 20, 0x20);
      chunk.write('{"api_response": {"sid": "huge", "pad": "');
      let left = answer.generateBytes;
      const pump = () => {
        while (left > 0 && !res.destroyed) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          written += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      res.socket?.on('close', () => (left = 0));
      pump();
      return;
    }
    const body = answer.bodyBase64 !== undefined ? Buffer.from(fill(Buffer.from(answer.bodyBase64, 'base64').toString('latin1'), origins), 'latin1') : Buffer.from(fill(answer.body ?? '', origins));
    headers['content-length'] = String(body.length);
    res.writeHead(answer.status, headers).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    written: () => written,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

function checkError(err: unknown, want: NonNullable<Case['expect']['error']>, secrets: string[]): true {
  assert.ok(err instanceof BridgeError, `a BridgeError, got ${String(err)}`);
  if (want.code) assert.equal(err.code, want.code, err.message);
  if (want.message) assert.match(err.message, new RegExp(want.message));
  for (const s of secrets) assert.ok(!`${err.message} ${err.body ?? ''}`.includes(s), 'no secret in the error');
  return true;
}

function checkPlan(c: Case, plan: ReturnType<typeof mapSubmissionToReport>) {
  assert.ok('tags' in plan && 'related' in plan, `an analysis report plan, got ${JSON.stringify(plan).slice(0, 300)}`);
  const opts = defaultMappingOptions();
  assert.ok(plan.tags.length <= (c.expect.maxTags ?? opts.maxTags), `${plan.tags.length} tags`);
  for (const tag of plan.tags) assert.match(tag, MASS_TAG);
  const files = plan.related.filter((r) => r.kind === 'file');
  if (c.expect.maxRelatedFiles !== undefined) assert.ok(files.length <= c.expect.maxRelatedFiles, `${files.length} related files`);
  if (c.expect.noteMatches) assert.ok(plan.notes.some((n) => new RegExp(c.expect.noteMatches as string).test(n)), `a note about it: ${JSON.stringify(plan.notes)}`);
  if (c.expect.fileNamesSafe) {
    assert.ok(files.length > 0);
    for (const f of files) {
      if (f.kind !== 'file') continue;
      // The name is text for MASS (stored, never used as a path there): kept as AL gave it, minus control
      // characters (they would break the multipart header), at most 1024 characters.
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f\u007f]/.test(f.name) && f.name.length > 0 && f.name.length <= 1024, `a safe file name for MASS: ${JSON.stringify(f.name.slice(0, 80))}`);
    }
  }
  // The plan is plain JSON that MASS can take.
  JSON.parse(JSON.stringify(plan.jsonReportObjects));
}

async function runAlClient(c: Case, trap: Recorder) {
  const origins: Record<string, string> = { TRAP: trap.origin };
  const good = () => ({ status: 200, body: JSON.stringify({ api_response: [], api_error_message: '', api_status_code: 200 }) });
  const server = await scripted(c.answer, good, origins);
  origins.AL = server.origin;
  const client = createAssemblylineClient({ url: server.origin, user: 'bridge', auth: 'apikey', apiKey: AL_KEY, timeoutMs: 10_000 });
  try {
    const call = (): Promise<unknown> => {
      switch (c.call) {
        case 'getSubmissionFull':
          return client.getSubmissionFull('4QrLbJ6ov');
        case 'getMessages':
          return client.getMessages('mass-al-bridge', 10);
        case 'ingest':
          return client.ingest({ name: 'a.bin', body: Buffer.from('hello'), metadata: {}, params: { priority: 150 }, notificationQueue: 'q' } as never);
        default:
          throw new Error(`unknown call ${c.call}`);
      }
    };
    if (c.expect.error) await assert.rejects(call(), (err) => checkError(err, c.expect.error!, [AL_KEY, 'al-secret-key-123456']));
    if (c.expect.result) assert.deepEqual(at(await call(), c.expect.result.path), c.expect.result.equals);
    if (c.expect.serverWroteLessThan) assert.ok(server.written() < c.expect.serverWroteLessThan, `the client stopped reading: ${server.written()} bytes written`);
    // Nothing else disturbed: the same client answers the next call normally.
    assert.deepEqual(await client.getMessages('mass-al-bridge', 10), []);
  } finally {
    await client.close();
    await server.close();
  }
}

async function runMassClient(c: Case, trap: Recorder) {
  const origins: Record<string, string> = { TRAP: trap.origin };
  const good = () => ({ status: 200, body: JSON.stringify({ results: [], next: null }) });
  const server = await scripted(c.answer, good, origins);
  origins.MASS = server.origin;
  const client = createMassClient({ apiRoot: `${server.origin}/api/`, apiKey: MASS_KEY, timeoutMs: 10_000 });
  const uuid = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
  try {
    const call = (): Promise<unknown> => {
      switch (c.call) {
        case 'poll':
          return client.poll(uuid);
        case 'getSample':
          return client.getSample(fill(c.url ?? '', origins));
        case 'downloadSample':
          return client.downloadSample(JSON.parse(fill(JSON.stringify(c.sample), origins)) as never);
        default:
          throw new Error(`unknown call ${c.call}`);
      }
    };
    if (c.expect.error) await assert.rejects(call(), (err) => checkError(err, c.expect.error!, [MASS_KEY]));
    if (c.expect.result) assert.deepEqual(at(await call(), c.expect.result.path), c.expect.result.equals);
    assert.deepEqual(await client.poll(uuid), [], 'the same client polls normally next');
  } finally {
    await client.close();
    await server.close();
  }
}

for (const file of readdirSync(CASES).filter((f) => f.endsWith('.json')).sort()) {
  const c = JSON.parse(readFileSync(new URL(file, CASES), 'utf8')) as Case;
  test(`bad input ${file}: ${c.description}`, { timeout: 60_000 }, async (t) => {
    const trap = await startTrap();
    t.after(() => trap.close());
    switch (c.layer) {
      case 'map-report': {
        const full = c.generate ? generated(c.generate) : c.full;
        const plan = mapSubmissionToReport({ full, cacheHit: false, rootSha256: ROOT, now: '2026-11-30T12:00:00Z' }, defaultMappingOptions());
        checkPlan(c, plan);
        break;
      }
      case 'normalise-message': {
        const m = normaliseMessage(c.message);
        assert.ok(m);
        for (const [field, want] of Object.entries(c.expect)) assert.deepEqual((m as unknown as Record<string, unknown>)[field], want, field);
        break;
      }
      case 'al-client':
        await runAlClient(c, trap);
        break;
      case 'mass-client':
        await runMassClient(c, trap);
        break;
    }
    if (c.expect.trapUntouched) assert.deepEqual(trap.requests, [], 'nothing was sent to the other origin');
  });
}
