/**
 * The Assemblyline client against a small recording HTTP server (node:http on 127.0.0.1:0):
 * wire format, auth headers per mode, session re-login, error classification, streaming, limits.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { BridgeError, isTransient } from '../../src/errors.js';
import { createAssemblylineClient, USER_AGENT } from '../../src/assemblyline/client.js';
import { encodeCart } from '../../src/assemblyline/cart.js';
import type { AssemblylineClient, AssemblylineClientOptions, IngestRequest } from '../../src/assemblyline/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/assemblyline-fixtures/', import.meta.url));
const fixture = (name: string): unknown => JSON.parse(readFileSync(FIXTURES + name, 'utf8'));
const API_KEY = 'bridgekey:s3cr3t-NOT-REAL-4f9a';
const PASSWORD = 'pw-NOT-REAL-77c1';
const SHA = '3f6492021893dd0b94e38a54824c48fa2824cbdcfb923d9e8382e6342f01804f';

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (req: Recorded, res: ServerResponse) => void | Promise<void>;

interface TestServer {
  url: string;
  requests: Recorded[];
}

function envelope(res: ServerResponse, status: number, payload: unknown, message = '', headers: Record<string, string | string[]> = {}): void {
  const body = JSON.stringify({ api_error_message: message, api_response: payload, api_server_version: '4.7.4.stable6', api_status_code: status });
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
}

function sendFixture(res: ServerResponse, name: string, headers: Record<string, string | string[]> = {}): void {
  const doc = fixture(name) as { api_status_code: number };
  res.writeHead(doc.api_status_code, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(doc));
}

/** Starts a server that reads each request body fully, records it, then calls `handler`. */
async function startServer(t: TestContext, handler: Handler, raw?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<TestServer> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    if (raw?.(req, res)) return;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(rec);
      Promise.resolve(handler(rec, res)).catch((err: unknown) => {
        res.writeHead(599);
        res.end(String(err));
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function client(t: TestContext, url: string, extra: Partial<AssemblylineClientOptions> = {}): AssemblylineClient {
  const c = createAssemblylineClient({ url, user: 'mass-bridge', auth: 'apikey', apiKey: API_KEY, timeoutMs: 5000, ...extra });
  t.after(() => c.close());
  return c;
}

interface Part {
  headers: Record<string, string>;
  name: string;
  filename?: string;
  body: Buffer;
}

function parseMultipart(contentType: string, body: Buffer): Part[] {
  const m = /boundary=([^;]+)/.exec(contentType);
  assert.ok(m, `no boundary in ${contentType}`);
  const boundary = Buffer.from(`--${m[1]}`);
  const parts: Part[] = [];
  let pos = body.indexOf(boundary);
  assert.equal(pos, 0, 'body starts with the boundary');
  for (;;) {
    pos += boundary.length;
    if (body.subarray(pos, pos + 2).toString() === '--') {
      assert.equal(body.subarray(pos).toString(), '--\r\n', 'closing boundary ends the body');
      break;
    }
    assert.equal(body.subarray(pos, pos + 2).toString(), '\r\n');
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    const headerLines = body.subarray(pos + 2, headerEnd).toString('utf8').split('\r\n');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headerEnd);
    const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const disposition = headers['content-disposition'];
    parts.push({
      headers,
      name: /name="([^"]*)"/.exec(disposition)?.[1] ?? '',
      filename: /filename="([^"]*)"/.exec(disposition)?.[1],
      body: body.subarray(headerEnd + 4, next),
    });
    pos = next + 2;
  }
  return parts;
}

function ingestRequest(body: IngestRequest['body'], extra: Partial<IngestRequest> = {}): IngestRequest {
  return {
    name: 'invoice_2026-03.exe',
    body,
    metadata: { mass_scheduled_analysis: '65f1c0a2e4b0a1d2c3e4f6aa', mass_sample: '65f1c0a2e4b0a1d2c3e4f501', bridge_instance: 'i1', bridge_job: '7' },
    params: { priority: 200, generate_alert: false, never_drop: true },
    notificationQueue: 'mass-bridge-results',
    ...extra,
  };
}

async function rejectsWith(p: Promise<unknown>, check: (err: BridgeError) => void): Promise<BridgeError> {
  let caught: unknown;
  await p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof BridgeError, `expected BridgeError, got ${String(caught)}`);
  check(caught);
  return caught;
}

