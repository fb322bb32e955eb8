import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { silentLogger } from '../../log.js';
import { ALL_ROLES, SessionAuth, type SimUser } from './auth.js';
import { ClassificationEngine, DEFAULT_CLASSIFICATION_LEVELS, QuotaTracker, type SimMetadataScheme, type SimProfile, type SimQuotas } from './policy.js';
import { AnalysisEngine, cleanupQueues } from './engine.js';
import { sendEnvelope } from './envelope.js';
import { handleApi, type ApiContext, type FaultRule } from './routes.js';
import { validateScenario } from './scenario.js';
import { SimStore } from './store.js';
import { isRecord } from './util.js';
import { boundaryOf, readBody } from './multipart.js';
import { HashPool } from './hash-pool.js';
import { UploadDigest, uploadDigests } from './upload-digest.js';

export { encodeCart, decodeCart, isCart } from './cart.js';
export type { Scenario } from './scenario.js';
export type { SimMetadataScheme, SimProfile, SimQuotas } from './policy.js';

export interface AssemblylineSimulatorOptions {
  user?: string;
  apiKey?: string;
  password?: string;
  analysisDelayMs?: number;
  now?: () => number;
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean };
  maxFileSize?: number;
  concurrentQuota?: number;
  rawDownloadAllowed?: boolean;
  version?: string;
  logger?: Logger;
  /** Extra AL users (e.g. to show that queues are per user, or a user without `submission_customize`). */
  extraUsers?: { user: string; apiKey?: string; password?: string; roles?: string[]; groups?: string[]; classification?: string; quotas?: SimQuotas }[];
  /** Roles of the main user (default: all, including `submission_customize`). */
  roles?: string[];
  /** Clearance of the main user (default: the highest level of the classification engine). */
  userClassification?: string;
  /** Quotas of the main user (default: none). */
  quotas?: SimQuotas;
  /** Submission profiles (default: the four stock profiles, without restrictions). */
  profiles?: SimProfile[];
  /** The ingest metadata validation scheme (default: none). */
  metadataScheme?: SimMetadataScheme;
  /** Classification levels, lowest first (default: TLP:CLEAR .. TLP:RED). */
  classificationLevels?: string[];
  /** `submission.max_dtl` in days (default 0 = no cap). */
  maxDtl?: number;
  /** `submission.dtl` in days (default 30). */
  dtl?: number;
}

export interface AssemblylineSimulator {
  readonly app: FastifyInstance;
  listen(opts?: { host?: string; port?: number }): Promise<string>;
  close(): Promise<void>;
  readonly user: string;
  readonly apiKey: string;
  readonly password: string;
  stats(): { ingests: number; ingestsBySha256: Record<string, number>; submissions: number; messagesQueued: number; messagesLost: number };
  /** Today's quota counters of a user (API calls counted toward the daily quota, submissions, async slots in use). */
  usage(user?: string): { api: number; submissions: number; async: number };
  runQueueCleanup(): number;
}

const CLEANUP_INTERVAL_MS = 30 * 60_000;
/** Ingest uploads at least this large are hashed on worker threads while they arrive (hash-pool.ts). */
const HASH_THREADS_MIN_BYTES = 1_048_576;

