import type { Logger } from 'pino';
import { analyse } from './analysis.js';
import { parseDirective, type Scenario } from './scenario.js';
import { queueKey, type IngestRecord, type SimStore, type SubmissionRecord } from './store.js';
import { isoMicro, isoNano, md5Hex } from './util.js';

const DAY = 86_400_000;
const CACHE_TTL = DAY;
const CACHE_TTL_WITH_ERRORS = 30 * 60_000;

export interface EngineOptions {
  store: SimStore;
  now: () => number;
  analysisDelayMs: number;
  maxFileSize: number;
  logger: Logger;
  /** Called once per ingest when it reaches its end (completed, cache hit, failed): frees the async quota slot. */
  onFinished?: (ingest: IngestRecord) => void;
}

/** The ingester + dispatcher: turns queued ingests into submissions and notification messages on timers. */
export class AnalysisEngine {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Scan key → duplicates parked while the first ingest of that key is being analysed. */
  private readonly inFlight = new Map<string, IngestRecord[]>();

  constructor(private readonly opts: EngineOptions) {}

  /**
   * Registered scenario for the sha256, else the nested one, else an `AL-SIM:` line in the content, else the default.
   * `directive`: what parseDirective(content) answered, when the caller searched the content already.
   */
  resolveScenario(sha256: string, content: Buffer, nested?: Scenario, directive?: Scenario | null): Scenario {
    return this.opts.store.scenarios.get(sha256) ?? nested ?? (directive === undefined ? parseDirective(content) : directive) ?? {};
  }

  /** The cache key covers the file and the params that change what analysis produces. */
  scanKey(ingest: IngestRecord): string {
    const p = ingest.params;
    const relevant = {
      sha256: ingest.sha256, classification: p.classification, deep_scan: p.deep_scan, ignore_filtering: p.ignore_filtering,
      ignore_recursion_prevention: p.ignore_recursion_prevention, services: p.services, service_spec: p.service_spec,
      // The 4.7 ingester's scan key covers ignore_cache too (assemblyline-rust v4.7.4.stable9, assemblyline-models/src/datastore/submission.rs `get_hashing_keys`):
      // a re-ingest with ignore_cache caches its result under its own key, the ordinary key keeps the old sid.
      ignore_cache: p.ignore_cache,
    };
    return `${md5Hex(JSON.stringify(relevant))}v0`;
  }

