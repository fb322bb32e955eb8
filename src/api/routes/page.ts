import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from '../status-page.js';

export const pageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', STATUS_PAGE_CSP)
      .header('cache-control', 'no-store')
      .send(STATUS_PAGE_HTML);
  });
};
