import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { commonErrors } from '../schemas/common.js';
import { StatusResponse, ThroughputQuery, ThroughputResponse } from '../schemas/status.js';
import { oldestPerState } from '../oldest-jobs.js';
import { identitiesOf, iso, isoOrNull, upstreamView } from '../views.js';

const MINUTE = 60_000;

export const statusRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  app.get(
    '/status',
    { schema: { tags: ['status'], summary: 'Bridge status: upstream health, counts per state, throughput', response: { 200: StatusResponse, ...commonErrors } } },
    async () => {
      const now = ctx.now();
      const status = ctx.control.status();
      const finished = ctx.ledger.finishedSince(now - 60 * MINUTE);
      const window = (minutes: number) => {
        const since = now - minutes * MINUTE;
        let done = 0;
        let failed = 0;
        for (const f of finished) {
          if (f.finishedAt < since) continue;
          if (f.state === 'done') done++;
          else failed++;
        }
        return { done, failed, perMinute: (done + failed) / minutes };
      };
      const oldest = ctx.ledger.oldestInFlightCreatedAt();
      return {
        version: ctx.version,
        now: iso(now),
        startedAt: iso(status.startedAt),
        uptimeSeconds: Math.max(0, (now - status.startedAt) / 1000),
        paused: status.paused,
        instanceUuid: status.instanceUuid,
        massApiRoot: status.massApiRoot,
        assemblylineUiUrl: status.assemblylineUiUrl,
        pollTimeSeconds: status.pollTimeSeconds,
        lastPollAt: isoOrNull(status.lastPollAt),
        identities: identitiesOf(status, ctx.ledger.inFlight(), now).map((i) => ({ ...i, lastPollAt: isoOrNull(i.lastPollAt) })),
        upstreams: { mass: upstreamView(status.upstreams.mass), assemblyline: upstreamView(status.upstreams.assemblyline) },
        counts: ctx.ledger.countByState(),
        inFlight: ctx.ledger.inFlight(),
        throughput: { last5m: window(5), last60m: window(60) },
        oldestInFlightAgeSeconds: oldest === null ? null : Math.max(0, (now - oldest) / 1000),
        oldestPerState: oldestPerState(ctx.ledger, now, status.stateBudgetsMs),
      };
    },
  );

  app.get(
    '/throughput',
    {
      schema: {
        tags: ['status'],
        summary: 'Finished jobs (done / failed) per time bucket, for the status page chart',
        querystring: ThroughputQuery,
        response: { 200: ThroughputResponse, ...commonErrors },
      },
    },
    async (request) => {
      const { minutes, bucket } = request.query;
      const bucketMs = bucket * 1000;
      // Buckets end at the next bucket boundary so a refreshing chart does not shift every second.
      const end = Math.ceil(ctx.now() / bucketMs) * bucketMs;
      const count = Math.ceil((minutes * MINUTE) / bucketMs);
      const start = end - count * bucketMs;
      const buckets = Array.from({ length: count }, (_, i) => ({ start: iso(start + i * bucketMs), done: 0, failed: 0 }));
      for (const f of ctx.ledger.finishedSince(start)) {
        const i = Math.floor((f.finishedAt - start) / bucketMs);
        if (i < 0 || i >= count) continue;
        if (f.state === 'done') buckets[i].done++;
        else buckets[i].failed++;
      }
      return { from: iso(start), to: iso(end), bucketSeconds: bucket, buckets };
    },
  );
};
