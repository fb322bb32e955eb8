/**
 * Defensive readers for untrusted JSON: every function accepts `unknown` and never throws.
 * Assemblyline documents change shape between versions (4.0 … 4.7), so nothing here trusts a field's type.
 */

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function rec(value: unknown): JsonRecord {
  return isRecord(value) ? value : {};
}

export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A string, or a number/boolean written as a string; anything else gives `fallback`. */
export function str(value: unknown, fallback = ''): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return fallback;
}

export function strOrNull(value: unknown): string | null {
  const s = str(value);
  return s === '' ? null : s;
}

export function num(value: unknown, fallback = 0): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return fallback;
}

export function numOrNull(value: unknown): number | null {
  const n = num(value, Number.NaN);
  return Number.isNaN(n) ? null : n;
}

export function bool(value: unknown): boolean {
  return value === true || value === 'true';
}

/** Object entries, or index entries of an array (some old layouts used lists where 4.7 uses keyed objects). */
export function entries(value: unknown): Array<[string, unknown]> {
  if (Array.isArray(value)) return value.map((v, i) => [String(i), v]);
  if (isRecord(value)) return Object.entries(value);
  return [];
}

/** AL answers come in an envelope `{api_response, api_error_message, api_status_code, …}`; accept both forms. */
export function unwrapEnvelope(value: unknown): unknown {
  if (isRecord(value) && 'api_response' in value && ('api_status_code' in value || 'api_error_message' in value)) {
    return value.api_response;
  }
  return value;
}

export function truncate(s: string, max: number): string {
  return s.length > max ? s.slice(0, Math.max(0, max)) : s;
}

/** Drops control characters (a report is read by humans and stored by MongoDB). */
export function cleanText(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return truncate(s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ''), max);
}

export const SHA256_RE = /^[0-9a-f]{64}$/;

export function sha256Of(value: unknown): string | null {
  const s = str(value).trim().toLowerCase();
  return SHA256_RE.test(s) ? s : null;
}

/** JSON.stringify that never throws (BigInt, cycles) and reports the length of what it wrote. */
export function safeStringify(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    return typeof s === 'string' ? s : 'null';
  } catch {
    return '"[unserialisable]"';
  }
}
