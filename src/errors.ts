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

/** The single transient-vs-permanent decision used by every retry loop. */
export function isTransient(err: unknown): boolean {
  if (err instanceof BridgeError) return err.transient;
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown; cause?: unknown };
    if (e.name === 'AbortError') return false;
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
