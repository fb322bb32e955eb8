import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { BridgeError } from '../../src/errors.js';
import { createMassClient, formatMassDate } from '../../src/mass/client.js';
import type { MassClient, ReportSubmission } from '../../src/mass/types.js';

const API_KEY = 'IjZiMDM4ODZk.secret-token-value';

interface Captured {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Responder = (req: Captured, res: ServerResponse, origin: string) => void;

/** A loopback server that records every request verbatim and answers with `respond`. */
async function captureServer(t: { after: (fn: () => unknown) => void }, respond: Responder) {
  const requests: Captured[] = [];
  let origin = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const captured = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(captured);
      respond(captured, res, origin);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { requests, origin, apiRoot: `${origin}/api/` };
}

function client(t: { after: (fn: () => unknown) => void }, apiRoot: string, timeoutMs = 5000): MassClient {
  const c = createMassClient({ apiRoot, apiKey: API_KEY, timeoutMs });
  t.after(() => c.close());
  return c;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

interface Part {
  headers: Record<string, string>;
  name?: string;
  filename?: string;
  body: Buffer;
}

/** A strict multipart reader for the test: CRLF everywhere, one closing delimiter. */
function parseMultipart(contentType: string | undefined, body: Buffer): Part[] {
  const boundary = /boundary=([^;]+)/.exec(contentType ?? '')?.[1];
  assert.ok(boundary, 'multipart Content-Type carries a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  assert.equal(pos, 0, 'body starts with the first delimiter');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') {
      assert.equal(body.subarray(pos + 2).toString(), '\r\n', 'closing delimiter ends with CRLF');
      return parts;
    }
    assert.equal(body.subarray(pos, pos + 2).toString(), '\r\n');
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos + 2, headerEnd).toString('utf8').split('\r\n')) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    const disposition = headers['content-disposition'] ?? '';
    parts.push({
      headers,
      name: /\bname="([^"]*)"/.exec(disposition)?.[1],
      filename: /\bfilename="([^"]*)"/.exec(disposition)?.[1],
      body: body.subarray(headerEnd + 4, next),
    });
    pos = next + 2;
  }
}

test('formatMassDate writes UTC seconds with +00:00', () => {
  assert.equal(formatMassDate(new Date(Date.UTC(2026, 10, 23, 0, 25, 1, 123))), '2026-11-23T00:25:01+00:00');
  assert.equal(formatMassDate('2026-11-23T02:25:01.5+02:00'), '2026-11-23T00:25:01+00:00');
  assert.throws(() => formatMassDate('yesterday'), (err: BridgeError) => err.code === 'INTERNAL');
});

test('submitReport sends metadata as a plain field and objects keyed by part name', async (t) => {
  const srv = await captureServer(t, (req, res, origin) =>
    json(res, 201, { id: 'r1', url: `${origin}/api/report/r1/`, status: 0, error_message: null }),
  );
  const mass = client(t, srv.apiRoot);
  const report = await mass.submitReport('6b03886dd37612e074507578', {
    analysisDate: new Date(Date.UTC(2026, 10, 23, 0, 25, 1, 123)),
    tags: ['al:verdict:malicious', 'al:score:1000'],
    additionalMetadata: { assemblyline: { sid: 'S1', max_score: 1000 } },
    jsonReportObjects: { al_result: { sid: 'S1', files: 2 } },
    rawReportObjects: { al_ontology: Buffer.from([0, 1, 2, 255]), notes: { data: 'plain text', contentType: 'text/plain', filename: 'notes.txt' } },
  });
  assert.equal(report.id, 'r1');
  const [req] = srv.requests;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/api/scheduled_analysis/6b03886dd37612e074507578/submit_report/');
  assert.equal(req.headers.authorization, `APIKEY ${API_KEY}`);
  assert.equal(Number(req.headers['content-length']), req.body.length);
  const parts = parseMultipart(req.headers['content-type'], req.body);
  const byName = new Map(parts.map((p) => [p.name, p]));
  assert.deepEqual([...byName.keys()], ['metadata', 'al_result', 'al_ontology', 'notes']);

  const metadata = byName.get('metadata')!;
  assert.equal(metadata.filename, undefined, 'metadata must not carry a filename');
  assert.doesNotMatch(metadata.headers['content-disposition'], /filename/);
  assert.deepEqual(JSON.parse(metadata.body.toString()), {
    analysis_date: '2026-11-23T00:25:01+00:00',
    tags: ['al:verdict:malicious', 'al:score:1000'],
    additional_metadata: { assemblyline: { sid: 'S1', max_score: 1000 } },
    error_message: null,
    status: 0,
  });

  const jsonPart = byName.get('al_result')!;
  assert.equal(jsonPart.filename, 'al_result.json');
  assert.equal(jsonPart.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(jsonPart.body.toString()), { sid: 'S1', files: 2 });

  const raw = byName.get('al_ontology')!;
  assert.ok(raw.filename);
  assert.equal(raw.headers['content-type'], 'binary/octet-stream');
  assert.deepEqual([...raw.body], [0, 1, 2, 255]);
  assert.equal(byName.get('notes')!.headers['content-type'], 'text/plain');
  assert.equal(byName.get('notes')!.filename, 'notes.txt');
});

