import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BridgeError } from '../../errors.js';
import type { Job } from '../../ledger/types.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { ErrorResponse, commonErrors } from '../schemas/common.js';
import { AbandonBody, JobActionResponse, JobIdParams } from '../schemas/jobs.js';
import { PausedResponse } from '../schemas/status.js';
import { jobView } from '../views.js';

const authErrors = { 401: ErrorResponse, 403: ErrorResponse, ...commonErrors };
const security = [{ bearerAuth: [] }];

/** The bridge refuses an action with NOT_FOUND (no such job) or INTERNAL (job not in a state that allows it). */
function mapControlError(err: unknown, id: string): never {
  if (err instanceof BridgeError && err.code === 'NOT_FOUND') throw new ApiError(404, 'JOB_NOT_FOUND', `job ${id} not found`);
  if (err instanceof BridgeError && err.code === 'INTERNAL') throw new ApiError(409, 'CONFLICT', err.message);
  throw err;
}

export const actionRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  app.addHook('onRequest', ctx.requireToken);

  const runAction = async (id: string, action: () => Promise<Job>) => {
    if (!ctx.ledger.get(id)) throw new ApiError(404, 'JOB_NOT_FOUND', `job ${id} not found`);
    let job: Job;
    try {
      job = await action();
    } catch (err) {
      mapControlError(err, id);
    }
    return { job: jobView(job, ctx.control.status().assemblylineUiUrl) };
  };

  app.post(
    '/jobs/:id/retry',
    {
      schema: {
        tags: ['operator'],
        summary: 'Put a held job back to work',
        security,
        params: JobIdParams,
        response: { 200: JobActionResponse, 404: ErrorResponse, 409: ErrorResponse, ...authErrors },
      },
    },
    async (request) => {
      request.log.info({ jobId: request.params.id }, 'operator: retry job');
      return runAction(request.params.id, () => ctx.control.retryJob(request.params.id));
    },
  );

  app.post(
    '/jobs/:id/abandon',
    {
      schema: {
        tags: ['operator'],
        summary: 'Send the error report for the job (reason as error_message) and end it as failed',
        security,
        params: JobIdParams,
        body: AbandonBody,
        response: { 200: JobActionResponse, 404: ErrorResponse, 409: ErrorResponse, 502: ErrorResponse, ...authErrors },
      },
    },
    async (request) => {
      request.log.info({ jobId: request.params.id }, 'operator: abandon job');
      return runAction(request.params.id, () => ctx.control.abandonJob(request.params.id, request.body.reason));
    },
  );

  app.post(
    '/pause',
    { schema: { tags: ['operator'], summary: 'Stop claiming new work (polling goes on as the MASS heartbeat)', security, response: { 200: PausedResponse, ...authErrors } } },
    async (request) => {
      request.log.info('operator: pause');
      ctx.control.pause();
      return { paused: ctx.control.status().paused };
    },
  );

  app.post(
    '/resume',
    { schema: { tags: ['operator'], summary: 'Claim new work again', security, response: { 200: PausedResponse, ...authErrors } } },
    async (request) => {
      request.log.info('operator: resume');
      ctx.control.resume();
      return { paused: ctx.control.status().paused };
    },
  );
};
