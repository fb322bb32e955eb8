/** Checks done before anything goes to MASS, for inputs MASS would store badly or answer with a 500. */
import { BridgeError } from '../errors.js';

/** Report object keys end up in a URL path segment and as MongoDB field names. */
export const OBJECT_KEY_PATTERN = /^[A-Za-z0-9_-]+$/;
/** MASS's sample tag rule (mass_flask_core sample.py). JS `\w` is ASCII-only, which is the safe side. */
export const TAG_PATTERN = /^[\w:\-_/+.]+$/;

function invalid(message: string): BridgeError {
  // A bad input never gets better by retrying.
  return new BridgeError('INTERNAL', message, { upstream: 'mass', transient: false });
}

export function assertObjectKey(key: string, what: string): void {
  if (!OBJECT_KEY_PATTERN.test(key)) {
    throw invalid(`${what} key ${JSON.stringify(key)} must match [A-Za-z0-9_-]+ (it becomes a URL segment and a MongoDB field)`);
  }
}

export function assertTags(tags: readonly unknown[], what = 'tag'): void {
  for (const tag of tags) {
    if (typeof tag !== 'string' || !TAG_PATTERN.test(tag)) {
      throw invalid(`${what} ${JSON.stringify(tag)} does not match MASS's tag pattern [A-Za-z0-9_:-/+.]+ (MASS would answer 500)`);
    }
  }
}

/** MongoDB rejects field names containing '.' or starting with '$'; additional_metadata is stored as-is. */
export function assertMongoKeys(value: unknown, path = 'additional_metadata'): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertMongoKeys(item, `${path}[${i}]`));
    return;
  }
  if (value === null || typeof value !== 'object' || value instanceof Date || Buffer.isBuffer(value)) return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key.includes('.') || key.startsWith('$') || key.includes('\0')) {
      throw invalid(`${path} key ${JSON.stringify(key)} contains '.' or starts with '$' (not storable in MongoDB)`);
    }
    assertMongoKeys(child, `${path}.${key}`);
  }
}

export function assertTlpLevel(tlp: unknown): asserts tlp is number {
  if (typeof tlp !== 'number' || !Number.isInteger(tlp) || tlp < 0 || tlp > 3) {
    throw invalid(`tlp_level must be an integer 0..3, got ${JSON.stringify(tlp)}`);
  }
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** UTC `YYYY-MM-DDTHH:MM:SS+00:00`: what MASS writes, and the only form its date filters accept. */
export function formatMassDate(date: Date | string | number): string {
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) throw invalid(`not a valid date: ${JSON.stringify(String(date))}`);
  return (
    `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+00:00`
  );
}
