import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sortedJson } from './http-errors.js';
import { Serializer } from './serialize.js';
import type { MassStore, Principal } from './store.js';

/** A scripted failure for the next `times` matching API requests. */
export interface FaultRule {
  method?: string;
  path_prefix: string;
  status?: number;
  delay_ms?: number;
  drop?: boolean;
  times: number;
}

export class FaultInjector {
  private rules: FaultRule[] = [];

  add(rule: Partial<FaultRule> & { path_prefix: string }): void {
    this.rules.push({ ...rule, times: rule.times ?? 1 });
  }

  clear(): void {
    this.rules = [];
  }

  /** Consumes and returns the first rule matching the request, if any. */
  take(method: string, path: string): FaultRule | undefined {
    const rule = this.rules.find((r) => (!r.method || r.method.toUpperCase() === method) && prefixMatches(r.path_prefix, path));
    if (!rule) return undefined;
    rule.times--;
    if (rule.times <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
    return rule;
  }
}

/** `path_prefix` is matched against the request path; a prefix without `/api/` is taken relative to it. */
function prefixMatches(prefix: string, path: string): boolean {
  if (path.startsWith(prefix)) return true;
  return path.startsWith(`/api/${prefix.replace(/^\/+/, '')}`);
}

export interface ControlDeps {
  store: MassStore;
  faults: FaultInjector;
  userPrincipal: () => Principal;
  runScheduler: () => number;
  advanceClock: ((ms: number) => void) | null;
  originOf: (req: FastifyRequest) => string;
}

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(sortedJson(body));
}

function jsonBody(req: FastifyRequest): Record<string, unknown> | null {
  const raw = req.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Unauthenticated loopback control endpoints under /_sim/ (not part of MASS). */
export function registerControlRoutes(app: FastifyInstance, deps: ControlDeps): void {
  const { store } = deps;
  const serializer = (req: FastifyRequest) => new Serializer(store, `${deps.originOf(req)}/api/`);

  app.post('/_sim/samples', async (req, reply) => {
    const body = jsonBody(req);
    if (!body || typeof body.file_name !== 'string') return send(reply, 400, { error: 'file_name and content_base64 or content_text required' });
    let bytes: Buffer;
    if (typeof body.content_base64 === 'string') bytes = Buffer.from(body.content_base64, 'base64');
    else if (typeof body.content_text === 'string') bytes = Buffer.from(body.content_text, 'utf8');
    else return send(reply, 400, { error: 'content_base64 or content_text required' });
    try {
      const sample = store.submitSample(
        deps.userPrincipal(),
        { cls: 'file', bytes, filename: body.file_name },
        { tlp_level: body.tlp_level ?? 0, tags: body.tags ?? [] },
      );
      return send(reply, 201, serializer(req).sample(sample));
    } catch {
      return send(reply, 400, { error: 'sample rejected (bad tag or tlp_level)' });
    }
  });

  app.post('/_sim/scheduler/run', async (_req, reply) => send(reply, 200, { scheduled: deps.runScheduler() }));

  app.get('/_sim/state', async (req, reply) => {
    const ser = serializer(req);
    return send(reply, 200, {
      samples: store.samples.size,
      scheduled_pending: store.scheduled.size,
      analysis_requests: store.requests.size,
      reports: [...store.reports.values()].map((r) => ser.report(r)),
      relations: [...store.relations.values()].map((r) => ser.relation(r)),
      // Extra: API calls per caller (instance uuid or user:<level>) and `<METHOD> <route name>`.
      calls: Object.fromEntries([...store.calls].map(([who, byRoute]) => [who, Object.fromEntries(byRoute)])),
    });
  });

  app.post('/_sim/faults', async (req, reply) => {
    const body = jsonBody(req);
    if (!body || typeof body.path_prefix !== 'string') return send(reply, 400, { error: 'path_prefix required' });
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
    deps.faults.add({
      path_prefix: body.path_prefix,
      method: typeof body.method === 'string' ? body.method : undefined,
      status: num(body.status),
      delay_ms: num(body.delay_ms),
      drop: body.drop === true,
      times: num(body.times),
    });
    return send(reply, 201, { ok: true });
  });

  app.delete('/_sim/faults', async (_req, reply) => {
    deps.faults.clear();
    return send(reply, 200, { ok: true });
  });

  app.post('/_sim/clock', async (req, reply) => {
    const body = jsonBody(req);
    if (!deps.advanceClock) return send(reply, 409, { error: 'the simulator runs on an injected clock' });
    if (!body || typeof body.advance_ms !== 'number' || body.advance_ms < 0) return send(reply, 400, { error: 'advance_ms (>= 0) required' });
    deps.advanceClock(body.advance_ms);
    return send(reply, 200, { now: new Date(store.now() * 1000).toISOString() });
  });
}
