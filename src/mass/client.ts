/**
 * MASS 0.1 API client for an analysis-system instance (docs/protocol/MASS.md).
 * One undici Pool per MASS origin; every answer is mapped to BridgeError (upstream 'mass').
 * Uploads are streamed multipart bodies; downloads hand back the streaming body.
 */
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import { BridgeError, tlsFailure } from '../errors.js';
import { VERSION } from '../version.js';
import { buildMultipart, type MultipartPart } from '../http/multipart.js';
import { assertMongoKeys, assertObjectKey, assertTags, assertTlpLevel, formatMassDate } from './validate.js';
import type {
  AnalysisSystem,
  AnalysisSystemInstance,
  FileSampleUpload,
  MassClient,
  MassClientOptions,
  MassRelation,
  MassReport,
  MassSample,
  NewSampleOptions,
  RawReportObject,
  RelationKind,
  ReportSubmission,
  RequestOptions,
  SampleDownload,
  ScheduledAnalysis,
} from './types.js';

export { formatMassDate } from './validate.js';

const RELATION_ENDPOINTS: Record<RelationKind, string> = {
  'dropped-by': 'sample_relation/submit_dropped_by/',
  'contacted-by': 'sample_relation/submit_contacted_by/',
  'resolved-by': 'sample_relation/submit_resolved_by/',
  'retrieved-by': 'sample_relation/submit_retrieved_by/',
};

const BODY_EXCERPT_CHARS = 200;
const ERROR_BODY_LIMIT = 64 * 1024;
/** Guard against a server whose `next` never ends. */
const MAX_PAGES = 10_000;
/** MASS hides samples above TLP 0 from instances with a 404, even ones in the instance's queue. */
const SAMPLE_HIDDEN = 'sample not visible to this key (TLP above 0, or deleted)';

type HttpMethod = 'GET' | 'POST';

interface CallOptions extends RequestOptions {
  body?: Dispatcher.DispatchOptions['body'];
  contentType?: string;
  contentLength?: number;
  /** Turns a 404 into a clearer NOT_FOUND message. */
  notFound?: string;
  /** Readable sources of a streamed body, destroyed if the request fails. */
  sources?: Readable[];
}

