/**
 * Hash-first ingest ([Assemblyline] HashFirst): MASS gives a sample's sha256 before any download, and
 * Assemblyline ingests a file it already stores from its sha256 alone (ASSEMBLYLINE.md §3.1). The bridge
 * asks that first; only when Assemblyline answers 404 "SHA256 does not exist in Assemblyline…" (§3.4) does it
 * download the sample from MASS and stream the upload. A file Assemblyline already holds then moves zero bytes.
 * Everything else of the ingest (notification queue, metadata, params) is the same either way.
 */
import type { AssemblylineClient, IngestBySha256Request, RequestOptions } from '../assemblyline/types.js';
import type { NewEvent } from '../ledger/types.js';

/** How the file went into Assemblyline: by its sha256 (no bytes moved) or by a streamed upload. */
export type IngestWay = 'sha256' | 'upload';

const SHA256 = /^[0-9a-f]{64}$/i;

/**
 * Tries the ingest by sha256. Returns the ingest_id, or null when the upload is needed: hash-first is off,
 * the sha256 is unknown or malformed, the client cannot ingest by hash, or Assemblyline does not hold the file.
 * Every other error (transient or not) is thrown, as an upload's would be.
 */
export async function ingestHashFirst(
  al: Pick<AssemblylineClient, 'ingestBySha256'>,
  input: { enabled: boolean; sha256: string | null | undefined; request: Omit<IngestBySha256Request, 'sha256'> },
  opts?: RequestOptions,
): Promise<{ ingestId: string } | null> {
  if (!input.enabled || !input.sha256 || !SHA256.test(input.sha256) || !al.ingestBySha256) return null;
  return al.ingestBySha256({ ...input.request, sha256: input.sha256.toLowerCase() }, opts);
}

/** The way the latest ingest of a job went in, from its `ingested` events (undefined before the first ingest). */
export function ingestWayOf(events: readonly Pick<NewEvent, 'type' | 'data'>[]): IngestWay | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type !== 'ingested') continue;
    const via = e.data?.via;
    return via === 'sha256' || via === 'upload' ? via : undefined;
  }
  return undefined;
}
