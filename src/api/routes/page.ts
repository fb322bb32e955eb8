import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { POLLED_ROUTE_LOG_LEVEL } from '../context.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from '../status-page.js';

export const pageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', { logLevel: POLLED_ROUTE_LOG_LEVEL, schema: { hide: true } }, async (_request, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', STATUS_PAGE_CSP)
      .header('cache-control', 'no-store')
      .send(STATUS_PAGE_HTML);
  });
};
