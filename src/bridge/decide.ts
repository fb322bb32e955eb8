/**
 * The bridge's pure decisions: given a job and what just happened, the next state and patch.
 * No I/O, no clock, no randomness of its own (time and random are passed in). The loops in
 * bridge.ts do the I/O and write what these functions return into the ledger.
 */
import type { ErrorCode } from '../errors.js';
import { BridgeError, isTransient } from '../errors.js';
import type { Job, JobPatch, NewEvent } from '../ledger/types.js';
import type { MassSample } from '../mass/types.js';
import { AL_MAX_IN_FLIGHT_MS, STATE_TABLE } from './states.js';

export interface Transition {
  patch: JobPatch;
  event: NewEvent;
}

export interface Policy {
  maxAttempts: number;
  resultDeadlineMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** min(Bridge MaxFileSize, Assemblyline MaxFileSize) */
  maxFileSize: number;
  reanalyseOwnSamples: boolean;
  /** [Bridge] OutageBudget in ms (default 12 h): how long transient failures of one step are waited out. */
  outageMs?: number;
}

export { WORK_STATES, AL_MAX_IN_FLIGHT_MS } from './states.js';

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so retries of
 * many jobs spread out but never come back sooner than half the nominal delay.
 */
export function backoffMs(failures: number, baseMs: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(step / 2 + (step / 2) * r);
}

export function errorReport(code: ErrorCode | string, message: string, now: number, data?: Record<string, unknown>): Transition {
  return {
    patch: { state: 'reporting', errorCode: code, errorMessage: message, notBefore: now, stepFailures: 0, deadline: null },
    event: { type: 'error-report-planned', code, message, data: data ?? null },
  };
}

export type SampleView = Pick<MassSample, '_cls' | 'url' | 'tlp_level'> &
  Partial<Pick<MassSample, 'file_size' | 'file_names' | 'sha256sum'>>;

/**
 * Where an echo-back comes from: a file this bridge extracted (its ledger's `own_samples` names the job), or a
 * file another bridge of the same analysis system extracted, recognised by the tags it stored with the sample
 * on MASS (`jobId` null; see mapping/tags.ts extractedInSids).
 */
export interface OwnSampleOrigin {
  jobId: string | null;
  sid: string;
}

/** `echoOf` of a job whose sample was recognised by its tags on MASS (the extracting job is another bridge's). */
export const ECHO_BY_MASS_TAGS = 'mass-tags';

/** After reading the MASS sample (or learning it is invisible): ingest, answer from the parent, or error-report. */
export function decideSample(
  sample: SampleView | 'invisible',
  policy: Policy,
  own: OwnSampleOrigin | undefined,
  now: number,
): Transition {
  if (sample === 'invisible') {
    // MASS answers 404 for samples above TLP 0 even when they sit in our own queue (MASS.md §5.4).
    return errorReport('SAMPLE_INVISIBLE', 'sample not visible to this analysis instance (MASS answered 404: TLP above 0, or deleted)', now);
  }
  if (!sample._cls.startsWith('Sample.FileSample')) {
    return errorReport('SAMPLE_NOT_FILE', `not a file sample (${sample._cls}); Assemblyline analyses files only`, now, { cls: sample._cls });
  }
  const sha256 = sample.sha256sum?.toLowerCase() ?? null;
  const base: JobPatch = {
    sha256,
    fileName: sample.file_names?.[0] ?? sha256,
    fileSize: sample.file_size ?? null,
    sampleCls: sample._cls,
  };
  if (typeof sample.file_size === 'number' && sample.file_size > policy.maxFileSize) {
    const t = errorReport(
      'SAMPLE_TOO_LARGE',
      `file too large: ${sample.file_size} bytes > limit ${policy.maxFileSize} bytes; not uploaded to Assemblyline`,
      now,
    );
    return { patch: { ...base, ...t.patch }, event: t.event };
  }
  if (own && !policy.reanalyseOwnSamples) {
    const message = own.jobId
      ? `sample was submitted by this bridge (extracted by job ${own.jobId}); answered from submission ${own.sid} without a new ingest`
      : `sample carries the tags of a file a bridge of this analysis system extracted in submission ${own.sid}; answered from that submission without a new ingest`;
    return {
      patch: { ...base, state: 'collecting', sid: own.sid, echoOf: own.jobId ?? ECHO_BY_MASS_TAGS, notBefore: now },
      event: { type: 'echo-back', message, data: { origin: own.jobId, sid: own.sid, via: own.jobId ? 'ledger' : 'mass-tags' } },
    };
  }
  return { patch: { ...base, state: 'ingesting', notBefore: now }, event: { type: 'fetched', data: { size: sample.file_size ?? null } } };
}