  submit(ingest: IngestRecord): void {
    const { store } = this.opts;
    const nth = (store.ingestsBySha256[ingest.sha256] = (store.ingestsBySha256[ingest.sha256] ?? 0) + 1);
    store.ingestCount++;
    this.later(0, () => this.process(ingest, nth));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.closed) return;
      try {
        fn();
      } catch (err) {
        this.opts.logger.error({ err }, 'simulated analysis step failed');
      }
    }, ms);
    this.timers.add(t);
  }

  private process(ingest: IngestRecord, nth: number): void {
    const { store } = this.opts;
    const s = ingest.scenario;
    const failureApplies = s.failure !== undefined && (s.failure_times === undefined || nth <= s.failure_times);
    // Upstream order (ingester `ingest`): size check before the cache key is stamped, then cache, then drop.
    // never_drop also suppresses this drop (assemblyline-rust v4.7.4.stable9, assemblyline-server/src/ingester/mod.rs).
    if (failureApplies && s.failure?.startsWith('File too large') && !ingest.params.never_drop) {
      ingest.outcome = 'failed';
      this.opts.onFinished?.(ingest);
      this.notify(ingest, { sid: ingest.ingestId, score: null, failure: `File too large (${ingest.size} > ${this.opts.maxFileSize})`, scanKey: null }, true);
      return;
    }
    const scanKey = this.scanKey(ingest);
    const cached = store.cache.get(scanKey);
    const now = this.opts.now();
    if (cached && !ingest.params.ignore_cache && now - cached.at <= (cached.hadErrors ? CACHE_TTL_WITH_ERRORS : CACHE_TTL)) {
      ingest.outcome = 'cache-hit';
      this.completion(ingest, { sid: cached.sid, score: cached.score, failure: '', scanKey });
      return;
    }
    // Upstream ingester: a duplicate of a file already in flight (same scan key) is parked, not analysed again,
    // and notified with the same sid when the first one completes.
    const parked = this.inFlight.get(scanKey);
    if (parked && !ingest.params.ignore_cache) {
      ingest.outcome = 'cache-hit';
      parked.push(ingest);
      return;
    }
    const drop = (failureApplies && s.failure === 'Skipped') || ingest.params.priority <= 1;
    // params.never_drop disables the ingester's drop decision (priority <= 1 and sampling).
    if (drop && !ingest.params.never_drop) {
      ingest.outcome = 'failed';
      this.opts.onFinished?.(ingest);
      this.notify(ingest, { sid: ingest.ingestId, score: null, failure: 'Skipped', scanKey }, true);
      return;
    }
    if (!this.inFlight.has(scanKey)) this.inFlight.set(scanKey, []);
    const delay = Math.max(0, s.delay_ms ?? this.opts.analysisDelayMs);
    const dispatchAt = Math.min(Math.floor(delay / 3), 1000);
    // Completion is scheduled by the dispatch itself, so it can never run before the submission exists.
    this.later(dispatchAt, () => {
      this.dispatch(ingest, scanKey);
      this.later(delay - dispatchAt, () => this.complete(ingest, scanKey));
    });
  }

  private dispatch(ingest: IngestRecord, scanKey: string): void {
    const { store } = this.opts;
    const now = this.opts.now();
    ingest.outcome = 'analysing';
    // 4.7 ingester: the submission keeps sid == ingest_id.
    const sub: SubmissionRecord = {
      sid: ingest.ingestId, user: ingest.user, state: 'submitted', files: [{ name: ingest.name, sha256: ingest.sha256, size: ingest.size }],
      metadata: { ...ingest.metadata }, params: structuredClone(ingest.params), submitted: now, completed: null,
      expiry: now + Number(ingest.params.ttl ?? 30) * DAY, scanKey, resultKeys: [], errorKeys: [], fileShas: [ingest.sha256], supplementaryShas: [],
    };
    store.submissions.set(sub.sid, sub);
  }

  private complete(ingest: IngestRecord, scanKey: string): void {
    const { store } = this.opts;
    const sub = store.submissions.get(ingest.ingestId);
    const file = store.files.get(ingest.sha256);
    if (!sub || !file) {
      this.opts.logger.error({ ingestId: ingest.ingestId, submission: Boolean(sub), file: Boolean(file) }, 'simulated analysis cannot complete');
      return;
    }
    const now = this.opts.now();
    const outcome = analyse({
      store, rootSha256: ingest.sha256, rootName: ingest.name, rootScenario: ingest.scenario, started: sub.submitted, completed: now,
      ttlDays: Number(ingest.params.ttl ?? 30), classification: String(ingest.params.classification ?? 'TLP:CLEAR'), resolveScenario: (sha, content, nested) => this.resolveScenario(sha, content, nested),
    });
    sub.resultKeys = outcome.resultKeys;
    sub.errorKeys = outcome.errorKeys;
    sub.fileShas = outcome.fileShas;
    sub.supplementaryShas = outcome.supplementaryShas;
    sub.state = 'completed';
    sub.completed = now;
    ingest.outcome = 'completed';
    store.cache.set(scanKey, { sid: sub.sid, score: outcome.maxScore, at: now, hadErrors: outcome.hadErrors });
    this.completion(ingest, { sid: sub.sid, score: outcome.maxScore, failure: '', scanKey });
    const parked = this.inFlight.get(scanKey) ?? [];
    this.inFlight.delete(scanKey);
    for (const p of parked) this.completion(p, { sid: sub.sid, score: outcome.maxScore, failure: '', scanKey });
  }

  /** Successful outcomes (fresh or cached): threshold and scripted silent loss apply. */
  private completion(ingest: IngestRecord, m: MessageFacts): void {
    const { store } = this.opts;
    this.opts.onFinished?.(ingest);
    const n = (store.notificationsBySha256[ingest.sha256] = (store.notificationsBySha256[ingest.sha256] ?? 0) + 1);
    if (ingest.threshold !== null && (m.score ?? 0) < ingest.threshold) return;
    const lose = ingest.scenario.lose_notification_times ?? 0;
    if (n <= lose) {
      if (ingest.queue) store.messagesLost++;
      this.opts.logger.debug({ ingestId: ingest.ingestId }, 'scenario: notification silently lost');
      return;
    }
    this.notify(ingest, m, false);
  }

  private notify(ingest: IngestRecord, m: MessageFacts, _failure: boolean): void {
    const { store } = this.opts;
    if (!ingest.queue) return;
    const now = this.opts.now();
    const message = {
      extended_scan: 'skipped', failure: m.failure, ingest_id: ingest.ingestId, ingest_time: isoNano(ingest.ingestTime),
      notify_time: isoNano(now), retries: 0, score: m.score,
      submission: {
        errors: [], file_infos: {}, file_tree: {}, files: [{ name: ingest.name, sha256: ingest.sha256, size: ingest.size }],
        metadata: { ...ingest.metadata }, notification: { queue: ingest.queue, threshold: ingest.threshold },
        params: structuredClone(ingest.params), results: {}, scan_key: m.scanKey, sid: m.sid, time: isoMicro(ingest.ts),
      },
    };
    const key = queueKey(ingest.user, ingest.queue);
    const list = store.queues.get(key) ?? [];
    list.push({ message, notifyTime: message.notify_time, ingestTime: message.ingest_time });
    store.queues.set(key, list);
    store.messagesQueued++;
  }
}

interface MessageFacts {
  sid: string;
  score: number | null;
  failure: string;
  scanKey: string | null;
}

/** The 30-minute job: a queue whose oldest message is older than 24 h (or unreadable) is deleted whole. */
export function cleanupQueues(store: SimStore, now: number): number {
  let deleted = 0;
  for (const [key, list] of store.queues) {
    const oldest = list[0];
    if (!oldest) continue;
    const t = Date.parse(oldest.notifyTime ?? oldest.ingestTime ?? '');
    if (Number.isNaN(t) || now - t > DAY) {
      store.queues.delete(key);
      deleted++;
    }
  }
  return deleted;
}
