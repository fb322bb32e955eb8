/**
 * The deployment rules a real Assemblyline 4.7.4 enforces on top of its API shapes: submission
 * profiles with restricted parameters, metadata validation schemes, a classification engine
 * (levels and their order) and the per-user quotas (async concurrent submissions, daily
 * submissions, daily API calls). Sources: assemblyline-ui v4.7.4.stable6
 * (assemblyline_ui/helper/submission.py, helper/user.py, api/base.py, api/v4/ingest.py) and
 * assemblyline-base v4.7.4.stable9 (assemblyline/datastore/helper.py `check_metadata`,
 * assemblyline/odm/models/config.py `SubmissionProfile`).
 */

/** A submission profile: parameters it sets, and the ones a user without `submission_customize` must not send. */
export interface SimProfile {
  name: string;
  displayName: string;
  /** Parameters the profile sets (merged over the server defaults). */
  params: Record<string, unknown>;
  /** `restricted_params`: key "submission" → submission parameter names; other keys are service names. */
  restrictedParams: Record<string, string[]>;
  /** Services the profile excludes; a limited user selecting one of them is refused. */
  excludedServices?: string[];
}

/** One field of a metadata validation scheme (only `required` is modelled; types are not validated). */
export interface SimMetadataField {
  required?: boolean;
  default?: string;
}

/** `submission.metadata` of the server configuration, ingest part. */
export interface SimMetadataScheme {
  /** Ingest type (or `_default`, applied to every ingest) → field name → field rule. */
  ingest: Record<string, Record<string, SimMetadataField>>;
  /** Ingest types whose scheme is strict: no field outside the scheme. */
  strictSchemes?: string[];
}

/** A classification engine reduced to levels: index order is clearance order (lowest first). */
export class ClassificationEngine {
  readonly levels: string[];

  constructor(levels: string[]) {
    if (levels.length === 0) throw new Error('a classification engine needs at least one level');
    this.levels = levels.map((l) => l.toUpperCase());
  }

  /** Rank of a classification string, or -1 when the engine cannot parse it. */
  rank(classification: string): number {
    return this.levels.indexOf(classification.trim().toUpperCase());
  }

  get unrestricted(): string {
    return this.levels[0];
  }

  isValid(classification: string): boolean {
    return this.rank(classification) >= 0;
  }

  /** `CLASSIFICATION.is_accessible(user, c)`: the user's clearance covers c. */
  isAccessible(userClassification: string, classification: string): boolean {
    const u = this.rank(userClassification);
    const c = this.rank(classification);
    return u >= 0 && c >= 0 && c <= u;
  }

  /** The higher of two classifications (`max_classification`). */
  max(a: string, b: string): string {
    return this.rank(a) >= this.rank(b) ? this.normalise(a) : this.normalise(b);
  }

  normalise(classification: string): string {
    const r = this.rank(classification);
    return r >= 0 ? this.levels[r] : classification;
  }
}

/** The classification engine of a default Assemblyline (TLP levels). */
export const DEFAULT_CLASSIFICATION_LEVELS = ['TLP:CLEAR', 'TLP:GREEN', 'TLP:AMBER', 'TLP:AMBER+STRICT', 'TLP:RED'];

/** Python's repr of a list of strings, as in `f"...: {missing_metadata}"`. */
export function pyList(items: string[]): string {
  return `[${items.map((i) => `'${i}'`).join(', ')}]`;
}

/** Python's `str.__eq__`-ish comparison of parameter values for the delta against the defaults. */
function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * `apply_changes_to_profile` for a user without `submission_customize`: the parameters the request changes
 * (its delta against the defaults) that the profile restricts. Returns the 400 message or null.
 */
export function restrictedParamError(profile: SimProfile, requested: Record<string, unknown>, defaults: Record<string, unknown>): string | null {
  const changed = Object.keys(requested).filter((k) => k !== 'services' && k !== 'service_spec' && !sameValue(requested[k], defaults[k]));
  const restricted = profile.restrictedParams.submission ?? [];
  const hit = changed.filter((k) => restricted.includes(k));
  if (hit.length > 0) {
    return `User isn't allowed to modify the ${hit.map((p) => `"${p}"`).join(', ')} parameters of ${profile.displayName} profile`;
  }
  const spec = requested.service_spec && typeof requested.service_spec === 'object' ? (requested.service_spec as Record<string, Record<string, unknown>>) : {};
  for (const [service, names] of Object.entries(profile.restrictedParams)) {
    if (service === 'submission') continue;
    const asked = Object.keys(spec[service] ?? {}).filter((k) => names.includes(k));
    if (asked.length > 0) {
      return `User isn't allowed to modify the ${asked.map((p) => `"${p}"`).join(', ')} parameters of "${service}" service in "${profile.displayName}" profile`;
    }
  }
  const services = requested.services && typeof requested.services === 'object' ? (requested.services as Record<string, unknown>) : {};
  const selected = Array.isArray(services.selected) ? (services.selected as string[]) : [];
  for (const svc of selected) {
    if ((profile.excludedServices ?? []).includes(svc)) {
      return `User isn't allowed to select the ${svc} service of "${svc}" in "${profile.displayName}" profile`;
    }
  }
  return null;
}

