/**
 * One error type for the whole bridge, with stable codes, and one function that decides
 * whether an error is worth retrying. Every retry loop asks `isTransient`.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'NETWORK' // connection refused/reset, DNS, TLS handshake, socket closed
  | 'TIMEOUT'
  | 'ABORTED' // shutdown signal
  | 'UPSTREAM_HTTP' // an HTTP status the caller did not expect (see status)
  | 'UPSTREAM_PROTOCOL' // answer that does not parse or lacks required fields
  | 'AUTH' // credentials refused (MASS 403, AL 401/403)
  | 'NOT_FOUND'
  | 'QUOTA_DAILY' // AL daily quota: permanent until tomorrow
  | 'SAMPLE_NOT_FILE'
  | 'SAMPLE_INVISIBLE'
  | 'SAMPLE_TOO_LARGE'
  | 'AL_SKIPPED'
  | 'AL_FILE_TOO_LARGE'
  | 'AL_FAILURE'
  | 'RESULT_DEADLINE'
  | 'CART_INVALID'
  | 'LEDGER'
  | 'INTERNAL';

export type Upstream = 'mass' | 'assemblyline';

export interface BridgeErrorOptions {
  cause?: unknown;
  status?: number;
  upstream?: Upstream;
  /** Overrides the default classification of this error. */
  transient?: boolean;
  /** Short, secret-free excerpt of an upstream answer body. */
  body?: string;
  method?: string;
  /** Path only (never a query string with credentials, never headers). */
  path?: string;
}

export class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly status?: number;
  readonly upstream?: Upstream;
  readonly body?: string;
  readonly method?: string;
  readonly path?: string;
  readonly #transient?: boolean;

  constructor(code: ErrorCode, message: string, opts: BridgeErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BridgeError';
    this.code = code;
    this.status = opts.status;
    this.upstream = opts.upstream;
    this.body = opts.body;
    this.method = opts.method;
    this.path = opts.path;
    this.#transient = opts.transient;
  }

  get transient(): boolean {
    if (this.#transient !== undefined) return this.#transient;
    return classifyCode(this.code, this.status);
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      status: this.status,
      upstream: this.upstream,
      method: this.method,
      path: this.path,
      transient: this.transient,
    };
  }
}

const TRANSIENT_SYSCALL_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RESPONSE_STATUS_CODE',
]);

function classifyCode(code: ErrorCode, status?: number): boolean {
  switch (code) {
    case 'NETWORK':
    case 'TIMEOUT':
      return true;
    case 'UPSTREAM_HTTP':
      return status === undefined || isTransientStatus(status);
    default:
      return false;
  }
}

/** 408, 425, 429 and 5xx are worth retrying; 501 is not. MASS 500s are handled by callers (they can mean "saved"). */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status !== 501);
}

/**
 * Node/OpenSSL error codes of a TLS connection that retrying cannot fix: the server certificate is
 * not trusted, not valid for the host or not valid now, or the port does not speak TLS at all.
 * Each maps to what the operator has to change.
 */
const TLS_FAILURES: Record<string, 'untrusted' | 'hostname' | 'expired' | 'not-yet-valid' | 'rejected' | 'not-tls'> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_UNTRUSTED: 'untrusted',
  INVALID_CA: 'untrusted',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname',
  HOSTNAME_MISMATCH: 'hostname',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'rejected',
  CERT_REJECTED: 'rejected',
  CERT_SIGNATURE_FAILURE: 'rejected',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not-tls',
};

/** The TLS failure code of err or of one of its causes, when it is one retrying cannot fix. */
export function tlsFailureCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in TLS_FAILURES) return code;
  }
  return undefined;
}

/** Where an upstream's connection settings live, for the fix named in a TLS error. */
const TLS_SETTINGS: Record<Upstream, { name: string; url: string; caFile: string; verifyTls: string }> = {
  mass: { name: 'MASS', url: '[GLOBAL] ServerURL', caFile: '[AssemblylineAnalysis] CAFile', verifyTls: '[AssemblylineAnalysis] VerifyTLS' },
  assemblyline: { name: 'Assemblyline', url: '[Assemblyline] URL', caFile: '[Assemblyline] CAFile', verifyTls: '[Assemblyline] VerifyTLS' },
};

/**
 * What a TLS failure code (from tlsFailureCode) means for `upstream` and what the operator changes
 * to fix it, naming the configuration keys. Used in error messages and by `doctor`.
 */
