/**
 * Hashing large uploads on worker threads. Assemblyline computes md5, sha1, sha256 and the entropy of every file
 * it stores before it answers the ingest; on the simulator's one event loop that took about 5 s of CPU per GiB,
 * several times the transfer itself. A HashPool runs each of the four computations on its own thread
 * (node:worker_threads), reading the upload straight from the SharedArrayBuffer it is received into: the
 * event loop only says which byte ranges are final, nothing is copied to the threads, and the four run side by
 * side while the upload still arrives. The results are the same as node:crypto's digests and util.ts `entropy`
 * of the same bytes.
 */
import { Worker } from 'node:worker_threads';
import { entropyFromCounts } from './util.js';

/** What storeFile computes for a file (hex digests; entropy in bits per byte, 3 decimals, as AL's File.entropy). */
export interface FileDigest {
  md5: string;
  sha1: string;
  sha256: string;
  entropy: number;
}

type Lane = 'md5' | 'sha1' | 'sha256' | 'entropy';
const LANES: readonly Lane[] = ['md5', 'sha1', 'sha256', 'entropy'];

/**
 * The byte-pair count of the entropy lane as a WebAssembly function, `count(p, n, t)`: for each of the `n` 32-bit
 * words at `p`, one increment of the 32-bit counter at `t + 4 * (low 16 bits)` and one at `t + 4 * (high 16 bits)`.
 * Its module exports its memory (`mem`, 16 pages: the first MiB stages the bytes to count; each job's 65 536-entry
 * table is added after it). About 0.4 s per GiB, staging copy included, against 0.7 s for the same loop in
 * JavaScript. Written out by hand (no toolchain): magic and version, then the type, function, memory, export and
 * code sections.
 */
const PAIR_COUNT_WASM = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type section: one type, (i32, i32, i32) -> ()
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00,
  // function section: one function of type 0
  0x03, 0x02, 0x01, 0x00,
  // memory section: one memory, at least 16 pages
  0x05, 0x03, 0x01, 0x00, 0x10,
  // export section: "count" = function 0, "mem" = memory 0
  0x07, 0x0f, 0x02, 0x05, 0x63, 0x6f, 0x75, 0x6e, 0x74, 0x00, 0x00, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00,
  // code section: one body of 0x60 bytes; locals: 3 x i32 (end, x, a) after the params p, n, t
  0x0a, 0x62, 0x01, 0x60, 0x01, 0x03, 0x7f,
  0x20, 0x00, 0x20, 0x01, 0x41, 0x02, 0x74, 0x6a, 0x21, 0x03, // end = p + (n << 2)
  0x02, 0x40, // block
  0x20, 0x00, 0x20, 0x03, 0x4f, 0x0d, 0x00, // if p >= end: leave
  0x03, 0x40, // loop
  0x20, 0x00, 0x28, 0x02, 0x00, 0x21, 0x04, // x = load32(p)
  0x20, 0x02, 0x20, 0x04, 0x41, 0xff, 0xff, 0x03, 0x71, 0x41, 0x02, 0x74, 0x6a, 0x22, 0x05, // a = t + ((x & 0xffff) << 2)
  0x20, 0x05, 0x28, 0x02, 0x00, 0x41, 0x01, 0x6a, 0x36, 0x02, 0x00, // store32(a, load32(a) + 1)
  0x20, 0x02, 0x20, 0x04, 0x41, 0x10, 0x76, 0x41, 0x02, 0x74, 0x6a, 0x22, 0x05, // a = t + ((x >>> 16) << 2)
  0x20, 0x05, 0x28, 0x02, 0x00, 0x41, 0x01, 0x6a, 0x36, 0x02, 0x00, // store32(a, load32(a) + 1)
  0x20, 0x00, 0x41, 0x04, 0x6a, 0x22, 0x00, // p += 4
  0x20, 0x03, 0x49, 0x0d, 0x00, // if p < end: loop again
  0x0b, 0x0b, 0x0b, // end loop, block, function
];

/**
 * The worker's code (plain JavaScript, run with `eval: true` so it needs no module loader under tsx or in dist/).
 * Messages: {op:'begin', id, buffer, offset} / {op:'update', id, from, to} (offsets relative to `offset`) /
 * {op:'end', id} answered by {id, lane, value} or {id, lane, error} / {op:'drop', id}.
 * The entropy lane counts byte pairs (PAIR_COUNT_WASM) into a 65 536-entry table per job, folded into the 256 byte
 * counts every 1 GiB and at the end; bytes left over after the last whole word are counted one by one.
 */