function withTrailingSlash(url: URL): URL {
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** MASS names an object by its URL with a trailing slash but also answers without one: compare them that way. */
export function sameMassUrl(a: string, b: string): boolean {
  return a.replace(/\/?$/, '/') === b.replace(/\/?$/, '/');
}

function isAbsoluteUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_EXCERPT_CHARS ? `${flat.slice(0, BODY_EXCERPT_CHARS)}…` : flat;
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (total < limit) chunks.push(buf.subarray(0, limit - total));
    total += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isTimeoutError(err: unknown): boolean {
  return (
    err instanceof undiciErrors.ConnectTimeoutError ||
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError
  );
}

function isAbortError(err: unknown): boolean {
  return !!err && typeof err === 'object' && ((err as { name?: unknown }).name === 'AbortError' || err instanceof undiciErrors.RequestAbortedError);
}

/** The origin of an alias as the client compares it (lower-case host, default port dropped); throws CONFIG_INVALID when it is not a bare http(s) origin. */
export function aliasOrigin(alias: string): string {
  let url: URL;
  try {
    url = new URL(alias);
  } catch (err) {
    throw new BridgeError('CONFIG_INVALID', `MASS server alias ${JSON.stringify(alias)} is not an absolute URL`, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash || url.pathname !== '/') {
    throw new BridgeError('CONFIG_INVALID', `MASS server alias ${JSON.stringify(alias)} must be an origin: http(s)://host[:port], nothing after it`);
  }
  return url.origin;
}

export function createMassClient(opts: MassClientOptions): MassClient {
  let root: URL;
  try {
    root = withTrailingSlash(new URL(opts.apiRoot));
  } catch (err) {
    throw new BridgeError('CONFIG_INVALID', `MASS API root is not an absolute URL: ${JSON.stringify(opts.apiRoot)}`, { cause: err });
  }
  if (root.protocol !== 'http:' && root.protocol !== 'https:') {
    throw new BridgeError('CONFIG_INVALID', `MASS API root must be http(s): ${root.href}`);
  }
  root.search = '';
  root.hash = '';
  const apiRoot = root.href;
  const origin = root.origin;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const authorization = `APIKEY ${opts.apiKey}`;
  const aliases = new Set((opts.aliases ?? []).map(aliasOrigin).filter((a) => a !== origin));
  const verifyTls = opts.verifyTls ?? true;
  if (!verifyTls && root.protocol === 'https:') opts.onInsecure?.();
  const pool = new Pool(origin, {
    connections: opts.connections ?? 8,
    connect: {
      timeout: timeoutMs,
      rejectUnauthorized: verifyTls,
      // `ca` replaces Node's trust store; keep the public roots and add the configured CA.
      ...(opts.ca ? { ca: [...rootCertificates, opts.ca] } : {}),
    },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  let closing: Promise<void> | undefined;

  /** A URL MASS handed out (or a path below the API root), checked to be on the configured origin or an alias; as given. */
  function massUrl(pathOrUrl: string): URL {
    const url = isAbsoluteUrl(pathOrUrl) ? new URL(pathOrUrl) : new URL(pathOrUrl, apiRoot);
    if (url.origin !== origin && !aliases.has(url.origin)) {
      // The API key only ever goes to the configured origin. MASS builds URLs from the Host header it receives,
      // so another origin means a proxy rewrote Host (an alias to declare) or a foreign URL.
      throw new BridgeError(
        'UPSTREAM_PROTOCOL',
        `MASS named the URL ${url.origin}${url.pathname}, which is not on the configured MASS origin ${origin}; the API key is not sent there. ` +
          `If ${url.origin} is this MASS behind a reverse proxy that rewrites the Host header, add ${url.origin} to [GLOBAL] ServerAliases ` +
          '(or make the proxy pass the Host header on)',
        { upstream: 'mass', transient: false },
      );
    }
    return withTrailingSlash(url);
  }

  /** Resolves a path below the API root, or an absolute URL MASS returned, to the URL requested: always on the configured origin, with the trailing slash. */
  function resolve(pathOrUrl: string): URL {
    const url = massUrl(pathOrUrl);
    if (url.origin === origin) return url;
    // An alias: the same MASS, reached through the configured origin.
    return new URL(url.pathname + url.search, origin);
  }

  function objectUrl(kind: string, idOrUrl: string): URL {
    return isAbsoluteUrl(idOrUrl) ? resolve(idOrUrl) : resolve(`${kind}/${encodeURIComponent(idOrUrl)}/`);
  }

  /** Answer excerpts go to logs and the status API: the API key never does (a debug error page may echo headers). */
  function scrub(text: string): string {
    const key = opts.apiKey ?? '';
    return key.length >= 4 ? text.split(key).join('[redacted]') : text;
  }

  function mapNetworkError(err: unknown, method: string, path: string, signal?: AbortSignal): BridgeError {
    if (err instanceof BridgeError) return err;
    if (signal?.aborted || isAbortError(err)) {
      return new BridgeError('ABORTED', `${method} ${path} aborted`, { cause: err, upstream: 'mass', method, path });
    }
    if (isTimeoutError(err)) {
      return new BridgeError('TIMEOUT', `${method} ${path}: no answer from MASS within ${timeoutMs} ms`, { cause: err, upstream: 'mass', method, path });
    }
    const tls = tlsFailure(err, 'mass', { method, path });
    if (tls) return tls;
    const message = err instanceof Error ? err.message : String(err);
    return new BridgeError('NETWORK', `${method} ${path}: ${message}`, { cause: err, upstream: 'mass', method, path });
  }

  async function httpError(res: Dispatcher.ResponseData, method: string, path: string, notFound?: string): Promise<BridgeError> {
    let text = '';
    try {
      text = await readLimited(res.body, ERROR_BODY_LIMIT);
    } catch {}
    const body = scrub(excerpt(text));
    const status = res.statusCode;
    const common = { upstream: 'mass' as const, status, body, method, path };
    if (status === 403) {
      // MASS answers 403 (never 401) for every auth failure, with the same body.
      return new BridgeError(
        'AUTH',
        `MASS refused ${method} ${path} (403): the API key is unknown, malformed or expired, or its role may not make this call ` +
          `(an instance key cannot make admin calls; a user key cannot poll). Check that the key is the one MASS shows for this instance uuid.`,
        common,
      );
    }
    if (status === 404) {
      return new BridgeError('NOT_FOUND', `${method} ${path}: ${notFound ?? 'not found on MASS'} (404 ${body})`, common);
    }
    return new BridgeError('UPSTREAM_HTTP', `${method} ${path}: MASS answered ${status}${body ? `: ${body}` : ''}`, common);
  }

  async function send(method: HttpMethod, url: URL, call: CallOptions): Promise<Dispatcher.ResponseData> {
    const path = url.pathname;
    if (call.signal?.aborted) {
      for (const s of call.sources ?? []) s.destroy();
      throw new BridgeError('ABORTED', `${method} ${path} aborted`, { upstream: 'mass', method, path });
    }
    const headers: Record<string, string> = {
      authorization,
      accept: 'application/json',
      'user-agent': `mass-al-bridge/${VERSION}`,
    };
    if (call.contentType) headers['content-type'] = call.contentType;
    if (call.contentLength !== undefined) headers['content-length'] = String(call.contentLength);
    let res: Dispatcher.ResponseData;
    try {
      res = await pool.request({ method, path: url.pathname + url.search, headers, body: call.body ?? null, signal: call.signal });
    } catch (err) {
      for (const s of call.sources ?? []) s.destroy();
      throw mapNetworkError(err, method, path, call.signal);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      for (const s of call.sources ?? []) s.destroy();
      throw await httpError(res, method, path, call.notFound);
    }
    opts.onAnswer?.(method, path);
    return res;
  }

  async function json<T>(method: HttpMethod, url: URL, call: CallOptions = {}): Promise<T> {
    const res = await send(method, url, call);
    const path = url.pathname;
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      throw mapNetworkError(err, method, path, call.signal);
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new BridgeError('UPSTREAM_PROTOCOL', `${method} ${path}: MASS answered ${res.statusCode} with a body that is not JSON`, {
        cause: err,
        upstream: 'mass',
        status: res.statusCode,
        body: scrub(excerpt(text)),
        method,
        path,
      });
    }
  }

  function postJson<T>(url: URL, payload: unknown, call: CallOptions = {}): Promise<T> {
    return json<T>('POST', url, { ...call, body: JSON.stringify(payload), contentType: 'application/json' });
  }

  function results<T>(body: { results?: T[] }, url: URL): T[] {
    if (!Array.isArray(body?.results)) {
      throw new BridgeError('UPSTREAM_PROTOCOL', `GET ${url.pathname}: answer has no results list`, { upstream: 'mass', path: url.pathname });
    }
    return body.results;
  }

  function newSamplePayload(options: NewSampleOptions | undefined): { tlp_level: number; tags: string[] } {
    // MASS answers 500 for a new sample without tlp_level, so it is always sent.
    const tlp = options?.tlpLevel ?? 0;
    assertTlpLevel(tlp);
    const tags = options?.tags ?? [];
    assertTags(tags);
    return { tlp_level: tlp, tags };
  }

  function reportParts(report: ReportSubmission): MultipartPart[] {
    const tags = report.tags ?? [];
    assertTags(tags, 'report tag');
    const additional = report.additionalMetadata ?? {};
    if (additional === null || typeof additional !== 'object' || Array.isArray(additional)) {
      throw new BridgeError('INTERNAL', 'additional_metadata must be an object', { upstream: 'mass', transient: false });
    }
    assertMongoKeys(additional);
    const errorMessage = report.errorMessage ?? null;
    const metadata = {
      analysis_date: formatMassDate(report.analysisDate ?? new Date()),
      tags,
      additional_metadata: additional,
      error_message: errorMessage,
      // Ignored by MASS (every report is stored with status 0); sent as the tutorial client does.
      status: errorMessage === null ? 0 : 1,
    };
    const seen = new Set<string>(['metadata']);
    const claim = (key: string, what: string): void => {
      assertObjectKey(key, what);
      // MASS keeps only the first of two same-named parts, silently.
      if (seen.has(key)) {
        throw new BridgeError('INTERNAL', `${what} key ${JSON.stringify(key)} is used twice (or is "metadata")`, { upstream: 'mass', transient: false });
      }
      seen.add(key);
    };
    // `metadata` must be a plain form field: sent as a file part MASS does not find it (400).
    const parts: MultipartPart[] = [{ name: 'metadata', contentType: 'application/json', data: Buffer.from(JSON.stringify(metadata), 'utf8') }];
    for (const [key, value] of Object.entries(report.jsonReportObjects ?? {})) {
      claim(key, 'JSON report object');
      const text = JSON.stringify(value);
      if (text === undefined) {
        throw new BridgeError('INTERNAL', `JSON report object ${key} is not serialisable`, { upstream: 'mass', transient: false });
      }
      // MASS keys objects by part name and splits them by part media type: application/json = JSON object.
      parts.push({ name: key, filename: `${key}.json`, contentType: 'application/json', data: Buffer.from(text, 'utf8') });
    }
    for (const [key, value] of Object.entries(report.rawReportObjects ?? {})) {
      claim(key, 'raw report object');
      const raw: RawReportObject = Buffer.isBuffer(value) || typeof value === 'string' ? { data: value } : value;
      const contentType = raw.contentType ?? 'binary/octet-stream';
      if (/^application\/json\s*(;|$)/i.test(contentType)) {
        throw new BridgeError('INTERNAL', `raw report object ${key} cannot use Content-Type application/json (MASS would store it as a JSON object)`, {
          upstream: 'mass',
          transient: false,
        });
      }
      const data = Buffer.isBuffer(raw.data) ? raw.data : Buffer.from(raw.data, 'utf8');
      parts.push({ name: key, filename: raw.filename ?? key, contentType, data });
    }
    return parts;
  }

  function scheduledAnalysisUrl(sa: ScheduledAnalysis | string): URL {
    return typeof sa === 'string' ? objectUrl('scheduled_analysis', sa) : resolve(sa.url);
  }

  const client: MassClient = {
    apiRoot,

    async poll(uuid, o = {}) {
      const url = resolve(`analysis_system_instance/${encodeURIComponent(uuid)}/scheduled_analyses/`);
      const body = await json<{ results?: ScheduledAnalysis[] }>('GET', url, {
        ...o,
        // MASS answers 404 "Analysis instance  '<uuid>' not found" when the key belongs to another instance.
        notFound: `instance ${uuid} not found for this key: the uuid does not exist or the key belongs to another instance`,
      });
      return results(body, url);
    },

    async getInstance(uuid, o = {}) {
      return json<AnalysisSystemInstance>('GET', resolve(`analysis_system_instance/${encodeURIComponent(uuid)}/`), {
        ...o,
        notFound: `analysis system instance ${uuid} does not exist`,
      });
    },

    async getScheduledAnalysis(idOrUrl, o = {}) {
      return json<ScheduledAnalysis>('GET', objectUrl('scheduled_analysis', idOrUrl), {
        ...o,
        notFound: 'scheduled analysis not found (already consumed by a report, or deleted)',
      });
    },

    async getSample(urlOrId, o = {}) {
      return json<MassSample>('GET', objectUrl('sample', urlOrId), {
        ...o,
        notFound: SAMPLE_HIDDEN,
      });
    },

    async downloadSample(sample, o = {}) {
      let url: URL;
      if (typeof sample === 'string') {
        url = isAbsoluteUrl(sample) && /\/download\/?$/.test(new URL(sample).pathname) ? resolve(sample) : new URL('download/', objectUrl('sample', sample));
      } else if (sample.file) {
        url = resolve(sample.file);
      } else {
        throw new BridgeError('SAMPLE_NOT_FILE', `sample ${sample.id} (${sample._cls}) has no file to download`, { upstream: 'mass', transient: false });
      }
      const res = await send('GET', url, { ...o, notFound: SAMPLE_HIDDEN });
      const length = Number(res.headers['content-length']);
      // The caller may destroy the body unread (e.g. Assemblyline refused the upload before reading it):
      // undici then emits RequestAbortedError, which without a listener is an uncaught exception that ends
      // the process. Readers (pipeline, for await) attach their own listeners and still see every error.
      res.body.on('error', () => {});
      const download: SampleDownload = { body: res.body };
      if (Number.isFinite(length) && length >= 0 && res.headers['content-length'] !== undefined) download.size = length;
      return download;
    },

    async submitReport(sa, report, o = {}) {
      const url = new URL('submit_report/', scheduledAnalysisUrl(sa));
      const mp = buildMultipart(reportParts(report));
      const body = mp.open();
      return json<MassReport>('POST', url, {
        ...o,
        body,
        contentType: mp.contentType,
        contentLength: mp.length,
        sources: [body],
        notFound: 'scheduled analysis not found: already consumed (a report was accepted) or deleted',
      });
    },

    async listSampleReports(sampleUrlOrId, o = {}) {
      const url = new URL('reports/', objectUrl('sample', sampleUrlOrId));
      const body = await json<{ results?: MassReport[] }>('GET', url, { ...o, notFound: SAMPLE_HIDDEN });
      return results(body, url);
    },

    async submitFileSample(upload: FileSampleUpload, o = {}) {
      const metadata = newSamplePayload(upload);
      const sources = Buffer.isBuffer(upload.body) ? [] : [upload.body];
      let mp;
      let body: Readable;
      try {
        mp = buildMultipart([
          { name: 'file', filename: upload.filename, contentType: 'binary/octet-stream', data: upload.body, size: upload.size },
          // Like the report's metadata: a plain form field holding JSON.
          { name: 'metadata', contentType: 'application/json', data: Buffer.from(JSON.stringify(metadata), 'utf8') },
        ]);
        body = mp.open();
      } catch (err) {
        for (const s of sources) s.destroy();
        throw err;
      }
      return json<MassSample>('POST', resolve('sample/submit_file/'), {
        ...o,
        body,
        contentType: mp.contentType,
        contentLength: mp.length,
        sources: [body, ...sources],
      });
    },

    async submitIPSample(ip, options, o = {}) {
      return postJson<MassSample>(resolve('sample/submit_ip/'), { ip_address: ip, ...newSamplePayload(options) }, o);
    },

    async submitDomainSample(domain, options, o = {}) {
      return postJson<MassSample>(resolve('sample/submit_domain/'), { domain, ...newSamplePayload(options) }, o);
    },

    async submitURISample(uri, options, o = {}) {
      return postJson<MassSample>(resolve('sample/submit_uri/'), { uri, ...newSamplePayload(options) }, o);
    },

    async addRelation(kind, sampleUrl, otherUrl, o = {}) {
      const endpoint = RELATION_ENDPOINTS[kind];
      if (!endpoint) throw new BridgeError('INTERNAL', `unknown relation kind ${JSON.stringify(kind)}`, { upstream: 'mass', transient: false });
      // MASS answers 500 unless both URLs start with exactly the origin it sees in this request's Host.
      // Behind a proxy that rewrites Host that is the alias, so the URLs MASS handed out are sent as they are.
      let sample = massUrl(sampleUrl);
      let other = massUrl(otherUrl);
      if (sample.origin !== other.origin) {
        if (sample.origin === origin) sample = new URL(sample.pathname, other.origin);
        else if (other.origin === origin) other = new URL(other.pathname, sample.origin);
      }
      return postJson<MassRelation>(resolve(endpoint), { sample: sample.href, other: other.href }, o);
    },

    async getRelationGraph(sampleUrlOrId, depth = 1, o = {}) {
      const url = new URL('relation_graph/', objectUrl('sample', sampleUrlOrId));
      url.searchParams.set('depth', String(depth));
      const body = await json<{ results?: MassRelation[] }>('GET', url, { ...o, notFound: SAMPLE_HIDDEN });
      return results(body, url);
    },

    async findSamples(filters, o = {}) {
      const found: MassSample[] = [];
      let page = 1;
      for (let n = 0; n < MAX_PAGES; n++) {
        const url = resolve('sample/');
        // MASS's `next` carries only `page` and drops the filters, so every page re-sends them.
        for (const [k, v] of Object.entries(filters)) url.searchParams.set(k, v);
        if (page > 1) url.searchParams.set('page', String(page));
        const body = await json<{ results?: MassSample[]; next?: string | null }>('GET', url, o);
        found.push(...results(body, url));
        if (!body.next) return found;
        const next = Number(new URL(body.next, apiRoot).searchParams.get('page'));
        if (!Number.isInteger(next) || next <= page) {
          throw new BridgeError('UPSTREAM_PROTOCOL', `GET ${url.pathname}: next page ${JSON.stringify(body.next)} does not advance`, {
            upstream: 'mass',
            path: url.pathname,
          });
        }
        page = next;
      }
      throw new BridgeError('UPSTREAM_PROTOCOL', `GET sample/: more than ${MAX_PAGES} pages`, { upstream: 'mass' });
    },

    async getAnalysisSystem(name, o = {}) {
      return json<AnalysisSystem>('GET', resolve(`analysis_system/${encodeURIComponent(name)}/`), {
        ...o,
        notFound: `analysis system ${name} does not exist`,
      });
    },

    async createAnalysisSystem(sys, o = {}) {
      return postJson<AnalysisSystem>(resolve('analysis_system/'), sys, o);
    },

    async createInstance(systemUrl, uuid, o = {}) {
      // A reference URL in a body follows the same origin rule as relation URLs: sent as MASS handed it out.
      const payload: Record<string, string> = { analysis_system: massUrl(systemUrl).href };
      if (uuid !== undefined) payload.uuid = uuid;
      return postJson<AnalysisSystemInstance>(resolve('analysis_system_instance/'), payload, o);
    },

    close() {
      closing ??= pool.close().catch(() => pool.destroy());
      return closing;
    },
  };
  return client;
}

export type { MassClient, MassClientOptions } from './types.js';