function assertNoSecrets(err: BridgeError): void {
  const text = `${err.message} ${err.body ?? ''} ${JSON.stringify(err)}`;
  for (const secret of [API_KEY, 's3cr3t-NOT-REAL-4f9a', PASSWORD, 'flask-signed']) assert.ok(!text.includes(secret), `secret leaked: ${text}`);
}

// --- ingest wire format ---------------------------------------------------------------------------

test('ingest sends the official client multipart layout with API key headers', async (t) => {
  const srv = await startServer(t, (_req, res) => sendFixture(res, 'responses/ingest.json'));
  const al = client(t, srv.url);
  const file = Buffer.from('MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 fixture bytes', 'latin1');
  const { ingestId } = await al.ingest(ingestRequest(file, { submissionProfile: 'static_with_dynamic', type: 'MASS' }));
  assert.equal(ingestId, '4Hc0QBr3BzVoArs3KbVHIW');

  assert.equal(srv.requests.length, 1);
  const req = srv.requests[0];
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/api/v4/ingest/');
  assert.equal(req.headers['x-user'], 'mass-bridge');
  assert.equal(req.headers['x-apikey'], API_KEY);
  assert.equal(req.headers.cookie, undefined);
  assert.equal(req.headers['content-length'], String(req.body.length), 'a Buffer body is sent with its length');

  const official = (fixture('client-requests.json') as Array<{ request: { body_kind: string; body: Array<{ name: string; filename: string | null; body: string }> } }>)
    .filter((e) => e.request.body_kind === 'multipart')
    .map((e) => e.request.body);
  const parts = parseMultipart(String(req.headers['content-type']), req.body);
  assert.deepEqual(
    parts.map((p) => p.name),
    official[0].map((p) => p.name),
    'parts json then bin, like the official client',
  );
  const officialKeys = new Set(official.flatMap((parts) => Object.keys(JSON.parse(parts[0].body) as object)));
  const options = JSON.parse(parts[0].body.toString('utf8')) as Record<string, unknown>;
  for (const key of Object.keys(options)) assert.ok(officialKeys.has(key), `json key ${key} is one the official client sends`);
  assert.deepEqual(options, {
    name: 'invoice_2026-03.exe',
    metadata: ingestRequest(file).metadata,
    params: { priority: 200, generate_alert: false, never_drop: true },
    notification_queue: 'mass-bridge-results',
    submission_profile: 'static_with_dynamic',
    type: 'MASS',
  });
  assert.equal(parts[0].filename, undefined, 'the json part is a form field, not a file');
  assert.equal(parts[1].filename, 'invoice_2026-03.exe');
  assert.equal(parts[1].headers['content-type'], 'application/octet-stream');
  assert.deepEqual(parts[1].body, file);
});

test('ingest defaults the type to MASS, omits an unset profile and escapes quotes in the file name', async (t) => {
  const srv = await startServer(t, (_req, res) => sendFixture(res, 'responses/ingest.json'));
  const al = client(t, srv.url);
  await al.ingest(ingestRequest(Buffer.from('x'), { name: 'a "quoted"\nname.exe' }));
  const parts = parseMultipart(String(srv.requests[0].headers['content-type']), srv.requests[0].body);
  const options = JSON.parse(parts[0].body.toString('utf8')) as Record<string, unknown>;
  assert.equal(options.type, 'MASS');
  assert.equal('submission_profile' in options, false);
  assert.equal(options.name, 'a "quoted"\nname.exe');
  assert.equal(parts[1].filename, 'a %22quoted%22%0Aname.exe');
});

test('a Readable body is streamed chunked: the server sees bytes before the source has produced them all', async (t) => {
  let received = 0;
  let serverSawData!: () => void;
  const sawData = new Promise<void>((resolve) => (serverSawData = resolve));
  let chunked = false;
  const srv = await startServer(
    t,
    () => undefined,
    (req, res) => {
      chunked = req.headers['transfer-encoding'] === 'chunked';
      req.on('data', (c: Buffer) => {
        received += c.length;
        if (received > 256 * 1024) serverSawData();
      });
      req.on('end', () => envelope(res, 200, { ingest_id: 'streamed1' }));
      return true;
    },
  );
  const al = client(t, srv.url);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const chunks = 64;
  async function* source(): AsyncGenerator<Buffer> {
    for (let i = 0; i < chunks; i++) {
      // Halfway through, wait for the server to have received data: a buffering client would deadlock here.
      if (i === chunks / 2) await sawData;
      yield chunk;
    }
  }
  const { ingestId } = await al.ingest(ingestRequest(Readable.from(source())));
  assert.equal(ingestId, 'streamed1');
  assert.ok(chunked, 'unknown length → chunked transfer encoding');
  assert.ok(received > chunks * chunk.length, 'whole file plus multipart framing arrived');
});

