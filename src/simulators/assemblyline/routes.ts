import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { storeFile } from './analysis.js';
import { SESSION_DURATION_S, type SessionAuth, type SimUser } from './auth.js';
import { decodeCart, encodeCart, isCart } from './cart.js';
import {
  fileChildren, renderFileInfo, renderFull, renderSubmission, renderSubmissionFile, renderSummary, renderTree,
} from './documents.js';
import type { AnalysisEngine } from './engine.js';
import { clearCookies, FORBIDDEN_CONFIG, LOGIN_OPTIONS, METHOD_NOT_ALLOWED_HTML, sendEnvelope } from './envelope.js';
import { boundaryOf, parseMultipart } from './multipart.js';
import { uploadDigests, type FileDigest } from './upload-digest.js';
import { parseDirective, type Scenario } from './scenario.js';
import { matches, parseQuery, project, SearchQueryError } from './search.js';
import { queueKey, type IngestRecord, type SimStore, type SubmissionParams, type SubmissionRecord } from './store.js';
import { base62Id, isoMicro, isRecord } from './util.js';
import { metadataError, restrictedParamError, type ClassificationEngine, type QuotaTracker, type SimMetadataScheme, type SimProfile } from './policy.js';
import { encryptedZip } from './zip.js';

export interface FaultRule {
  method?: string;
  path_prefix: string;
  status?: number;
  delay_ms?: number;
  drop?: boolean;
  times?: number;
}

export interface ApiContext {
  store: SimStore;
  engine: AnalysisEngine;
  auth: SessionAuth;
  now: () => number;
  version: string;
  maxFileSize: number;
  rawDownloadAllowed: boolean;
  concurrentQuota: number;
  secure: boolean;
  faults: FaultRule[];
  inflight: Map<string, number>;
  logger: Logger;
  classification: ClassificationEngine;
  quotas: QuotaTracker;
  /** Configured submission profiles; null = the four stock profiles without restrictions. */
  profiles: SimProfile[] | null;
  metadataScheme: SimMetadataScheme | undefined;
  /** `submission.max_dtl` days (0 = no cap) and `submission.dtl` days. */
  maxDtl: number;
  dtl: number;
}

interface Call {
  req: FastifyRequest;
  reply: FastifyReply;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  user: SimUser;
  body: Buffer;
}

type Handler = (ctx: ApiContext, call: Call) => Promise<unknown> | unknown;

interface RouteDef {
  method: 'GET' | 'POST';
  pattern: string[];
  auth: boolean;
  role?: string;
  /** `count_toward_quota` of `@api_login`: false only for ingest. */
  counted: boolean;
  handler: Handler;
}

const BAD_JSON = "No data block provided or data block not in JSON format.'";
const PROFILES = ['static', 'static_with_dynamic', 'static_with_internet', 'static_and_dynamic_with_internet'];
const DEFAULT_SERVICES = ['Filtering', 'Antivirus', 'Static Analysis', 'Extraction', 'Networking', 'Dynamic Analysis'];
const INGEST_MAX_PRIORITY = 250;
const MAX_METADATA_VALUE = 4096;

class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly response: unknown = '') {
    super(message);
  }
}

function split(path: string): string[] {
  return path.split('/');
}

const ROUTES: RouteDef[] = [];
function route(method: 'GET' | 'POST', path: string, handler: Handler, opts: { auth?: boolean; role?: string; counted?: boolean } = {}): void {
  ROUTES.push({ method, pattern: split(path), auth: opts.auth ?? true, role: opts.role, counted: opts.counted ?? true, handler });
}

function matchRoute(def: RouteDef, segments: string[]): Record<string, string> | null {
  if (def.pattern.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const p = def.pattern[i];
    if (p.startsWith(':')) {
      if (segments[i] === '') return null;
      params[p.slice(1)] = segments[i];
    } else if (p !== segments[i]) {
      return null;
    }
  }
  return params;
}

function decodeSegments(path: string): string[] {
  return split(path).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

function parseJsonBody(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, BAD_JSON);
  }
  if (!isRecord(parsed)) throw new ApiError(400, BAD_JSON);
  return parsed;
}

