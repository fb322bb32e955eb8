/**
 * The oldest job of each unfinished state, from the ledger's `oldestPerState()` (status API, status page and
 * the `massal_oldest_job_age_seconds` gauge all read this one computation).
 */
import { JOB_STATES, TERMINAL_STATES, type JobState, type Ledger } from '../ledger/types.js';

export interface OldestInState {
  state: JobState;
  /** The job that has been in this state longest. */
  jobId: string;
  /** Seconds it has been in the state at `now`. */
  ageSeconds: number;
  /** The state's age budget in seconds (null: none, e.g. held): a job longer in the state is moved on by the reconciler. */
  budgetSeconds: number | null;
}

/** Unfinished states in pipeline order: the work states, `waiting` and `held`. */
export const UNFINISHED_STATES: readonly JobState[] = JOB_STATES.filter((s) => !TERMINAL_STATES.includes(s));

/**
 * For each unfinished state that holds a job, in pipeline order: the job longest in it, its age at `now` (ms since
 * epoch) and the state's budget from `budgetsMs` (ms per state, as in the bridge status).
 */
export function oldestPerState(ledger: Ledger, now: number, budgetsMs: Record<string, number | null> = {}): OldestInState[] {
  const byState = new Map(ledger.oldestPerState().map((o) => [o.state, o]));
  const out: OldestInState[] = [];
  for (const state of UNFINISHED_STATES) {
    const o = byState.get(state);
    if (!o) continue;
    const budget = budgetsMs[state] ?? null;
    out.push({ state, jobId: o.jobId, ageSeconds: Math.max(0, (now - o.since) / 1000), budgetSeconds: budget === null ? null : budget / 1000 });
  }
  return out;
}

/** Seconds the oldest job of each unfinished state has been in it, 0 when the state holds none (the gauge). */
export function oldestJobAges(ledger: Ledger, now: number): Record<string, number> {
  const ages: Record<string, number> = Object.fromEntries(UNFINISHED_STATES.map((s) => [s, 0]));
  for (const o of oldestPerState(ledger, now)) ages[o.state] = o.ageSeconds;
  return ages;
}
