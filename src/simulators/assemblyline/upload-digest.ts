/**
 * Hashing an upload while it arrives. Assemblyline hashes every file it stores (md5, sha1, sha256, entropy); the
 * simulator used to do it only after the whole request body was in memory, on its one event loop, which made a
 * large upload take several times as long as its transfer. An UploadDigest watches the body stream of a
 * multipart request, finds where the `bin` part's bytes begin, and feeds them to the hashes as they come; once
 * the body is parsed, `facts()` finishes the work for the exact part boundaries the parser found, or answers null
 * (nothing usable seen: the caller hashes the part itself). The result is the same either way.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { countBytes, entropyFromCounts } from './util.js';

/** The digest of each ingest request's body stream, by its IncomingMessage (set by the preParsing hook). */
export const uploadDigests = new WeakMap<object, UploadDigest>();

/** What storeFile computes for a file, worked out while the upload arrived. */
export interface FileDigest {
  md5: string;
  sha1: string;
  sha256: string;
  entropy: number;
}

/** Bytes kept before the `bin` part is found (its headers are near the start of the body). */
const MAX_PREFIX = 1 << 20;

export class UploadDigest extends Transform {
  readonly #delimiter: Buffer;
  #prefix: Buffer[] = [];
  #prefixLength = 0;
  /** Body offset where the `bin` part's bytes start, once found. */
  #start = -1;
  /** Body bytes seen so far. */
  #seen = 0;
  /** Body offset up to which the part's bytes went into the hashes. */
  #fed = -1;
  /** Bytes after #fed not yet hashed: the part's end (a delimiter) may be among them. */
  #held: Buffer[] = [];
  #heldLength = 0;
  readonly #keep: number;
  readonly #hashes: Hash[] = [createHash('md5'), createHash('sha1'), createHash('sha256')];
  readonly #counts = new Float64Array(256);
  #gaveUp = false;

  constructor(boundary: string) {
    super();
    this.#delimiter = Buffer.from(`--${boundary}`, 'latin1');
    // A part ends with CRLF + delimiter; anything hashed must be at least that far from the end of what arrived.
    this.#keep = this.#delimiter.length + 64;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.#take(chunk);
    } catch {
      this.#gaveUp = true;
    }
    done(null, chunk);
  }

  #take(chunk: Buffer): void {
    this.#seen += chunk.length;
    if (this.#gaveUp) return;
    if (this.#start < 0) {
      this.#prefix.push(chunk);
      this.#prefixLength += chunk.length;
      const prefix = Buffer.concat(this.#prefix, this.#prefixLength);
      this.#prefix = [prefix];
      const start = binStart(prefix, this.#delimiter);
      if (start < 0) {
        if (this.#prefixLength > MAX_PREFIX) this.#gaveUp = true;
        return;
      }
      this.#start = start;
      this.#fed = start;
      this.#prefix = [];
      this.#hold(prefix.subarray(start));
      return;
    }
    this.#hold(chunk);
  }

  /** Keeps the last #keep bytes back and hashes the rest (no copy of a chunk larger than #keep). */
  #hold(bytes: Buffer): void {
    if (bytes.length >= this.#keep) {
      for (const b of this.#held) this.#feed(b);
      this.#feed(bytes.subarray(0, bytes.length - this.#keep));
      this.#held = [bytes.subarray(bytes.length - this.#keep)];
      this.#heldLength = this.#keep;
      return;
    }
    this.#held.push(bytes);
    this.#heldLength += bytes.length;
    if (this.#heldLength <= this.#keep * 2) return;
    const all = Buffer.concat(this.#held, this.#heldLength);
    const cut = all.length - this.#keep;
    this.#feed(all.subarray(0, cut));
    this.#held = [all.subarray(cut)];
    this.#heldLength = this.#keep;
  }

  #feed(bytes: Buffer): void {
    for (const h of this.#hashes) h.update(bytes);
    countBytes(this.#counts, bytes);
    this.#fed += bytes.length;
  }

  /**
   * The digest of body[start, end) (body offsets of the part the parser found), finished from `body`; null when
   * the stream's view does not cover that part (another part, bytes hashed past its end, nothing found).
   */
  facts(body: Buffer, start: number, end: number): FileDigest | null {
    if (this.#gaveUp || this.#start !== start || this.#seen !== body.length || end < this.#fed || end > body.length) return null;
    this.#gaveUp = true; // one use: the hashes are finished below
    this.#feed(body.subarray(this.#fed, end));
    const [md5, sha1, sha256] = this.#hashes.map((h) => h.digest('hex'));
    return { md5, sha1, sha256, entropy: entropyFromCounts(this.#counts, end - start) };
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
