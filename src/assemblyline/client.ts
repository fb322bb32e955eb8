/**
 * The Assemblyline 4 REST client the bridge uses (docs/protocol/ASSEMBLYLINE.md).
 * One undici Pool for the AL origin, a concurrency limit under AL's per-user quota, two auth
 * modes (API key headers, session login with cookies + XSRF; AL has no certificate authentication),
 * an optional TLS client certificate for an mTLS proxy in front of AL, envelope parsing, and one
 * mapping of AL answers to BridgeError.
 */
import { rootCertificates } from 'node:tls';
import { finished, PassThrough, pipeline, type Readable } from 'node:stream';
import { getSetCookies, Headers, Pool, type Dispatcher } from 'undici';
import { BridgeError, tlsFailure } from '../errors.js';
import { VERSION } from '../version.js';
import { DEFAULT_MAX_ANSWER_BYTES, readAnswerText } from './body.js';
import { decodeCartStream } from './cart.js';
import { CallLimiter } from './limiter.js';
import { verifiedContent } from './verified.js';
import { buildIngestMultipart, ingestBySha256Json, type IngestMultipart } from './multipart.js';
import type {
  AssemblylineClient,
  AssemblylineClientOptions,
  FileContent,
  IngestBySha256Request,
  AssemblylineUser,
  IngestMessage,
  IngestRequest,
  RequestOptions,
  SearchResult,
  Submission,
  SubmissionFull,
  SubmissionSummary,
} from './types.js';

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CONCURRENT_CALLS = 8;
/** Stable across requests: AL binds a login session to the User-Agent it was created with. */
export const USER_AGENT = `mass-al-bridge/${VERSION}`;

/** 401 messages after which the official client logs in again (assemblyline_client `_is_session_expired`). */
const SESSION_EXPIRED =
  /^(Session rejected|Session not found|Session expired|Invalid source IP for this session|Invalid user agent for this session)/;
const RAW_DOWNLOAD_DISABLED = /RAW file download has been disabled/i;
/** werkzeug's 404 for an unknown route, as opposed to "no such submission". */
const ROUTE_MISSING = /^Api does not exist/;
/** 404 of an ingest by sha256 when AL does not store the file (ASSEMBLYLINE.md §3.4, errors/404-ingest-sha256.json). */
const SHA256_UNKNOWN = /^SHA256 does not exist in Assemblyline/;
const EXCERPT_LENGTH = 300;
/** sha256 of no file: the dry check of ingest parameters names it so the server stops at the file lookup. */
const DRY_CHECK_SHA256 = '0'.repeat(64);
/** Assemblyline authenticates API calls only with X-USER + X-APIKEY or a session: a client certificate is a TLS option. */
export const CERTIFICATE_AUTH_REMOVED =
  'Assemblyline has no certificate authentication (it reads X-USER + X-APIKEY or a session, never a client certificate): ' +
  'set [Assemblyline] Auth = apikey (with APIKey) or password (with Password); keep ClientCert and ClientKey, they are still sent in the TLS handshake to an mTLS proxy';

/** TLS alerts a server sends when it refuses our client certificate (or its absence). */
const TLS_CLIENT_CERT_REFUSED = /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_|TLSV1_ALERT_ACCESS_DENIED|PEER_DID_NOT_RETURN_A_CERTIFICATE)/;

interface Envelope {
  api_response: unknown;
  api_error_message?: unknown;
  api_status_code?: unknown;
}

interface CallSpec {
  method: 'GET' | 'POST';
  /** Path below the AL base URL, starting with /api/, with its query string. */
  path: string;
  json?: unknown;
  multipart?: IngestMultipart;
  signal?: AbortSignal;
  /** Served before the calls waiting for a limiter slot (CallLimiter `first`): notification-queue reads. */
  first?: boolean;
}

interface CallContext {
  method: string;
  /** Path without query string, safe for error text. */
  path: string;
}

