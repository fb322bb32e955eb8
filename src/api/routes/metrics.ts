import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { oldestJobAges } from '../oldest-jobs.js';
import type { ApiContext } from '../context.js';
import { identitiesOf } from '../views.js';

/** Copies the ledger and bridge status into the gauges, so each scrape sees current numbers. */
export function refreshGauges(ctx: ApiContext): void {
  const { ledger, control, metrics } = ctx;
  metrics.setLedgerGauges({ byState: ledger.countByState(), inFlight: ledger.inFlight(), ledgerBytes: ledger.sizeBytes(), writeErrors: ledger.writeErrors?.(), commits: ledger.commits() });
  metrics.setOldestJobAges?.(oldestJobAges(ledger, ctx.now()));
  const status = control.status();
  const oldest = ledger.oldestInFlightCreatedAt();
  metrics.setStatusGauges?.({
    paused: status.paused,
    lastPollAt: status.lastPollAt,
    oldestInFlightAgeSeconds: oldest === null ? 0 : Math.max(0, (ctx.now() - oldest) / 1000),
    upstreams: status.upstreams,
    identities: identitiesOf(status, ledger.inFlight(), ctx.now()),
  });
}

export const metricsRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format); see docs/metrics.md',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text format 0.0.4' }) },
      },
    },
    async (_request, reply) => {
      refreshGauges(ctx);
      const body = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(body);
    },
  );
};
