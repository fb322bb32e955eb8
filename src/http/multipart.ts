/**
 * Streamed multipart/form-data bodies (RFC 7578) for both upstream clients: MASS reports and file
 * uploads, Assemblyline ingest. Part headers are small Buffers; a part's data is a Buffer, or a
 * Readable passed through chunk by chunk as the socket drains, so memory does not grow with the
 * size of a file. The layout is what the reference clients (python requests / urllib3, used by the
 * MASS client tutorial and by assemblyline_client) put on the wire: a 32-hex-digit boundary, per
 * part `--boundary`, Content-Disposition, an optional Content-Type, an empty line, the data and
 * CRLF, then `--boundary--` and CRLF.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export interface MultipartPart {
  name: string;
  /** Absent: a plain form field (MASS reads `metadata` only from such a field). */
  filename?: string;
  /** Absent: no Content-Type line (the part is text/plain to the server). */
  contentType?: string;
  data: Buffer | Readable;
  /** Byte length of a Readable, when known; enables a Content-Length header. */
  size?: number;
}

export interface MultipartBody {
  /** `multipart/form-data; boundary=…` */
  contentType: string;
  /** Total byte length when every part's size is known; otherwise undefined and the body goes out chunked. */
  length: number | undefined;
  /** True when every part is a Buffer: open() may then be called again for a retry. */
  replayable: boolean;
  /** A fresh body stream, pulled by the HTTP client. With a Readable part it may be called once. */
  open(): Readable;
}

export interface MultipartOptions {
  /** Default: 32 random hex digits, as urllib3 chooses them. */
  boundary?: string;
  /** Maps an error of a Readable part (e.g. the download it streams from) before it fails the body. */
  onSourceError?: (err: unknown) => unknown;
}

const CRLF = Buffer.from('\r\n');

/** A new random boundary: 32 hex digits (urllib3 `choose_boundary`). */
export function newBoundary(): string {
  return randomBytes(16).toString('hex');
}

/** HTML's multipart encoding of quotes and line breaks in names (what browsers send; werkzeug decodes it). */
function quoteHeaderValue(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function partHeader(boundary: string, part: MultipartPart): Buffer {
  let disposition = `Content-Disposition: form-data; name="${quoteHeaderValue(part.name)}"`;
  if (part.filename !== undefined) disposition += `; filename="${quoteHeaderValue(part.filename)}"`;
  let header = `--${boundary}\r\n${disposition}\r\n`;
  if (part.contentType) header += `Content-Type: ${part.contentType}\r\n`;
  return Buffer.from(`${header}\r\n`, 'utf8');
}

/**
 * Builds the body of `parts` in order. Nothing is read until the returned stream is pulled. When
 * the stream ends early (request failed, aborted, answered before the upload finished), every
 * Readable part not read to its end is destroyed, so the source it streams from is released.
 */
export function buildMultipart(parts: MultipartPart[], opts: MultipartOptions = {}): MultipartBody {
  const boundary = opts.boundary ?? newBoundary();
  const headers = parts.map((p) => partHeader(boundary, p));
  const epilogue = Buffer.from(`--${boundary}--\r\n`);
  let length: number | undefined = epilogue.length;
  parts.forEach((p, i) => {
    const size = Buffer.isBuffer(p.data) ? p.data.length : p.size;
    if (length === undefined || size === undefined) length = undefined;
    else length += headers[i].length + size + CRLF.length;
  });
  const replayable = parts.every((p) => Buffer.isBuffer(p.data));
  let opened = false;

  async function* generate(): AsyncGenerator<Buffer> {
    try {
      for (let i = 0; i < parts.length; i++) {
        const data = parts[i].data;
        yield headers[i];
        if (Buffer.isBuffer(data)) {
          if (data.length > 0) yield data;
        } else {
          try {
            for await (const chunk of data as AsyncIterable<Buffer | string>) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          } catch (err) {
            throw opts.onSourceError ? opts.onSourceError(err) : err;
          }
        }
        yield CRLF;
      }
      yield epilogue;
    } finally {
      for (const p of parts) if (!Buffer.isBuffer(p.data) && !p.data.destroyed && !p.data.readableEnded) p.data.destroy();
    }
  }

  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    replayable,
    open() {
      if (opened && !replayable) throw new Error('a streamed multipart body can be sent only once');
      opened = true;
      return Readable.from(generate(), { objectMode: false });
    },
  };
}
