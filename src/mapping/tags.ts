/**
 * Sample tags. MASS validates every sample tag against MASS_TAG_PATTERN and answers 500 *after* storing the
 * report when one does not match (MASS.md §6, §13.8), so every tag leaves this module sanitized.
 */

/**
 * MASS's sample tag rule (mass_server Sample.tags regex). Written without the `u` flag, `\w` is ASCII only,
 * which is stricter than MASS's Python `\w`: a tag accepted here is accepted by MASS.
 */
// eslint-disable-next-line no-useless-escape
export const MASS_TAG_PATTERN = /^[\w:\-\_\/\+\.]+$/;

export const MAX_TAG_LENGTH = 128;

/**
 * Turns any text into a MASS-valid tag, or null when nothing usable is left.
 * Accents are folded (é → e), every other character outside [A-Za-z0-9_:-/+.] becomes '_', runs of '_' are
 * collapsed, leading/trailing '_' dropped, the result cut to 128 characters. Case is kept.
 */
export function sanitizeTag(raw: string): string | null {
  if (typeof raw !== 'string') return null;
  let s = raw.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  s = s.replace(/[^A-Za-z0-9_:\-/+.]/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '');
  s = s.slice(0, MAX_TAG_LENGTH).replace(/_+$/g, '');
  if (!/[A-Za-z0-9]/.test(s)) return null;
  return MASS_TAG_PATTERN.test(s) ? s : null;
}

/** Lower-cases and sanitizes the value part, then sanitizes prefix+kind+value as a whole. */
export function makeTag(prefix: string, kind: string, value: string): string | null {
  const v = sanitizeTag(value.toLowerCase());
  if (v === null) return null;
  return sanitizeTag(`${prefix}${kind}:${v}`);
}
