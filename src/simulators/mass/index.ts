import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { principalFromHeader } from './auth.js';
import { FaultInjector, registerControlRoutes } from './control.js';
import { htmlErrorPage, sortedJson } from './http-errors.js';
import { handleApiRequest, safeDecode, type ApiResult } from './routes.js';
import { MassStore, USER_LEVEL, type AnalysisSystemInstance, type Principal } from './store.js';

export interface MassSimulatorOptions {
  adminKey?: string; // random if absent
  instanceUuid?: string; // random uuid4 if absent
  instanceKey?: string; // random if absent (MASS-like opaque token)
  systemName?: string; // default 'assemblyline'
  tagFilter?: string; // default 'sample-type:filesample'
  schedulerIntervalMs?: number; // default 30000 (real MASS); 0 = no automatic ticks
  /** Pending items above which the scheduler gives an instance nothing more (default 100, MASS's MAX_SCHEDULE_THRESHOLD). */
  scheduleThreshold?: number;
  objectsPerPage?: number; // default 100
  now?: () => number; // injectable clock (ms)
  logger?: Logger;
  /** Extra: create the analysis system and its instance at start (default true). */
  seed?: boolean;
  /** Extra: request body limit in bytes (default 1 GiB). */
  bodyLimit?: number;
  /** Extra: serve HTTPS with this PEM key and certificate (as MASS behind a TLS-terminating server); URLs then start with https://. */
  https?: { key: string; cert: string };
}

export interface MassSimulator {
  readonly app: FastifyInstance;
  listen(opts?: { host?: string; port?: number }): Promise<string>;
  close(): Promise<void>;
  readonly adminKey: string;
  readonly userKey: string;
  /** The seeded instance (or, with seed: false, the first instance created). */
  readonly instance: { uuid: string; key: string };
  runScheduler(): number;
  /** Extra: a new user key of the given MASS user level (1 user, 2 privileged, 3 manager, 4 admin). */
  createUserKey(level: number): string;
  /** Extra: the API key of an existing instance (what an admin copies from the web UI), or undefined. */
  instanceKeyFor(uuid: string): string | undefined;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024 * 1024;

export async function createMassSimulator(opts: MassSimulatorOptions = {}): Promise<MassSimulator> {
  let clockOffset = 0;
  const now = opts.now ?? (() => Date.now() + clockOffset);
  const store = new MassStore(now);
  if (opts.scheduleThreshold !== undefined) store.scheduleThreshold = opts.scheduleThreshold;
  const perPage = opts.objectsPerPage ?? 100;
  const faults = new FaultInjector();

  const admin = store.createUser(USER_LEVEL.admin, opts.adminKey);
  const user = store.createUser(USER_LEVEL.user);
  let seeded: AnalysisSystemInstance | undefined;
  if (opts.seed ?? true) {
    const system = store.createSystem({
      identifier_name: opts.systemName ?? 'assemblyline',
      verbose_name: 'Assemblyline',
      tag_filter_expression: opts.tagFilter ?? 'sample-type:filesample',
    });
    seeded = store.createInstance(system.id, opts.instanceUuid ?? randomUUID());
    store.instanceKey(seeded, opts.instanceKey);
  }

  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const common = {
    loggerInstance: opts.logger as FastifyBaseLogger | undefined,
    bodyLimit,
    // MASS takes whatever Host the client sends; URLs are built from it
    trustProxy: false,
  };
  const app = (opts.https ? Fastify({ ...common, https: { key: opts.https.key, cert: opts.https.cert } }) : Fastify(common)) as unknown as FastifyInstance;
  const ownScheme = opts.https ? 'https' : 'http';

  // Every body arrives as a raw Buffer: the handlers parse JSON and multipart the way Flask/Werkzeug did.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  const originOf = (req: FastifyRequest): string => {
    const scheme = typeof req.headers['x-scheme'] === 'string' ? req.headers['x-scheme'] : ownScheme;
    const script = typeof req.headers['x-script-name'] === 'string' ? req.headers['x-script-name'].replace(/\/+$/, '') : '';
    return `${scheme}://${req.headers.host ?? 'localhost'}${script}`;
  };

  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (!path.startsWith('/api/')) return;
    const fault = faults.take(req.method, path);
    if (!fault) return;
    if (fault.delay_ms) await delay(fault.delay_ms);
    if (fault.drop) {
      req.raw.socket.destroy();
      return reply.hijack();
    }
    if (fault.status) {
      const body = fault.status >= 500 ? htmlErrorPage(fault.status) : sortedJson({ error: 'Simulated fault.' });
      return reply
        .code(fault.status)
        .header('content-type', fault.status >= 500 ? 'text/html; charset=utf-8' : 'application/json')
        .send(body);
    }
  });

  const sendResult = (result: ApiResult, reply: import('fastify').FastifyReply) => {
    if ('json' in result) return reply.code(result.status).header('content-type', 'application/json').send(sortedJson(result.json));
    if ('raw' in result) return reply.code(result.status).header('content-type', result.contentType).send(result.raw);
    if ('html' in result) return reply.code(result.status).header('content-type', 'text/html; charset=utf-8').send(htmlErrorPage(result.status));
    if ('location' in result) return reply.code(308).header('location', result.location).header('content-type', 'text/html; charset=utf-8').send('');
    return reply.code(204).send();
  };

  app.all('/api/*', async (req, reply) => {
    const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
    const authorization = req.headers.authorization;
    const result = handleApiRequest(store, perPage, {
      method: req.method,
      path: safeDecode(rawPath),
      query: new URLSearchParams(rawQuery),
      contentType: req.headers['content-type'],
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      principal: principalFromHeader(store, typeof authorization === 'string' ? authorization : undefined),
      origin: originOf(req),
    });
    return sendResult(result, reply);
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).header('content-type', 'text/html; charset=utf-8').send(htmlErrorPage(404)));
  app.setErrorHandler((err: { statusCode?: number }, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'MASS simulator error');
    return reply.code(status).header('content-type', 'text/html; charset=utf-8').send(htmlErrorPage(status));
  });

  const runScheduler = () => store.runScheduler();
  const userPrincipal = (): Principal => user.principal;
  registerControlRoutes(app, {
    store,
    faults,
    userPrincipal,
    runScheduler,
    advanceClock: opts.now ? null : (ms) => (clockOffset += ms),
    originOf,
  });

  const intervalMs = opts.schedulerIntervalMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  if (intervalMs > 0) {
    timer = setInterval(runScheduler, intervalMs);
    timer.unref();
  }

  let closed: Promise<void> | undefined;
  const firstInstance = (): AnalysisSystemInstance | undefined => seeded ?? [...store.instances.values()][0];

  return {
    app,
    adminKey: admin.key,
    userKey: user.key,
    get instance() {
      const instance = firstInstance();
      if (!instance) throw new Error('the MASS simulator has no analysis system instance yet');
      return { uuid: instance.uuid, key: store.instanceKey(instance) };
    },
    async listen(listenOpts = {}) {
      const host = listenOpts.host ?? '127.0.0.1';
      await app.listen({ host, port: listenOpts.port ?? 0 });
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('MASS simulator is not listening on a TCP port');
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `${ownScheme}://${shownHost}:${address.port}`;
    },
    close() {
      if (timer) clearInterval(timer);
      closed ??= app.close();
      return closed;
    },
    runScheduler,
    createUserKey(level: number) {
      return store.createUser(level).key;
    },
    instanceKeyFor(uuid: string) {
      const instance = store.instanceByUuid(uuid);
      return instance ? store.instanceKey(instance) : undefined;
    },
  };
}
