/**
 * multipart/form-data bodies built by hand and streamed: part headers are small Buffers, part
 * contents are Buffers or Readables passed through chunk by chunk, so memory does not grow with
 * the size of an uploaded file. The layout follows what the reference client (python requests /
 * urllib3) puts on the wire for MASS (see test/fixtures/mass-recorded/d-report.json).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export interface MultipartPart {
  name: string;
  /** Absent: a plain form field (MASS reads `metadata` only from such a field). */
  filename?: string;
  contentType?: string;
  data: Buffer | Readable;
  /** Byte length of a Readable, when known; enables a Content-Length header. */
  size?: number;
}

export interface MultipartBody {
  contentType: string;
  /** Total byte length when every part's size is known; otherwise the body goes out chunked. */
  length?: number;
  /** Pulled by the HTTP client; a source Readable is read only as fast as the socket drains. */
  body: Readable;
}

const CRLF = Buffer.from('\r\n');

/** HTML's multipart encoding of quotes and line breaks in names (what browsers send; werkzeug accepts it). */
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

export function newBoundary(): string {
  return randomBytes(16).toString('hex');
}

export function buildMultipart(parts: MultipartPart[], boundary: string = newBoundary()): MultipartBody {
  const headers = parts.map((p) => partHeader(boundary, p));
  const epilogue = Buffer.from(`--${boundary}--\r\n`);
  let length: number | undefined = epilogue.length;
  parts.forEach((p, i) => {
    const size = Buffer.isBuffer(p.data) ? p.data.length : p.size;
    if (length === undefined || size === undefined) length = undefined;
    else length += headers[i].length + size + CRLF.length;
  });

  async function* generate(): AsyncGenerator<Buffer> {
    let current: Readable | undefined;
    try {
      for (let i = 0; i < parts.length; i++) {
        const data = parts[i].data;
        yield headers[i];
        if (Buffer.isBuffer(data)) {
          if (data.length > 0) yield data;
        } else {
          current = data;
          for await (const chunk of data) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          current = undefined;
        }
        yield CRLF;
      }
      yield epilogue;
    } finally {
      // The request ended early (error, abort, early answer): release the source file.
      if (current && !current.destroyed) current.destroy();
      for (const p of parts) if (!Buffer.isBuffer(p.data) && !p.data.destroyed && !p.data.readableEnded) p.data.destroy();
    }
  }

  return { contentType: `multipart/form-data; boundary=${boundary}`, length, body: Readable.from(generate(), { objectMode: false }) };
}
