/**
 * The submission summary (tags by group, heuristics by level, ATT&CK techniques): read from AL's
 * `/submission/summary/` answer when there is one, otherwise computed from `full` the way AL computes it
 * (assemblyline-base datastore/helper.py get_summary_from_keys; ASSEMBLYLINE.md §6.5).
 */
import { arr, bool, cleanText, entries, isRecord, rec, str, unwrapEnvelope } from './json.js';
import type { NResult } from './normalize.js';
import { asLevel, levelForScore, levelRank, type Level } from './verdict.js';

export type TagGroup = 'ioc' | 'attribution' | 'behavior';
export const TAG_GROUPS: readonly TagGroup[] = ['ioc', 'attribution', 'behavior'];

export interface SummaryTag {
  group: TagGroup;
  type: string;
  value: string;
  level: Level;
  safelisted: boolean;
}

export interface SummaryHeuristic {
  id: string;
  name: string;
  level: Level;
}

export interface SummaryAttack {
  id: string;
  pattern: string;
  level: Level;
  categories: string[];
}

export interface SummaryView {
  source: 'summary' | 'full';
  partial: boolean;
  tags: SummaryTag[];
  heuristics: SummaryHeuristic[];
  attack: SummaryAttack[];
}

/** AL's default summary tag types (assemblyline-base config `submission.tag_types`). */
const GROUP_OF: Record<string, TagGroup> = {
  'network.email.address': 'ioc',
  'network.static.ip': 'ioc',
  'network.static.domain': 'ioc',
  'network.static.uri': 'ioc',
  'network.dynamic.ip': 'ioc',
  'network.dynamic.domain': 'ioc',
  'network.dynamic.uri': 'ioc',
  'attribution.actor': 'attribution',
  'attribution.campaign': 'attribution',
  'attribution.exploit': 'attribution',
  'attribution.implant': 'attribution',
  'attribution.family': 'attribution',
  'attribution.network': 'attribution',
  'av.virus_name': 'attribution',
  'file.config': 'attribution',
  'technique.obfuscation': 'attribution',
  'file.behavior': 'behavior',
};

export function tagGroupOf(type: string): TagGroup | null {
  return Object.prototype.hasOwnProperty.call(GROUP_OF, type) ? GROUP_OF[type] : null;
}

const t = (v: unknown, max = 1024): string => cleanText(str(v), max).trim();

class Collector {
  readonly tags = new Map<string, SummaryTag>();
  readonly heuristics = new Map<string, SummaryHeuristic>();
  readonly attack = new Map<string, SummaryAttack>();

  addTag(group: TagGroup, type: string, value: string, level: Level, safelisted: boolean): void {
    if (type === '' || value === '') return;
    const key = `${type}\u0000${value}`;
    const old = this.tags.get(key);
    if (!old) this.tags.set(key, { group, type, value, level, safelisted });
    else {
      if (levelRank(level) > levelRank(old.level)) old.level = level;
      old.safelisted ||= safelisted;
    }
  }

  addHeuristic(id: string, name: string, level: Level): void {
    if (id === '') return;
    const old = this.heuristics.get(id);
    if (!old) this.heuristics.set(id, { id, name, level });
    else if (levelRank(level) > levelRank(old.level)) old.level = level;
  }

  addAttack(id: string, pattern: string, level: Level, categories: string[]): void {
    if (id === '') return;
    const old = this.attack.get(id);
    if (!old) this.attack.set(id, { id, pattern, level, categories: [...new Set(categories)] });
    else {
      if (levelRank(level) > levelRank(old.level)) old.level = level;
      for (const c of categories) if (!old.categories.includes(c)) old.categories.push(c);
      if (old.pattern === '') old.pattern = pattern;
    }
  }

  view(source: SummaryView['source'], partial: boolean): SummaryView {
    return { source, partial, tags: [...this.tags.values()], heuristics: [...this.heuristics.values()], attack: [...this.attack.values()] };
  }
}