test('an error report carries error_message and defaults analysis_date to now', async (t) => {
  const srv = await captureServer(t, (_req, res) => json(res, 201, { id: 'r2' }));
  const mass = client(t, srv.apiRoot);
  await mass.submitReport({ id: 'x', url: `${srv.apiRoot}scheduled_analysis/abc/` } as never, { errorMessage: 'boom' });
  const [req] = srv.requests;
  assert.equal(req.url, '/api/scheduled_analysis/abc/submit_report/');
  const metadata = JSON.parse(parseMultipart(req.headers['content-type'], req.body)[0].body.toString());
  assert.equal(metadata.error_message, 'boom');
  assert.match(metadata.analysis_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
});

test('invalid keys and tags are refused before anything is sent', async (t) => {
  const srv = await captureServer(t, (_req, res) => json(res, 201, {}));
  const mass = client(t, srv.apiRoot);
  const cases: ReportSubmission[] = [
    { jsonReportObjects: { 'file size': 1 } },
    { rawReportObjects: { 'a/b': 'x' } },
    { jsonReportObjects: { metadata: 1 } },
    { jsonReportObjects: { dup: 1 }, rawReportObjects: { dup: 'x' } },
    { rawReportObjects: { r: { data: '{}', contentType: 'application/json' } } },
    { tags: ['has space'] },
    { tags: ['a,b'] },
    { additionalMetadata: { 'a.b': 1 } },
    { additionalMetadata: { outer: [{ $where: 1 }] } },
  ];
  for (const report of cases) {
    await assert.rejects(mass.submitReport('abc', report), (err: BridgeError) => {
      assert.equal(err.code, 'INTERNAL', JSON.stringify(report));
      assert.equal(err.transient, false);
      return true;
    });
  }
  await assert.rejects(mass.submitIPSample('203.0.113.7', { tags: ['bad tag'] }), (err: BridgeError) => err.code === 'INTERNAL');
  await assert.rejects(mass.submitIPSample('203.0.113.7', { tlpLevel: 7 }), (err: BridgeError) => err.code === 'INTERNAL');
  assert.equal(srv.requests.length, 0);
});

test('HTTP errors map to BridgeError codes without leaking the key', async (t) => {
  const srv = await captureServer(t, (req, res) => {
    if (req.url.includes('forbidden')) return json(res, 403, { error: 'You do not have access to this resource.' });
    if (req.url.includes('scheduled_analyses')) return json(res, 404, { error: "Analysis instance  'u1' not found" });
    if (req.url.includes('missing')) return json(res, 404, { error: "No object with key 'missing' found" });
    if (req.url.includes('notjson')) return json(res, 200, undefined);
    res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>' + 'x'.repeat(5000));
  });
  const mass = client(t, srv.apiRoot);

  await assert.rejects(mass.getSample('forbidden'), (err: BridgeError) => {
    assert.equal(err.code, 'AUTH');
    assert.equal(err.upstream, 'mass');
    assert.equal(err.status, 403);
    assert.match(err.message, /key/);
    assert.match(err.message, /uuid/);
    assert.ok(!JSON.stringify({ m: err.message, e: err.toJSON(), b: err.body }).includes(API_KEY));
    return true;
  });
  await assert.rejects(mass.poll('u1'), (err: BridgeError) => {
    assert.equal(err.code, 'NOT_FOUND');
    assert.match(err.message, /another instance/);
    return true;
  });
  await assert.rejects(mass.getScheduledAnalysis('missing'), (err: BridgeError) => err.code === 'NOT_FOUND' && err.transient === false);
  await assert.rejects(mass.getSample('boom'), (err: BridgeError) => {
    assert.equal(err.code, 'UPSTREAM_HTTP');
    assert.equal(err.status, 500);
    assert.equal(err.transient, true);
    assert.match(err.body ?? '', /Internal Server Error/);
    assert.ok((err.body ?? '').length < 300, 'body excerpt is short');
    return true;
  });
  await assert.rejects(mass.getSample('notjson'), (err: BridgeError) => err.code === 'UPSTREAM_PROTOCOL');
});

test('network failures, timeouts and aborts', async (t) => {
  // A port that was just released: connection refused.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(client(t, `http://127.0.0.1:${port}/api/`).getInstance('u'), (err: BridgeError) => {
    assert.equal(err.code, 'NETWORK');
    assert.equal(err.transient, true);
    return true;
  });

  // A server that never answers.
  const pending: ServerResponse[] = [];
  const silent = createServer((_req, res) => pending.push(res));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const res of pending) res.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const silentRoot = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/`;
  await assert.rejects(client(t, silentRoot, 150).getInstance('u'), (err: BridgeError) => {
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(err.transient, true);
    return true;
  });

  const controller = new AbortController();
  const call = client(t, silentRoot).poll('u', { signal: controller.signal });
  controller.abort();
  await assert.rejects(call, (err: BridgeError) => err.code === 'ABORTED' && err.transient === false);
  await assert.rejects(client(t, silentRoot).poll('u', { signal: AbortSignal.abort() }), (err: BridgeError) => err.code === 'ABORTED');
});

test('findSamples re-sends the filters with every page', async (t) => {
  const srv = await captureServer(t, (req, res, origin) => {
    const page = Number(new URL(req.url, origin).searchParams.get('page') ?? '1');
    json(res, 200, {
      results: [{ id: `s${page}` }],
      // MASS's next/previous carry only `page`.
      next: page < 3 ? `${origin}/api/sample/?page=${page + 1}` : null,
      previous: page > 1 ? `${origin}/api/sample/?page=${page - 1}` : null,
    });
  });
  const mass = client(t, srv.apiRoot);
  const found = await mass.findSamples({ sha256sum: 'ab'.repeat(32), first_seen__gte: '2026-11-23T00:00:00+00:00' });
  assert.deepEqual(found.map((s) => s.id), ['s1', 's2', 's3']);
  assert.equal(srv.requests.length, 3);
  srv.requests.forEach((req, i) => {
    const url = new URL(req.url, srv.origin);
    assert.equal(url.pathname, '/api/sample/');
    assert.equal(url.searchParams.get('sha256sum'), 'ab'.repeat(32));
    assert.equal(url.searchParams.get('first_seen__gte'), '2026-11-23T00:00:00+00:00');
    assert.match(req.url, /%2B00%3A00|%2B00:00/, 'the + of a date filter is encoded');
    assert.equal(url.searchParams.get('page'), i === 0 ? null : String(i + 1));
  });
});

test('new samples: JSON bodies always carry tlp_level; file upload is multipart with a plain metadata field', async (t) => {
  const srv = await captureServer(t, (req, res, origin) => json(res, 201, { id: 'n', url: `${origin}/api/sample/n/`, _cls: 'Sample.IPSample' }));
  const mass = client(t, srv.apiRoot);
  await mass.submitIPSample('203.0.113.7');
  await mass.submitDomainSample('malicious.example.com', { tags: ['al:network'] });
  await mass.submitURISample('http://malicious.example.com/p?id=7', { tlpLevel: 0 });
  await mass.submitFileSample({ filename: 'dropped "x".exe', body: Buffer.from('MZ\x90\x00'), tags: ['al:extracted'] });
  const [ip, domain, uri, file] = srv.requests;
  assert.equal(ip.url, '/api/sample/submit_ip/');
  assert.equal(ip.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(ip.body.toString()), { ip_address: '203.0.113.7', tlp_level: 0, tags: [] });
  assert.deepEqual(JSON.parse(domain.body.toString()), { domain: 'malicious.example.com', tlp_level: 0, tags: ['al:network'] });
  assert.equal(uri.url, '/api/sample/submit_uri/');
  assert.deepEqual(JSON.parse(uri.body.toString()), { uri: 'http://malicious.example.com/p?id=7', tlp_level: 0, tags: [] });

  assert.equal(file.url, '/api/sample/submit_file/');
  const parts = parseMultipart(file.headers['content-type'], file.body);
  const filePart = parts.find((p) => p.name === 'file')!;
  assert.equal(filePart.filename, 'dropped %22x%22.exe');
  assert.equal(filePart.headers['content-type'], 'binary/octet-stream');
  assert.deepEqual(filePart.body, Buffer.from('MZ\x90\x00'));
  const metadata = parts.find((p) => p.name === 'metadata')!;
  assert.equal(metadata.filename, undefined);
  assert.deepEqual(JSON.parse(metadata.body.toString()), { tlp_level: 0, tags: ['al:extracted'] });
});

/** A generated source: `total` bytes in 64 KiB chunks, counting what has been pulled from it. */
function generatedSource(total: number): { stream: Readable; pulled: () => number; sha256: string } {
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += chunk.length) hash.update(chunk.subarray(0, Math.min(chunk.length, total - sent)));
  let pulled = 0;
  const stream = Readable.from(
    (function* () {
      while (pulled < total) {
        const piece = chunk.subarray(0, Math.min(chunk.length, total - pulled));
        pulled += piece.length;
        yield piece;
      }
    })(),
    { objectMode: false },
  );
  return { stream, pulled: () => pulled, sha256: hash.digest('hex') };
}

test('a file upload is streamed: chunked, read only as fast as the server takes it', async (t) => {
  const total = 64 * 1024 * 1024;
  const source = generatedSource(total);
  let pulledWhenServerHadFirstMiB = -1;
  let received = 0;
  const hash = createHash('sha256');
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  // This server hashes the body as it arrives instead of keeping it.
  const server = createServer((req, res) => {
    transferEncoding = req.headers['transfer-encoding'];
    contentLength = req.headers['content-length'];
    req.on('data', (c: Buffer) => {
      received += c.length;
      hash.update(c);
      if (pulledWhenServerHadFirstMiB < 0 && received >= 1024 * 1024) pulledWhenServerHadFirstMiB = source.pulled();
    });
    req.on('end', () => json(res, 201, { id: 'big' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const mass = client(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`);

  const sample = await mass.submitFileSample({ filename: 'big.bin', body: source.stream });
  assert.equal(sample.id, 'big');
  assert.equal(transferEncoding, 'chunked');
  assert.equal(contentLength, undefined);
  assert.equal(source.pulled(), total);
  assert.ok(received > total);
  // A client that buffers would have read all 64 MiB before the server saw its first MiB.
  assert.ok(pulledWhenServerHadFirstMiB > 0 && pulledWhenServerHadFirstMiB < 32 * 1024 * 1024, `pulled ${pulledWhenServerHadFirstMiB}`);
});