/** The single entry point for /api/**: Flask-like routing, auth, per-user quota, faults, then the endpoint. */
export async function handleApi(ctx: ApiContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const rawUrl = req.raw.url ?? '/';
  const qIdx = rawUrl.indexOf('?');
  const rawPath = qIdx < 0 ? rawUrl : rawUrl.slice(0, qIdx);
  const query = new URLSearchParams(qIdx < 0 ? '' : rawUrl.slice(qIdx + 1));
  const segments = decodeSegments(rawPath);
  const path = segments.join('/');
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  let found: { def: RouteDef; params: Record<string, string> } | null = null;
  for (const def of ROUTES) {
    if (def.method !== method) continue;
    const params = matchRoute(def, segments);
    if (params) {
      found = { def, params };
      break;
    }
  }
  if (!found) {
    // Flask strict_slashes: the slash-less form redirects (308) to the slash form of an existing rule.
    if (!rawPath.endsWith('/') && ROUTES.some((d) => matchRoute(d, decodeSegments(`${rawPath}/`)))) {
      return reply.code(308).header('location', `${rawPath}/${qIdx < 0 ? '' : rawUrl.slice(qIdx)}`).type('text/html; charset=utf-8').send('');
    }
    if (ROUTES.some((d) => matchRoute(d, segments))) {
      return reply.code(405).type('text/html; charset=utf-8').send(METHOD_NOT_ALLOWED_HTML);
    }
    return sendEnvelope(reply, ctx.version, 404, '', `Api does not exist (${path})`);
  }
  const { def, params } = found;
  let user: SimUser = { name: '', apiKey: '', password: '', roles: [], groups: [], classification: '', quotas: {} };
  if (def.auth) {
    const outcome = ctx.auth.authenticate(req);
    if (!outcome.ok) {
      if (outcome.status === 401) {
        clearCookies(reply);
        return sendEnvelope(reply, ctx.version, 401, LOGIN_OPTIONS, outcome.message);
      }
      return sendEnvelope(reply, ctx.version, 403, FORBIDDEN_CONFIG, `Access Denied (${path}) [${outcome.message}]`);
    }
    user = outcome.user;
    if (def.role && !user.roles.includes(def.role)) {
      return sendEnvelope(reply, ctx.version, 403, FORBIDDEN_CONFIG, `Access Denied (${path}) [API ${path} requires one of the following roles: ${def.role}]`);
    }
    // Concurrent-call quota: every request of the user counts while it is in flight.
    const inflight = ctx.inflight.get(user.name) ?? 0;
    if (inflight >= ctx.concurrentQuota) {
      return sendEnvelope(reply, ctx.version, 503, '', `You've exceeded your maximum concurrent API calls quota of ${ctx.concurrentQuota}`);
    }
    ctx.inflight.set(user.name, inflight + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      ctx.inflight.set(user.name, (ctx.inflight.get(user.name) ?? 1) - 1);
    };
    reply.raw.once('close', release);
    reply.raw.once('finish', release);
    // Daily API quota (api/base.py): every call counts except the ones marked count_toward_quota=False (ingest).
    const daily = def.counted ? ctx.quotas.countApiCall(user.name, user.quotas.dailyApiCalls) : null;
    if (daily) return sendEnvelope(reply, ctx.version, 503, '', daily);
  }
  const fault = takeFault(ctx, method, rawPath);
  if (fault) {
    if (fault.delay_ms) await new Promise((r) => setTimeout(r, fault.delay_ms).unref());
    if (fault.drop) {
      req.raw.socket.destroy();
      return reply.hijack();
    }
    if (fault.status) return sendEnvelope(reply, ctx.version, fault.status, '', `Simulated fault (${fault.status})`);
  }
  try {
    return await def.handler(ctx, { req, reply, path, params, query, user, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0) });
  } catch (err) {
    if (err instanceof ApiError) return sendEnvelope(reply, ctx.version, err.status, err.response, err.message);
    ctx.logger.error({ err }, 'simulator endpoint failed');
    return sendEnvelope(reply, ctx.version, 500, '', 'Internal Server Error');
  }
}

