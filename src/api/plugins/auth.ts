/**
 * Bearer-token checks for the status API. Tokens are compared as SHA-256 digests with
 * crypto.timingSafeEqual, so neither length nor content leaks through timing.
 * Write routes: without a configured [API] Token they stay registered and answer 403 WRITE_DISABLED.
 * Read routes: open unless [API] ReadAuth = token or a ReadToken is set; then they need ReadToken or
 * Token. /health and /ready are never guarded (probes carry no token).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BridgeError } from '../../errors.js';
import { ApiError } from '../errors.js';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export type WriteGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** The bearer token of the request, or null. */
function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1] : null;
}

/** True when `token` equals one of `expected` (digests); every candidate is compared, in constant time each. */
function matches(token: string | null, expected: Buffer[]): boolean {
  if (token === null) return false;
  const got = digest(token);
  let ok = false;
  for (const e of expected) ok = timingSafeEqual(got, e) || ok;
  return ok;
}

function unauthorized(reply: FastifyReply): ApiError {
  void reply.header('www-authenticate', 'Bearer realm="mass-al-bridge"');
  return new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required');
}

export function createWriteGuard(token: string | undefined): WriteGuard {
  const expected = token ? digest(token) : null;
  return async (request, reply) => {
    if (!expected) throw new ApiError(403, 'WRITE_DISABLED', 'operator actions are disabled: no [API] Token is configured');
    if (!matches(bearer(request), [expected])) throw unauthorized(reply);
  };
}

/** Paths that stay open whatever ReadAuth says: liveness and readiness probes, the favicon. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/favicon.ico']);

/**
 * The guard for read routes, or null when they are open (ReadAuth none and no ReadToken).
 * Accepts ReadToken and the write Token. Throws BridgeError CONFIG_INVALID when read auth is on
 * but neither token is configured (every read would be refused).
 */
export function createReadGuard(opts: { readAuth?: 'none' | 'token'; readToken?: string; writeToken?: string }): WriteGuard | null {
  const on = opts.readAuth === 'token' || Boolean(opts.readToken);
  if (!on) return null;
  const expected = [opts.readToken, opts.writeToken].filter((t): t is string => Boolean(t)).map(digest);
  if (expected.length === 0) {
    throw new BridgeError('CONFIG_INVALID', '[API] ReadAuth = token needs [API] ReadToken or [API] Token');
  }
  return async (request, reply) => {
    const path = request.url.split('?')[0];
    if (OPEN_PATHS.has(path)) return;
    if (!matches(bearer(request), expected)) throw unauthorized(reply);
  };
}