export async function createAssemblylineSimulator(opts: AssemblylineSimulatorOptions = {}): Promise<AssemblylineSimulator> {
  const logger = opts.logger ?? silentLogger();
  let clockOffset = 0;
  const injectedClock = opts.now;
  const now = injectedClock ?? ((): number => Date.now() + clockOffset);
  const userName = opts.user ?? 'mass-bridge';
  const apiKey = opts.apiKey ?? `bridgekey:${randomBytes(24).toString('base64url')}`;
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const maxFileSize = opts.maxFileSize ?? 104_857_600;
  const version = opts.version ?? '4.7.4.stable6';

  const classification = new ClassificationEngine(opts.classificationLevels ?? DEFAULT_CLASSIFICATION_LEVELS);
  const top = classification.levels[classification.levels.length - 1];
  const users = new Map<string, SimUser>();
  users.set(userName, {
    name: userName, apiKey, password, roles: [...(opts.roles ?? ALL_ROLES)], groups: ['USERS'], classification: opts.userClassification ?? top, quotas: opts.quotas ?? {},
  });
  for (const extra of opts.extraUsers ?? []) {
    users.set(extra.user, {
      name: extra.user, apiKey: extra.apiKey ?? `key:${randomBytes(16).toString('hex')}`, password: extra.password ?? randomBytes(16).toString('hex'),
      roles: extra.roles ?? [...ALL_ROLES], groups: extra.groups ?? ['USERS'], classification: extra.classification ?? top, quotas: extra.quotas ?? {},
    });
  }
  const quotas = new QuotaTracker(now);
  const store = new SimStore();
  const engine = new AnalysisEngine({
    store, now, analysisDelayMs: opts.analysisDelayMs ?? 300, maxFileSize, logger,
    // ASYNC_SUBMISSION_TRACKER: the slot is released when the submission finishes, whatever its outcome.
    onFinished: (ingest) => {
      const u = users.get(ingest.user);
      if (u) quotas.endSubmission(u.name, u.quotas);
    },
  });
  const hashPool = new HashPool();
  const requestCert = opts.https?.requestCert === true;
  const auth = new SessionAuth(users, now);
  const ctx: ApiContext = {
    store, engine, auth, now, version, maxFileSize, rawDownloadAllowed: opts.rawDownloadAllowed ?? true,
    concurrentQuota: opts.concurrentQuota ?? 10, secure: opts.https !== undefined, faults: [], inflight: new Map(), logger,
    classification, quotas, profiles: opts.profiles ?? null, metadataScheme: opts.metadataScheme, maxDtl: opts.maxDtl ?? 0, dtl: opts.dtl ?? 30,
  };

  const app = (opts.https
    ? Fastify({
      https: { key: opts.https.key, cert: opts.https.cert, ca: opts.https.ca, requestCert, rejectUnauthorized: requestCert },
      loggerInstance: logger, bodyLimit: Math.ceil(maxFileSize * 1.4) + 1_048_576,
    })
    : Fastify({ loggerInstance: logger, bodyLimit: Math.ceil(maxFileSize * 1.4) + 1_048_576 })) as unknown as FastifyInstance;

  // Endpoints parse their own bodies (multipart, JSON, form), as Flask views do.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // A multipart body (an ingest upload) of announced length is copied into one buffer as it arrives, instead of a
  // list of chunks joined at the end (which held the upload twice and cost seconds per GiB); same limits as above.
  // An ingest's upload of at least HASH_THREADS_MIN_BYTES (or of unknown length) is read into shared memory and
  // hashed on worker threads while it arrives (upload-digest.ts, hash-pool.ts); smaller files are hashed inline.
  app.addContentTypeParser('multipart/form-data', (req, payload, done) => {
    const bodyLimit = Math.ceil(maxFileSize * 1.4) + 1_048_576;
    const contentType = String(req.headers['content-type'] ?? '');
    const length = req.headers['content-length'];
    const large = length === undefined || Number(length) >= HASH_THREADS_MIN_BYTES;
    const boundary = large && req.method === 'POST' && req.url.startsWith('/api/v4/ingest/') ? boundaryOf(contentType) : null;
    const digest = boundary ? new UploadDigest(boundary, hashPool) : undefined;
    if (digest) uploadDigests.set(req.raw, digest);
    readBody(payload, length, bodyLimit, { shared: digest !== undefined, watcher: digest }).then((body) => done(null, body), (err: Error) => done(err, undefined));
  });
  // Whatever the answer (or if the client went away), the hash threads let go of an upload nobody asked the digest of.
  app.addHook('onResponse', async (req) => uploadDigests.get(req.raw)?.abort());
  app.addHook('onRequestAbort', async (req) => uploadDigests.get(req.raw)?.abort());

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const size = Number(req.headers['content-length'] ?? 0);
      return sendEnvelope(reply, version, 413, {}, `File too big to be scanned (${size} > ${maxFileSize}).`);
    }
    logger.error({ err }, 'simulator request failed');
    return sendEnvelope(reply, version, 500, '', 'Internal Server Error');
  });

  // --- control endpoints (no auth; loopback test tool) ----------------------------------------
  const control = (body: unknown): Record<string, unknown> => (isRecord(body) ? body : {});
  const jsonBody = (raw: unknown): unknown => {
    if (!Buffer.isBuffer(raw) || raw.length === 0) return {};
    return JSON.parse(raw.toString('utf8'));
  };
  app.get('/_sim/state', async () => ({
    ingests: [...store.ingests.values()].map((i) => ({ ingest_id: i.ingestId, sha256: i.sha256, name: i.name, user: i.user, queue: i.queue, outcome: i.outcome })),
    submissions: [...store.submissions.values()].map((s) => ({ sid: s.sid, state: s.state, sha256: s.files[0].sha256, results: s.resultKeys.length })),
    queues: Object.fromEntries([...store.queues].map(([k, v]) => [k, v.length])),
    stats: stats(),
  }));
  app.post('/_sim/scenarios', async (req, reply) => {
    try {
      const body = control(jsonBody(req.body));
      if (typeof body.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(body.sha256)) return reply.code(400).send({ error: 'sha256 required' });
      store.scenarios.set(body.sha256.toLowerCase(), validateScenario(body.scenario));
      return reply.code(201).send({ sha256: body.sha256.toLowerCase(), scenario: body.scenario });
    } catch (err) {
      return reply.code(400).send({ error: (err as Error).message });
    }
  });
  app.post('/_sim/faults', async (req, reply) => {
    try {
      const body = control(jsonBody(req.body));
      if (typeof body.path_prefix !== 'string') return reply.code(400).send({ error: 'path_prefix required' });
      const rule: FaultRule = {
        path_prefix: body.path_prefix, method: typeof body.method === 'string' ? body.method : undefined,
        status: typeof body.status === 'number' ? body.status : undefined, delay_ms: typeof body.delay_ms === 'number' ? body.delay_ms : undefined,
        drop: body.drop === true, times: typeof body.times === 'number' ? body.times : undefined,
      };
      ctx.faults.push(rule);
      return reply.code(201).send(rule);
    } catch (err) {
      return reply.code(400).send({ error: (err as Error).message });
    }
  });
  app.delete('/_sim/faults', async () => {
    ctx.faults.length = 0;
    return { faults: 0 };
  });
  app.post('/_sim/clock', async (req, reply) => {
    if (injectedClock) return reply.code(409).send({ error: 'clock is injected; advance it yourself' });
    const body = control(jsonBody(req.body));
    const advance = Number(body.advance_ms);
    if (!Number.isFinite(advance) || advance < 0) return reply.code(400).send({ error: 'advance_ms must be a non-negative number' });
    clockOffset += advance;
    return { now: new Date(now()).toISOString() };
  });
  app.post('/_sim/cleanup', async () => ({ deleted: cleanupQueues(store, now()) }));
  // A message left in the legacy shared key `nq-<name>` (written by ingesters before 4.7.4).
  app.post('/_sim/legacy-queue/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    const message = control(jsonBody(req.body));
    const list = store.queues.get(`nq-${name}`) ?? [];
    list.push({ message, notifyTime: new Date(now()).toISOString(), ingestTime: null });
    store.queues.set(`nq-${name}`, list);
    return reply.code(201).send({ queued: list.length });
  });
  // A submission expired or deleted while its cache entry lives on (the stale window of ingest's cache).
  app.delete('/_sim/submissions/:sid', async (req, reply) => {
    const { sid } = req.params as { sid: string };
    if (!store.submissions.delete(sid)) return reply.code(404).send({ error: `no submission ${sid}` });
    return { deleted: sid };
  });
  app.post('/_sim/sessions/purge', async () => {
    auth.purgeSessions();
    return { purged: true };
  });

  // --- the AL API ------------------------------------------------------------------------------
  app.route({ method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'], url: '/*', logLevel: 'warn', handler: (req, reply) => handleApi(ctx, req, reply) });

  const cleanupTimer = setInterval(() => cleanupQueues(store, now()), CLEANUP_INTERVAL_MS);
  cleanupTimer.unref();

  function stats(): ReturnType<AssemblylineSimulator['stats']> {
    return {
      ingests: store.ingestCount, ingestsBySha256: { ...store.ingestsBySha256 }, submissions: store.submissions.size,
      messagesQueued: store.messagesQueued, messagesLost: store.messagesLost,
    };
  }

  let closed = false;
  return {
    app,
    user: userName,
    apiKey,
    password,
    async listen(listenOpts = {}) {
      await app.listen({ host: listenOpts.host ?? '127.0.0.1', port: listenOpts.port ?? 0 });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : listenOpts.port ?? 0;
      return `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(cleanupTimer);
      engine.close();
      await app.close();
      await hashPool.close();
    },
    stats,
    usage: (user) => quotas.usage(user ?? userName),
    runQueueCleanup: () => cleanupQueues(store, now()),
  };
}
