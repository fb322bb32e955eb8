/**
 * Assemblyline classification markings → MASS tlp_level. Derived samples (extracted files, IOCs) must
 * never be shared more widely than the results they come from: TLP:CLEAR / TLP:WHITE → 0, TLP:GREEN → 1,
 * TLP:AMBER / TLP:AMBER+STRICT → 2, TLP:RED → 3 (FIRST TLP 2.0 and 1.0 names, and Assemblyline's short
 * forms TLP:C, TLP:W, TLP:G, TLP:A, TLP:A+S, TLP:R). Only the level part of a marking is read (what
 * precedes `//`); a marking outside TLP cannot be mapped. Pure.
 */
import type { SubmissionFull } from '../assemblyline/types.js';

const LEVELS: Record<string, number> = {
  'TLP:CLEAR': 0, 'TLP:C': 0, 'TLP:WHITE': 0, 'TLP:W': 0,
  'TLP:GREEN': 1, 'TLP:G': 1,
  'TLP:AMBER': 2, 'TLP:A': 2, 'TLP:AMBER+STRICT': 2, 'TLP:A+S': 2,
  'TLP:RED': 3, 'TLP:R': 3,
};

/** tlp_level of an Assemblyline marking, or null when it is not a TLP marking. */
export function tlpLevelOf(marking: string): number | null {
  const level = marking.split('//')[0].trim().toUpperCase().replace(/\s+/g, '');
  return LEVELS[level] ?? null;
}

/** What the classifications of one submission allow for the samples derived from it. */
export type DerivedTlp =
  | { ok: true; tlpLevel: number; classification: string }
  | { ok: false; classification: string; note: string };

/**
 * The tlp_level for samples derived from a submission: the widest of the configured level and every
 * classification the submission, its results and their extracted files carry (a result may be marked
 * higher than its submission). A marking that cannot be mapped → not ok, with a note for the job history.
 * `classification` is the most restrictive marking seen (for the report).
 */
export function derivedTlp(full: SubmissionFull, configuredLevel: number): DerivedTlp {
  const markings: string[] = [];
  if (typeof full.classification === 'string' && full.classification) markings.push(full.classification);
  for (const r of Object.values(full.results ?? {})) {
    const result = r as { classification?: unknown; response?: { extracted?: Array<{ classification?: unknown }> } };
    if (typeof result.classification === 'string' && result.classification) markings.push(result.classification);
    for (const f of result.response?.extracted ?? []) if (typeof f.classification === 'string' && f.classification) markings.push(f.classification);
  }
  let level = configuredLevel;
  let highest = markings[0] ?? '';
  let highestLevel = -1;
  for (const m of markings) {
    const l = tlpLevelOf(m);
    if (l === null) {
      return { ok: false, classification: m, note: `Assemblyline marks these results '${m}', which has no TLP equivalent: no derived samples are created on MASS` };
    }
    if (l > highestLevel) {
      highestLevel = l;
      highest = m;
    }
    level = Math.max(level, l);
  }
  return { ok: true, tlpLevel: level, classification: highest };
}

/**
 * The report's additional_metadata with the classification recorded under `assemblyline.classification`
 * (the most restrictive marking of the submission and its results; the submission's own when none is set).
 */
export function withClassification(metadata: Record<string, unknown>, full: SubmissionFull): Record<string, unknown> {
  const derived = derivedTlp(full, 0);
  const classification = derived.classification || (typeof full.classification === 'string' ? full.classification : '');
  if (!classification) return metadata;
  const al = metadata.assemblyline && typeof metadata.assemblyline === 'object' ? (metadata.assemblyline as Record<string, unknown>) : {};
  return { ...metadata, assemblyline: { ...al, classification } };
}