export interface NotificationView {
  ingestId: string;
  sid: string | null;
  failure: string;
  score: number | null;
  /** metadata.bridge_job as sent with the ingest. */
  bridgeJob: string | null;
}

/** Reads the fields the bridge uses from a popped message (any AL version; unknown fields ignored). */
export function parseNotification(body: Record<string, unknown>): NotificationView {
  const submission = (body.submission && typeof body.submission === 'object' ? body.submission : {}) as Record<string, unknown>;
  const metadata = (submission.metadata && typeof submission.metadata === 'object' ? submission.metadata : {}) as Record<string, unknown>;
  const bridgeJob = metadata.bridge_job ?? (metadata.bridge as Record<string, unknown> | undefined)?.job;
  return {
    ingestId: String(body.ingest_id ?? ''),
    sid: typeof submission.sid === 'string' && submission.sid ? submission.sid : null,
    failure: typeof body.failure === 'string' ? body.failure : '',
    score: typeof body.score === 'number' ? body.score : null,
    bridgeJob: typeof bridgeJob === 'string' ? bridgeJob : null,
  };
}

export type NotificationDecision = { kind: 'apply'; transition: Transition } | { kind: 'ignore'; reason: string };

/**
 * A persisted notification for this job. `current` = it answers the job's latest ingest_id.
 * A success message of an older ingest of the same job is still a valid result of the same file.
 */
export function decideNotification(job: Job, msg: NotificationView, policy: Policy, now: number, random: () => number): NotificationDecision {
  if (job.state !== 'waiting' && job.state !== 'ingesting') {
    return { kind: 'ignore', reason: `job is ${job.state}` };
  }
  const current = job.ingestId !== null && msg.ingestId === job.ingestId;
  if (msg.failure) {
    if (!current) return { kind: 'ignore', reason: `failure "${msg.failure}" of an older ingest` };
    if (msg.failure === 'Skipped') {
      if (job.attempts < policy.maxAttempts) {
        const delay = backoffMs(job.attempts, policy.retryBaseMs, policy.retryMaxMs, random);
        return {
          kind: 'apply',
          transition: {
            // never_drop on the retry: AL's sampler cannot drop it again (ASSEMBLYLINE.md §5).
            patch: { state: 'ingesting', alFailure: msg.failure, neverDrop: true, notBefore: now + delay, deadline: null },
            event: { type: 'al-skipped', message: `Assemblyline skipped ingest ${msg.ingestId}; re-ingest with never_drop`, data: { delayMs: delay } },
          },
        };
      }
      return { kind: 'apply', transition: withFailure(errorReport('AL_SKIPPED', `Assemblyline skipped the file on all ${job.attempts} ingest attempts`, now), msg.failure) };
    }
    if (msg.failure.startsWith('File too large')) {
      return { kind: 'apply', transition: withFailure(errorReport('AL_FILE_TOO_LARGE', `Assemblyline refused the file: ${msg.failure}`, now), msg.failure) };
    }
    return { kind: 'apply', transition: withFailure(errorReport('AL_FAILURE', `Assemblyline did not analyse the file: ${msg.failure}`, now), msg.failure) };
  }
  if (!msg.sid) return { kind: 'ignore', reason: 'message without submission.sid' };
  return {
    kind: 'apply',
    transition: {
      patch: {
        state: 'collecting',
        sid: msg.sid,
        // 4.7+: a fresh analysis has sid == ingest_id; a cache hit carries the earlier submission's sid.
        cacheHit: msg.sid !== msg.ingestId,
        score: msg.score,
        alFailure: '',
        notBefore: now,
        deadline: null,
        stepFailures: 0,
      },
      event: { type: 'notified', data: { ingestId: msg.ingestId, sid: msg.sid, score: msg.score, current } },
    },
  };
}

function withFailure(t: Transition, failure: string): Transition {
  return { patch: { ...t.patch, alFailure: failure }, event: t.event };
}