function takeFault(ctx: ApiContext, method: string, path: string): FaultRule | null {
  const idx = ctx.faults.findIndex((f) => (!f.method || f.method.toUpperCase() === method) && path.startsWith(f.path_prefix) && (f.times === undefined || f.times > 0));
  if (idx < 0) return null;
  const rule = ctx.faults[idx];
  if (rule.times !== undefined) {
    rule.times--;
    if (rule.times <= 0) ctx.faults.splice(idx, 1);
  }
  return rule;
}

const ok = (ctx: ApiContext, call: Call, response: unknown): FastifyReply => sendEnvelope(call.reply, ctx.version, 200, response);

// --- authentication -------------------------------------------------------------------------

route('GET', '/api/', (ctx, call) => ok(ctx, call, ['v4']));

route('POST', '/api/v4/auth/login/', (ctx, call) => {
  const ct = String(call.req.headers['content-type'] ?? '');
  let body: Record<string, unknown>;
  if (ct.includes('application/x-www-form-urlencoded')) body = Object.fromEntries(new URLSearchParams(call.body.toString('utf8')));
  else body = call.body.length === 0 ? {} : parseJsonBody(call.body);
  const result = ctx.auth.login(body, call.req.ip, String(call.req.headers['user-agent'] ?? ''));
  if (!result.ok) {
    clearCookies(call.reply);
    return sendEnvelope(call.reply, ctx.version, 401, '', result.message);
  }
  const s = result.session;
  call.reply.header('set-cookie', [
    `XSRF-TOKEN=${s.xsrf}; Path=/`,
    `session=${result.cookieValue}; Expires=${new Date(s.expiresAt).toUTCString()};${ctx.secure ? ' Secure;' : ''} HttpOnly; Path=/; SameSite=None`,
  ]);
  return ok(ctx, call, { roles_limit: s.rolesLimit, session_duration: SESSION_DURATION_S, username: s.user });
}, { auth: false });

// --- ingest ---------------------------------------------------------------------------------

function flattenMetadata(input: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (!isRecord(input)) return out;
  for (const [k, v] of Object.entries(input)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isRecord(v)) flattenMetadata(v, key, out);
    else if (v !== null && v !== undefined) {
      const value = typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? 'True' : 'False') : Array.isArray(v) ? JSON.stringify(v) : String(v);
      // The ingester silently drops values longer than 4096 chars (JSON-encoded).
      if (JSON.stringify(value).length <= MAX_METADATA_VALUE) out[key] = value;
    }
  }
  return out;
}

function defaultParams(ctx: ApiContext): Record<string, unknown> {
  return {
    auto_archive: false, classification: ctx.classification.unrestricted, deep_scan: false, delete_after_archive: false, description: null, generate_alert: false,
    groups: ['USERS'], ignore_cache: false, ignore_filtering: false, ignore_recursion_prevention: false, ignore_size: false, malicious: false,
    max_extracted: 100, max_supplementary: 100, never_drop: false, priority: 1000, psid: null, quota_item: false, service_spec: {},
    services: { selected: [...DEFAULT_SERVICES] }, submitter: '', trace: false, ttl: 30, type: 'INGEST', use_archive_alternate_dtl: false,
  };
}

interface IngestSource {
  content: Buffer;
  name: string;
  isUrl: boolean;
  /** A hash the server does not have: the 404 text, raised after the parameter checks. */
  missing?: string;
  /** The content's hashes and entropy, computed on the hash threads while the upload arrived (upload-digest.ts). */
  digest?: Promise<FileDigest | null>;
}

