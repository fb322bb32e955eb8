import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { SimQuotas } from './policy.js';

export interface SimUser {
  name: string;
  apiKey: string;
  password: string;
  /** Roles the user (and the API key's ACL) grants. */
  roles: string[];
  /** Groups stamped on the user's submissions (access to results is by classification only, as upstream). */
  groups: string[];
  /** The user's clearance in the simulator's classification engine. */
  classification: string;
  /** Quotas of this user (0/absent = unlimited). */
  quotas: SimQuotas;
}

export interface Session {
  id: string;
  user: string;
  ip: string;
  userAgent: string;
  xsrf: string;
  /** API-key logins limit roles; password logins have no limit (and get the XSRF check). */
  rolesLimit: string[] | null;
  expiresAt: number;
}

export type AuthOutcome =
  | { ok: true; user: SimUser; session: Session | null }
  | { ok: false; status: 401 | 403; message: string };

export const SESSION_DURATION_S = 3600;
export const ALL_ROLES = ['submission_view', 'submission_create', 'file_download', 'submission_customize'];

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const idx = part.indexOf('=');
    if (idx < 0) continue;
    out[part.slice(0, idx).trim()] = part.slice(idx + 1).trim();
  }
  return out;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Sessions as AL keeps them: a signed Flask cookie holding a session id that points into a server-side store. */
export class SessionAuth {
  private readonly sessions = new Map<string, Session>();
  private readonly secret = randomBytes(32);

  constructor(private readonly users: Map<string, SimUser>, private readonly now: () => number) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  /** Flask's signed cookie: invalid or past its lifetime means the session id cannot be read at all. */
  private readCookie(value: string | undefined): string | null {
    if (!value) return null;
    const [payload, sig] = value.split('.');
    if (!payload || !sig || !safeEqual(this.sign(payload), sig)) return null;
    try {
      const data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid?: string; exp?: number };
      if (typeof data.sid !== 'string' || typeof data.exp !== 'number' || this.now() > data.exp) return null;
      return data.sid;
    } catch {
      return null;
    }
  }

  login(body: Record<string, unknown>, ip: string, userAgent: string): { ok: true; session: Session; cookieValue: string } | { ok: false; message: string } {
    const username = typeof body.user === 'string' ? body.user : '';
    const apikey = typeof body.apikey === 'string' ? body.apikey : '';
    const password = typeof body.password === 'string' ? body.password : '';
    if (!username || (!apikey && !password)) return { ok: false, message: 'Not enough information to proceed with authentication' };
    const user = this.users.get(username);
    let rolesLimit: string[] | null;
    if (apikey) {
      if (!user || !safeEqual(user.apiKey, apikey)) return { ok: false, message: 'Invalid user or APIKey' };
      rolesLimit = [...user.roles];
    } else {
      if (!user || !safeEqual(user.password, password)) return { ok: false, message: 'Wrong username or password' };
      rolesLimit = null;
    }
    const expiresAt = this.now() + SESSION_DURATION_S * 1000;
    const session: Session = { id: randomBytes(16).toString('hex'), user: username, ip, userAgent, xsrf: randomBytes(16).toString('hex'), rolesLimit, expiresAt };
    this.sessions.set(session.id, session);
    const payload = Buffer.from(JSON.stringify({ sid: session.id, exp: expiresAt })).toString('base64url');
    return { ok: true, session, cookieValue: `${payload}.${this.sign(payload)}` };
  }

  /** Drops every server-side session (what a KV purge on the real server does): next use gives `Session expired`. */
  purgeSessions(): void {
    this.sessions.clear();
  }

  authenticate(req: FastifyRequest): AuthOutcome {
    const xUser = headerValue(req, 'x-user');
    const xKey = headerValue(req, 'x-apikey');
    if (xUser && xKey) {
      const user = this.users.get(xUser);
      if (!user || !safeEqual(user.apiKey, xKey)) return { ok: false, status: 401, message: 'Invalid user or APIKey' };
      return { ok: true, user, session: null };
    }
    // A client certificate (mTLS proxy in front of AL) is checked by the TLS layer only: AL reads no certificate.
    // One header alone falls back to cookie auth, as upstream does.
    const cookies = parseCookies(req.headers.cookie);
    const sid = this.readCookie(cookies.session);
    if (!sid) return { ok: false, status: 401, message: 'Session not found' };
    const session = this.sessions.get(sid);
    if (!session || this.now() > session.expiresAt) return { ok: false, status: 401, message: 'Session expired' };
    if (session.ip !== req.ip) return { ok: false, status: 401, message: 'Invalid source IP for this session' };
    if (session.userAgent !== (req.headers['user-agent'] ?? '')) return { ok: false, status: 401, message: 'Invalid user agent for this session' };
    if (session.rolesLimit === null && headerValue(req, 'x-xsrf-token') !== session.xsrf) {
      return { ok: false, status: 403, message: 'Invalid XSRF token' };
    }
    const user = this.users.get(session.user);
    if (!user) return { ok: false, status: 401, message: 'Session expired' };
    const roles = session.rolesLimit ? user.roles.filter((r) => session.rolesLimit?.includes(r)) : user.roles;
    return { ok: true, user: { ...user, roles }, session };
  }
}

function headerValue(req: FastifyRequest, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}