interface Session {
  generation: number;
  cookies: Map<string, string>;
}

function stripQuery(path: string): string {
  const i = path.indexOf('?');
  return i < 0 ? path : path.slice(0, i);
}

function parseEnvelope(text: string): Envelope | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value) && 'api_response' in value) return value as Envelope;
  } catch {}
  return undefined;
}

function errorMessageOf(env: Envelope | undefined, text: string): string {
  if (env && typeof env.api_error_message === 'string' && env.api_error_message !== '') return env.api_error_message;
  return text.replace(/\s+/g, ' ').trim().slice(0, EXCERPT_LENGTH);
}

/** Maps an AL error answer to a BridgeError (the single classification the rest of the bridge relies on). */
export function classifyAssemblylineStatus(status: number, message: string, ctx: CallContext): BridgeError {
  const base = { status, upstream: 'assemblyline' as const, method: ctx.method, path: ctx.path, body: message.slice(0, EXCERPT_LENGTH) };
  const text = `Assemblyline ${ctx.method} ${ctx.path} answered ${status}${message ? `: ${message}` : ''}`;
  if (status === 401 || status === 403) return new BridgeError('AUTH', text, { ...base, transient: false });
  if (status === 404) return new BridgeError('NOT_FOUND', text, base);
  // AL: a daily quota stays exhausted until tomorrow; the concurrent-call quota clears in seconds.
  if (status === 503 && /quota/i.test(message) && /daily/i.test(message)) {
    return new BridgeError('QUOTA_DAILY', text, { ...base, transient: false });
  }
  if (status === 429 || status === 502 || status === 503 || status === 504) {
    return new BridgeError('UPSTREAM_HTTP', text, { ...base, transient: true });
  }
  if (status === 400 || status === 413) return new BridgeError('UPSTREAM_HTTP', text, { ...base, transient: false });
  return new BridgeError('UPSTREAM_HTTP', text, base);
}

function errCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET') return code;
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps a transport failure (no HTTP answer) to a BridgeError. */
export function classifyTransportError(err: unknown, ctx: CallContext, signal?: AbortSignal): BridgeError {
  if (err instanceof BridgeError) return err;
  const base = { cause: err, upstream: 'assemblyline' as const, method: ctx.method, path: ctx.path };
  const code = errCode(err);
  const name = (err as { name?: unknown } | undefined)?.name;
  const detail = err instanceof Error ? err.message : String(err);
  if (signal?.aborted || name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') {
    return new BridgeError('ABORTED', `Assemblyline ${ctx.method} ${ctx.path} aborted`, base);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new BridgeError('TIMEOUT', `Assemblyline ${ctx.method} ${ctx.path} timed out (${code})`, base);
  }
  // A certificate we do not trust will not start being trusted by retrying: a configuration error that names the fix.
  const tls = tlsFailure(err, 'assemblyline', ctx);
  if (tls) return tls;
  if (code && TLS_CLIENT_CERT_REFUSED.test(code)) {
    return new BridgeError('AUTH', `Assemblyline refused the TLS client certificate (${code})`, { ...base, transient: false });
  }
  return new BridgeError('NETWORK', `Assemblyline ${ctx.method} ${ctx.path} failed: ${code ?? ''}${code ? ' ' : ''}${detail}`, { ...base, transient: true });
}

/** Set-Cookie values as name → value (undici's RFC 6265 parser); a cleared cookie (empty value / Max-Age<=0 / past Expires) maps to undefined. */
export function parseSetCookies(header: string | string[] | undefined): Map<string, string | undefined> {
  const headers = new Headers();
  for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) headers.append('set-cookie', line);
  const out = new Map<string, string | undefined>();
  for (const c of getSetCookies(headers)) {
    const expired = c.expires instanceof Date && c.expires.getTime() < Date.UTC(2000, 0, 1);
    const cleared = c.value === '' || (c.maxAge !== undefined && c.maxAge <= 0) || expired;
    out.set(c.name, cleared ? undefined : c.value);
  }
  return out;
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