/** `submission/full/<sid>` answered 404: the (cached) submission is gone; re-ingest bypassing the cache. */
export function decideResultsMissing(job: Job, policy: Policy, now: number): Transition {
  if (job.echoOf) {
    // The parent's submission expired: analyse the file itself (cannot loop: its own extractions are own samples too).
    return {
      patch: { state: 'ingesting', echoOf: null, sid: null, notBefore: now },
      event: { type: 'echo-parent-gone', message: `parent submission ${job.sid} is gone; ingesting the file itself` },
    };
  }
  if (job.attempts < policy.maxAttempts) {
    return {
      patch: { state: 'ingesting', ignoreCache: true, sid: null, cacheHit: false, notBefore: now },
      event: { type: 'results-gone', message: `submission ${job.sid} not found in Assemblyline; re-ingest with ignore_cache`, data: { sid: job.sid } },
    };
  }
  return errorReport('AL_FAILURE', `Assemblyline submission ${job.sid} is gone and ${job.attempts} ingest attempts are used up`, now);
}

/**
 * An echo-back's parent submission does not hold the file as an extracted child (the tags on MASS named a
 * submission Assemblyline does not confirm): the file is analysed itself, like any other.
 */
export function decideEchoNotInParent(job: Job, now: number): Transition {
  return {
    patch: { state: 'ingesting', echoOf: null, sid: null, cacheHit: false, notBefore: now },
    event: { type: 'echo-not-in-parent', message: `submission ${job.sid} does not hold this file as an extracted file; ingesting the file itself`, data: { sid: job.sid } },
  };
}

/**
 * `submission/full/<sid>` answered, but the submission is not `completed`. A notification is only sent
 * after completion, yet a cache hit may point at a submission that is being resubmitted (extended scan) or
 * that the dispatcher failed. `submitted` → wait for it (back to `waiting`, sid kept, the reconciler looks
 * it up by sid at the deadline); `failed` → like a missing submission (re-ingest with ignore_cache).
 * Returns null when the results can be used.
 */
export function decideSubmissionState(job: Job, state: string | null | undefined, policy: Policy, now: number): Transition | null {
  if (state === 'submitted') {
    const deadline = now + policy.resultDeadlineMs;
    return {
      patch: { state: 'waiting', deadline, notBefore: deadline },
      event: { type: 'submission-running', message: `submission ${job.sid} is still running in Assemblyline; waiting for it`, data: { sid: job.sid } },
    };
  }
  if (state === 'failed') {
    if (job.echoOf) return decideResultsMissing(job, policy, now);
    if (job.attempts < policy.maxAttempts) {
      return {
        patch: { state: 'ingesting', ignoreCache: true, sid: null, cacheHit: false, notBefore: now },
        event: { type: 'submission-failed', message: `Assemblyline submission ${job.sid} failed; re-ingest with ignore_cache`, data: { sid: job.sid } },
      };
    }
    return errorReport('AL_FAILURE', `Assemblyline submission ${job.sid} failed and ${job.attempts} ingest attempts are used up`, now);
  }
  return null;
}

export type DeadlineLookup = { kind: 'completed'; sid: string } | { kind: 'running' } | { kind: 'missing' };

/** No notification before the deadline: what the Assemblyline lookup found decides. */
export function decideDeadline(job: Job, lookup: DeadlineLookup, policy: Policy, now: number): Transition {
  if (lookup.kind === 'completed') {
    return {
      patch: { state: 'collecting', sid: lookup.sid, cacheHit: lookup.sid !== job.ingestId, notBefore: now, deadline: null, stepFailures: 0 },
      event: { type: 'reconciled', message: `no notification; submission ${lookup.sid} found completed`, data: { sid: lookup.sid } },
    };
  }
  if (lookup.kind === 'running' && now - job.createdAt < AL_MAX_IN_FLIGHT_MS) {
    const deadline = now + policy.resultDeadlineMs;
    return {
      patch: { deadline, notBefore: deadline },
      event: { type: 'deadline-extended', message: 'submission still running in Assemblyline' },
    };
  }
  if (job.attempts < policy.maxAttempts) {
    // ignore_cache stays false: if AL has a cached result, the re-ingest is answered at once.
    return {
      patch: { state: 'ingesting', notBefore: now, deadline: null },
      event: { type: 'deadline-passed', message: `no result for ingest ${job.ingestId} before the deadline; re-ingest`, code: 'RESULT_DEADLINE' },
    };
  }
  return errorReport('RESULT_DEADLINE', `no Assemblyline result after ${job.attempts} ingest attempts`, now);
}

/** Codes that say "the bridge or its credentials need attention": wait and retry, never burn the sample with an error report. */
export const WAIT_CODES = new Set<string>(['AUTH', 'QUOTA_DAILY', 'LEDGER', 'CONFIG_INVALID']);

export type StepErrorDecision = { kind: 'checkpoint' } | { kind: 'apply'; transition: Transition };

