/** OpenAPI 3.1 document generated from the route schemas, and Swagger UI (assets shipped, works offline). */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

export async function swaggerPlugin(app: FastifyInstance, opts: { version: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'mass-al-bridge status API',
        description: 'Status, jobs, metrics and operator actions of the MASS ↔ Assemblyline bridge. Read routes are open; operator actions need the bearer token from [API] Token.',
        version: opts.version,
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: [
        { name: 'health', description: 'Liveness, readiness and metrics' },
        { name: 'status', description: 'What the bridge is doing' },
        { name: 'jobs', description: 'The job ledger' },
        { name: 'operator', description: 'Operator actions (bearer token)' },
      ],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'The [API] Token of the bridge configuration' } },
      },
    },
    // Shared schemas keep their $id as their component name (the default would be def-0, def-1...).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/documentation', uiConfig: { docExpansion: 'list', deepLinking: false } });
}
