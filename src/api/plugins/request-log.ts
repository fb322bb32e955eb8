/**
 * Request logging of the status API: reads (GET/HEAD answered below 400: the status page's refresh,
 * /metrics scrapes) and the /health and /ready probes (whatever they answer: 503 is how /ready says
 * "not ready") log at debug, so a quiet bridge has a quiet log at info; operator actions, other
 * client errors and failures log at info or error, as fastify does by default.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

const isRead = (request: FastifyRequest) => request.method === 'GET' || request.method === 'HEAD';
const PROBES = new Set(['/health', '/ready']);
const isProbe = (request: FastifyRequest) => isRead(request) && PROBES.has(request.routeOptions.url ?? '');

/** fastify's LogController with reads moved to debug. */
export class ApiLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isRead(request)) return super.incomingRequest(request, reply, metadata);
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || !isRead(request) || (reply.statusCode >= 400 && !isProbe(request))) return super.requestCompleted(error, request, reply, metadata);
    if (!this.isLogDisabled(request)) reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