export function summaryFromResults(results: NResult[]): SummaryView {
  const c = new Collector();
  for (const r of results) {
    for (const s of r.sections) {
      // AL: a tag's level is its section heuristic's; no heuristic counts as info
      const level = levelForScore(s.heuristic ? s.heuristic.score : null);
      for (const tag of s.tags) {
        const group = tagGroupOf(tag.type);
        if (group) c.addTag(group, tag.type, tag.value, level, tag.safelisted);
      }
      if (s.heuristic) {
        c.addHeuristic(s.heuristic.id, s.heuristic.name, level);
        for (const a of s.heuristic.attack) c.addAttack(a.id, a.pattern, level, a.categories);
      }
    }
  }
  return c.view('full', false);
}

/** Reads `/submission/summary/`; null when the document has none of the summary fields. */
export function summaryFromDocument(input: unknown): SummaryView | null {
  const doc = unwrapEnvelope(input);
  if (!isRecord(doc)) return null;
  if (!isRecord(doc.tags) && !isRecord(doc.heuristics) && !isRecord(doc.attack_matrix)) return null;
  const c = new Collector();
  const tags = rec(doc.tags);
  for (const group of TAG_GROUPS) {
    for (const [type, list] of entries(isRecord(tags[group]) ? tags[group] : null)) {
      for (const item of arr(list)) {
        // [value, h_type, safelisted, classification]; AL 4.0 had no safelisted field
        const [value, hType, safelisted] = Array.isArray(item)
          ? item
          : [rec(item).value, rec(item).h_type, rec(item).safelisted];
        if (typeof value !== 'string' && typeof value !== 'number') continue;
        c.addTag(group, t(type, 256), t(value, 4096), asLevel(hType), bool(safelisted));
      }
    }
  }
  const heuristics = rec(doc.heuristics);
  for (const [level, list] of entries(heuristics)) {
    for (const item of arr(list)) {
      const [id, name] = Array.isArray(item) ? item : [rec(item).heur_id, rec(item).name];
      c.addHeuristic(t(id, 256), t(name, 256), asLevel(level));
    }
  }
  for (const [category, list] of entries(rec(doc.attack_matrix))) {
    for (const item of arr(list)) {
      const [id, pattern, hType] = Array.isArray(item) ? item : [rec(item).attack_id, rec(item).pattern, rec(item).h_type];
      const cat = t(category, 128);
      c.addAttack(t(id, 64), t(pattern, 256), asLevel(hType), cat === '' ? [] : [cat]);
    }
  }
  return c.view('summary', bool(doc.partial));
}

/**
 * The summary a report is built from.
 * - `doc` (`/submission/summary/`) is used as it is when it is a summary and not marked `partial`.
 * - Without a usable `doc`, the summary is computed from `results` (the `full` document's results).
 * - A `doc` marked `partial` (AL computed it before every result was in, and may keep serving that) is
 *   completed from `results` when there are any: the union of both, each tag, heuristic and technique at
 *   the highest level either gives, and a note says so. `partial` then tells whether the submission
 *   itself is unfinished (`submissionCompleted` false), not whether AL's summary document was.
 * Returns the view and the note to add to the report (null when there is nothing to say).
 */
export function chooseSummaryView(doc: unknown, results: NResult[], submissionCompleted: boolean): { view: SummaryView; note: string | null } {
  const fromDoc = doc === undefined || doc === null ? null : summaryFromDocument(doc);
  if (fromDoc === null) return { view: summaryFromResults(results), note: null };
  if (!fromDoc.partial || results.length === 0) return { view: fromDoc, note: null };
  const c = new Collector();
  for (const v of [summaryFromResults(results), fromDoc]) {
    for (const tag of v.tags) c.addTag(tag.group, tag.type, tag.value, tag.level, tag.safelisted);
    for (const h of v.heuristics) c.addHeuristic(h.id, h.name, h.level);
    for (const a of v.attack) c.addAttack(a.id, a.pattern, a.level, a.categories);
  }
  return {
    view: c.view('full', !submissionCompleted),
    note: "Assemblyline's submission summary was marked partial; the summary and sample tags were computed from the full results",
  };
}
