/**
 * Verdicts and score levels as Assemblyline computes them.
 * Submission verdict: AL `submission.verdicts` (assemblyline-base odm/models/config.py DEFAULT_VERDICTS:
 * info 0, suspicious 300, highly_suspicious 700, malicious 1000); below 0 is safe.
 * Summary level (`h_type`) of a heuristic, tag or technique: >= 1000 malicious, >= 300 suspicious, >= 0 info,
 * < 0 safe (ASSEMBLYLINE.md §6.5); the summary has no highly_suspicious level.
 */
import type { ReportPlan, VerdictThresholds } from './types.js';

export type Verdict = ReportPlan['verdict'];
export type Level = 'malicious' | 'suspicious' | 'info' | 'safe';

export const LEVELS: readonly Level[] = ['malicious', 'suspicious', 'info', 'safe'];

export const DEFAULT_VERDICT_THRESHOLDS: Readonly<VerdictThresholds> = Object.freeze({
  suspicious: 300,
  highly_suspicious: 700,
  malicious: 1000,
});

export function normaliseThresholds(t: unknown): VerdictThresholds {
  const d = DEFAULT_VERDICT_THRESHOLDS;
  if (typeof t !== 'object' || t === null) return { ...d };
  const o = t as Record<string, unknown>;
  const pick = (k: keyof VerdictThresholds): number =>
    typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : d[k];
  return { suspicious: pick('suspicious'), highly_suspicious: pick('highly_suspicious'), malicious: pick('malicious') };
}

export function verdictForScore(score: number, t: VerdictThresholds = DEFAULT_VERDICT_THRESHOLDS): Verdict {
  if (!Number.isFinite(score)) return 'info';
  if (score >= t.malicious) return 'malicious';
  if (score >= t.highly_suspicious) return 'highly_suspicious';
  if (score >= t.suspicious) return 'suspicious';
  if (score >= 0) return 'info';
  return 'safe';
}

export function levelForScore(score: number | null): Level {
  if (score === null || !Number.isFinite(score)) return 'info';
  if (score >= 1000) return 'malicious';
  if (score >= 300) return 'suspicious';
  if (score >= 0) return 'info';
  return 'safe';
}

export function levelRank(level: Level): number {
  return { malicious: 3, suspicious: 2, info: 1, safe: 0 }[level];
}

export function asLevel(value: unknown): Level {
  return value === 'malicious' || value === 'suspicious' || value === 'safe' ? value : 'info';
}

/**
 * Score bucket for the `score:` tag, cut at the verdict thresholds so a bucket never straddles two verdicts:
 * negative, 0, 1-299, 300-699, 700-999, 1000-1999, 2000+ (with the default thresholds).
 */
export function scoreBucket(raw: number, t: VerdictThresholds = DEFAULT_VERDICT_THRESHOLDS): string {
  if (!Number.isFinite(raw)) return '0';
  const score = Math.floor(raw);
  if (score < 0) return 'negative';
  if (score === 0) return '0';
  const cuts = [...new Set([1, t.suspicious, t.highly_suspicious, t.malicious, 2 * t.malicious])]
    .filter((c) => Number.isFinite(c) && c >= 1)
    .sort((a, b) => a - b);
  for (let i = cuts.length - 1; i >= 0; i--) {
    if (score >= cuts[i]) {
      const next = cuts[i + 1];
      return next === undefined ? `${cuts[i]}+` : `${cuts[i]}-${next - 1}`;
    }
  }
  return '0';
}
