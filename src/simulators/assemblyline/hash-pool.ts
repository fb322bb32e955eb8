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
 * The worker's code (plain JavaScript, run with `eval: true` so it needs no module loader under tsx or in dist/).
 * Messages: {op:'begin', id, buffer, offset} / {op:'update', id, from, to} (offsets relative to `offset`) /
 * {op:'end', id} answered by {id, lane, value} or {id, lane, error} / {op:'drop', id}.
 * The entropy lane counts byte pairs: one increment per 16-bit half of each 32-bit word into a 65 536-entry
 * table, folded into the 256 byte counts every 1 GiB and at the end (about 0.6 s per GiB against 1.0 s for four
 * 256-entry tables, on random, zero and text data alike).
 */
const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const lane = workerData.lane;
const jobs = new Map();
const FOLD_EVERY = 1 << 30;
function fold(job) {
  const pairs = job.pairs;
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
  const counts = job.counts;
  const pairs = job.pairs;
  let i = 0;
  const head = Math.min(bytes.length, (4 - (bytes.byteOffset & 3)) & 3);
  for (; i < head; i++) counts[bytes[i]]++;
  const n = (bytes.length - i) >>> 2;
  if (n > 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, n);
    for (let w = 0; w < n; w++) {
      const x = words[w];
      pairs[x & 65535]++;
      pairs[x >>> 16]++;
    }
    i += n * 4;
  }
  for (; i < bytes.length; i++) counts[bytes[i]]++;
  job.sinceFold += bytes.length;
  if (job.sinceFold >= FOLD_EVERY) fold(job);
}
parentPort.on('message', (m) => {
  if (m.op === 'begin') {
    const job = { buffer: m.buffer, offset: m.offset, length: 0 };
    if (lane === 'entropy') {
      job.counts = new Float64Array(256);
      job.pairs = new Uint32Array(65536);
      job.sinceFold = 0;
    } else {
      job.hash = createHash(lane);
    }
    jobs.set(m.id, job);
    return;
  }
  const job = jobs.get(m.id);
  if (!job) {
    // Asked to end a job it does not have: an answer, so that the caller hashes inline instead of waiting.
    if (m.op === 'end') parentPort.postMessage({ id: m.id, lane, error: 'no such hash job in this thread' });
    return;
  }
  try {
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
        parentPort.postMessage({ id: m.id, lane, value: Array.from(job.counts), length: job.length });
      }
    } else if (m.op === 'drop') {
      jobs.delete(m.id);
    }
  } catch (err) {
    jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, lane, error: String(err && err.message || err) });
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
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { lane }, name: `al-sim-${lane}` });
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