function ingestSource(ctx: ApiContext, call: Call): { options: Record<string, unknown>; source: IngestSource } {
  const ct = String(call.req.headers['content-type'] ?? '').toLowerCase();
  if (ct.startsWith('multipart/form-data')) {
    const boundary = boundaryOf(String(call.req.headers['content-type']));
    let parts;
    try {
      parts = boundary ? parseMultipart(call.body, boundary) : null;
    } catch {
      parts = null;
    }
    const bin = parts?.find((p) => p.name === 'bin');
    if (!parts || !bin) {
      throw new ApiError(400, '400 Bad Request: The browser (or proxy) sent a request that this server could not understand.', {});
    }
    const jsonPart = parts.find((p) => p.name === 'json');
    let options: Record<string, unknown> = {};
    if (jsonPart) {
      try {
        const parsed: unknown = JSON.parse(jsonPart.data.toString('utf8'));
        if (isRecord(parsed)) options = parsed;
      } catch {
        throw new ApiError(400, BAD_JSON, {});
      }
    }
    // bin.data is a view of the body: its offsets there are what the stream's digest saw.
    const start = bin.data.byteOffset - call.body.byteOffset;
    const digest = bin.data.buffer === call.body.buffer ? uploadDigests.get(call.req.raw)?.facts(call.body, start, start + bin.data.length) : null;
    return { options, source: { content: bin.data, name: bin.filename ?? '', isUrl: false, digest: digest ?? undefined } };
  }
  if (ct.startsWith('application/json')) {
    let options: Record<string, unknown>;
    try {
      options = parseJsonBody(call.body);
    } catch {
      throw new ApiError(400, BAD_JSON, {});
    }
    for (const hashType of ['sha256', 'sha1', 'md5'] as const) {
      const wanted = options[hashType];
      if (typeof wanted !== 'string' || !wanted) continue;
      const file = [...ctx.store.files.values()].find((f) => f[hashType] === wanted.toLowerCase() && !f.isSupplementary);
      // The lookup fails only after the profile and parameter checks (init_submission order).
      if (!file) return { options, source: { content: Buffer.alloc(0), name: wanted, isUrl: false, missing: `${hashType.toUpperCase()} does not exist in Assemblyline and no external sources are available.` } };
      return { options, source: { content: file.content, name: wanted, isUrl: false } };
    }
    if (typeof options.url === 'string' && options.url) {
      // AL stores a URI file for its downloader services; the URL becomes the name.
      return { options: { ...options, name: options.url }, source: { content: Buffer.from(`uri: ${options.url}\n`, 'utf8'), name: options.url, isUrl: true } };
    }
    if (typeof options.plaintext === 'string') {
      const content = Buffer.from(options.plaintext, 'utf8');
      return { options, source: { content, name: '', isUrl: false } };
    }
    if (typeof options.base64 === 'string') {
      return { options, source: { content: Buffer.from(options.base64, 'base64'), name: '', isUrl: false } };
    }
    throw new ApiError(400, 'Missing file to scan. No binary or fetching method provided.', {});
  }
  throw new ApiError(400, 'Invalid content type', {});
}

route('POST', '/api/v4/ingest/', async (ctx, call) => {
  // api/v4/ingest.py: the daily and async submission quotas are taken before anything is read, and given back
  // when the ingest is refused afterwards.
  const quotaError = ctx.quotas.beginSubmission(call.user.name, call.user.quotas);
  if (quotaError) throw new ApiError(503, quotaError, '');
  try {
    return await ingest(ctx, call);
  } catch (err) {
    ctx.quotas.cancelSubmission(call.user.name, call.user.quotas);
    throw err;
  }
}, { role: 'submission_create', counted: false });