test('a Readable body with a known size is sent with Content-Length', async (t) => {
  const srv = await startServer(t, (_req, res) => envelope(res, 200, { ingest_id: 'sized' }));
  const al = client(t, srv.url);
  const data = Buffer.alloc(10_000, 7);
  await al.ingest(ingestRequest(Readable.from([data.subarray(0, 4000), data.subarray(4000)]), { size: data.length }));
  const req = srv.requests[0];
  assert.equal(req.headers['content-length'], String(req.body.length));
  assert.equal(req.headers['transfer-encoding'], undefined);
  assert.deepEqual(parseMultipart(String(req.headers['content-type']), req.body)[1].body, data);
});

test('a failing source stream is reported as a source failure, not as an Assemblyline one', async (t) => {
  const srv = await startServer(t, (_req, res) => envelope(res, 200, { ingest_id: 'never' }));
  const al = client(t, srv.url);
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(1024);
    throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  }
  await rejectsWith(al.ingest(ingestRequest(Readable.from(broken()))), (e) => {
    assert.equal(e.code, 'NETWORK');
    assert.equal(e.transient, true);
    assert.notEqual(e.upstream, 'assemblyline');
    assert.match(e.message, /reading the file to ingest failed/);
  });
  const massError = new BridgeError('NETWORK', 'MASS download broke', { upstream: 'mass' });
  async function* massBroken(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(10);
    throw massError;
  }
  await assert.rejects(al.ingest(ingestRequest(Readable.from(massBroken()))), (e: unknown) => e === massError);
});

// --- auth modes ---------------------------------------------------------------------------------

