import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ApiContext } from '../context.js';
import { renderStatusPage, STATUS_PAGE_CSP, STATUS_PAGE_JOB_LISTS, type StatusPageData } from '../status-page.js';
import { jobView } from '../views.js';

export const pageRoutes: FastifyPluginAsyncTypebox<ApiContext> = async (app, ctx) => {
  /** GET of a polled JSON route of this API (same schema and serialisation as the page's own call). */
  const polled = async (url: string): Promise<unknown> => {
    const res = await app.inject({ method: 'GET', url, headers: { accept: 'application/json' } });
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    return res.json();
  };
  const jobList = (list: keyof typeof STATUS_PAGE_JOB_LISTS) => {
    const uiUrl = ctx.control.status().assemblylineUiUrl;
    const page = ctx.ledger.list(STATUS_PAGE_JOB_LISTS[list]);
    return { jobs: page.jobs.map((j) => jobView(j, uiUrl)), nextCursor: page.nextCursor };
  };

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    // The first data comes with the page, so the first paint shows it; if anything fails the page fetches it itself.
    let data: StatusPageData | null = null;
    try {
      const [status, throughput] = await Promise.all([polled('/api/v1/status'), polled('/api/v1/throughput?minutes=60&bucket=60')]);
      data = { status, throughput, failures: jobList('failures'), successes: jobList('successes'), jobs: jobList('jobs') };
    } catch (err) {
      request.log.warn({ err }, 'status page served without embedded data');
    }
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', STATUS_PAGE_CSP)
      .header('cache-control', 'no-store')
      .send(renderStatusPage(data));
  });
};