async function ingest(ctx: ApiContext, call: Call): Promise<FastifyReply> {
  const { options, source } = ingestSource(ctx, call);
  let content = source.content;
  let cartName: string | null = null;
  let cartMetadata: Record<string, unknown> = {};
  let cartClassification: string | null = null;
  if (content.length === 0 && !source.missing) throw new ApiError(400, 'File empty.', {});
  if (isCart(content)) {
    // CaRT uploads are unpacked: the inner file is analysed, named from the CaRT header.
    try {
      const decoded = decodeCart(content);
      content = decoded.content;
      cartName = typeof decoded.header.name === 'string' ? decoded.header.name : null;
      cartClassification = typeof decoded.header.classification === 'string' ? decoded.header.classification : null;
      cartMetadata = Object.fromEntries(Object.entries(decoded.header).filter(([k]) => k !== 'name' && k !== 'classification'));
    } catch {
      throw new ApiError(400, 'Invalid CaRT file.', {});
    }
    if (content.length === 0) throw new ApiError(400, 'File empty.', {});
  }
  const reqParams = isRecord(options.params) ? options.params : {};
  if (options.params !== undefined && !isRecord(options.params)) throw new ApiError(400, 'Invalid parameters: params must be a dictionary', {});
  if (!reqParams.ignore_size && content.length > ctx.maxFileSize) {
    throw new ApiError(413, `File too big to be scanned (${content.length} > ${ctx.maxFileSize}).`, {});
  }
  const threshold = options.notification_threshold;
  if (threshold !== undefined && threshold !== null && !Number.isInteger(threshold)) {
    throw new ApiError(400, 'notification_threshold should be and int', {});
  }
  // helper/submission.py `update_submission_parameters` + `apply_changes_to_profile`.
  const customize = call.user.roles.includes('submission_customize');
  const profiles = ctx.profiles ?? PROFILES.map((name): SimProfile => ({ name, displayName: name, params: {}, restrictedParams: {} }));
  const profileName = options.submission_profile;
  let profile: SimProfile | undefined;
  if (profileName !== undefined) {
    profile = profiles.find((p) => p.name === String(profileName));
    // A user with submission_customize naming an unknown profile gets the defaults: the name is ignored.
    if (!profile && !customize) throw new ApiError(400, `Submission profile '${String(profileName)}' does not exist`, {});
  } else if (!customize) {
    throw new ApiError(400, `You must specify a submission profile. One of: [${profiles.map((p) => `'${p.name}'`).join(', ')}]`, {});
  }
  const defaults = defaultParams(ctx);
  if (profile && !customize) {
    const refused = restrictedParamError(profile, reqParams, defaults);
    if (refused) throw new ApiError(400, refused, {});
  }
  if (source.missing) throw new ApiError(404, source.missing, {});
  if (options.metadata !== undefined && options.metadata !== null && !isRecord(options.metadata)) {
    throw new ApiError(400, 'Invalid metadata: metadata must be a dictionary', {});
  }
  // As Assemblyline, the file is stored and hashed before the ingest is answered (the hash threads may still be busy).
  const pending = content === source.content ? source.digest : undefined;
  // Meanwhile the `AL-SIM:` search (a scan of the whole file) runs here; an invalid directive fails later, as before.
  let directive: Scenario | null | undefined;
  if (pending) {
    try {
      directive = parseDirective(content);
    } catch {
      directive = undefined;
    }
  }
  const digest = pending ? ((await pending) ?? undefined) : undefined;
  const now = ctx.now();
  const ingestId = base62Id();
  const ingestType = typeof options.type === 'string' && options.type ? options.type : 'INGEST';
  const name = cartName ?? ((typeof options.name === 'string' && options.name) || source.name || '');
  const file = storeFile(ctx.store, content, name, now, false, digest);
  const finalName = name || file.sha256;

  const params = { ...defaults, ...(profile?.params ?? {}), ...reqParams } as SubmissionParams;
  if (typeof params.classification !== 'string' || !ctx.classification.isValid(params.classification)) {
    throw new ApiError(400, `Classification level '${String(params.classification).toUpperCase()}' was not found in your classification definition.`, {});
  }
  params.classification = ctx.classification.normalise(params.classification);
  // init_submission: a classification in the CaRT header raises the submission's (max_classification).
  if (cartClassification !== null && cartClassification !== params.classification) {
    if (!ctx.classification.isValid(cartClassification)) {
      throw new ApiError(400, `The classification found inside the cart file cannot be merged with the classification the file was submitted as: Classification level '${cartClassification.toUpperCase()}' was not found in your classification definition.`, {});
    }
    params.classification = ctx.classification.max(cartClassification, String(params.classification));
  }
  if (!ctx.classification.isAccessible(call.user.classification, String(params.classification))) {
    throw new ApiError(400, "You cannot start a submission with higher classification then you're allowed to see", {});
  }
  const requestedServices = isRecord(reqParams.services) ? reqParams.services : {};
  const services: Record<string, unknown> = { selected: [...DEFAULT_SERVICES] };
  for (const k of ['selected', 'excluded', 'rescan', 'resubmit']) {
    // The 4.7 Rust serialiser omits empty service lists.
    if (Array.isArray(requestedServices[k]) && (requestedServices[k] as unknown[]).length > 0) services[k] = requestedServices[k];
  }
  params.services = services;
  // Server-side overrides (ASSEMBLYLINE.md §3.3); a top-level generate_alert is not read.
  params.priority = Math.min(Number.isFinite(Number(params.priority)) ? Number(params.priority) : 1000, INGEST_MAX_PRIORITY);
  params.max_extracted = 100;
  params.max_supplementary = 100;
  params.type = typeof reqParams.type === 'string' && reqParams.type ? reqParams.type : ingestType;
  const description = typeof reqParams.description === 'string' && reqParams.description
    ? reqParams.description
    : source.isUrl ? `Inspection of URL: ${String(options.url)}` : `Inspection of file: ${finalName}`;
  params.description = `[${params.type}] ${description}`;
  params.submitter = call.user.name;
  params.groups = [...call.user.groups];
  params.ttl = Number.isInteger(params.ttl) ? (params.ttl as number) : ctx.dtl;
  // config.submission.max_dtl caps the ttl (0 = the maximum).
  if (ctx.maxDtl > 0) params.ttl = params.ttl !== 0 ? Math.min(params.ttl as number, ctx.maxDtl) : ctx.maxDtl;
  for (const k of ['deep_scan', 'ignore_cache', 'ignore_recursion_prevention', 'ignore_filtering', 'ignore_size', 'never_drop', 'generate_alert']) {
    params[k] = params[k] === true;
  }
  const submitted = { ...flattenMetadata(cartMetadata), ...flattenMetadata(options.metadata ?? {}) };
  // assemblyline-base datastore/helper.py `check_metadata`, scheme ingest._default + ingest[type].
  const metaRefused = metadataError(ctx.metadataScheme, String(params.type), submitted);
  if (metaRefused) throw new ApiError(400, metaRefused, {});
  const metadata = { ...submitted, ingest_id: ingestId, type: ingestType, ts: isoMicro(now) };
  const queue = typeof options.notification_queue === 'string' && options.notification_queue ? options.notification_queue : null;
  const ingest: IngestRecord = {
    ingestId, user: call.user.name, sha256: file.sha256, name: finalName, size: file.size, queue,
    threshold: Number.isInteger(threshold) ? (threshold as number) : null, metadata, params, ingestTime: now, ts: now,
    scenario: ctx.engine.resolveScenario(file.sha256, content, undefined, directive), outcome: 'queued',
  };
  ctx.store.ingests.set(ingestId, ingest);
  ctx.engine.submit(ingest);
  return ok(ctx, call, { ingest_id: ingestId });
}

