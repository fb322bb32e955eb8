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
import { Readable, finished } from 'node:stream';

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
 * The body stream: Buffers pushed as they are, a Readable part forwarded chunk by chunk with backpressure (the part
 * is paused while the body's reader is full, resumed when it reads again), the way `pipe` does it: no async
 * iterator or promise per chunk, no copy. An error of a Readable part (mapped by `onSourceError`) fails the body;
 * a body destroyed before its end destroys every Readable part not read to its end.
 */
class MultipartStream extends Readable {
  readonly #items: Array<Buffer | Readable>;
  readonly #onSourceError: ((err: unknown) => unknown) | undefined;
  #next = 0;
  #current: Readable | null = null;
  #detach: (() => void) | null = null;

  constructor(items: Array<Buffer | Readable>, onSourceError?: (err: unknown) => unknown) {
    super();
    this.#items = items;
    this.#onSourceError = onSourceError;
  }

  override _read(): void {
    if (this.#current) this.#current.resume();
    else this.#advance();
  }

  /** Pushes the next items until the reader is full, a Readable part starts, or the body ends. */
  #advance(): void {
    while (this.#next < this.#items.length) {
      const item = this.#items[this.#next++];
      if (Buffer.isBuffer(item)) {
        if (item.length > 0 && !this.push(item)) return;
        continue;
      }
      this.#follow(item);
      return;
    }
    this.push(null);
  }

  #follow(source: Readable): void {
    const onData = (chunk: Buffer | string): void => {
      if (!this.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) source.pause();
    };
    // finished(): the part's end, its error, or its close before the end (ERR_STREAM_PREMATURE_CLOSE), also when
    // that happened before the body reached the part.
    const stopWatching = finished(source, { writable: false }, (err) => {
      this.#detach?.();
      if (err) this.destroy((this.#onSourceError ? this.#onSourceError(err) : err) as Error);
      else this.#advance();
    });
    this.#current = source;
    this.#detach = () => {
      source.removeListener('data', onData);
      stopWatching();
      this.#current = null;
      this.#detach = null;
    };
    source.on('data', onData);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#detach?.();
    for (const item of this.#items) if (!Buffer.isBuffer(item) && !item.destroyed && !item.readableEnded) item.destroy();
    done(err);
  }
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

  // The body in order: each part's header, its data, CRLF; then the epilogue.
  const items: Array<Buffer | Readable> = [];
  parts.forEach((p, i) => items.push(headers[i], p.data, CRLF));
  items.push(epilogue);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    replayable,
    open() {
      if (opened && !replayable) throw new Error('a streamed multipart body can be sent only once');
      opened = true;
      return new MultipartStream(items, opts.onSourceError);
    },
  };
}
