/**
 * What the relating step actually did, and the report built from it: the related counts in the report are
 * what MASS holds (created or reused), every planned item that is not on MASS is listed with why, and every
 * file stored under another name is listed with its original name. Pure: no I/O, no clock.
 */
import type { JobEvent, RelatedSampleRecord, RelationRecord } from '../ledger/types.js';
import type { RelatedItem, ReportPlan } from '../mapping/types.js';

export interface SkippedItem {
  key: string;
  kind: RelatedItem['kind'];
  /** sha256 of a file, the value of an IOC. */
  value: string;
  name?: string;
  reason: string;
}

export interface RenamedItem {
  key: string;
  sha256: string;
  /** The name Assemblyline gave the file (kept in the report). */
  name: string;
  /** The name the file was stored under on MASS. */
  massName: string;
}

export interface RelatingOutcome {
  filesRelated: number;
  iocsRelated: number;
  /** Relations another job of the same sample had already created (not posted again). */
  relationsReused: number;
  skipped: SkippedItem[];
  renamed: RenamedItem[];
  /** Notes of the relating step (e.g. an IOC related to the analysed sample instead of its file). */
  notes: string[];
}

/** Event types the relating step writes; the outcome is read back from them. */
export const RELATING_EVENTS = {
  skipped: 'related-skipped',
  failed: 'related-failed',
  renamed: 'related-renamed',
  note: 'related-note',
  reused: 'relation-reused',
} as const;

const relationKeyOf = (item: RelatedItem): string =>
  item.kind === 'file' ? `dropped-by:${item.sha256}:${item.parentSha256}` : `${item.relation}:${item.key}:${item.sourceSha256}`;

/** The relation key the relating step records for an item (ledger `relations.key`). */
export function relationKey(item: RelatedItem): string {
  return relationKeyOf(item);
}

/**
 * The outcome of relating `plan.related` for one job, from what the ledger recorded. An item counts as related
 * when its relation is recorded; otherwise the last skip/failure reason recorded for it is given, or
 * `unfinishedReason` (the relating step ended before it got to the item).
 */
export function relatingOutcome(
  plan: Pick<ReportPlan, 'related'>,
  ledger: { samples: RelatedSampleRecord[]; relations: RelationRecord[]; events: JobEvent[] },
  unfinishedReason: string,
): RelatingOutcome {
  const relations = new Set(ledger.relations.map((r) => r.key));
  const reasons = new Map<string, string>();
  const renamed = new Map<string, { from: string; to: string }>();
  const notes: string[] = [];
  let reused = 0;
  for (const e of ledger.events) {
    const key = typeof e.data?.key === 'string' ? e.data.key : null;
    if ((e.type === RELATING_EVENTS.skipped || e.type === RELATING_EVENTS.failed) && key) reasons.set(key, e.message ?? e.code ?? e.type);
    if (e.type === RELATING_EVENTS.renamed && key) renamed.set(key, { from: String(e.data?.from ?? ''), to: String(e.data?.to ?? '') });
    if (e.type === RELATING_EVENTS.note && e.message && !notes.includes(e.message)) notes.push(e.message);
    if (e.type === RELATING_EVENTS.reused) reused++;
  }
  const out: RelatingOutcome = { filesRelated: 0, iocsRelated: 0, relationsReused: reused, skipped: [], renamed: [], notes };
  for (const item of plan.related) {
    const value = item.kind === 'file' ? item.sha256 : item.value;
    if (relations.has(relationKeyOf(item))) {
      if (item.kind === 'file') out.filesRelated++;
      else out.iocsRelated++;
      const r = renamed.get(item.key);
      if (item.kind === 'file' && r) out.renamed.push({ key: item.key, sha256: item.sha256, name: r.from, massName: r.to });
      continue;
    }
    const skipped: SkippedItem = { key: item.key, kind: item.kind, value, reason: reasons.get(item.key) ?? unfinishedReason };
    if (item.kind === 'file') skipped.name = item.name;
    out.skipped.push(skipped);
  }
  return out;
}

/** One human-readable line per skipped or renamed item, plus the relating step's own notes. */
export function outcomeNotes(o: RelatingOutcome): string[] {
  const notes = [...o.notes];
  for (const s of o.skipped) notes.push(`${s.kind === 'file' ? `extracted file ${s.name || s.value}` : `${s.kind} ${s.value}`} not related on MASS: ${s.reason}`);
  for (const r of o.renamed) notes.push(`extracted file ${r.name} (${r.sha256}) stored on MASS as ${r.massName}: MASS cannot store its original name`);
  return notes;
}

/**
 * The plan's report objects with the related counts replaced by what MASS holds: `al_summary.related.files`
 * and `.iocs` count the items related on MASS, `files_skipped`/`iocs_skipped`, `skipped` (with why) and
 * `renamed` (with the original name) say what differs from the plan; the notes list each of them.
 */
export function applyOutcome(plan: ReportPlan, o: RelatingOutcome): Pick<ReportPlan, 'additionalMetadata' | 'jsonReportObjects' | 'notes'> {
  const extra = outcomeNotes(o);
  const notes = [...plan.notes, ...extra.filter((n) => !plan.notes.includes(n))];
  const summary = { ...((plan.jsonReportObjects.al_summary as Record<string, unknown> | undefined) ?? {}) };
  const related = summary.related && typeof summary.related === 'object' ? { ...(summary.related as Record<string, unknown>) } : null;
  if (related) {
    related.files = o.filesRelated;
    related.iocs = o.iocsRelated;
    related.files_skipped = o.skipped.filter((s) => s.kind === 'file').length;
    related.iocs_skipped = o.skipped.filter((s) => s.kind !== 'file').length;
    related.skipped = o.skipped.map((s) => ({ kind: s.kind, value: s.value, ...(s.name !== undefined ? { name: s.name } : {}), reason: s.reason }));
    related.renamed = o.renamed.map((r) => ({ sha256: r.sha256, name: r.name, mass_name: r.massName }));
    summary.related = related;
  }
  summary.notes = notes;
  const metadata = { ...plan.additionalMetadata };
  const al = metadata.assemblyline && typeof metadata.assemblyline === 'object' ? { ...(metadata.assemblyline as Record<string, unknown>) } : null;
  if (al) {
    if (notes.length > 0) al.notes = notes.length;
    metadata.assemblyline = al;
  }
  return { additionalMetadata: metadata, jsonReportObjects: { ...plan.jsonReportObjects, al_summary: summary }, notes };
}