// --- the user ---------------------------------------------------------------------------------

// api/v4/user.py `who_am_i` (the fields the bridge reads): roles, clearance, quotas, and the submission
// profiles the user may use with their `restricted_params` (name and classification popped, as upstream).
route('GET', '/api/v4/user/whoami/', (ctx, call) => {
  const u = call.user;
  const profiles: Record<string, unknown> = {};
  for (const p of ctx.profiles ?? PROFILES.map((name): SimProfile => ({ name, displayName: name, params: {}, restrictedParams: {} }))) {
    const services = p.excludedServices?.length ? { services: { excluded: p.excludedServices } } : {};
    profiles[p.name] = { display_name: p.displayName, params: { ...p.params, ...services }, restricted_params: p.restrictedParams };
  }
  return ok(ctx, call, {
    username: u.name, name: u.name, roles: [...u.roles], type: ['custom'], classification: u.classification, groups: [...u.groups], is_active: true,
    is_admin: u.roles.includes('administration'), api_daily_quota: u.quotas.dailyApiCalls ?? 0, submission_daily_quota: u.quotas.dailySubmissions ?? 0,
    c12nDef: { levels: ctx.classification.levels.map((l, i) => ({ lvl: i + 1, name: l, short_name: l })) },
    configuration: { submission: { dtl: ctx.dtl, max_dtl: ctx.maxDtl, max_file_size: ctx.maxFileSize, profiles }, system: { version: ctx.version } },
  });
});

// --- notification queues --------------------------------------------------------------------

/**
 * 4.7.4 readers pop the legacy queue key shared by all users (`nq-<name>`) first, for names that cannot be
 * taken for a per-user key (assemblyline-ui v4.7.4.stable6 api/v4/ingest.py `is_safe_queue_name`).
 */
function isSafeQueueName(name: string): boolean {
  const dash = name.indexOf('-');
  if (dash <= 0) return true;
  const head = name.slice(0, dash);
  return !(head.length % 2 === 0 && /^[0-9A-F]+$/.test(head));
}

