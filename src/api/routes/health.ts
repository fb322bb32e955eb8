import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { HealthResponse, ReadyResponse } from '../schemas/status.js';

const REFUSAL_WINDOW_MS = 15 * 60_000;

/** Readiness: ledger writable, MASS polled within 2 × PollTime (by every identity), Assemblyline answered within the window and accepts ingests, no refused call. */
export function readiness(ctx: ApiContext) {
  const now = ctx.now();
  const status = ctx.control.status();
  const reasons: string[] = [];
  let ledger = false;
  try {
    ledger = ctx.ledger.isWritable();
  } catch {}
  if (!ledger) reasons.push('ledger is not writable');
  const pollWindowMs = 2 * status.pollTimeSeconds * 1000;
  const mass = status.lastPollAt !== null && now - status.lastPollAt <= pollWindowMs;
  const identities = status.identities ?? [];
  if (!mass && identities.length > 1) {
    // Several identities: say which ones MASS is about to count offline, each with its own last poll error.
    for (const i of identities) {
      if (i.lastPollAt !== null && now - i.lastPollAt <= pollWindowMs) continue;
      const last = i.lastPollAt === null ? 'no successful MASS poll yet' : `last successful MASS poll ${Math.round((now - i.lastPollAt) / 1000)}s ago`;
      const why = i.lastPollError ? ` (last error: ${i.lastPollError})` : '';
      reasons.push(`identity ${i.name}: ${last}, more than 2 × PollTime (${2 * status.pollTimeSeconds}s)${why}`);
    }
  } else if (!mass) {
    const last = status.lastPollAt === null ? 'no successful MASS poll yet' : `last successful MASS poll ${Math.round((now - status.lastPollAt) / 1000)}s ago`;
    const why = status.upstreams.mass.lastError ? ` (last error: ${status.upstreams.mass.lastError})` : '';
    reasons.push(`${last}, more than 2 × PollTime (${2 * status.pollTimeSeconds}s)${why}`);
  }
  const alLast = status.upstreams.assemblyline.lastSuccessAt;
  const assemblyline = alLast !== null && now - alLast <= ctx.readyAssemblylineWindowMs;
  if (!assemblyline) {
    // A 401 is an answer too: say "successful call", so a refused key does not read like an unreachable server.
    const last = alLast === null ? 'no successful Assemblyline call yet' : `last successful Assemblyline call ${Math.round((now - alLast) / 1000)}s ago`;
    const why = status.upstreams.assemblyline.lastError ? ` (last error: ${status.upstreams.assemblyline.lastError})` : '';
    reasons.push(`${last}, window ${Math.round(ctx.readyAssemblylineWindowMs / 1000)}s${why}`);
  }
  // A call refused for credentials or a quota keeps the jobs that need it waiting: not ready, and why.
  for (const [name, health] of [['MASS', status.upstreams.mass], ['Assemblyline', status.upstreams.assemblyline]] as const) {
    for (const [operation, r] of Object.entries(health.refusals ?? {})) {
      // Waiting jobs retry at least every RetryMaxDelay; a refusal not seen again for 15 minutes is no longer reported.
      if (now - r.at > REFUSAL_WINDOW_MS) continue;
      reasons.push(`${name} refuses ${operation} (${r.code}) since ${Math.round((now - r.at) / 1000)}s: ${r.message}; jobs that need it wait`);
    }
  }
  // Assemblyline answers, but refuses what every ingest sends: not ready until the configuration is fixed.
  if (status.ingestBlocked) reasons.push(`${status.ingestBlocked.reason}; fix: ${status.ingestBlocked.fix}`);
  return { ready: reasons.length === 0, checks: { ledger, mass, assemblyline }, reasons };
}

export const healthRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  app.get(
    '/health',
    { schema: { tags: ['health'], summary: 'Liveness (no upstream checks)', response: { 200: HealthResponse } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: ledger writable, MASS polled recently, Assemblyline answered recently',
        response: { 200: ReadyResponse, 503: ReadyResponse },
      },
    },
    async (_request, reply) => {
      const result = readiness(ctx);
      return reply.code(result.ready ? 200 : 503).send(result);
    },
  );
};
