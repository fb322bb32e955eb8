/**
 * Bearer-token check for operator actions. The token is compared as SHA-256 digests with
 * crypto.timingSafeEqual, so neither length nor content leaks through timing.
 * Without a configured token the write routes stay registered and answer 403 WRITE_DISABLED.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export type WriteGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export function createWriteGuard(token: string | undefined): WriteGuard {
  const expected = token ? digest(token) : null;
  return async (request, reply) => {
    if (!expected) throw new ApiError(403, 'WRITE_DISABLED', 'operator actions are disabled: no [API] Token is configured');
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    if (!match || !timingSafeEqual(digest(match[1]), expected)) {
      void reply.header('www-authenticate', 'Bearer realm="mass-al-bridge"');
      throw new ApiError(401, 'UNAUTHORIZED', 'a valid bearer token is required');
    }
  };
}
