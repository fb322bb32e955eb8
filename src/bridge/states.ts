/**
 * The job state machine as data, in one place: every state, the states it may move to, its budget and
 * what happens when the budget is spent. The ledger refuses any transition this table does not allow
 * (`assertTransition`), the decisions in decide.ts read the budgets from here, and the reconciler moves
 * on any job older than its state's age budget. docs/design.md shows the same table.
 * Pure data and pure functions: no I/O, no clock.
 */
import type { JobState } from '../ledger/types.js';

/** What the bridge does when a state's budget is spent. */
export type OnBudgetSpent =
  /** The job ends with an error report that names the upstream that refused what, and its code. */
  | 'error-report'
  /** The related items not yet created are skipped, each with a note in the report; the report is sent. */
  | 'skip-items'
  /** The job waits for an operator (`held`), with the reason in the status API. */
  | 'held'
  /** Nothing: a terminal state, or `held` (only an operator moves it on). */
  | 'none';

/** Which configured limit bounds a state (resolved to numbers by `budgetOf`). */
export interface StateBudget {
  /** Ingest attempts: [Bridge] MaxAttempts. */
  attempts?: 'maxAttempts';
  /** Consecutive failed runs of the step that fail the same way while the upstream answers otherwise. */
  sameFailures?: 'sameFailureLimit';
  /**
   * Age in the state: 'outage' = [Bridge] OutageBudget; 'result' = Assemblyline's own 2-day limit on a
   * submission plus one ResultDeadline (the reconciler's deadline lookups normally end a wait long before).
   */
  age?: 'outage' | 'result';
}

export interface StateRule {
  /** What the state means, for the design document and the status page. */
  meaning: string;
  /** Who drives the job in this state. */
  owner: 'worker' | 'listener and reconciler' | 'operator' | 'nobody';
  /** The states a job may move to from here (staying in the same state is always allowed). */
  next: readonly JobState[];
  budget: StateBudget;
  onSpent: OnBudgetSpent;
}

/**
 * Every state but `done`/`failed` may also move to `reporting` (an error report) and, through the operator's
 * retry, back to the state it was held from; these are listed explicitly in each row.
 */
export const STATE_TABLE: Readonly<Record<JobState, StateRule>> = {
  claimed: {
    meaning: 'recorded from a poll, before any side effect',
    owner: 'worker',
    next: ['fetching', 'ingesting', 'collecting', 'reporting'],
    budget: { age: 'outage' },
    onSpent: 'error-report',
  },
  fetching: {
    meaning: 'reading the MASS sample and deciding what to do with it',
    owner: 'worker',
    next: ['ingesting', 'collecting', 'reporting'],
    budget: { age: 'outage' },
    onSpent: 'error-report',
  },
  ingesting: {
    meaning: 'the sample is ingested into Assemblyline (by sha256, or streamed from MASS), attempt n; held here while the ingest gate is shut',
    owner: 'worker',
    // held: the ingest gate stayed shut (a configuration refusal or quota) longer than OutageBudget.
    next: ['waiting', 'collecting', 'reporting', 'held'],
    budget: { attempts: 'maxAttempts', age: 'outage' },
    onSpent: 'error-report',
  },
  waiting: {
    meaning: 'ingest_id known; waiting for the notification',
    owner: 'listener and reconciler',
    next: ['collecting', 'ingesting', 'reporting'],
    budget: { attempts: 'maxAttempts', age: 'result' },
    onSpent: 'error-report',
  },
  collecting: {
    meaning: 'reading the Assemblyline results of the submission',
    owner: 'worker',
    next: ['relating', 'reporting', 'ingesting', 'waiting'],
    budget: { age: 'outage' },
    onSpent: 'error-report',
  },
  relating: {
    meaning: 'creating related samples and sample relations on MASS',
    owner: 'worker',
    next: ['reporting', 'ingesting', 'waiting'],
    budget: { sameFailures: 'sameFailureLimit', age: 'outage' },
    onSpent: 'skip-items',
  },
  reporting: {
    meaning: 'the report (analysis or error) may be in flight to MASS',
    owner: 'worker',
    next: ['done', 'failed', 'held', 'ingesting', 'waiting'],
    budget: { age: 'outage' },
    onSpent: 'held',
  },
  done: { meaning: 'the analysis report is stored on MASS', owner: 'nobody', next: [], budget: {}, onSpent: 'none' },
  failed: { meaning: 'an error report is stored on MASS', owner: 'nobody', next: [], budget: {}, onSpent: 'none' },
  held: {
    meaning: 'needs an operator: retry or abandon through the API',
    owner: 'operator',
    next: ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting'],
    budget: {},
    onSpent: 'none',
  },
};

/** States the worker drives; `waiting` belongs to the listener and the reconciler. */
export const WORK_STATES: readonly JobState[] = (Object.keys(STATE_TABLE) as JobState[]).filter((s) => STATE_TABLE[s].owner === 'worker');

/** States a job never leaves. */
export const FINAL_STATES: readonly JobState[] = (Object.keys(STATE_TABLE) as JobState[]).filter((s) => STATE_TABLE[s].next.length === 0);

/** Whether a job may move from `from` to `to` (staying in a non-final state is always allowed). */
export function canTransition(from: JobState, to: JobState): boolean {
  const rule = STATE_TABLE[from];
  if (!rule) return false;
  if (from === to) return rule.next.length > 0;
  return rule.next.includes(to);
}

/** Thrown by the ledger for a transition the table does not allow. */
export class TransitionRefused extends Error {
  readonly from: JobState;
  readonly to: JobState;
  constructor(jobId: string, from: JobState, to: JobState) {
    super(`job ${jobId}: transition ${from} → ${to} is not allowed by the state table`);
    this.name = 'TransitionRefused';
    this.from = from;
    this.to = to;
  }
}

/** Throws TransitionRefused unless the table allows `from` → `to`. */
export function assertTransition(jobId: string, from: JobState, to: JobState): void {
  if (!canTransition(from, to)) throw new TransitionRefused(jobId, from, to);
}

/** The configured numbers the budgets are made of (milliseconds and counts). */
export interface BudgetLimits {
  maxAttempts: number;
  /** [Bridge] OutageBudget in ms. */
  outageMs: number;
  /** [Bridge] ResultDeadline in ms. */
  resultDeadlineMs: number;
  /** Consecutive identical failures of one request (an upstream that answers otherwise) before it counts as refused. */
  sameFailureLimit: number;
}

/** AL 4.7 ingester: a job still running after 2 days is dropped silently, so waiting longer is pointless. */
export const AL_MAX_IN_FLIGHT_MS = 2 * 24 * 3600 * 1000;

/** A state's budget in numbers: attempts (null = unbounded by count) and age in ms (null = no age limit). */
export function budgetOf(state: JobState, limits: BudgetLimits): { attempts: number | null; sameFailures: number | null; ageMs: number | null } {
  const b = STATE_TABLE[state]?.budget ?? {};
  const ageMs =
    b.age === 'outage'
      ? limits.outageMs
      : b.age === 'result'
        ? Math.max(limits.outageMs, AL_MAX_IN_FLIGHT_MS + limits.resultDeadlineMs)
        : null;
  return {
    attempts: b.attempts ? limits.maxAttempts : null,
    sameFailures: b.sameFailures ? limits.sameFailureLimit : null,
    ageMs,
  };
}