test('a client certificate is a TLS option: API-key headers are still sent with it; certificate auth is refused with the fix', async (t) => {
  const srv = await startServer(t, (_req, res) => sendFixture(res, 'responses/submission-is-completed.json'));
  const al = client(t, srv.url, { auth: 'apikey', clientCert: 'CERT', clientKey: 'KEY' });
  assert.equal(await al.isCompleted('4Hc0QBr3BzVoArs3KbVHIW'), true);
  const h = srv.requests[0].headers;
  assert.equal(h['x-user'], 'mass-bridge');
  assert.ok(h['x-apikey'], 'the API key goes with the certificate');
  assert.throws(
    () => createAssemblylineClient({ url: 'https://al', user: 'u', auth: 'certificate' as 'apikey', clientCert: 'C', clientKey: 'K' }),
    (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID' && /no certificate authentication/.test(e.message) && /Auth = apikey/.test(e.message),
  );
});

/** A session-login AL: v3 probe 404, login sets cookies, every API call checks cookie + XSRF + User-Agent. */
function sessionServer(t: TestContext, opts: { expireOnce?: RegExp; expiryMessage?: string } = {}) {
  let sessionNo = 0;
  let valid = '';
  let loginUa = '';
  let expireNext = false;
  let expired = false;
  const state = {
    logins: 0,
    expire(): void {
      expireNext = true;
    },
  };
  return startServer(t, (req, res) => {
    if (req.url === '/api/v3/auth/init/') return envelope(res, 404, '', 'Api does not exist (/api/v3/auth/init/)');
    if (req.url === '/api/v4/auth/login/') {
      const body = JSON.parse(req.body.toString()) as Record<string, unknown>;
      if (body.user !== 'mass-bridge' || body.password !== PASSWORD) return envelope(res, 401, '', 'Wrong username or password');
      state.logins++;
      sessionNo++;
      valid = `flask-signed-session-${sessionNo}`;
      loginUa = String(req.headers['user-agent']);
      return envelope(res, 200, { roles_limit: null, session_duration: 3600, username: 'mass-bridge' }, '', {
        'set-cookie': [`XSRF-TOKEN=xsrf-${sessionNo}; Path=/`, `session=${valid}; Expires=Mon, 23 Nov 2099 01:35:49 GMT; HttpOnly; Path=/; SameSite=None`],
      });
    }
    const cookie = String(req.headers.cookie ?? '');
    const clear = { 'set-cookie': ['session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/; SameSite=None', 'XSRF-TOKEN=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'] };
    if ((expireNext && (!opts.expireOnce || opts.expireOnce.test(req.url))) || expired) {
      if (expireNext) {
        expireNext = false;
        expired = true;
        valid = '';
      }
      if (!cookie.includes(`session=${valid}`) || valid === '') return envelope(res, 401, { allow_userpass_login: true }, opts.expiryMessage ?? 'Session expired', clear);
      expired = false;
    }
    if (!valid || !cookie.includes(`session=${valid}`)) return envelope(res, 401, { allow_userpass_login: true }, 'Session not found', clear);
    if (req.headers['user-agent'] !== loginUa) return envelope(res, 401, { allow_userpass_login: true }, 'Invalid user agent for this session', clear);
    if (req.headers['x-xsrf-token'] !== `xsrf-${sessionNo}`) return envelope(res, 403, '', 'Invalid XSRF token');
    if (req.url.startsWith('/api/v4/ingest/')) return envelope(res, 200, { ingest_id: `ingest-${sessionNo}` });
    return envelope(res, 200, true);
  }).then((srv) => ({ ...srv, state }));
}

test('password mode logs in like the official client and sends cookies, XSRF header and a stable User-Agent', async (t) => {
  const srv = await sessionServer(t);
  const al = client(t, srv.url, { auth: 'password', apiKey: undefined, password: PASSWORD });
  assert.equal(await al.isCompleted('sid1'), true);
  assert.equal(await al.isCompleted('sid2'), true);
  assert.deepEqual(
    srv.requests.map((r) => `${r.method} ${r.url}`),
    ['GET /api/v3/auth/init/', 'POST /api/v4/auth/login/', 'GET /api/v4/submission/is_completed/sid1/', 'GET /api/v4/submission/is_completed/sid2/'],
  );
  assert.deepEqual(JSON.parse(srv.requests[1].body.toString()), { user: 'mass-bridge', password: PASSWORD });
  const call = srv.requests[2].headers;
  assert.equal(call.cookie, 'XSRF-TOKEN=xsrf-1; session=flask-signed-session-1');
  assert.equal(call['x-xsrf-token'], 'xsrf-1');
  assert.equal(call['x-user'], undefined);
  assert.equal(call['x-apikey'], undefined);
  for (const r of srv.requests) assert.equal(r.headers['user-agent'], USER_AGENT);
});

test('password mode: on an expired session the client logs in again once and repeats the request', async (t) => {
  const srv = await sessionServer(t);
  const al = client(t, srv.url, { auth: 'password', apiKey: undefined, password: PASSWORD });
  assert.equal(await al.isCompleted('sid1'), true);
  srv.state.expire();
  assert.equal(await al.isCompleted('sid2'), true);
  assert.deepEqual(
    srv.requests.map((r) => `${r.method} ${r.url}`).slice(3),
    ['GET /api/v4/submission/is_completed/sid2/', 'GET /api/v3/auth/init/', 'POST /api/v4/auth/login/', 'GET /api/v4/submission/is_completed/sid2/'],
  );
  assert.equal(srv.requests.at(-1)?.headers.cookie, 'XSRF-TOKEN=xsrf-2; session=flask-signed-session-2');
  assert.equal(srv.state.logins, 2);
});

test('password mode: concurrent requests refused with an expired session share one new login', async (t) => {
  const srv = await sessionServer(t);
  const al = client(t, srv.url, { auth: 'password', apiKey: undefined, password: PASSWORD, maxConcurrentCalls: 4 });
  await al.isCompleted('warmup');
  srv.state.expire();
  const answers = await Promise.all(['a', 'b', 'c', 'd'].map((sid) => al.isCompleted(sid)));
  assert.deepEqual(answers, [true, true, true, true]);
  assert.equal(srv.state.logins, 2, 'one login at start, one shared re-login');
});

test('password mode: a refused login and a non-session 401 are fatal AUTH errors without secrets', async (t) => {
  const srv = await sessionServer(t);
  const wrong = client(t, srv.url, { auth: 'password', apiKey: undefined, password: 'wrong-password-123' });
  const err = await rejectsWith(wrong.isCompleted('sid1'), (e) => {
    assert.equal(e.code, 'AUTH');
    assert.equal(e.transient, false);
    assert.match(e.message, /Wrong username or password/);
  });
  assert.ok(!err.message.includes('wrong-password-123'));

  const srv2 = await startServer(t, (req, res) => {
    if (req.url === '/api/v3/auth/init/') return envelope(res, 404, '', 'Api does not exist (/api/v3/auth/init/)');
    if (req.url === '/api/v4/auth/login/') return envelope(res, 200, {}, '', { 'set-cookie': ['session=flask-signed-x; Path=/', 'XSRF-TOKEN=tok; Path=/'] });
    return envelope(res, 401, {}, 'This owner of this API Key is not active.');
  });
  const al = client(t, srv2.url, { auth: 'password', apiKey: undefined, password: PASSWORD });
  const e2 = await rejectsWith(al.getSubmission('sid'), (e) => {
    assert.equal(e.code, 'AUTH');
    assert.equal(e.status, 401);
  });
  assertNoSecrets(e2);
  assert.equal(srv2.requests.filter((r) => r.url === '/api/v4/auth/login/').length, 1, 'no re-login for a non-session 401');
});

test('password mode: a session that stays refused after re-login is fatal', async (t) => {
  const srv = await startServer(t, (req, res) => {
    if (req.url === '/api/v3/auth/init/') return envelope(res, 404, '', 'Api does not exist (/api/v3/auth/init/)');
    if (req.url === '/api/v4/auth/login/') return envelope(res, 200, {}, '', { 'set-cookie': ['session=flask-signed-y; Path=/'] });
    return envelope(res, 401, {}, 'Invalid source IP for this session');
  });
  const al = client(t, srv.url, { auth: 'password', apiKey: undefined, password: PASSWORD });
  await rejectsWith(al.getSubmission('sid'), (e) => assert.equal(e.code, 'AUTH'));
  assert.equal(srv.requests.filter((r) => r.url === '/api/v4/auth/login/').length, 2);
});

test('password mode: a Buffer ingest is replayed after re-login, a streamed one fails transiently', async (t) => {
  const srv = await sessionServer(t, { expireOnce: /ingest/ });
  const al = client(t, srv.url, { auth: 'password', apiKey: undefined, password: PASSWORD });
  assert.equal(await al.isCompleted('warmup'), true);

  srv.state.expire();
  assert.deepEqual(await al.ingest(ingestRequest(Buffer.from('replayable'))), { ingestId: 'ingest-2' });
  const ingests = srv.requests.filter((r) => r.url === '/api/v4/ingest/');
  assert.equal(ingests.length, 2);
  assert.deepEqual(ingests[0].body.length, ingests[1].body.length);

  srv.state.expire();
  await rejectsWith(al.ingest(ingestRequest(Readable.from([Buffer.from('streamed once')]))), (e) => {
    assert.equal(e.code, 'AUTH');
    assert.equal(e.transient, true, 'the caller re-opens the source and retries');
    assert.match(e.message, /re-open the source/);
  });
  // The next call logs in again by itself.
  assert.deepEqual(await al.ingest(ingestRequest(Readable.from([Buffer.from('again')]))), { ingestId: 'ingest-3' });
});

// --- error classification -------------------------------------------------------------------------

test('AL error answers map to BridgeError codes and transient flags', async (t) => {
  const answers: Record<string, [string] | [number, unknown, string]> = {
    '/api/v4/submission/auth401/': ['errors/401-invalid-apikey.json'],
    '/api/v4/submission/auth403/': ['errors/403-missing-role.json'],
    '/api/v4/submission/quota/': ['errors/503-api-quota.json'],
    '/api/v4/submission/daily/': [503, '', "You've exceeded your daily maximum API calls quota of 1000"],
    '/api/v4/submission/dailysub/': [503, '', "You've reached your daily maximum submission quota of 50"],
    '/api/v4/submission/bad502/': [502, '', ''],
    '/api/v4/submission/bad504/': [504, '', ''],
    '/api/v4/submission/many/': [429, '', 'slow down'],
    '/api/v4/submission/invalid/': ['errors/400-ingest-validation.json'],
    '/api/v4/submission/big/': ['errors/413-ingest-too-big.json'],
    '/api/v4/submission/boom/': [500, '', 'Internal Server Error'],
  };
  const srv = await startServer(t, (req, res) => {
    if (req.url === '/api/v4/submission/html500/') {
      res.writeHead(500, { 'content-type': 'text/html' });
      return void res.end('<html><body>Internal   Server Error</body></html>');
    }
    const a = answers[req.url];
    if (!a) return sendFixture(res, 'errors/404-unknown-api.json');
    if (a.length === 1) return sendFixture(res, a[0]);
    return envelope(res, a[0], a[1], a[2]);
  });
  const al = client(t, srv.url);
  const expect: Array<[string, string, boolean, RegExp?]> = [
    ['auth401', 'AUTH', false, /Invalid user or APIKey/],
    ['auth403', 'AUTH', false, /requires one of the following roles/],
    ['quota', 'UPSTREAM_HTTP', true, /concurrent API calls quota/],
    ['daily', 'QUOTA_DAILY', false, /daily maximum/],
    ['dailysub', 'QUOTA_DAILY', false],
    ['bad502', 'UPSTREAM_HTTP', true],
    ['bad504', 'UPSTREAM_HTTP', true],
    ['many', 'UPSTREAM_HTTP', true],
    ['invalid', 'UPSTREAM_HTTP', false, /You must specify a submission profile/],
    ['big', 'UPSTREAM_HTTP', false, /File too big to be scanned/],
    ['boom', 'UPSTREAM_HTTP', true],
    ['html500', 'UPSTREAM_HTTP', true, /Internal Server Error/],
  ];
  for (const [sid, code, transient, message] of expect) {
    const err = await rejectsWith(al.getSubmission(sid), (e) => {
      assert.equal(e.code, code, sid);
      assert.equal(e.transient, transient, sid);
      assert.equal(isTransient(e), transient, sid);
      assert.equal(e.upstream, 'assemblyline');
      assert.equal(e.path, `/api/v4/submission/${sid}/`);
      if (message) assert.match(e.message, message);
    });
    assertNoSecrets(err);
  }
});

test('404 means null (or false) for documents, but an unknown route is an error', async (t) => {
  const srv = await startServer(t, (req, res) => {
    if (req.url.startsWith('/api/v4/submission/') || req.url.startsWith('/api/v4/submission/is_completed/')) {
      return sendFixture(res, 'errors/404-submission.json');
    }
    return sendFixture(res, 'errors/404-unknown-api.json');
  });
  const al = client(t, srv.url);
  assert.equal(await al.getSubmission('7SZCI5JMuWiBYpipAjxPhy'), null);
  assert.equal(await al.getSubmissionFull('7SZCI5JMuWiBYpipAjxPhy'), null);
  assert.equal(await al.getSubmissionSummary('7SZCI5JMuWiBYpipAjxPhy'), null);
  assert.equal(await al.isCompleted('7SZCI5JMuWiBYpipAjxPhy'), false);
  await rejectsWith(al.fileChildren(SHA), (e) => {
    assert.equal(e.code, 'NOT_FOUND');
    assert.equal(e.transient, false);
  });
});

test('the API key never appears in error text, even when the server echoes it', async (t) => {
  const srv = await startServer(t, (req, res) => envelope(res, 400, {}, `bad key ${String(req.headers['x-apikey'])} for user`));
  const al = client(t, srv.url);
  const err = await rejectsWith(al.getMessages('q', 10), (e) => assert.equal(e.code, 'UPSTREAM_HTTP'));
  assertNoSecrets(err);
  assert.match(err.message, /\[redacted\]/);
});

test('network failures: refused connection and a dropped socket are NETWORK (transient); a silent server is TIMEOUT', async (t) => {
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadPort = (closed.address() as AddressInfo).port;
  closed.close();
  await once(closed, 'close');
  const refused = client(t, `http://127.0.0.1:${deadPort}`);
  await rejectsWith(refused.getSubmission('x'), (e) => {
    assert.equal(e.code, 'NETWORK');
    assert.equal(e.transient, true);
    assertNoSecrets(e);
  });

  const srv = await startServer(
    t,
    () => undefined,
    (req, res) => {
      if (req.url?.includes('drop')) req.socket.destroy();
      else if (req.url?.includes('silent')) req.resume();
      else envelope(res, 200, true);
      return true;
    },
  );
  const al = client(t, srv.url, { timeoutMs: 300 });
  await rejectsWith(al.getSubmission('drop'), (e) => {
    assert.equal(e.code, 'NETWORK');
    assert.equal(e.transient, true);
  });
  await rejectsWith(al.getSubmission('silent'), (e) => {
    assert.equal(e.code, 'TIMEOUT');
    assert.equal(e.transient, true);
  });
});

test('an aborted signal ends a call with ABORTED', async (t) => {
  const srv = await startServer(
    t,
    () => undefined,
    (req) => {
      req.resume();
      return true;
    },
  );
  const al = client(t, srv.url);
  const ac = new AbortController();
  const pending = al.getMessages('q', 5, { signal: ac.signal });
  ac.abort();
  await rejectsWith(pending, (e) => {
    assert.equal(e.code, 'ABORTED');
    assert.equal(isTransient(e), false);
  });
});

// --- reads ----------------------------------------------------------------------------------------

test('queue, search, children and documents: paths, query strings and payloads', async (t) => {
  const srv = await startServer(t, (req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/api/v4/ingest/get_message_list/mass-bridge-results/') return sendFixture(res, 'responses/get-message-list.json');
    if (path === '/api/v4/search/submission/') return sendFixture(res, 'responses/search-submission.json');
    if (path === `/api/v4/file/children/${SHA}/`) return sendFixture(res, 'responses/file-children.json');
    if (path === '/api/v4/submission/full/4Hc0QBr3BzVoArs3KbVHIW/') return sendFixture(res, 'responses/submission-full.json');
    if (path === '/api/v4/submission/summary/4Hc0QBr3BzVoArs3KbVHIW/') return sendFixture(res, 'responses/submission-summary.json');
    if (path === '/api/v4/submission/4Hc0QBr3BzVoArs3KbVHIW/') return sendFixture(res, 'responses/submission.json');
    return sendFixture(res, 'errors/404-unknown-api.json');
  });
  const al = client(t, srv.url);
  const messages = await al.getMessages('mass-bridge-results', 50);
  assert.equal(srv.requests[0].url, '/api/v4/ingest/get_message_list/mass-bridge-results/?page_size=50');
  assert.ok(messages.length > 0);
  assert.equal(typeof messages[0].submission.sid, 'string');
  await assert.rejects(al.getMessages('q', 0), RangeError);

  const found = await al.searchSubmissions('metadata.ingest_id:"4Hc0QBr3BzVoArs3KbVHIW"', { fl: 'sid,state', rows: 1, sort: 'times.submitted desc' });
  const q = new URL(srv.requests[1].url, 'http://x').searchParams;
  assert.equal(srv.requests[1].method, 'GET');
  assert.equal(q.get('query'), 'metadata.ingest_id:"4Hc0QBr3BzVoArs3KbVHIW"');
  assert.equal(q.get('fl'), 'sid,state');
  assert.equal(q.get('rows'), '1');
  assert.equal(q.get('sort'), 'times.submitted desc');
  assert.equal(found.total, 1);
  assert.equal(found.items[0].sid, '4Hc0QBr3BzVoArs3KbVHIW');

  assert.deepEqual((await al.fileChildren(SHA)).map((c) => c.name), ['stage2.dll', 'wupdsvc.exe']);
  const full = await al.getSubmissionFull('4Hc0QBr3BzVoArs3KbVHIW');
  assert.ok(full && Object.keys(full.results).length > 0);
  const summary = await al.getSubmissionSummary('4Hc0QBr3BzVoArs3KbVHIW');
  assert.ok(summary && 'attack_matrix' in summary);
  const sub = await al.getSubmission('4Hc0QBr3BzVoArs3KbVHIW');
  assert.equal(sub?.sid, '4Hc0QBr3BzVoArs3KbVHIW');
});

test('an answer without an envelope is UPSTREAM_PROTOCOL', async (t) => {
  const srv = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html>login page of a proxy</html>');
  });
  const al = client(t, srv.url);
  await rejectsWith(al.getSubmission('x'), (e) => assert.equal(e.code, 'UPSTREAM_PROTOCOL'));
});

