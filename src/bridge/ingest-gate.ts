/**
 * The ingest gate: refusals of Assemblyline that would hit every sample are not sample failures.
 *
 * - A configuration refusal (400 for a submission profile, restricted parameter, metadata scheme or
 *   classification; 403 for a missing role) stops claiming and holds every ingest; the jobs keep their
 *   state. One ingest is let through every `probeIntervalMs` to see whether the configuration was fixed;
 *   its success reopens the gate.
 * - A daily quota (submissions or API calls) does the same until the next probe.
 * - The async concurrent submission quota (503) holds ingests for a short while (it frees up when a
 *   submission finishes); claiming goes on.
 * The messages matched are those of assemblyline-ui v4.7.4.stable6 (helper/submission.py, helper/user.py,
 * api/base.py) and assemblyline-base v4.7.4.stable9 (datastore/helper.py `check_metadata`).
 * Pure state: no clock of its own, no I/O.
 */
import { BridgeError } from '../errors.js';

export type IngestRefusalKind = 'profile' | 'parameters' | 'metadata' | 'classification' | 'role' | 'daily-quota' | 'async-quota';

export interface IngestRefusal {
  kind: IngestRefusalKind;
  /** What Assemblyline refused, with its own words. */
  reason: string;
  /** What the operator changes to fix it. */
  fix: string;
  /** ms since epoch when the refusal was first seen. */
  since: number;
  /** For kind 'parameters': the parameter names Assemblyline refused. */
  params?: string[];
}

const ASYNC_QUOTA = /maximum async concurrent submission quota/i;
const DAILY_QUOTA = /daily maximum (submission|API calls) quota/i;

/**
 * Classifies an Assemblyline ingest error: the refusal it stands for, or null when it is about the sample
 * (too large, empty, ...) or a passing failure the normal retries handle.
 */