const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const lane = workerData.lane;
const jobs = new Map();
const FOLD_EVERY = 1 << 30;
const STAGING = 1 << 20;
const TABLE = 1 << 18;
let pairCounter = null;
function counter() {
  if (!pairCounter) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(workerData.wasm)));
    pairCounter = { mem: instance.exports.mem, count: instance.exports.count, tables: 0, free: [] };
  }
  return pairCounter;
}
function takeTable() {
  const c = counter();
  if (c.free.length > 0) {
    const base = c.free.pop();
    new Uint32Array(c.mem.buffer, base, 65536).fill(0);
    return base;
  }
  const base = STAGING + c.tables * TABLE;
  c.tables++;
  const pages = (base + TABLE) / 65536 - c.mem.buffer.byteLength / 65536;
  if (pages > 0) c.mem.grow(pages);
  return base;
}
function release(job) {
  if (job.table !== undefined) pairCounter.free.push(job.table);
  job.table = undefined;
}
function fold(job) {
  const pairs = new Uint32Array(pairCounter.mem.buffer, job.table, 65536);
  const counts = job.counts;
  for (let i = 0; i < 65536; i++) {
    const c = pairs[i];
    if (c !== 0) {
      counts[i & 255] += c;
      counts[i >>> 8] += c;
      pairs[i] = 0;
    }
  }
  job.sinceFold = 0;
}
function count(job, bytes) {
  const c = pairCounter;
  const stage = new Uint8Array(c.mem.buffer, 0, STAGING);
  for (let at = 0; at < bytes.length; at += STAGING) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + STAGING));
    const words = piece.length >>> 2;
    if (words > 0) {
      stage.set(piece.subarray(0, words * 4));
      c.count(0, words, job.table);
    }
    for (let i = words * 4; i < piece.length; i++) job.counts[piece[i]]++;
  }
  job.sinceFold += bytes.length;
  if (job.sinceFold >= FOLD_EVERY) fold(job);
}
function fail(id, err) {
  const job = jobs.get(id);
  if (job) release(job);
  jobs.delete(id);
  parentPort.postMessage({ id, lane, error: String((err && err.message) || err) });
}
parentPort.on('message', (m) => {
  try {
    if (m.op === 'begin') {
      const job = { buffer: m.buffer, offset: m.offset, length: 0 };
      jobs.set(m.id, job);
      if (lane === 'entropy') {
        job.counts = new Float64Array(256);
        job.sinceFold = 0;
        job.table = takeTable();
      } else {
        job.hash = createHash(lane);
      }
      return;
    }
    const job = jobs.get(m.id);
    if (!job) {
      // A job this thread never began (or failed): its digest cannot come.
      if (m.op === 'end') parentPort.postMessage({ id: m.id, lane, error: 'no such job' });
      return;
    }
    if (m.op === 'update') {
      const bytes = new Uint8Array(job.buffer, job.offset + m.from, m.to - m.from);
      job.length += bytes.length;
      if (job.hash) job.hash.update(bytes);
      else count(job, bytes);
    } else if (m.op === 'end') {
      jobs.delete(m.id);
      if (job.hash) {
        parentPort.postMessage({ id: m.id, lane, value: job.hash.digest('hex') });
      } else {
        fold(job);
        release(job);
        parentPort.postMessage({ id: m.id, lane, value: Array.from(job.counts), length: job.length });
      }
    } else if (m.op === 'drop') {
      release(job);
      jobs.delete(m.id);
    }
  } catch (err) {
    fail(m.id, err);
  }
});
`;

interface LaneAnswer {
  id: number;
  lane: Lane;
  value?: string | number[];
  length?: number;
  error?: string;
}

interface PendingJob {
  answers: Partial<Record<Lane, LaneAnswer>>;
  resolve(digest: FileDigest): void;
  reject(err: Error): void;
}

/** One file being hashed by the pool (see HashPool.begin). */
export interface HashJob {
  readonly id: number;
  /** The set of threads the job was begun on (a job cannot outlive a failed set). */
  readonly threads: Worker[];
}

/**
 * Four worker threads (md5, sha1, sha256, entropy), started on first use and ended by close(). Each job is a
 * range of one SharedArrayBuffer: `begin`, any number of `update(from, to)` for consecutive final ranges, then
 * `finish` (the digest) or `drop`. The threads are unref'd: an idle pool never keeps the process alive.
 */
export class HashPool {
  #workers: Worker[] | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, PendingJob>();
  #closed = false;

  #lanes(): Worker[] {
    if (this.#closed) throw new Error('hash pool closed');
    if (this.#workers) return this.#workers;
    const workers: Worker[] = [];
    for (const lane of LANES) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { lane, wasm: PAIR_COUNT_WASM }, name: `al-sim-${lane}` });
      w.unref();
      w.on('message', (a: LaneAnswer) => this.#answer(a));
      w.on('error', (err) => this.#fail(workers, err));
      w.on('exit', (code) => this.#fail(workers, new Error(`hash thread ${lane} exited (${code})`)));
      workers.push(w);
    }
    this.#workers = workers;
    return workers;
  }

  #answer(a: LaneAnswer): void {
    const job = this.#pending.get(a.id);
    if (!job) return;
    if (a.error !== undefined) {
      this.#pending.delete(a.id);
      this.#dropEverywhere(a.id);
      job.reject(new Error(`hash thread ${a.lane}: ${a.error}`));
      return;
    }
    job.answers[a.lane] = a;
    const { md5, sha1, sha256, entropy } = job.answers;
    if (!md5 || !sha1 || !sha256 || !entropy) return;
    this.#pending.delete(a.id);
    job.resolve({
      md5: md5.value as string,
      sha1: sha1.value as string,
      sha256: sha256.value as string,
      entropy: entropyFromCounts(entropy.value as number[], entropy.length ?? 0),
    });
  }

  /** A thread failed: every unfinished job fails, and the next job starts a fresh set of threads. */
  #fail(workers: Worker[], err: Error): void {
    if (this.#workers !== workers) return;
    this.#workers = null;
    for (const w of workers) void w.terminate();
    for (const job of this.#pending.values()) job.reject(err);
    this.#pending.clear();
  }

  /** Posts to the job's threads; false when they are gone (a thread failed, or the pool was closed). */
  #post(job: HashJob, message: Record<string, unknown>): boolean {
    if (this.#workers !== job.threads) return false;
    for (const w of job.threads) w.postMessage(message);
    return true;
  }

  #dropEverywhere(id: number): void {
    for (const w of this.#workers ?? []) w.postMessage({ op: 'drop', id });
  }

  /**
   * Starts hashing the bytes of `buffer` from `offset` on (ranges given to update are relative to it). Throws
   * when the pool is closed.
   */
  begin(buffer: SharedArrayBuffer, offset: number): HashJob {
    const job = { id: this.#nextId++, threads: this.#lanes() };
    this.#post(job, { op: 'begin', id: job.id, buffer, offset });
    return job;
  }

  /** Hashes bytes [from, to) of the job (relative to its offset): the next range after the previous one. */
  update(job: HashJob, from: number, to: number): void {
    if (to > from) this.#post(job, { op: 'update', id: job.id, from, to });
  }

  /** The digest of every byte given to update; rejects if a thread failed or the pool was closed meanwhile. */
  finish(job: HashJob): Promise<FileDigest> {
    return new Promise<FileDigest>((resolve, reject) => {
      this.#pending.set(job.id, { answers: {}, resolve, reject });
      if (!this.#post(job, { op: 'end', id: job.id })) {
        this.#pending.delete(job.id);
        reject(new Error(this.#closed ? 'hash pool closed' : 'hash threads failed during the upload'));
      }
    });
  }

  /** Forgets a job whose digest is not wanted (the upload failed or was refused): the threads let go of its buffer. */
  drop(job: HashJob): void {
    if (this.#pending.has(job.id)) return;
    this.#post(job, { op: 'drop', id: job.id });
  }

  /** Ends the threads; unfinished jobs reject. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const workers = this.#workers ?? [];
    this.#workers = null;
    for (const job of this.#pending.values()) job.reject(new Error('hash pool closed'));
    this.#pending.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