test('an upload of known size carries Content-Length and the exact bytes', async (t) => {
  const total = 3 * 1024 * 1024 + 17;
  const source = generatedSource(total);
  const srv = await captureServer(t, (_req, res) => json(res, 201, { id: 'sized' }));
  const mass = client(t, srv.apiRoot);
  await mass.submitFileSample({ filename: 'sized.bin', body: source.stream, size: total, tlpLevel: 0 });
  const [req] = srv.requests;
  assert.equal(Number(req.headers['content-length']), req.body.length);
  assert.equal(req.headers['transfer-encoding'], undefined);
  const filePart = parseMultipart(req.headers['content-type'], req.body).find((p) => p.name === 'file')!;
  assert.equal(createHash('sha256').update(filePart.body).digest('hex'), source.sha256);
});

test('downloadSample hands back the streaming body and its size', async (t) => {
  const bytes = Buffer.alloc(2 * 1024 * 1024, 7);
  const srv = await captureServer(t, (req, res) => {
    if (req.url.includes('hidden')) return json(res, 404, { error: "No object with key 'hidden' found" });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
  });
  const mass = client(t, srv.apiRoot);
  const download = await mass.downloadSample({ id: 's1', _cls: 'Sample.FileSample', file: `${srv.apiRoot}sample/s1/download/` } as never);
  assert.ok(download.body instanceof Readable);
  assert.equal(download.size, bytes.length);
  let n = 0;
  for await (const c of download.body) n += (c as Buffer).length;
  assert.equal(n, bytes.length);
  await (await mass.downloadSample('s2')).body.resume();
  assert.equal(srv.requests[1].url, '/api/sample/s2/download/');
  await assert.rejects(mass.downloadSample('hidden'), (err: BridgeError) => err.code === 'NOT_FOUND');
  await assert.rejects(mass.downloadSample({ id: 'ip', _cls: 'Sample.IPSample' } as never), (err: BridgeError) => err.code === 'SAMPLE_NOT_FILE');
});