function popLegacy(ctx: ApiContext, name: string, max: number): Record<string, unknown>[] {
  if (!isSafeQueueName(name) || max === 0) return [];
  const list = ctx.store.queues.get(`nq-${name}`);
  if (!list) return [];
  const popped = list.splice(0, max < 0 ? list.length : max);
  if (list.length === 0) ctx.store.queues.delete(`nq-${name}`);
  return popped.map((m) => m.message);
}

route('GET', '/api/v4/ingest/get_message/:nq/', (ctx, call) => {
  const legacy = popLegacy(ctx, call.params.nq, 1);
  if (legacy.length > 0) return ok(ctx, call, legacy[0]);
  const key = queueKey(call.user.name, call.params.nq);
  const list = ctx.store.queues.get(key);
  const item = list?.shift();
  if (list && list.length === 0) ctx.store.queues.delete(key);
  return ok(ctx, call, item ? item.message : null);
}, { role: 'submission_create' });

route('GET', '/api/v4/ingest/get_message_list/:nq/', (ctx, call) => {
  const raw = call.query.get('page_size');
  let pageSize = -1;
  if (raw !== null) {
    // upstream does int(page_size) without a guard: a non-integer is an uncaught exception (500)
    if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw new Error(`invalid literal for int(): ${raw}`);
    pageSize = Number.parseInt(raw, 10);
  }
  const legacy = popLegacy(ctx, call.params.nq, pageSize);
  const key = queueKey(call.user.name, call.params.nq);
  const list = ctx.store.queues.get(key) ?? [];
  const room = pageSize < 0 ? list.length : pageSize - legacy.length;
  const popped = list.splice(0, Math.min(room, list.length));
  if (list.length === 0) ctx.store.queues.delete(key);
  return ok(ctx, call, [...legacy, ...popped.map((m) => m.message)]);
}, { role: 'submission_create' });

// --- submissions ----------------------------------------------------------------------------

function submissionOr404(ctx: ApiContext, sid: string, user: SimUser, hideForbidden = false): SubmissionRecord {
  const sub = ctx.store.submissions.get(sid);
  if (!sub) throw new ApiError(404, `Submission ID ${sid} does not exists.`, '');
  // Access to submissions and results is by classification only (no group check).
  if (!ctx.classification.isAccessible(user.classification, String(sub.params.classification ?? ''))) {
    // is_completed answers 404 for a submission the caller may not see; the other endpoints 403.
    if (hideForbidden) throw new ApiError(404, `Submission ID ${sid} does not exists.`, '');
    throw new ApiError(403, 'You are not allowed to view the data of this submission', '');
  }
  return sub;
}

route('GET', '/api/v4/submission/is_completed/:sid/', (ctx, call) => ok(ctx, call, submissionOr404(ctx, call.params.sid, call.user, true).state === 'completed'), { role: 'submission_view' });
route('GET', '/api/v4/submission/full/:sid/', (ctx, call) => {
  const sub = submissionOr404(ctx, call.params.sid, call.user);
  return ok(ctx, call, renderFull(ctx.store, sub, ctx.now(), (call.query.get('get_full_tree') ?? '').toLowerCase() === 'true'));
}, { role: 'submission_view' });
route('GET', '/api/v4/submission/summary/:sid/', (ctx, call) => ok(ctx, call, renderSummary(ctx.store, submissionOr404(ctx, call.params.sid, call.user))), { role: 'submission_view' });
route('GET', '/api/v4/submission/tree/:sid/', (ctx, call) => ok(ctx, call, renderTree(ctx.store, submissionOr404(ctx, call.params.sid, call.user))), { role: 'submission_view' });
route('GET', '/api/v4/submission/:sid/file/:sha256/', (ctx, call) => {
  const sub = submissionOr404(ctx, call.params.sid, call.user);
  const doc = renderSubmissionFile(ctx.store, sub, call.params.sha256.toLowerCase(), ctx.now());
  if (!doc) throw new ApiError(404, `File ${call.params.sha256} is not part of submission ${sub.sid}.`, '');
  return ok(ctx, call, doc);
}, { role: 'submission_view' });
route('GET', '/api/v4/submission/:sid/', (ctx, call) => ok(ctx, call, renderSubmission(ctx.store, submissionOr404(ctx, call.params.sid, call.user))), { role: 'submission_view' });

// --- files ----------------------------------------------------------------------------------

