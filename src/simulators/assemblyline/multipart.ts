import { errorCodes } from 'fastify';
import type { Readable } from 'node:stream';

export interface MultipartPart {
  name: string;
  filename: string | null;
  contentType: string | null;
  data: Buffer;
}

export function boundaryOf(contentType: string): string | null {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

/** Minimal RFC 7578 parser over a buffered body (the simulator buffers uploads anyway). */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('multipart boundary not found');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') break;
    if (body.subarray(pos, pos + 2).toString('latin1') === '\r\n') pos += 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), pos);
    if (next < 0) throw new Error('unterminated multipart part');
    const raw = body.subarray(pos, next);
    const headerEnd = raw.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new Error('multipart part without headers');
    const headers = raw.subarray(0, headerEnd).toString('utf8').split('\r\n');
    let name = '';
    let filename: string | null = null;
    let contentType: string | null = null;
    for (const line of headers) {
      const idx = line.indexOf(':');
      if (idx < 0) continue;
      const key = line.slice(0, idx).trim().toLowerCase();
      const value = line.slice(idx + 1).trim();
      if (key === 'content-disposition') {
        const n = /\bname="([^"]*)"/i.exec(value);
        const f = /\bfilename="([^"]*)"/i.exec(value);
        if (n) name = n[1];
        if (f) filename = f[1];
      } else if (key === 'content-type') {
        contentType = value;
      }
    }
    // A view, not a copy: an upload's bytes stay where the body was read (the body is as large as the file anyway).
    parts.push({ name, filename, contentType, data: raw.subarray(headerEnd + 4) });
    pos = next + 2;
  }
  return parts;
}

/** Watches a body while readBody reads it (upload-digest.ts hashes an ingest's file on the way in). */
export interface BodyWatcher {
  /** Bytes [0, received) of `body` are final; called after every chunk (once, at the end, for a body of unknown length). */
  progress(body: Buffer, received: number): void;
  /** The body was not read whole (too large, wrong length, stream error). */
  abort(): void;
}

export interface ReadBodyOptions {
  /** Read into a SharedArrayBuffer (worker threads can then read it without a copy). */
  shared?: boolean;
  watcher?: BodyWatcher;
}

const allocate = (size: number, shared: boolean): Buffer => (shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size));

/**
 * Reads a request body of at most `limit` bytes. With a Content-Length it is copied into one buffer of that size as
 * it arrives (no chunk list joined at the end: half the memory, no second copy); without one, chunks are joined.
 * Fails like fastify's own body reader: FST_ERR_CTP_BODY_TOO_LARGE (413) above `limit`,
 * FST_ERR_CTP_INVALID_CONTENT_LENGTH (400) when the body is longer or shorter than announced, the stream's error
 * (status 400) otherwise. `opts.shared`: the buffer is a view of a SharedArrayBuffer; `opts.watcher` sees the
 * bytes as they become final.
 */
export function readBody(payload: Readable, contentLength: string | undefined, limit: number, opts: ReadBodyOptions = {}): Promise<Buffer> {
  const watcher = opts.watcher;
  const shared = opts.shared === true;
  const announced = contentLength === undefined || contentLength === '' ? Number.NaN : Number(contentLength);
  if (announced > limit) {
    watcher?.abort();
    return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  }
  const known = Number.isSafeInteger(announced) && announced >= 0;
  const whole = known ? allocate(announced, shared) : null;
  const chunks: Buffer[] = [];
  let received = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const stop = (err: Error): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      watcher?.abort();
      reject(err);
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + bytes.length > limit) return stop(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      if (whole) {
        if (received + bytes.length > whole.length) return stop(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
        bytes.copy(whole, received);
        received += bytes.length;
        watcher?.progress(whole, received);
      } else {
        chunks.push(bytes);
        received += bytes.length;
      }
    };
    const onEnd = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('error', onError);
      if (whole && received !== whole.length) {
        watcher?.abort();
        return reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      }
      let body = whole;
      if (!body) {
        body = allocate(received, shared);
        let at = 0;
        for (const c of chunks) at += c.copy(body, at);
        watcher?.progress(body, received);
      }
      resolve(body);
    };
    const onError = (err: Error & { statusCode?: number }): void => {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      stop(err);
    };
    payload.on('data', onData);
    payload.once('end', onEnd);
    payload.once('error', onError);
    payload.resume();
  });
}
