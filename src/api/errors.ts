/** Errors the API answers with: a status and a stable code, rendered as `{ error: { code, message } }`. */

/** Stable codes the API uses; documented in docs/api.md. */
export const API_ERROR_CODES = [
  'VALIDATION',
  'BAD_REQUEST',
  'NOT_FOUND',
  'JOB_NOT_FOUND',
  'INVALID_CURSOR',
  'UNAUTHORIZED',
  'WRITE_DISABLED',
  'CONFLICT',
  'UPSTREAM_UNAVAILABLE',
  'LEDGER_UNAVAILABLE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL',
] as const;

export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ApiErrorCode;
  constructor(statusCode: number, code: ApiErrorCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
  }
}
