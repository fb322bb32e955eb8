import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BridgeError } from '../../errors.js';
import type { JobState } from '../../ledger/types.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { ErrorResponse, commonErrors } from '../schemas/common.js';
import { JobDetailResponse, JobIdParams, JobListQuery, JobListResponse } from '../schemas/jobs.js';
import { jobDetail, jobView } from '../views.js';

export const jobRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  app.get(
    '/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'List jobs, newest first, filtered by state, sha256 and creation time; cursor pagination',
        querystring: JobListQuery,
        response: { 200: JobListResponse, ...commonErrors },
      },
    },
    async (request) => {
      const q = request.query;
      const from = q.from === undefined ? undefined : Date.parse(q.from);
      const to = q.to === undefined ? undefined : Date.parse(q.to);
      if (from !== undefined && to !== undefined && from > to) throw new ApiError(400, 'VALIDATION', 'querystring/from must not be after querystring/to');
      let page;
      try {
        page = ctx.ledger.list({
          states: q.state ? ([...new Set(q.state.split(','))] as JobState[]) : undefined,
          sha256: q.sha256?.toLowerCase(),
          from,
          to,
          cursor: q.cursor,
          limit: q.limit,
        });
      } catch (err) {
        // The cursor is opaque to clients; a tampered one is their mistake, not a server error.
        if (q.cursor !== undefined && !(err instanceof BridgeError && err.code === 'LEDGER')) {
          throw new ApiError(400, 'INVALID_CURSOR', 'cursor is not one this API handed out');
        }
        throw err;
      }
      const uiUrl = ctx.control.status().assemblylineUiUrl;
      return { jobs: page.jobs.map((j) => jobView(j, uiUrl)), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'One job with its full event history, Assemblyline link, MASS URLs, related samples and relations',
        params: JobIdParams,
        response: { 200: JobDetailResponse, 404: ErrorResponse, ...commonErrors },
      },
    },
    async (request) => {
      const job = ctx.ledger.get(request.params.id);
      if (!job) throw new ApiError(404, 'JOB_NOT_FOUND', `job ${request.params.id} not found`);
      return jobDetail(ctx.ledger, job, ctx.control.status().assemblylineUiUrl);
    },
  );
};
