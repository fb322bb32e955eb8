/**
 * The status API: built by buildApi(opts), listened on by the caller (the CLI owns the port and signals).
 * Routes read the ledger and the bridge control only; they never call MASS or Assemblyline,
 * so the API stays fast while those are down.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { BridgeControl } from '../bridge/control.js';
import type { Ledger } from '../ledger/types.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics.js';
import { VERSION } from '../version.js';
import type { ApiContext } from './context.js';
import { createReadGuard, createWriteGuard } from './plugins/auth.js';
import { errorHandlerPlugin } from './plugins/error-handler.js';
import { ApiLogController } from './plugins/request-log.js';
import { swaggerPlugin } from './plugins/swagger.js';
import { actionRoutes } from './routes/actions.js';
import { faviconRoutes } from './routes/favicon.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { pageRoutes } from './routes/page.js';
import { SHARED_SCHEMAS } from './schemas/index.js';
import { statusRoutes } from './routes/status.js';

export interface ApiOptions {
  ledger: Ledger;
  control: BridgeControl;
  metrics: BridgeMetrics;
  /** [API] Token. Empty or absent: operator actions answer 403 WRITE_DISABLED. */
  token?: string;
  /** [API] ReadAuth: 'token' makes every route but /health and /ready need ReadToken or Token (default 'none'). */
  readAuth?: 'none' | 'token';
  /** [API] ReadToken: grants the read routes; setting it turns read auth on. */
  readToken?: string;
  logger?: Logger;
  now?: () => number;
  version?: string;
  /** /ready wants an Assemblyline answer at most this old (default 5 min). */
  readyAssemblylineWindowMs?: number;
}

export const DEFAULT_READY_ASSEMBLYLINE_WINDOW_MS = 5 * 60_000;

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger.child({ component: 'api' }) } : { logger: false }),
    logController: new ApiLogController(),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: true, useDefaults: true, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const ctx: ApiContext = {
    ledger: opts.ledger,
    control: opts.control,
    metrics: opts.metrics,
    now: opts.now ?? Date.now,
    version: opts.version ?? VERSION,
    readyAssemblylineWindowMs: opts.readyAssemblylineWindowMs ?? DEFAULT_READY_ASSEMBLYLINE_WINDOW_MS,
    requireToken: createWriteGuard(opts.token),
  };

  const base = app as unknown as FastifyInstance;
  const readGuard = createReadGuard({ readAuth: opts.readAuth, readToken: opts.readToken, writeToken: opts.token });
  // Before routing, so unknown paths and the API docs are guarded too (a 404 tells nothing then).
  if (readGuard) base.addHook('onRequest', readGuard);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  // What an answer shows of the ledger is durable before the answer leaves (group commit: a write may still be
  // pending for a few ms). A failed commit is counted (massal_ledger_write_errors_total) and shown by /ready.
  base.addHook('onSend', async (_request, _reply, payload) => {
    await opts.ledger.flush().catch(() => undefined);
    return payload;
  });
  errorHandlerPlugin(base);
  await swaggerPlugin(base, { version: ctx.version });

  await app.register(pageRoutes, ctx);
  await app.register(faviconRoutes);
  await app.register(healthRoutes, ctx);
  await app.register(metricsRoutes, ctx);
  await app.register(statusRoutes, { ...ctx, prefix: '/api/v1' });
  await app.register(jobRoutes, { ...ctx, prefix: '/api/v1' });
  await app.register(actionRoutes, { ...ctx, prefix: '/api/v1' });

  return base;
}
