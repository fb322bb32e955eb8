/** The oldest job of each unfinished state, read from the ledger (status API, status page, metrics). */
import { JOB_STATES, TERMINAL_STATES, type JobState, type Ledger } from '../ledger/types.js';

export interface OldestJob {
  state: JobState;
  id: string;
  /** ms since epoch the scheduled analysis was claimed. */
  createdAt: number;
  ageSeconds: number;
}

/** Unfinished states in pipeline order: the work states, `waiting` and `held`. */
export const UNFINISHED_STATES: readonly JobState[] = JOB_STATES.filter((s) => !TERMINAL_STATES.includes(s));

/** For each unfinished state that holds a job: the one claimed first and its age at `now` (ms). */
export function oldestJobs(ledger: Ledger, now: number): OldestJob[] {
  const out: OldestJob[] = [];
  for (const state of UNFINISHED_STATES) {
    let oldest: { id: string; createdAt: number } | null = null;
    let cursor: string | undefined;
    do {
      const page = ledger.list({ states: [state], limit: 500, cursor });
      for (const job of page.jobs) if (!oldest || job.createdAt < oldest.createdAt) oldest = { id: job.id, createdAt: job.createdAt };
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if (oldest) out.push({ state, ...oldest, ageSeconds: Math.max(0, (now - oldest.createdAt) / 1000) });
  }
  return out;
}

/** Seconds since claim of the oldest job in each unfinished state, 0 when the state holds none (the metric). */
export function oldestJobAges(ledger: Ledger, now: number): Record<string, number> {
  const ages: Record<string, number> = Object.fromEntries(UNFINISHED_STATES.map((s) => [s, 0]));
  for (const o of oldestJobs(ledger, now)) ages[o.state] = o.ageSeconds;
  return ages;
}