export function describeTlsFailure(code: string, upstream: Upstream): { what: string; fix: string } {
  const s = TLS_SETTINGS[upstream];
  switch (TLS_FAILURES[code]) {
    case 'untrusted':
      return {
        what: `the TLS certificate of ${s.name} is issued by a certificate authority this machine does not trust (${code})`,
        fix: `put the PEM certificate of that CA in a file and name it in ${s.caFile} (${s.verifyTls} = false skips the check, for tests only)`,
      };
    case 'hostname':
      return {
        what: `the TLS certificate of ${s.name} is not valid for the host name in ${s.url} (${code})`,
        fix: `use in ${s.url} a host name the certificate names, or have the certificate reissued for this name`,
      };
    case 'expired':
      return { what: `the TLS certificate of ${s.name} has expired (${code})`, fix: `renew the certificate on the ${s.name} server (or correct this machine's clock if it is wrong)` };
    case 'not-yet-valid':
      return { what: `the TLS certificate of ${s.name} is not valid yet (${code})`, fix: `check the clock of this machine and of the ${s.name} server` };
    case 'rejected':
      return { what: `the TLS certificate of ${s.name} is revoked, rejected or badly signed (${code})`, fix: `replace the certificate on the ${s.name} server` };
    case 'not-tls':
      return { what: `${s.name} does not speak TLS on this port (${code})`, fix: `use http:// in ${s.url}, or the port where ${s.name} serves HTTPS` };
    default:
      return { what: `the TLS connection to ${s.name} failed (${code})`, fix: `check ${s.url}, ${s.caFile} and the certificate of ${s.name}` };
  }
}

/**
 * A TLS failure that retrying cannot fix, as a permanent CONFIG_INVALID error whose message names
 * the cause and the setting to change; undefined when err is not such a failure (then it is an
 * ordinary network error). Never includes request headers, so no key leaks into the message.
 */
export function tlsFailure(err: unknown, upstream: Upstream, ctx: { method?: string; path?: string } = {}): BridgeError | undefined {
  const code = tlsFailureCode(err);
  if (!code) return undefined;
  const { what, fix } = describeTlsFailure(code, upstream);
  const where = ctx.method && ctx.path ? `${ctx.method} ${ctx.path}: ` : '';
  const detail = err instanceof Error && err.message ? `: ${err.message}` : '';
  return new BridgeError('CONFIG_INVALID', `${where}${what}${detail}; fix: ${fix}`, { cause: err, upstream, method: ctx.method, path: ctx.path, transient: false });
}

/** The single transient-vs-permanent decision used by every retry loop. */
export function isTransient(err: unknown): boolean {
  if (err instanceof BridgeError) return err.transient;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown; cause?: unknown };
    if (e.name === 'AbortError') return false;
    // A certificate that is not trusted today will not be trusted on the next try.
    if (tlsFailureCode(err)) return false;
    if (typeof e.code === 'string' && TRANSIENT_SYSCALL_CODES.has(e.code)) return true;
    if (e.cause && e.cause !== err) return isTransient(e.cause);
  }
  return false;
}

/** Wraps anything thrown into a BridgeError, keeping the original as `cause`. */
export function toBridgeError(err: unknown, fallback: ErrorCode = 'INTERNAL'): BridgeError {
  if (err instanceof BridgeError) return err;
  if (err && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError') {
    return new BridgeError('ABORTED', 'operation aborted', { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (isTransient(err)) return new BridgeError('NETWORK', message, { cause: err });
  return new BridgeError(fallback, message, { cause: err });
}

/**
 * An error of listening on `host`:`port` (a server of the bridge or of a simulator), for the person who started it:
 * a `CONFIG_INVALID` BridgeError naming `what` listens, the address, why it cannot (EADDRINUSE: another program uses
 * it; EADDRNOTAVAIL: `host` is not an address of this machine; EACCES: the port needs privileges) and how to choose
 * another: `choose` (the configuration key, environment variable or command-line flag), or `chooseHost` for
 * EADDRNOTAVAIL when the host has an option of its own. Any other error is returned unchanged.
 */
export function listenError(err: unknown, what: string, host: string, port: number, choose: string, chooseHost: string = choose): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const why =
    code === 'EADDRINUSE' ? 'another program uses that address'
    : code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine`
    : code === 'EACCES' ? 'not allowed to listen on that port: ports below 1024 need privileges'
    : null;
  if (why === null) return err;
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new BridgeError('CONFIG_INVALID', `${what} cannot listen on ${address}: ${why}; ${code === 'EADDRNOTAVAIL' ? chooseHost : choose}`, { cause: err });
}
