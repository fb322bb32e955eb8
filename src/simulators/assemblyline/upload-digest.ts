/**
 * Hashing an upload while it arrives. Assemblyline hashes every file it stores (md5, sha1, sha256, entropy) before
 * it answers the ingest. An UploadDigest watches the body of a multipart ingest request as it is read into one
 * SharedArrayBuffer (multipart.ts `readBody`), finds where the `bin` part's bytes begin, and hands the bytes that
 * can no longer be the part's end to the hash threads (hash-pool.ts) as they come. Once the body is parsed,
 * `facts()` gives the rest of the part to the threads and resolves to the digest for the exact part boundaries
 * the parser found, or answers null (nothing usable seen, or the threads failed: the caller hashes the part
 * itself). The result is the same either way.
 */
import type { BodyWatcher } from './multipart.js';
import type { FileDigest, HashJob, HashPool } from './hash-pool.js';

export type { FileDigest } from './hash-pool.js';

/** The digest of each ingest request's body, by its IncomingMessage (set by the multipart body parser). */
export const uploadDigests = new WeakMap<object, UploadDigest>();

/** Bytes searched for the `bin` part's headers (they are near the start of the body). */
const MAX_PREFIX = 1 << 20;
/** Final bytes gathered before a range goes to the threads (fewer, larger messages). */
const BATCH = 1 << 20;

export class UploadDigest implements BodyWatcher {
  readonly #delimiter: Buffer;
  readonly #pool: HashPool;
  readonly #keep: number;
  /** The body being read (set by the first progress call). */
  #body: Buffer | null = null;
  /** Body bytes final so far. */
  #received = 0;
  /** Body offset where the `bin` part's bytes start, once found. */
  #start = -1;
  /** Body offset up to which the part's bytes went to the threads. */
  #fed = -1;
  #job: HashJob | null = null;
  #done = false;

  constructor(boundary: string, pool: HashPool) {
    this.#delimiter = Buffer.from(`--${boundary}`, 'latin1');
    this.#pool = pool;
    // A part ends with CRLF + delimiter; anything hashed must be at least that far from the end of what arrived.
    this.#keep = this.#delimiter.length + 64;
  }

  /** BodyWatcher: bytes [0, received) of `body` (a view of a SharedArrayBuffer) are final. */
  progress(body: Buffer, received: number): void {
    if (this.#done) return;
    if (!(body.buffer instanceof SharedArrayBuffer) || (this.#body && this.#body !== body)) return this.abort();
    this.#body = body;
    this.#received = received;
    if (this.#start < 0) {
      const start = binStart(body.subarray(0, Math.min(received, MAX_PREFIX)), this.#delimiter);
      if (start < 0) {
        if (received >= MAX_PREFIX) this.abort();
        return;
      }
      try {
        this.#job = this.#pool.begin(body.buffer, body.byteOffset + start);
      } catch {
        return this.abort();
      }
      this.#start = start;
      this.#fed = start;
    }
    const safe = received - this.#keep;
    if (safe - this.#fed >= BATCH) this.#feed(safe);
  }

  #feed(to: number): void {
    if (!this.#job) return;
    this.#pool.update(this.#job, this.#fed - this.#start, to - this.#start);
    this.#fed = to;
  }

  /** BodyWatcher: the body will not be used (read failed, request refused or answered): the threads let it go. */
  abort(): void {
    this.#done = true;
    if (this.#job) this.#pool.drop(this.#job);
    this.#job = null;
  }

  /**
   * The digest of body[start, end) (body offsets of the part the parser found), resolved once the threads have
   * hashed it (null if they failed); null at once when this digest does not cover that part (another part, bytes
   * hashed past its end, another body, nothing found).
   */
  facts(body: Buffer, start: number, end: number): Promise<FileDigest | null> | null {
    const job = this.#job;
    if (this.#done || !job || this.#body !== body || this.#received !== body.length || this.#start !== start || end < this.#fed || end > body.length) {
      this.abort();
      return null;
    }
    this.#done = true; // one use
    this.#feed(end);
    this.#job = null;
    return this.#pool.finish(job).catch(() => null);
  }
}

/** Body offset where the `bin` part's bytes start (after its header block), or -1 if not (yet) in `prefix`. */
function binStart(prefix: Buffer, delimiter: Buffer): number {
  let pos = prefix.indexOf(delimiter);
  while (pos >= 0) {
    const headerEnd = prefix.indexOf('\r\n\r\n', pos + delimiter.length, 'latin1');
    if (headerEnd < 0) return -1;
    const headers = prefix.subarray(pos + delimiter.length, headerEnd).toString('latin1');
    if (/\bname="bin"/i.test(headers)) return headerEnd + 4;
    pos = prefix.indexOf(delimiter, headerEnd + 4);
  }
  return -1;
}