// --- downloads ------------------------------------------------------------------------------------

test('downloads: raw bytes, CaRT fallback when raw is disabled, and the size limit', async (t) => {
  const content = Buffer.from('sample content '.repeat(100));
  let rawAllowed = true;
  const srv = await startServer(t, (req, res) => {
    const u = new URL(req.url, 'http://x');
    const encoding = u.searchParams.get('encoding');
    if (!u.pathname.startsWith(`/api/v4/file/download/${SHA}/`)) return sendFixture(res, 'errors/404-file-download.json');
    if (encoding === 'raw' && !rawAllowed) return envelope(res, 403, '', 'RAW file download has been disabled by administrators.');
    const body = encoding === 'cart' ? encodeCart(content, { name: SHA }) : content;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename=file.bin; filename*=UTF-8''${SHA}` });
    res.end(body);
  });
  const al = client(t, srv.url);
  assert.deepEqual(await al.downloadFileBytes(SHA), content);
  assert.match(srv.requests[0].url, /encoding=raw/);

  const stream = await al.downloadFile(SHA, { encoding: 'cart', sid: 'sid1' });
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).subarray(0, 4).toString(), 'CART');
  assert.match(srv.requests[1].url, /encoding=cart&sid=sid1/);

  await rejectsWith(al.downloadFileBytes(SHA, { maxBytes: 100 }), (e) => assert.equal(e.code, 'SAMPLE_TOO_LARGE'));

  rawAllowed = false;
  const before = srv.requests.length;
  assert.deepEqual(await al.downloadFileBytes(SHA, { sid: 'sid1' }), content);
  assert.deepEqual(
    srv.requests.slice(before).map((r) => new URL(r.url, 'http://x').searchParams.get('encoding')),
    ['raw', 'cart'],
  );
  const again = srv.requests.length;
  assert.deepEqual(await al.downloadFileBytes(SHA), content);
  assert.equal(srv.requests.length, again + 1, 'raw is not tried again once the server refused it');
  await rejectsWith(al.downloadFileBytes(SHA, { maxBytes: 100 }), (e) => assert.equal(e.code, 'SAMPLE_TOO_LARGE'));

  await rejectsWith(al.downloadFileBytes('0'.repeat(64)), (e) => assert.equal(e.code, 'NOT_FOUND'));
});

// --- concurrency ----------------------------------------------------------------------------------

test('never more than maxConcurrentCalls requests in flight at the server', async (t) => {
  const limit = 3;
  const total = 10;
  let active = 0;
  let maxActive = 0;
  let answered = 0;
  const held: ServerResponse[] = [];
  const srv = await startServer(t, (_req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    held.push(res);
    // Answer only once the client filled every slot it may use: proves it reaches, but never passes, the limit.
    if (held.length === Math.min(limit, total - answered)) {
      for (const r of held.splice(0)) {
        active--;
        answered++;
        envelope(r, 200, []);
      }
    }
  });
  const al = client(t, srv.url, { maxConcurrentCalls: limit });
  const results = await Promise.all(Array.from({ length: total }, () => al.getMessages('q', 1)));
  assert.equal(results.length, total);
  assert.equal(maxActive, limit);
  assert.equal(srv.requests.length, total);
});

test('a notification-queue read waiting for a slot goes ahead of the other waiting calls, reads among themselves in order', async (t) => {
  const held: ServerResponse[] = [];
  let arrived = (): void => undefined;
  const srv = await startServer(t, (_req, res) => {
    held.push(res);
    arrived();
  });
  const nextArrival = (): Promise<void> => new Promise((r) => (arrived = r));
  const al = client(t, srv.url, { maxConcurrentCalls: 1 });
  // The only slot is taken by a submission read the server holds; four calls queue behind it.
  const first = nextArrival();
  const calls: Promise<unknown>[] = [al.getSubmission('sid-0')];
  await first;
  calls.push(al.getSubmission('sid-1'), al.getMessages('queue-a', 5), al.getSubmission('sid-2'), al.getMessages('queue-b', 5));
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i++) {
    const next = nextArrival();
    const res = held.shift() as ServerResponse;
    if (res.req.url?.includes('get_message_list')) envelope(res, 200, []);
    else envelope(res, 200, { sid: 'x', state: 'completed' });
    if (i < 4) await next;
  }
  await Promise.all(calls);
  const order = srv.requests.map((r) => r.url.replace(/\?.*$/, '').replace('/api/v4/', ''));
  assert.deepEqual(order, [
    'submission/sid-0/', 'ingest/get_message_list/queue-a/', 'ingest/get_message_list/queue-b/', 'submission/sid-1/', 'submission/sid-2/',
  ]);
});

test('verifyTls:false calls onInsecure once; bad options are CONFIG_INVALID', async (t) => {
  let warned = 0;
  client(t, 'https://127.0.0.1:1', { verifyTls: false, onInsecure: () => warned++ });
  assert.equal(warned, 1);
  assert.throws(() => createAssemblylineClient({ url: 'https://al', user: 'u', auth: 'apikey' }), (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID');
  assert.throws(() => createAssemblylineClient({ url: 'https://al', user: 'u', auth: 'password' }), (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID');
  assert.throws(() => createAssemblylineClient({ url: 'ftp://al', user: 'u', auth: 'apikey', apiKey: 'a:b' }), (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID');
});
