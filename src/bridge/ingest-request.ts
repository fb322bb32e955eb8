/**
 * What the bridge sends with an ingest, and how it finds the submission again. Only what the operator
 * configured is sent: a parameter left empty is decided by the submission profile or the server, so a
 * profile that restricts it (assemblyline-ui v4.7.4.stable6 helper/submission.py
 * `apply_changes_to_profile`) has nothing to refuse. Pure functions and a small in-memory map.
 */
import type { IngestParams } from '../assemblyline/types.js';
import type { BridgeConfig } from '../config/types.js';

/** The job facts the ingest request depends on. */
export interface IngestJobFacts {
  id: string;
  sampleUrl: string;
  ingestId?: string | null;
  neverDrop?: boolean;
  ignoreCache?: boolean;
}

/**
 * `params` of the ingest: the configured keys only, plus never_drop / ignore_cache on the re-ingests that need
 * them, unless the submission profile refused those (`withheld`).
 */
export function ingestParams(al: BridgeConfig['assemblyline'], job: IngestJobFacts, withheld: ReadonlySet<string> = new Set()): IngestParams {
  const params: IngestParams = {};
  if (al.priority > 0) params.priority = al.priority;
  if (al.deepScan) params.deep_scan = true;
  if (al.neverDrop || (job.neverDrop === true && !withheld.has('never_drop'))) params.never_drop = true;
  // [Assemblyline] IgnoreCache: configured, so always sent; otherwise only on the re-ingests that need it.
  if (al.ignoreCache || (job.ignoreCache === true && !withheld.has('ignore_cache'))) params.ignore_cache = true;
  if (al.classification) params.classification = al.classification;
  if (al.ttl > 0) params.ttl = al.ttl;
  if (al.services.length > 0) params.services = { selected: [...al.services] };
  return params;
}

/** The parameters the bridge adds on its own for this job (not configured): a refusal of only these is no configuration error. */
export function ownParams(al: BridgeConfig['assemblyline'], job: IngestJobFacts): string[] {
  const own: string[] = [];
  if (!al.neverDrop && job.neverDrop === true) own.push('never_drop');
  if (!al.ignoreCache && job.ignoreCache === true) own.push('ignore_cache');
  return own;
}

/** The parameters a profile could refuse, as the operator set them (for start-up and doctor messages). */
export function configuredParamNames(al: BridgeConfig['assemblyline']): string[] {
  return Object.keys(ingestParams(al, { id: '', sampleUrl: '' }));
}

/** `metadata` of the ingest: [Assemblyline] Metadata, plus the bridge's correlation keys unless turned off. */
export function ingestMetadata(al: BridgeConfig['assemblyline'], instanceName: string, job: IngestJobFacts, attempt: number): Record<string, string> {
  const out: Record<string, string> = { ...al.metadata };
  if (al.bridgeMetadata) {
    // The same names as BRIDGE_METADATA_KEYS (config/schema.ts), which [Assemblyline] Metadata may not use.
    Object.assign(out, {
      mass_scheduled_analysis: job.id,
      mass_sample: job.sampleUrl,
      bridge_instance: instanceName,
      bridge_job: job.id,
      bridge_attempt: String(attempt),
    });
  }
  return out;
}

/**
 * The submission search of the reconciler: by `metadata.ingest_id` (set by Assemblyline itself on every
 * ingest) when the ingest id is known, else by the bridge's own `bridge_job` key when it is sent; null when
 * there is nothing to search by.
 */
export function reconcileQuery(al: BridgeConfig['assemblyline'], job: IngestJobFacts): string | null {
  if (job.ingestId) return `metadata.ingest_id:"${job.ingestId.replace(/["\\]/g, '')}"`;
  if (al.bridgeMetadata) return `metadata.bridge_job:"${job.id}"`;
  return null;
}

/** How long a replacement sid is used: Assemblyline keeps a cache entry for one day. */
export const REPLACEMENT_TTL_MS = 24 * 3600_000;

/**
 * Replacement sids: a cached submission that is gone (404) is replaced by a re-ingest with ignore_cache, whose
 * result Assemblyline caches under the ignore_cache key (assemblyline-rust v4.7.4.stable9
 * assemblyline-models/src/datastore/submission.rs `get_hashing_keys`). Ordinary ingests of the same file and
 * parameters still get the dead sid until the old entry expires; this map sends them to the replacement instead
 * of re-ingesting once per job.
 */
export class ReplacementSids {
  readonly #bySid = new Map<string, { sid: string; at: number }>();
  readonly #pending = new Map<string, string>();

  constructor(private readonly ttlMs = REPLACEMENT_TTL_MS) {}

  /** The live sid that replaced `deadSid`, or null. */
  replacementFor(deadSid: string, now: number): string | null {
    const hit = this.#bySid.get(deadSid);
    if (!hit) return null;
    if (now - hit.at > this.ttlMs) {
      this.#bySid.delete(deadSid);
      return null;
    }
    return hit.sid;
  }

  /** The job found `deadSid` gone and will re-ingest with ignore_cache. */
  noteGone(jobId: string, deadSid: string): void {
    this.#pending.set(jobId, deadSid);
  }

  /** The job's results were read from `sid`: if it re-ingested for a dead sid, `sid` replaces it. */
  noteCollected(jobId: string, sid: string, now: number): void {
    const dead = this.#pending.get(jobId);
    if (dead === undefined) return;
    this.#pending.delete(jobId);
    if (dead !== sid) this.#bySid.set(dead, { sid, at: now });
  }
}