test('relations, polls and admin calls use the documented paths with trailing slashes', async (t) => {
  const srv = await captureServer(t, (req, res) => {
    if (req.url.endsWith('scheduled_analyses/')) return json(res, 200, { results: [{ id: 'sa1' }] });
    json(res, req.method === 'POST' ? 201 : 200, { id: 'x', results: [] });
  });
  const mass = client(t, srv.apiRoot);
  const parent = `${srv.apiRoot}sample/p1/`;
  await mass.addRelation('dropped-by', `${srv.apiRoot}sample/c1/`, parent);
  await mass.addRelation('contacted-by', `${srv.apiRoot}sample/ip1`, parent);
  await mass.addRelation('resolved-by', `${srv.apiRoot}sample/d1/`, parent);
  await mass.addRelation('retrieved-by', `${srv.apiRoot}sample/u1/`, parent);
  assert.deepEqual((await mass.poll('f777474b-f97c-4a11-861f-124ef48684c2')).map((s) => s.id), ['sa1']);
  await mass.listSampleReports(parent);
  await mass.getAnalysisSystem('assemblyline');
  await mass.createAnalysisSystem({ identifier_name: 'assemblyline', verbose_name: 'AL', tag_filter_expression: 'sample-type:filesample' });
  await mass.createInstance(`${srv.apiRoot}analysis_system/assemblyline/`, 'f777474b-f97c-4a11-861f-124ef48684c2');
  assert.deepEqual(
    srv.requests.map((r) => `${r.method} ${r.url}`),
    [
      'POST /api/sample_relation/submit_dropped_by/',
      'POST /api/sample_relation/submit_contacted_by/',
      'POST /api/sample_relation/submit_resolved_by/',
      'POST /api/sample_relation/submit_retrieved_by/',
      'GET /api/analysis_system_instance/f777474b-f97c-4a11-861f-124ef48684c2/scheduled_analyses/',
      'GET /api/sample/p1/reports/',
      'GET /api/analysis_system/assemblyline/',
      'POST /api/analysis_system/',
      'POST /api/analysis_system_instance/',
    ],
  );
  assert.deepEqual(JSON.parse(srv.requests[0].body.toString()), { sample: `${srv.apiRoot}sample/c1/`, other: parent });
  assert.deepEqual(JSON.parse(srv.requests[1].body.toString()), { sample: `${srv.apiRoot}sample/ip1/`, other: parent });
  assert.deepEqual(JSON.parse(srv.requests[8].body.toString()), {
    analysis_system: `${srv.apiRoot}analysis_system/assemblyline/`,
    uuid: 'f777474b-f97c-4a11-861f-124ef48684c2',
  });
  // The key never goes to another origin.
  await assert.rejects(mass.addRelation('dropped-by', 'http://mass.example.org/api/sample/c1/', parent), (err: BridgeError) => err.code === 'UPSTREAM_PROTOCOL');
  assert.equal(srv.requests.length, 9);
  await mass.close();
  await mass.close();
});

test('an upload refused early stops reading the source and reports AUTH', async (t) => {
  const total = 64 * 1024 * 1024;
  const source = generatedSource(total);
  // Answers before reading the body, as MASS's auth check does.
  const server = createServer((_req, res) => json(res, 403, { error: 'You do not have access to this resource.' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const mass = client(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`);
  await assert.rejects(mass.submitFileSample({ filename: 'big.bin', body: source.stream }), (err: BridgeError) => err.code === 'AUTH');
  assert.equal(source.stream.destroyed, true);
  assert.ok(source.pulled() < total);
});
