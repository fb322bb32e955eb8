/**
 * The multipart/form-data body of POST /api/v4/ingest/, built by hand so the file part is streamed:
 * memory stays flat whatever the sample size (undici never buffers an async-iterable body).
 * Layout matches the official Python client (client-requests.json): part `json` without a
 * Content-Type, then part `bin` with filename = name.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BridgeError, isTransient } from '../errors.js';
import type { IngestRequest } from './types.js';

export interface IngestMultipart {
  contentType: string;
  /** Total byte length when the file size is known (Buffer body or IngestRequest.size), else undefined (chunked). */
  length: number | undefined;
  /** True when open() may be called again after a body was consumed (Buffer source). */
  replayable: boolean;
  /** A fresh body stream. For a Readable source this may be called once. */
  open(): Readable;
}

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

/** WHATWG/RFC 7578 escaping for a quoted-string parameter: werkzeug decodes %22/%0D/%0A back. */
function quoteParam(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export function buildIngestMultipart(req: IngestRequest): IngestMultipart {
  const boundary = `----mass-al-bridge-${randomBytes(16).toString('hex')}`;
  const preamble = Buffer.from(
    `--${boundary}\r\n` +
      'Content-Disposition: form-data; name="json"\r\n\r\n' +
      ingestOptionsJson(req) +
      `\r\n--${boundary}\r\n` +
      `Content-Disposition: form-data; name="bin"; filename="${quoteParam(req.name)}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
    'utf8',
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const source = req.body;
  const fileLength = Buffer.isBuffer(source) ? source.length : req.size;
  let opened = false;

  async function* parts(): AsyncGenerator<Buffer> {
    yield preamble;
    if (Buffer.isBuffer(source)) {
      yield source;
    } else {
      try {
        for await (const chunk of source as AsyncIterable<Buffer | string>) {
          yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        }
      } catch (err) {
        // Keep a failing source (e.g. the MASS download) from being reported as an Assemblyline failure.
        if (err instanceof BridgeError) throw err;
        throw new BridgeError(isTransient(err) ? 'NETWORK' : 'INTERNAL', `reading the file to ingest failed: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
    }
    yield epilogue;
  }

  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: fileLength === undefined ? undefined : preamble.length + fileLength + epilogue.length,
    replayable: Buffer.isBuffer(source),
    open() {
      if (opened && !Buffer.isBuffer(source)) throw new Error('a streamed ingest body can be sent only once');
      opened = true;
      return Readable.from(parts(), { objectMode: false });
    },
  };
}
