import { FORBIDDEN } from './http-errors.js';
import { isAdmin, type MassStore, type Principal } from './store.js';

/**
 * flask_modular_auth key loader: `Authorization: APIKEY <token>` (regex ^APIKEY (.*)$, case-sensitive).
 * Anything else is simply "unauthenticated"; the API never answers 401.
 */
export function principalFromHeader(store: MassStore, header: string | undefined): Principal | null {
  if (header === undefined) return null;
  const m = /^APIKEY (.*)$/.exec(header);
  if (!m) return null;
  return store.principalForKey(m[1]);
}

export type Role = 'admin' | 'instance';

/** privilege_required(AuthenticatedPrivilege()) */
export function requireAuthenticated(p: Principal | null): Principal {
  if (p === null) throw FORBIDDEN();
  return p;
}

/** privilege_required(RolePrivilege(...)): any one of the roles suffices. */
export function requireRole(p: Principal | null, ...roles: Role[]): Principal {
  if (p === null) throw FORBIDDEN();
  if (roles.includes('admin') && isAdmin(p)) return p;
  if (roles.includes('instance') && p.kind === 'instance') return p;
  throw FORBIDDEN();
}
