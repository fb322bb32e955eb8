import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

/** Browsers ask for /favicon.ico with every visit of the status page: answer "no icon" instead of a logged 404. */
export const faviconRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) => reply.code(204).header('cache-control', 'public, max-age=86400').send());
};
