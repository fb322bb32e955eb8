/**
 * The multipart/form-data body of POST /api/v4/ingest/, streamed by the shared encoder
 * (http/multipart.ts) so memory stays flat whatever the sample size. Layout of the official Python
 * client (ASSEMBLYLINE.md §3.2): part `json` without a Content-Type, then part `bin` with
 * filename = name and Content-Type application/octet-stream.
 */
import { BridgeError, isTransient } from '../errors.js';
import { buildMultipart, type MultipartBody } from '../http/multipart.js';
import type { IngestRequest } from './types.js';

/** The ingest body: open() gives a fresh stream (again only for a Buffer file, for retries). */
export type IngestMultipart = MultipartBody;

/** The options document of the `json` part (ASSEMBLYLINE.md §3.2). */
export function ingestOptionsJson(req: IngestRequest): string {
  const doc: Record<string, unknown> = {
    name: req.name,
    metadata: req.metadata,
    params: req.params,
    notification_queue: req.notificationQueue,
  };
  if (req.submissionProfile) doc.submission_profile = req.submissionProfile;
  doc.type = req.type ?? 'MASS';
  return JSON.stringify(doc);
}

/** The JSON body of an ingest by sha256: the same options as the `json` part, plus `sha256` (ASSEMBLYLINE.md §3.1). */
export function ingestBySha256Json(req: Omit<IngestRequest, 'body' | 'size'> & { sha256: string }): Record<string, unknown> {
  return { sha256: req.sha256.toLowerCase(), ...(JSON.parse(ingestOptionsJson({ ...req, body: Buffer.alloc(0) })) as Record<string, unknown>) };
}

/** The ingest body of `req`; its length is known when the file is a Buffer or `req.size` is given. */
export function buildIngestMultipart(req: IngestRequest): IngestMultipart {
  return buildMultipart(
    [
      { name: 'json', data: Buffer.from(ingestOptionsJson(req), 'utf8') },
      { name: 'bin', filename: req.name, contentType: 'application/octet-stream', data: req.body, size: req.size },
    ],
    {
      // Keep a failing source (e.g. the MASS download) from being reported as an Assemblyline failure.
      onSourceError: (err) =>
        err instanceof BridgeError
          ? err
          : new BridgeError(isTransient(err) ? 'NETWORK' : 'INTERNAL', `reading the file to ingest failed: ${err instanceof Error ? err.message : String(err)}`, {
              cause: err,
            }),
    },
  );
}