route('GET', '/api/v4/file/children/:sha256/', (ctx, call) => ok(ctx, call, fileChildren(ctx.store, call.params.sha256.toLowerCase())), { role: 'submission_view' });
route('GET', '/api/v4/file/info/:sha256/', (ctx, call) => {
  const f = ctx.store.files.get(call.params.sha256.toLowerCase());
  if (!f) throw new ApiError(404, `SHA256 ID ${call.params.sha256} does not exist.`, '');
  return ok(ctx, call, renderFileInfo(f, null));
}, { role: 'submission_view' });

route('GET', '/api/v4/file/download/:sha256/', (ctx, call) => {
  const f = ctx.store.files.get(call.params.sha256.toLowerCase());
  if (!f) throw new ApiError(404, 'The file was not found in the system.', {});
  // Unknown parameters (the Python client's `self=<File object ...>` leak) are ignored.
  const encoding = (call.query.get('encoding') || 'cart').toLowerCase();
  const name = call.query.get('name') || f.sha256;
  let body: Buffer;
  let filename: string;
  if (encoding === 'raw') {
    if (!ctx.rawDownloadAllowed) throw new ApiError(403, 'RAW file download has been disabled by administrators.', {});
    body = f.content;
    filename = name;
  } else if (encoding === 'cart') {
    const sid = call.query.get('sid');
    const sub = sid ? ctx.store.submissions.get(sid) : undefined;
    body = isCart(f.content) ? f.content : encodeCart(f.content, { ...(sub ? sub.metadata : {}), name });
    filename = `${name}.cart`;
  } else if (encoding === 'zip') {
    const password = call.query.get('password') || 'infected';
    body = encryptedZip(name, f.content, password);
    filename = `${name}.zip`;
  } else {
    throw new ApiError(403, `${encoding.toUpperCase()} is not in the valid encoding types: ['cart', 'raw', 'zip']`, {});
  }
  return call.reply
    .code(200)
    .type('application/octet-stream')
    .header('content-disposition', `attachment; filename=file.bin; filename*=UTF-8''${encodeURIComponent(filename)}`)
    .send(body);
}, { role: 'file_download' });

// --- search ---------------------------------------------------------------------------------

function searchSubmissions(ctx: ApiContext, call: Call, opts: Record<string, unknown>): FastifyReply {
  const q = typeof opts.query === 'string' ? opts.query : '';
  if (!q.trim()) throw new ApiError(400, 'There was no search query.', '');
  let terms;
  try {
    terms = parseQuery(q);
  } catch (err) {
    if (err instanceof SearchQueryError) throw new ApiError(400, err.message, '');
    throw err;
  }
  const rows = Math.max(0, Number.parseInt(String(opts.rows ?? '25'), 10) || 0);
  const deep = typeof opts.deep_paging_id === 'string' ? opts.deep_paging_id : null;
  let offset = Math.max(0, Number.parseInt(String(opts.offset ?? '0'), 10) || 0);
  if (deep !== null) offset = deep === '*' ? 0 : Number.parseInt(Buffer.from(deep, 'base64url').toString('utf8'), 10) || 0;
  const docs = [...ctx.store.submissions.values()]
    .filter((s) => ctx.classification.isAccessible(call.user.classification, String(s.params.classification ?? '')))
    .sort((a, b) => b.submitted - a.submitted)
    .map((s) => renderSubmission(ctx.store, s))
    .filter((d) => matches(d, terms ?? []));
  const page = docs.slice(offset, offset + rows);
  const fl = typeof opts.fl === 'string' && opts.fl ? opts.fl : undefined;
  const response: Record<string, unknown> = { items: page.map((d) => project(d, fl)), offset, rows, total: docs.length };
  if (deep !== null && offset + page.length < docs.length) response.next_deep_paging_id = Buffer.from(String(offset + page.length)).toString('base64url');
  return ok(ctx, call, response);
}

route('GET', '/api/v4/search/submission/', (ctx, call) => searchSubmissions(ctx, call, Object.fromEntries(call.query)), { role: 'submission_view' });
route('POST', '/api/v4/search/submission/', (ctx, call) => searchSubmissions(ctx, call, call.body.length ? parseJsonBody(call.body) : {}), { role: 'submission_view' });