/** `check_metadata` with the ingest scheme of `type`: the 400 message, or null (defaults are filled into `metadata`). */
export function metadataError(scheme: SimMetadataScheme | undefined, type: string, metadata: Record<string, string>): string | null {
  if (!scheme) return null;
  const fields = { ...(scheme.ingest._default ?? {}), ...(scheme.ingest[type] ?? {}) };
  const strict = (scheme.strictSchemes ?? []).includes(type);
  const missing: string[] = [];
  for (const [name, rule] of Object.entries(fields)) {
    if (name in metadata || !rule.required) continue;
    if (rule.default) metadata[name] = rule.default;
    else missing.push(name);
  }
  // Fields the system sets itself are never "extra".
  const system = new Set(['ingest_id', 'ts', 'type']);
  const extra = Object.keys(metadata).filter((k) => !(k in fields) && !system.has(k)).sort();
  if (missing.length > 0) return `Required metadata is missing from submission: ${pyList(missing)}`;
  if (strict && extra.length > 0) return `Extra metadata found from submission: ${pyList(extra)}`;
  return null;
}

/** Per-user quota settings; 0 (or absent) means unlimited. */
export interface SimQuotas {
  /** `submission_async_quota`: ingests in flight (released when the submission finishes). */
  asyncSubmissions?: number;
  /** `submission_daily_quota`. */
  dailySubmissions?: number;
  /** `api_daily_quota`: every API call except ingest. */
  dailyApiCalls?: number;
}

/** Counters of the quota trackers, per user and (for the daily ones) per UTC day. */
export class QuotaTracker {
  private readonly async = new Map<string, number>();
  private readonly daily = new Map<string, { day: string; api: number; submissions: number }>();

  constructor(private readonly now: () => number) {}

  private today(user: string): { day: string; api: number; submissions: number } {
    const day = new Date(this.now()).toISOString().slice(0, 10);
    let d = this.daily.get(user);
    if (!d || d.day !== day) {
      d = { day, api: 0, submissions: 0 };
      this.daily.set(user, d);
    }
    return d;
  }

  /** api/base.py: increments first, refuses when the count is above the quota. */
  countApiCall(user: string, quota: number | undefined): string | null {
    if (!quota) return null;
    const d = this.today(user);
    d.api++;
    return d.api > quota ? `You've exceeded your daily maximum API calls quota of ${quota}` : null;
  }

  /** helper/user.py `check_async_submission_quota`: daily submission count, then the async slot. */
  beginSubmission(user: string, quotas: SimQuotas): string | null {
    const d = this.today(user);
    if (quotas.dailySubmissions) {
      if (d.submissions >= quotas.dailySubmissions) return `You've reached your daily maximum submission quota of ${quotas.dailySubmissions}`;
      d.submissions++;
    }
    if (quotas.asyncSubmissions) {
      const n = this.async.get(user) ?? 0;
      if (n >= quotas.asyncSubmissions) {
        if (quotas.dailySubmissions) d.submissions--;
        return `You've exceeded your maximum async concurrent submission quota of ${quotas.asyncSubmissions}`;
      }
      this.async.set(user, n + 1);
    }
    return null;
  }

  /** An ingest the server refused after the quota check gives both counts back (ingest.py `finally`). */
  cancelSubmission(user: string, quotas: SimQuotas): void {
    const d = this.today(user);
    if (quotas.dailySubmissions && d.submissions > 0) d.submissions--;
    this.endSubmission(user, quotas);
  }

  /** The submission finished (completed, cached, dropped): its async slot is free again. */
  endSubmission(user: string, quotas: SimQuotas): void {
    if (!quotas.asyncSubmissions) return;
    this.async.set(user, Math.max(0, (this.async.get(user) ?? 0) - 1));
  }

  usage(user: string): { api: number; submissions: number; async: number } {
    const d = this.today(user);
    return { api: d.api, submissions: d.submissions, async: this.async.get(user) ?? 0 };
  }
}
