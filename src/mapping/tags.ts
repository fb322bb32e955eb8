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

/**
 * The tags the bridge puts on an extracted file it submits to MASS as a new sample: `<prefix>extracted`,
 * `<prefix>relation:<parent relation>` and `<prefix>sid:<sid>` (the Assemblyline submission it was extracted
 * in). MASS keeps them with the sample and shows them to every instance (MASS.md §5.2, §7); another bridge of
 * the same analysis system recognises its echo-back by them (extractedInSids).
 */
export function extractedFileTags(prefix: string, parentRelation: string, sid: string): string[] {
  return [`${prefix}extracted`, `${prefix}relation:${(parentRelation || 'extracted').toLowerCase()}`, `${prefix}sid:${sid}`]
    .map(sanitizeTag)
    .filter((t): t is string => t !== null);
}

/**
 * From a MASS sample's tags: the Assemblyline submissions (sids) a bridge with this TagPrefix extracted the
 * file in, sorted (MASS merges tags as a set and returns them in any order, MASS.md §5.2). Empty unless the
 * sample carries `<prefix>extracted` too: an analysis report's tags never include it (report.ts sampleTags).
 */
export function extractedInSids(tags: readonly unknown[] | undefined, prefix: string): string[] {
  if (!Array.isArray(tags)) return [];
  const extracted = sanitizeTag(`${prefix}extracted`);
  // sanitizeTag keeps a tag-safe sid as it is, so the sid tag is exactly this marker followed by the sid.
  const marker = `${sanitizeTag(`${prefix}sid:x`)?.slice(0, -1) ?? ''}`;
  if (extracted === null || marker === '' || !tags.includes(extracted)) return [];
  const sids = new Set<string>();
  for (const t of tags) {
    if (typeof t === 'string' && t.startsWith(marker) && t.length > marker.length) sids.add(t.slice(marker.length));
  }
  return [...sids].sort();
}
