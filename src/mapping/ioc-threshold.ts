/**
 * [Report] IOCMinVerdict: network IOCs whose Assemblyline verdict is below the threshold become neither
 * MASS samples nor sample relations. The verdict of an IOC is the level Assemblyline's submission summary
 * gives its tag (`h_type` of the heuristic of the section that carried it: info, suspicious, malicious, or
 * safe for a negative score; ASSEMBLYLINE.md §6.5); an IOC tagged several times counts at its highest level.
 * Pure: applied to the related-samples plan after it was made without the MaxIOCs cap, so IOCs left out by
 * the threshold never take the place of one that is kept; the cap is applied here, after the threshold.
 */
import type { RelatedItem } from './types.js';
import { levelRank, type Level } from './verdict.js';
import { normaliseIoc, type RelatedPlan } from './related.js';

export const IOC_MIN_VERDICTS = ['info', 'suspicious', 'malicious'] as const;
export type IocMinVerdict = (typeof IOC_MIN_VERDICTS)[number];

type IocKind = 'ip' | 'domain' | 'uri';

/** What the threshold left out, counted per verdict level (goes into the report's `related` object). */
export interface IocThresholdOutcome {
  minVerdict: IocMinVerdict;
  /** IOCs left out by the threshold. */
  leftOut: number;
  /** The same, per level they had. */
  leftOutByLevel: Record<Level, number>;
  /** `kind:value` of the first LISTED_MAX of them, in plan order. */
  values: string[];
}

/** Most left-out IOC values listed in the report (all are counted). */
export const LISTED_MAX = 50;

/** Tags of the submission summary, as far as the threshold reads them. */
export interface LevelledTag {
  type: string;
  value: string;
  level: Level;
}

/** `kind\0normalised value` of every network IOC tag → its highest level. */
export function iocLevels(tags: readonly LevelledTag[]): Map<string, Level> {
  const out = new Map<string, Level>();
  for (const t of tags) {
    const kind = /^network\.(?:dynamic|static)\.(ip|domain|uri)$/.exec(t.type)?.[1] as IocKind | undefined;
    if (!kind) continue;
    const key = `${kind}\u0000${normaliseIoc(kind, t.value) ?? t.value.trim()}`;
    const old = out.get(key);
    if (!old || levelRank(t.level) > levelRank(old)) out.set(key, t.level);
  }
  return out;
}

/**
 * Keeps the files of `plan` and the IOCs at or above `minVerdict`, then caps the IOCs at `maxIocs`
 * (the plan must have been made with an unlimited MaxIOCs). An IOC without a known level counts as info.
 * Updates `stats.iocs`, `stats.iocsCutByMaxIocs` and the MaxIOCs note; returns what the threshold left out.
 */
export function applyIocThreshold(
  plan: RelatedPlan,
  levels: ReadonlyMap<string, Level>,
  minVerdict: IocMinVerdict,
  maxIocs: number,
): { plan: RelatedPlan; outcome: IocThresholdOutcome } {
  const min = levelRank(minVerdict);
  const leftOutByLevel: Record<Level, number> = { malicious: 0, suspicious: 0, info: 0, safe: 0 };
  const files: RelatedItem[] = [];
  const kept: RelatedItem[] = [];
  const values: string[] = [];
  let cut = 0;
  for (const item of plan.items) {
    if (item.kind === 'file') {
      files.push(item);
      continue;
    }
    const level = levels.get(`${item.kind}\u0000${item.value}`) ?? 'info';
    if (levelRank(level) < min) {
      leftOutByLevel[level]++;
      if (values.length < LISTED_MAX) values.push(item.key);
      continue;
    }
    if (kept.length >= maxIocs) {
      cut++;
      continue;
    }
    kept.push(item);
  }
  const leftOut = leftOutByLevel.safe + leftOutByLevel.info + leftOutByLevel.suspicious + leftOutByLevel.malicious;
  const notes = plan.notes.filter((n) => !/ network IOC\(s\) not reported: MaxIOCs is /.test(n));
  if (leftOut > 0) notes.push(`${leftOut} network IOC(s) not reported: their verdict is below IOCMinVerdict ${minVerdict}`);
  if (cut > 0) notes.push(`${cut} network IOC(s) not reported: MaxIOCs is ${maxIocs}`);
  return {
    plan: { items: [...files, ...kept], notes, stats: { ...plan.stats, iocs: kept.length, iocsCutByMaxIocs: cut } },
    outcome: { minVerdict, leftOut, leftOutByLevel, values },
  };
}

/** The `iocs_below_min_verdict` object of the report's al_summary.related (docs/report-format.md). */
export function thresholdReport(o: IocThresholdOutcome): Record<string, unknown> {
  return { min_verdict: o.minVerdict, count: o.leftOut, by_level: { ...o.leftOutByLevel }, values: [...o.values] };
}
