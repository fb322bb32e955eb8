/**
 * One error shape for every failure: `{ error: { code, message } }`. Validation errors answer 400 VALIDATION,
 * unknown routes 404 NOT_FOUND, anything unexpected 500 INTERNAL without a stack or the original message.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { BridgeError } from '../../errors.js';
import { ApiError, type ApiErrorCode } from '../errors.js';

const CLIENT_CODES: Record<number, ApiErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

interface Rendered {
  status: number;
  code: ApiErrorCode;
  message: string;
}

function render(err: unknown): Rendered {
  if (err instanceof ApiError) return { status: err.statusCode, code: err.code, message: err.message };
  const fe = err as Partial<FastifyError>;
  if (fe && Array.isArray(fe.validation)) return { status: 400, code: 'VALIDATION', message: fe.message ?? 'invalid request' };
  if (err instanceof BridgeError) {
    // BridgeError messages are secret-free by contract, so they may be shown to the operator.
    if (err.code === 'NOT_FOUND') return { status: 404, code: 'NOT_FOUND', message: err.message };
    if (err.code === 'LEDGER') return { status: 503, code: 'LEDGER_UNAVAILABLE', message: err.message };
    if (err.upstream || err.transient) return { status: 502, code: 'UPSTREAM_UNAVAILABLE', message: err.message };
    return { status: 500, code: 'INTERNAL', message: 'internal error' };
  }
  // Fastify's own 4xx errors (bad JSON, wrong content type, body too large) carry safe messages.
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, code: CLIENT_CODES[status] ?? 'BAD_REQUEST', message: fe.message ?? 'bad request' };
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

/** Only name, code, message and stack: arbitrary error properties (request headers, configs) may carry secrets. */
function loggableError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const code = (err as { code?: unknown }).code;
  return { type: err.name, code: typeof code === 'string' ? code : undefined, message: err.message, stack: err.stack };
}

export function errorHandlerPlugin(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    const r = render(err);
    if (r.status >= 500) request.log.error({ err: loggableError(err) }, 'request failed');
    else request.log.info({ code: r.code, statusCode: r.status }, r.message);
    return reply.code(r.status).send({ error: { code: r.code, message: r.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}