const UPSTREAM_NAME = { mass: 'MASS', assemblyline: 'Assemblyline' } as const;

/** Who refused what: "MASS answered HTTP 400 to POST /api/…: <message>" (the message names the call too). */
export function refusal(err: unknown): string {
  if (!(err instanceof BridgeError)) return `the bridge failed: ${err instanceof Error ? err.message : String(err)}`;
  const who = err.upstream ? UPSTREAM_NAME[err.upstream] : 'the bridge';
  const what = err.method && err.path && !err.message.includes(err.path) ? ` to ${err.method} ${err.path}` : '';
  const how = err.status ? `HTTP ${err.status}` : err.code;
  return `${who} answered ${how}${what}: ${err.message}`;
}

const hours = (ms: number): string => (ms >= 3_600_000 ? `${+(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 1000)} s`);

/**
 * A state's budget is spent (the failures lasted longer than [Bridge] OutageBudget, or the same request
 * failed the same way too often): what STATE_TABLE says happens, with a reason naming the upstream.
 */
export function decideBudgetSpent(job: Job, why: string, now: number, code: string): Transition {
  const rule = STATE_TABLE[job.state];
  switch (rule?.onSpent) {
    case 'skip-items':
      return {
        patch: { state: 'reporting', notBefore: now, lastError: why, lastErrorCode: code },
        event: { type: 'related-budget-spent', code, message: `not related on MASS: ${why}`, data: { from: job.state } },
      };
    case 'held':
      return {
        patch: { state: 'held', lastError: why, lastErrorCode: code },
        event: { type: 'held', code, message: why, data: { from: job.state } },
      };
    case 'error-report': {
      const t = errorReport(code, why, now, { step: job.state });
      return { patch: { ...t.patch, lastError: why, lastErrorCode: code }, event: t.event };
    }
    default:
      return { patch: { lastError: why, lastErrorCode: code }, event: { type: 'budget-spent', code, message: why } };
  }
}

/**
 * A step failed after its in-step retries. Transient (or operator-fixable) → stay in the state with
 * notBefore = now + backoff, until the state's budget is spent (decideBudgetSpent); permanent → error
 * report naming who refused what; an analysis report MASS refuses for good → error report saying so;
 * an error report MASS refuses → held.
 */
export function decideStepError(job: Job, err: unknown, policy: Policy, now: number, random: () => number): StepErrorDecision {
  const code = err instanceof BridgeError ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ABORTED') return { kind: 'checkpoint' };
  const upstream = err instanceof BridgeError ? err.upstream : undefined;
  if (isTransient(err) || WAIT_CODES.has(code)) {
    // MaxAttempts bounds the ingest step too: a sample whose download always breaks, or that Assemblyline
    // always refuses, ends with an error report. An Assemblyline outage (no answer, 5xx) is waited out instead.
    const alOutage = upstream === 'assemblyline' && (code === 'NETWORK' || code === 'TIMEOUT' || WAIT_CODES.has(code) || (err as BridgeError).status === 503);
    if (job.state === 'ingesting' && job.attempts >= policy.maxAttempts && !alOutage) {
      return { kind: 'apply', transition: decideBudgetSpent(job, `all ${job.attempts} ingest attempts failed; the last: ${refusal(err)}`, now, code) };
    }
    const outageMs = policy.outageMs ?? 12 * 3_600_000;
    const since = job.stateSince ?? job.updatedAt;
    if (now - since >= outageMs) {
      return { kind: 'apply', transition: decideBudgetSpent(job, `${refusal(err)} (still failing after ${hours(now - since)}, OutageBudget ${hours(outageMs)})`, now, code) };
    }
    const failures = (job.stepFailures ?? 0) + 1;
    const delay = backoffMs(failures, policy.retryBaseMs, policy.retryMaxMs, random);
    return {
      kind: 'apply',
      transition: {
        patch: { stepFailures: failures, notBefore: now + delay, lastError: message, lastErrorCode: code },
        event: { type: 'retry-later', code, message, data: { delayMs: delay, failures, upstream: upstream ?? null } },
      },
    };
  }
  if (job.state === 'reporting') {
    if (!job.errorCode) {
      // Only a permanent refusal of this exact report changes what is reported, and the text says so.
      const why = `MASS refused the analysis report: ${refusal(err)}`;
      const t = errorReport(code, why, now, { rejected: code });
      return { kind: 'apply', transition: { patch: { ...t.patch, lastError: message, lastErrorCode: code }, event: t.event } };
    }
    return {
      kind: 'apply',
      transition: {
        patch: { state: 'held', lastError: message, lastErrorCode: code },
        event: { type: 'held', code, message: `error report refused by MASS: ${refusal(err)}`, data: { from: job.state } },
      },
    };
  }
  const t = errorReport(code, refusal(err), now, { step: job.state });
  return { kind: 'apply', transition: { patch: { ...t.patch, lastError: message, lastErrorCode: code }, event: t.event } };
}