async function readAtMost(body: Readable, maxBytes: number | undefined, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (maxBytes !== undefined && total > maxBytes) {
      body.destroy();
      throw new BridgeError('SAMPLE_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`, { upstream: 'assemblyline' });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export function createAssemblylineClient(opts: AssemblylineClientOptions): AssemblylineClient {
  const base = new URL(opts.url);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new BridgeError('CONFIG_INVALID', `Assemblyline URL must be http(s), got ${base.protocol}`);
  }
  const basePath = base.pathname.replace(/\/+$/, '');
  const mode = opts.auth ?? 'apikey';
  if (!opts.user) throw new BridgeError('CONFIG_INVALID', 'Assemblyline user is required');
  if (mode === 'apikey' && !opts.apiKey) throw new BridgeError('CONFIG_INVALID', 'Assemblyline auth=apikey needs an API key (name:secret)');
  if (mode === 'password' && !opts.password) throw new BridgeError('CONFIG_INVALID', 'Assemblyline auth=password needs a password');
  if ((mode as string) === 'certificate') {
    throw new BridgeError('CONFIG_INVALID', CERTIFICATE_AUTH_REMOVED);
  }
  if ((opts.clientCert && !opts.clientKey) || (!opts.clientCert && opts.clientKey)) {
    throw new BridgeError('CONFIG_INVALID', 'Assemblyline client certificate and key must be given together');
  }

  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxCalls = opts.maxConcurrentCalls ?? DEFAULT_MAX_CONCURRENT_CALLS;
  const maxAnswerBytes = opts.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const verifyTls = opts.verifyTls ?? true;
  if (!verifyTls) opts.onInsecure?.();

  const pool = new Pool(base.origin, {
    connections: maxCalls,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: {
      timeout: timeoutMs,
      rejectUnauthorized: verifyTls,
      // `ca` replaces Node's trust store; keep the public roots and add the configured CA.
      ...(opts.ca ? { ca: [...rootCertificates, opts.ca] } : {}),
      ...(opts.clientCert && opts.clientKey ? { cert: opts.clientCert, key: opts.clientKey } : {}),
    },
  });
  const limiter = new CallLimiter(maxCalls);

  const secrets = [opts.apiKey, opts.apiKey?.split(':').slice(1).join(':'), opts.password].filter(
    (s): s is string => typeof s === 'string' && s.length >= 4,
  );
  let session: Session | undefined;
  let loginInFlight: Promise<Session> | undefined;
  let generation = 0;
  let rawDownloadDisabled = false;
  let closed: Promise<void> | undefined;

  function scrub(text: string): string {
    let out = text;
    const all = [...secrets, ...(session ? [...session.cookies.values()] : [])];
    for (const s of all) if (s.length >= 4) out = out.split(s).join('[redacted]');
    return out;
  }

  function scrubError(err: BridgeError): BridgeError {
    const message = scrub(err.message);
    if (message === err.message && (err.body === undefined || scrub(err.body) === err.body)) return err;
    return new BridgeError(err.code, message, {
      cause: err.cause,
      status: err.status,
      upstream: err.upstream,
      method: err.method,
      path: err.path,
      body: err.body === undefined ? undefined : scrub(err.body),
      transient: err.transient,
    });
  }

  async function send(spec: CallSpec, authHeaders: Record<string, string>): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json', ...authHeaders };
    let body: string | Readable | undefined;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers['content-type'] = 'application/json';
    } else if (spec.multipart) {
      body = spec.multipart.open();
      headers['content-type'] = spec.multipart.contentType;
      if (spec.multipart.length !== undefined) headers['content-length'] = String(spec.multipart.length);
    }
    try {
      return await pool.request({ method: spec.method, path: basePath + spec.path, headers, body, signal: spec.signal });
    } catch (err) {
      throw classifyTransportError(err, { method: spec.method, path: stripQuery(spec.path) }, spec.signal);
    }
  }

  async function readEnvelope(res: Dispatcher.ResponseData, ctx: CallContext): Promise<{ status: number; env: Envelope | undefined; text: string }> {
    let text: string;
    try {
      text = await readAnswerText(res.body, res.headers['content-length'], maxAnswerBytes, ctx);
    } catch (err) {
      throw err instanceof BridgeError ? err : classifyTransportError(err, ctx);
    }
    return { status: res.statusCode, env: parseEnvelope(text), text };
  }

  // --- session login (auth=password), as assemblyline_client does it ---------------------------

  async function login(signal?: AbortSignal): Promise<Session> {
    const probeCtx = { method: 'GET', path: '/api/v3/auth/init/' };
    const probe = await readEnvelope(await send({ method: 'GET', path: probeCtx.path, signal }, {}), probeCtx);
    // The v4 server has no v3 route: 404 is the expected answer (client-requests.json #0).
    if (probe.status === 200) {
      throw new BridgeError('UPSTREAM_PROTOCOL', 'Assemblyline answered the v3 auth probe: API v3 servers are not supported', {
        upstream: 'assemblyline',
        ...probeCtx,
      });
    }
    if (probe.status !== 404) throw classifyAssemblylineStatus(probe.status, errorMessageOf(probe.env, probe.text), probeCtx);

    const loginCtx = { method: 'POST', path: '/api/v4/auth/login/' };
    const res = await send({ method: 'POST', path: loginCtx.path, json: { user: opts.user, password: opts.password }, signal }, {});
    const answer = await readEnvelope(res, loginCtx);
    if (answer.status !== 200) {
      const err = classifyAssemblylineStatus(answer.status, errorMessageOf(answer.env, answer.text), loginCtx);
      if (err.code !== 'AUTH') throw err;
      throw new BridgeError('AUTH', `Assemblyline login refused for user ${opts.user}: ${errorMessageOf(answer.env, answer.text)}`, {
        status: answer.status,
        upstream: 'assemblyline',
        ...loginCtx,
        transient: false,
      });
    }
    const cookies = new Map<string, string>();
    for (const [name, value] of parseSetCookies(res.headers['set-cookie'])) if (value !== undefined) cookies.set(name, value);
    if (!cookies.has('session')) {
      throw new BridgeError('UPSTREAM_PROTOCOL', 'Assemblyline login succeeded but set no session cookie', { upstream: 'assemblyline', ...loginCtx });
    }
    return { generation: ++generation, cookies };
  }

  async function currentSession(signal?: AbortSignal): Promise<Session> {
    if (session) return session;
    if (!loginInFlight) {
      loginInFlight = login(signal).then(
        (s) => {
          session = s;
          loginInFlight = undefined;
          return s;
        },
        (err: unknown) => {
          loginInFlight = undefined;
          throw err;
        },
      );
    }
    return loginInFlight;
  }

  /** Drops the session a request was refused with, unless another request already replaced it. */
  function invalidate(staleGeneration: number): void {
    if (session?.generation === staleGeneration) session = undefined;
  }

  async function authHeaders(signal?: AbortSignal): Promise<{ headers: Record<string, string>; generation: number }> {
    switch (mode) {
      case 'apikey':
        return { headers: { 'x-user': opts.user, 'x-apikey': opts.apiKey as string }, generation: 0 };
      case 'password': {
        const s = await currentSession(signal);
        const headers: Record<string, string> = {
          cookie: [...s.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        };
        const xsrf = s.cookies.get('XSRF-TOKEN');
        // AL enforces the XSRF header for password sessions (roles_limit null).
        if (xsrf) headers['x-xsrf-token'] = xsrf;
        return { headers, generation: s.generation };
      }
    }
  }

  // --- one call: limiter slot, auth, re-login on session expiry ---------------------------------

  /** Sends the call; on success returns the response and the release of its limiter slot (caller must release). */
  async function execute(spec: CallSpec): Promise<{ res: Dispatcher.ResponseData; release: () => void }> {
    if (closed) throw new BridgeError('INTERNAL', 'Assemblyline client is closed');
    const ctx = { method: spec.method, path: stripQuery(spec.path) };
    const release = await limiter.acquire(spec.signal, spec.first === true);
    try {
      const replayable = spec.multipart ? spec.multipart.replayable : true;
      for (let attempt = 0; ; attempt++) {
        const auth = await authHeaders(spec.signal);
        const res = await send(spec, auth.headers);
        if (mode === 'password' && res.statusCode === 401) {
          const answer = await readEnvelope(res, ctx);
          const message = errorMessageOf(answer.env, answer.text);
          if (SESSION_EXPIRED.test(message)) {
            invalidate(auth.generation);
            if (attempt === 0 && replayable) continue;
            if (!replayable) {
              // undici cannot resend a consumed stream: the caller re-opens the source and retries.
              throw new BridgeError('AUTH', `Assemblyline session ended during a streamed upload (${message}); re-open the source and retry`, {
                status: 401,
                upstream: 'assemblyline',
                ...ctx,
                transient: true,
              });
            }
          }
          throw classifyAssemblylineStatus(401, message, ctx);
        }
        if (mode === 'password' && session?.generation === auth.generation && res.headers['set-cookie']) {
          // Flask may refresh the session cookie on any answer.
          for (const [name, value] of parseSetCookies(res.headers['set-cookie'])) if (value !== undefined) session.cookies.set(name, value);
        }
        return { res, release };
      }
    } catch (err) {
      release();
      throw err instanceof BridgeError ? scrubError(err) : classifyTransportError(err, ctx, spec.signal);
    }
  }

  /** A JSON call; returns api_response, or the status for statuses the caller handles (`allow`). */
  async function callJson(spec: CallSpec, allow: number[] = []): Promise<{ status: number; value: unknown; message: string }> {
    const ctx = { method: spec.method, path: stripQuery(spec.path) };
    const { res, release } = await execute(spec);
    try {
      const answer = await readEnvelope(res, ctx);
      const message = errorMessageOf(answer.env, answer.text);
      if (answer.status >= 200 && answer.status < 300) {
        if (!answer.env) {
          throw new BridgeError('UPSTREAM_PROTOCOL', `Assemblyline ${ctx.method} ${ctx.path} answered ${answer.status} without a JSON envelope`, {
            status: answer.status,
            upstream: 'assemblyline',
            ...ctx,
            body: answer.text.slice(0, EXCERPT_LENGTH),
          });
        }
        return { status: answer.status, value: answer.env.api_response, message };
      }
      if (allow.includes(answer.status)) return { status: answer.status, value: answer.env?.api_response, message };
      throw classifyAssemblylineStatus(answer.status, message, ctx);
    } catch (err) {
      throw err instanceof BridgeError ? scrubError(err) : classifyTransportError(err, ctx, spec.signal);
    } finally {
      release();
    }
  }

  function protocolError(ctx: CallContext, what: string): BridgeError {
    return new BridgeError('UPSTREAM_PROTOCOL', `Assemblyline ${ctx.method} ${ctx.path}: ${what}`, { upstream: 'assemblyline', ...ctx });
  }

  function isObject(v: unknown): v is Record<string, unknown> {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  /** GET of something that may not exist: 404 → null (a 404 for a route this AL lacks stays an error). */
  async function getIfExists(path: string, signal?: AbortSignal): Promise<{ value: unknown } | null> {
    const { status, value, message } = await callJson({ method: 'GET', path, signal }, [404]);
    if (status !== 404) return { value };
    if (ROUTE_MISSING.test(message)) throw classifyAssemblylineStatus(404, message, { method: 'GET', path: stripQuery(path) });
    return null;
  }

  /** GET of a document that may not exist (404 → null). */
  async function getDocument<T>(path: string, signal?: AbortSignal): Promise<T | null> {
    const found = await getIfExists(path, signal);
    if (!found) return null;
    if (!isObject(found.value)) throw protocolError({ method: 'GET', path: stripQuery(path) }, 'api_response is not an object');
    return found.value as T;
  }

  /** Pops at most `pageSize` messages from the notification queue (page_size=0 pops none). */
  async function messageList(queue: string, pageSize: number, signal?: AbortSignal): Promise<IngestMessage[]> {
    const path = `/api/v4/ingest/get_message_list/${seg(queue)}/?page_size=${pageSize}`;
    // A read serves every job whose notification it brings: it goes ahead of calls that serve one job each.
    const { value } = await callJson({ method: 'GET', path, signal, first: true });
    if (!Array.isArray(value)) throw protocolError({ method: 'GET', path: stripQuery(path) }, 'api_response is not a list');
    return value as IngestMessage[];
  }

  const seg = (s: string): string => encodeURIComponent(s);

  async function openDownload(sha256: string, encoding: 'raw' | 'cart', sid: string | undefined, signal?: AbortSignal): Promise<{ body: Readable; length: number | undefined }> {
    const query = new URLSearchParams({ encoding });
    if (sid) query.set('sid', sid);
    const path = `/api/v4/file/download/${seg(sha256)}/?${query.toString()}`;
    const ctx = { method: 'GET', path: stripQuery(path) };
    const { res, release } = await execute({ method: 'GET', path, signal });
    if (res.statusCode !== 200) {
      try {
        const answer = await readEnvelope(res, ctx);
        throw scrubError(classifyAssemblylineStatus(answer.status, errorMessageOf(answer.env, answer.text), ctx));
      } finally {
        release();
      }
    }
    const body = res.body as unknown as Readable;
    // The limiter slot is held until the caller has consumed or destroyed the stream.
    finished(body, once(release));
    const len = Number(res.headers['content-length']);
    return { body, length: Number.isFinite(len) ? len : undefined };
  }

  /**
   * The file's content as a stream: encoding=raw, or once Assemblyline refused raw downloads (403 "RAW file
   * download has been disabled"), encoding=cart decoded as it streams. `length` is the raw download's
   * Content-Length (unknown for CaRT). A declared length above `maxBytes` is refused before reading.
   */
  async function openContent(sha256: string, options: { sid?: string; maxBytes?: number }, signal?: AbortSignal): Promise<{ body: Readable; length: number | undefined }> {
    const { maxBytes, sid } = options;
    const tooLarge = (n: number): BridgeError =>
      new BridgeError('SAMPLE_TOO_LARGE', `file ${sha256} is ${n} bytes, more than ${maxBytes}`, { upstream: 'assemblyline' });
    const classify = (err: unknown): BridgeError =>
      err instanceof BridgeError ? err : classifyTransportError(err, { method: 'GET', path: `/api/v4/file/download/${sha256}/` }, signal);
    if (!rawDownloadDisabled) {
      try {
        const { body, length } = await openDownload(sha256, 'raw', sid, signal);
        if (maxBytes !== undefined && length !== undefined && length > maxBytes) {
          body.destroy();
          throw tooLarge(length);
        }
        return { body, length };
      } catch (err) {
        // AL admins can forbid raw downloads (403); CaRT is always allowed.
        if (!(err instanceof BridgeError && err.status === 403 && RAW_DOWNLOAD_DISABLED.test(err.body ?? ''))) throw classify(err);
        rawDownloadDisabled = true;
      }
    }
    // zlib level 1 on incompressible data grows it slightly; allow that plus the CaRT framing.
    const cartLimit = maxBytes === undefined ? undefined : maxBytes + Math.ceil(maxBytes / 100) + 65_536;
    const { body, length } = await openDownload(sha256, 'cart', sid, signal).catch((err: unknown) => {
      throw classify(err);
    });
    if (cartLimit !== undefined && length !== undefined && length > cartLimit) {
      body.destroy();
      throw tooLarge(length);
    }
    return { body: decodeCartStream(body, { maxOutputBytes: maxBytes }), length: undefined };
  }

  return {
    async ingest(req: IngestRequest, ro?: RequestOptions): Promise<{ ingestId: string }> {
      const path = '/api/v4/ingest/';
      const { value } = await callJson({ method: 'POST', path, multipart: buildIngestMultipart(req), signal: ro?.signal });
      if (!isObject(value) || typeof value.ingest_id !== 'string' || value.ingest_id === '') {
        throw protocolError({ method: 'POST', path }, 'answer has no ingest_id');
      }
      return { ingestId: value.ingest_id };
    },

    async ingestBySha256(req: IngestBySha256Request, ro?: RequestOptions): Promise<{ ingestId: string } | null> {
      const path = '/api/v4/ingest/';
      const { status, value, message } = await callJson({ method: 'POST', path, json: ingestBySha256Json(req), signal: ro?.signal }, [404]);
      if (status === 404) {
        // AL does not hold the file (ASSEMBLYLINE.md §3.4); any other 404 (a route this server lacks) stays an error.
        if (SHA256_UNKNOWN.test(message)) return null;
        throw scrubError(classifyAssemblylineStatus(status, message, { method: 'POST', path }));
      }
      if (!isObject(value) || typeof value.ingest_id !== 'string' || value.ingest_id === '') {
        throw protocolError({ method: 'POST', path }, 'answer has no ingest_id');
      }
      return { ingestId: value.ingest_id };
    },

    async getMessages(queue: string, pageSize: number, ro?: RequestOptions): Promise<IngestMessage[]> {
      // page_size=0 answers [] and a missing/negative one drains the whole queue: always send a positive one.
      if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
      return messageList(queue, pageSize, ro?.signal);
    },

    async checkQueueAccess(queue: string, ro?: RequestOptions): Promise<void> {
      // page_size=0 answers [] without popping anything (ASSEMBLYLINE.md §4.1), yet needs submission_create.
      await messageList(queue, 0, ro?.signal);
    },

    getSubmission(sid: string, ro?: RequestOptions): Promise<Submission | null> {
      return getDocument<Submission>(`/api/v4/submission/${seg(sid)}/`, ro?.signal);
    },

    getSubmissionFull(sid: string, ro?: RequestOptions): Promise<SubmissionFull | null> {
      return getDocument<SubmissionFull>(`/api/v4/submission/full/${seg(sid)}/`, ro?.signal);
    },

    getSubmissionSummary(sid: string, ro?: RequestOptions): Promise<SubmissionSummary | null> {
      return getDocument<SubmissionSummary>(`/api/v4/submission/summary/${seg(sid)}/`, ro?.signal);
    },

    async isCompleted(sid: string, ro?: RequestOptions): Promise<boolean> {
      const path = `/api/v4/submission/is_completed/${seg(sid)}/`;
      const found = await getIfExists(path, ro?.signal);
      if (!found) return false;
      if (typeof found.value !== 'boolean') throw protocolError({ method: 'GET', path }, 'api_response is not a boolean');
      return found.value;
    },

    async searchSubmissions(query: string, options: { fl?: string; rows?: number; sort?: string } = {}, ro?: RequestOptions): Promise<SearchResult> {
      const qs = new URLSearchParams({ query });
      if (options.fl) qs.set('fl', options.fl);
      if (options.rows !== undefined) qs.set('rows', String(options.rows));
      if (options.sort) qs.set('sort', options.sort);
      const path = `/api/v4/search/submission/?${qs.toString()}`;
      const { value } = await callJson({ method: 'GET', path, signal: ro?.signal });
      if (!isObject(value) || !Array.isArray(value.items)) throw protocolError({ method: 'GET', path: stripQuery(path) }, 'answer has no items list');
      return value as unknown as SearchResult;
    },

    async downloadFile(sha256: string, options: { encoding?: 'raw' | 'cart'; sid?: string } = {}, ro?: RequestOptions): Promise<Readable> {
      const { body } = await openDownload(sha256, options.encoding ?? 'raw', options.sid, ro?.signal);
      return body;
    },

    async downloadFileBytes(sha256: string, options: { sid?: string; maxBytes?: number } = {}, ro?: RequestOptions): Promise<Buffer> {
      const { body } = await openContent(sha256, options, ro?.signal);
      try {
        return await readAtMost(body, options.maxBytes, `file ${sha256}`);
      } catch (err) {
        throw err instanceof BridgeError ? err : classifyTransportError(err, { method: 'GET', path: `/api/v4/file/download/${sha256}/` }, ro?.signal);
      }
    },

    async openFile(sha256: string, options: { sid?: string; maxBytes?: number; size?: number } = {}, ro?: RequestOptions): Promise<FileContent> {
      const { body, length } = await openContent(sha256, options, ro?.signal);
      const size = options.size ?? length;
      if (options.size !== undefined && length !== undefined && length !== options.size) {
        body.destroy();
        throw new BridgeError('UPSTREAM_PROTOCOL', `file ${sha256} from Assemblyline: ${length} bytes (Content-Length), not the ${options.size} expected`, {
          upstream: 'assemblyline',
          transient: false,
        });
      }
      const path = `/api/v4/file/download/${sha256}/`;
      // A transport failure of the download reaches the reader as a classified Assemblyline error.
      const checked = pipeline(body, verifiedContent({ sha256, maxBytes: options.maxBytes, size }), () => undefined);
      const content = new PassThrough();
      checked.on('error', (err) => content.destroy(err instanceof BridgeError ? err : classifyTransportError(err, { method: 'GET', path }, ro?.signal)));
      content.on('close', () => {
        if (!checked.readableEnded) checked.destroy();
      });
      checked.pipe(content);
      return { body: content, size };
    },

    async fileChildren(sha256: string, ro?: RequestOptions): Promise<Array<{ name: string; sha256: string }>> {
      const path = `/api/v4/file/children/${seg(sha256)}/`;
      const { value } = await callJson({ method: 'GET', path, signal: ro?.signal });
      if (!Array.isArray(value)) throw protocolError({ method: 'GET', path }, 'api_response is not a list');
      return value as Array<{ name: string; sha256: string }>;
    },

    async whoami(ro?: RequestOptions): Promise<AssemblylineUser> {
      const path = '/api/v4/user/whoami/';
      const { value } = await callJson({ method: 'GET', path, signal: ro?.signal });
      if (!isObject(value) || !Array.isArray(value.roles)) throw protocolError({ method: 'GET', path }, 'answer has no roles');
      return value as unknown as AssemblylineUser;
    },

    async checkIngestParams(req, ro?: RequestOptions): Promise<BridgeError | null> {
      const path = '/api/v4/ingest/';
      // A sha256 no file has: the server validates profile and parameters, then answers 404 for the file.
      const doc: Record<string, unknown> = { sha256: DRY_CHECK_SHA256, name: 'mass-al-bridge-parameter-check', metadata: req.metadata, params: req.params };
      if (req.submissionProfile) doc.submission_profile = req.submissionProfile;
      if (req.type) doc.type = req.type;
      try {
        const { status, message } = await callJson({ method: 'POST', path, json: doc, signal: ro?.signal }, [404]);
        if (status === 404) return null;
        return protocolError({ method: 'POST', path }, `accepted an ingest of a file that cannot exist (${message || status})`);
      } catch (err) {
        if (err instanceof BridgeError && err.upstream === 'assemblyline' && err.status !== undefined && err.status < 500) return err;
        throw err;
      }
    },

    close(): Promise<void> {
      closed ??= pool.close().catch(() => undefined);
      return closed;
    },
  };
}