export function classifyIngestRefusal(err: unknown, now: number): IngestRefusal | null {
  if (!(err instanceof BridgeError) || err.upstream !== 'assemblyline') return null;
  const text = err.body ?? err.message;
  const at = (kind: IngestRefusalKind, fix: string): IngestRefusal => ({ kind, reason: `Assemblyline refused the ingest (${err.status ?? err.code}): ${text}`, fix, since: now });
  if (err.status === 503 && ASYNC_QUOTA.test(text)) {
    return at('async-quota', 'none needed: ingests wait until a running submission finishes; ask the Assemblyline admin for a larger submission_async_quota if this lasts');
  }
  if (err.code === 'QUOTA_DAILY' || (err.status === 503 && DAILY_QUOTA.test(text))) {
    return at('daily-quota', 'ingests resume when the quota is renewed (next day, UTC); ask the Assemblyline admin for a larger daily quota of this user');
  }
  if (err.status === 403) {
    return at('role', 'give the Assemblyline user (and its API key) the roles submission_create and submission_view');
  }
  if (err.status !== 400) return null;
  if (/isn't allowed to modify the .* parameters of /.test(text)) {
    const params = [...text.slice(0, text.indexOf(' parameters of ')).matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    return { ...at('parameters', 'remove the refused setting from [Assemblyline] (Priority, TTL, NeverDrop, DeepScan, Services, Classification) so the profile decides it, or ask the admin for the submission_customize role'), params };
  }
  if (/isn't allowed to (modify|select)/.test(text)) {
    return at('parameters', 'remove the refused setting from [Assemblyline] (Priority, TTL, NeverDrop, DeepScan, Services, Classification) so the profile decides it, or ask the admin for the submission_customize role');
  }
  if (/^(You must specify a submission profile|Submission profile '.*' does not exist|You aren't allowed to use '.*' submission profile)/.test(text)) {
    return at('profile', 'set [Assemblyline] SubmissionProfile to a profile this user may use (`mass-al-bridge doctor` lists them)');
  }
  if (/^(Required metadata is missing from submission|Extra metadata found from submission)/.test(text)) {
    return at('metadata', 'add the required fields to [Assemblyline] Metadata (key=value, ...); for a strict scheme set [Assemblyline] BridgeMetadata = false and list only allowed fields');
  }
  if (/higher classification then you're allowed to see|^Classification level .* was not found|classification/i.test(text)) {
    return at('classification', "set [Assemblyline] Classification to a valid marking at or below the user's clearance (or leave it empty)");
  }
  return null;
}

export interface IngestGateOptions {
  /** ms between probe ingests while a configuration refusal or a daily quota blocks ingest (default 60 s). */
  probeIntervalMs?: number;
  /** ms ingests wait after the async quota refused one, or while it is known to be full (default 2 s). */
  asyncQuotaWaitMs?: number;
}

/** Holds ingests and claiming while Assemblyline refuses what every ingest would send. */
export class IngestGate {
  #refusal: IngestRefusal | null = null;
  /** The daily API quota, seen on a call other than ingest (ingest is exempt, so only such a call clears it). */
  #apiRefusal: IngestRefusal | null = null;
  #nextProbeAt = 0;
  #asyncUntil = 0;
  /** Parameters the bridge adds on its own for some re-ingests (never_drop, ignore_cache) that the profile restricts. */
  readonly #withheld = new Set<string>();
  /** N of "maximum async concurrent submission quota of N", once Assemblyline has said it. */
  #asyncLimit: number | null = null;
  /** Accepted ingests so far; with `#refusedAt`, tells a refusal of one sample from one of every ingest. */
  #accepted = 0;
  /** Job id → `#accepted` when Assemblyline last refused that job's ingest for a configuration-like reason. */
  readonly #refusedAt = new Map<string, { accepted: number; at: number }>();
  /** Jobs refused (configuration-like) since the last accepted ingest. */
  readonly #refusedSinceAccept = new Set<string>();
  /** Ingests let through by `tryStart` and not yet ended (`release` / `onIngestOk`). */
  #starting = 0;
  readonly #probeMs: number;
  readonly #asyncMs: number;

  constructor(opts: IngestGateOptions = {}) {
    this.#probeMs = opts.probeIntervalMs ?? 60_000;
    this.#asyncMs = opts.asyncQuotaWaitMs ?? 2_000;
  }

  /**
   * Pure: true while no job may start an ingest now (a refusal between probes, the daily API quota, the async
   * quota held or known full). The worker then leaves ingesting jobs alone instead of holding them one by one.
   */
  blocksIngest(now: number, inAnalysis = 0): boolean {
    if (this.#apiRefusal) return true;
    if (this.#refusal) return now < this.#nextProbeAt;
    if (now < this.#asyncUntil) return true;
    return this.#asyncLimit !== null && inAnalysis + this.#starting >= this.#asyncLimit;
  }

  /**
   * `holdUntil` for a job about to ingest: when it may go (null), it counts as starting until `release()` or
   * `onIngestOk()`, so parallel workers do not all take the last free async slot.
   */
  tryStart(now: number, inAnalysis = 0, jobId?: string): number | null {
    const held = this.holdUntil(now, inAnalysis + this.#starting, jobId);
    if (held === null) this.#starting++;
    return held;
  }

  /** An ingest let through by `tryStart` ended without being accepted. */
  release(): void {
    if (this.#starting > 0) this.#starting--;
  }

  /** Parameter names the submission profile refused when the bridge added them on its own: leave them out. */
  get withheld(): ReadonlySet<string> {
    return this.#withheld;
  }

  /** The async concurrent submission quota Assemblyline announced, or null before it refused an ingest for it. */
  get asyncLimit(): number | null {
    return this.#asyncLimit;
  }

  /** The blocking refusal (configuration or daily quota), or null. */
  get refusal(): IngestRefusal | null {
    return this.#apiRefusal ?? this.#refusal;
  }

  get reason(): string | null {
    return this.refusal?.reason ?? null;
  }

  get fix(): string | null {
    return this.refusal?.fix ?? null;
  }

  /**
   * False while a configuration refusal or a daily quota blocks every ingest: take no new scheduled analyses.
   * `ingesting` (jobs of the bridge waiting to ingest): while every one of them has been refused since the last
   * accepted ingest, one more job may be claimed, so the probe can be a different sample; a refusal that is about
   * one sample (e.g. its own CaRT classification) then shows as such instead of stopping the bridge.
   */
  canClaim(ingesting?: number): boolean {
    if (this.#apiRefusal) return false;
    if (!this.#refusal) return true;
    if (this.#refusal.kind === 'daily-quota' || ingesting === undefined) return false;
    return this.#refusedSinceAccept.size >= ingesting;
  }

  /**
   * Records a failed call other than ingest (e.g. a notification-queue read). The daily API quota blocks like a
   * refusal: results cannot be read, so nothing new is ingested or claimed until a call succeeds again.
   */
  onApiError(err: unknown, now: number): void {
    if (!(err instanceof BridgeError) || err.upstream !== 'assemblyline' || err.code !== 'QUOTA_DAILY') return;
    const text = err.body ?? err.message;
    if (this.#apiRefusal?.reason.endsWith(text)) return;
    this.#apiRefusal = {
      kind: 'daily-quota', since: now, reason: `Assemblyline refused a call (${err.status ?? err.code}): ${text}`,
      fix: 'the bridge resumes when the quota is renewed (next day, UTC); ask the Assemblyline admin for a larger api_daily_quota, or raise [Bridge] QueuePollTime',
    };
  }

  /** A call other than ingest succeeded: the daily API quota is not (or no longer) exhausted. */
  onApiOk(): void {
    this.#apiRefusal = null;
  }

  /**
   * When the ingest of a job may start: null = now; else the ms timestamp to wait for. While blocked, one
   * caller per probe interval gets null (the probe) and the others wait for the next probe. `inAnalysis` is the
   * number of the bridge's submissions still running in Assemblyline (each holds an async quota slot).
   */
  holdUntil(now: number, inAnalysis = 0, jobId?: string): number | null {
    if (this.#apiRefusal) return now + this.#probeMs;
    if (this.#refusal) {
      // The job refused last is the probe only when no other job took the probe for a whole interval: another
      // sample tells a refusal of every ingest from one of this sample.
      const mine = jobId === undefined ? undefined : this.#refusedAt.get(jobId);
      if (mine && mine.accepted === this.#accepted && now < mine.at + 2 * this.#probeMs) return Math.max(this.#nextProbeAt, mine.at + 2 * this.#probeMs);
      if (now >= this.#nextProbeAt) {
        this.#nextProbeAt = now + this.#probeMs;
        return null;
      }
      return this.#nextProbeAt;
    }
    if (now < this.#asyncUntil) return this.#asyncUntil;
    // Submissions the bridge still waits for hold a slot each: do not ask for one more than the quota.
    if (this.#asyncLimit !== null && inAnalysis >= this.#asyncLimit) return now + this.#asyncMs;
    return null;
  }

  /**
   * Records a failed ingest. Returns the refusal when the gate takes it over (the job keeps its state and waits;
   * it must not count as an attempt nor become an error report), else null (a sample problem or a passing failure).
   * With `jobId`, a job refused again after other ingests were accepted in between is a sample problem (null).
   */
  onIngestError(err: unknown, now: number, ownParams: readonly string[] = [], jobId?: string): IngestRefusal | null {
    const refusal = classifyIngestRefusal(err, now);
    if (!refusal) return null;
    // Only parameters the bridge added for this re-ingest were refused: not a configuration error. They are
    // withheld from now on (see `withheld`) and the job goes on at once.
    if (refusal.kind === 'parameters' && refusal.params?.length && refusal.params.every((p) => ownParams.includes(p))) {
      for (const p of refusal.params) this.#withheld.add(p);
      return refusal;
    }
    if (refusal.kind === 'async-quota') {
      const n = /quota of (\d+)/.exec(refusal.reason);
      if (n) this.#asyncLimit = Number(n[1]);
      this.#asyncUntil = Math.max(this.#asyncUntil, now + this.#asyncMs);
      return refusal;
    }
    if (jobId !== undefined && refusal.kind !== 'daily-quota') {
      // Refused again after other ingests were accepted since its last refusal: it is this sample (e.g. a CaRT
      // file whose own header carries a classification above the user's), not the configuration.
      const before = this.#refusedAt.get(jobId);
      if (before !== undefined && this.#accepted > before.accepted) {
        this.#refusedAt.delete(jobId);
        return null;
      }
      this.#refusedAt.set(jobId, { accepted: this.#accepted, at: now });
      this.#refusedSinceAccept.add(jobId);
    }
    if (!this.#refusal || this.#refusal.reason !== refusal.reason) this.#refusal = refusal;
    this.#nextProbeAt = now + this.#probeMs;
    return refusal;
  }

  /** An ingest was accepted: whatever blocked ingest is over. */
  onIngestOk(jobId?: string): void {
    this.#accepted++;
    this.#refusedSinceAccept.clear();
    if (jobId !== undefined) this.#refusedAt.delete(jobId);
    this.release();
    this.#refusal = null;
    this.#asyncUntil = 0;
  }
}