/**
 * A notification-queue read whose outcome is uncertain (no answer, connection reset, the popped batch not
 * stored) may have lost this job's message: a completed submission is collected now instead of after the
 * deadline; anything else leaves the job waiting. Returns null when nothing changes.
 */
export function decideUncertainRead(job: Job, lookup: DeadlineLookup, now: number): Transition | null {
  if (job.state !== 'waiting' || lookup.kind !== 'completed') return null;
  return {
    patch: { state: 'collecting', sid: lookup.sid, cacheHit: lookup.sid !== job.ingestId, notBefore: now, deadline: null, stepFailures: 0 },
    event: { type: 'reconciled', message: `a notification-queue read may have lost the message; submission ${lookup.sid} found completed`, data: { sid: lookup.sid, early: true } },
  };
}

/**
 * The reconciler found a job longer in its state than the state's age budget (states.ts): the reason
 * names the state and both durations; what happens is the table's `onSpent`, except for a job held in
 * `ingesting` by a shut ingest gate (`gate.shut`): it goes to `held` with Assemblyline's reason and the fix.
 */
export function decideOverAge(job: Job, ageMs: number, budgetMs: number, now: number, gate?: { shut: boolean; reason: string | null; fix: string | null }): Transition {
  if (job.state === 'ingesting' && gate?.shut) {
    // A refusal every ingest gets (configuration, quota) is not this sample's failure: no error report, an operator decides.
    const why = `Assemblyline refused every ingest for ${hours(ageMs)}, longer than OutageBudget (${hours(budgetMs)}): ${gate.reason ?? job.lastError ?? 'unknown refusal'}${gate.fix ? `; fix: ${gate.fix}` : ''}; then retry the job`;
    const code = job.lastErrorCode ?? 'AL_REFUSED';
    return { patch: { state: 'held', lastError: why, lastErrorCode: code }, event: { type: 'held', code, message: why, data: { from: job.state } } };
  }
  const code = job.state === 'waiting' ? 'RESULT_DEADLINE' : (job.lastErrorCode ?? 'INTERNAL');
  const last = job.lastError ? `; last error: ${job.lastError}` : '';
  return decideBudgetSpent(job, `in state ${job.state} for ${hours(ageMs)}, longer than its budget of ${hours(budgetMs)}${last}`, now, code);
}

/** An ingest step failed after its retries: a 404 of the MASS download or an AL 413 end the job at once; null = decideStepError. */
export function decideIngestError(err: unknown, now: number): Transition | null {
  if (err instanceof BridgeError && err.code === 'NOT_FOUND' && err.upstream === 'mass') {
    return errorReport('SAMPLE_INVISIBLE', 'sample download answered 404 (TLP above 0, or deleted)', now);
  }
  if (err instanceof BridgeError && err.upstream === 'assemblyline' && err.status === 413) {
    return errorReport('AL_FILE_TOO_LARGE', `Assemblyline refused the upload as too large: ${err.message}`, now);
  }
  return null;
}

export type ReportOutcome = 'sent' | 'found' | 'stored' | 'consumed' | 'gone';

/**
 * How a report attempt ended → the job's final state and the `report-sent` event. `foundError`: the report
 * found on MASS by its marker is an error report (null when none was found).
 */
export function decideReportSent(job: Job, kind: ReportOutcome, foundError: boolean | null, url: string | null): Transition {
  const state = foundError === null ? (job.errorCode ? 'failed' : 'done') : foundError ? 'failed' : 'done';
  const message = {
    sent: 'report accepted by MASS',
    found: 'report found on MASS by its marker (an earlier answer was lost)',
    stored: 'report accepted by MASS (answered 2xx without a report)',
    consumed: 'scheduled analysis already consumed on MASS (an earlier report was accepted)',
    gone: 'scheduled analysis no longer exists on MASS (consumed elsewhere or deleted by an admin); no report was stored by this bridge',
  }[kind];
  return {
    patch: { state, massReportUrl: url, notBefore: 0, stepFailures: 0 },
    event: { type: 'report-sent', message, code: kind === 'gone' ? 'NOT_FOUND' : null, data: { outcome: kind, error: state === 'failed' } },
  };
}
