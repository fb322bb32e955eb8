/**
 * An in-memory Ledger for API tests: same contract as the SQLite adapter, no disk.
 * list() pages newest first (createdAt desc, id desc) with an opaque cursor.
 */
import type {
  Job,
  JobEvent,
  JobPage,
  JobPatch,
  JobQuery,
  JobState,
  Ledger,
  NewEvent,
  RelatedSampleRecord,
  RelationRecord,
  StoredMessage,
} from '../../src/ledger/types.js';
import { JOB_STATES, TERMINAL_STATES } from '../../src/ledger/types.js';
import { assertTransition } from '../../src/bridge/states.js';
import { LEDGER_WRITES } from '../../src/ledger/write-errors.js';

export interface FakeLedger extends Ledger {
  /** Test hook: make isWritable() answer false. */
  writable: boolean;
  /** Test hook: inserts a job with any fields set (state, timestamps...) and a matching event history. */
  seed(job: Partial<Job> & { id: string; state: JobState; createdAt: number }, events?: NewEvent[]): Job;
}

function newJob(input: { id: string; scheduledAnalysisUrl: string; sampleUrl: string; identity?: string }, now: number): Job {
  return {
    identity: input.identity ?? null,
    id: input.id,
    scheduledAnalysisUrl: input.scheduledAnalysisUrl,
    sampleUrl: input.sampleUrl,
    state: 'claimed',
    sha256: null,
    fileName: null,
    fileSize: null,
    sampleCls: null,
    attempts: 0,
    ingestId: null,
    sid: null,
    cacheHit: false,
    score: null,
    alFailure: null,
    errorCode: null,
    errorMessage: null,
    lastError: null,
    lastErrorCode: null,
    massReportUrl: null,
    notBefore: now,
    deadline: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
}

const isTerminal = (s: JobState): boolean => TERMINAL_STATES.includes(s);

function encodeCursor(job: Job): string {
  return Buffer.from(JSON.stringify([job.createdAt, job.id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Array.isArray(parsed) || typeof parsed[0] !== 'number' || typeof parsed[1] !== 'string') throw new Error('bad cursor');
  return [parsed[0], parsed[1]];
}

export function createFakeLedger(): FakeLedger {
  const jobs = new Map<string, Job>();
  const eventsByJob = new Map<string, JobEvent[]>();
  const messages: StoredMessage[] = [];
  const related: RelatedSampleRecord[] = [];
  const rels: RelationRecord[] = [];
  const own = new Map<string, { jobId: string; sid: string; parentSha256: string; massSampleUrl: string }>();
  let seq = 0;
  let messageSeq = 0;
  let commits = 0;

  const push = (job: Job, event: NewEvent, now: number): void => {
    const list = eventsByJob.get(job.id) ?? [];
    list.push({
      seq: ++seq,
      jobId: job.id,
      at: now,
      type: event.type,
      state: job.state,
      message: event.message ?? null,
      code: event.code ?? null,
      data: event.data ?? null,
    });
    eventsByJob.set(job.id, list);
  };

  const mustGet = (id: string): Job => {
    const job = jobs.get(id);
    if (!job) throw new Error(`no job ${id}`);
    return job;
  };

  const ledger: FakeLedger = {
    writable: true,
    seed(partial, events) {
      const job: Job = { ...newJob({ id: partial.id, scheduledAnalysisUrl: `http://mass.test/api/scheduled_analysis/${partial.id}/`, sampleUrl: `http://mass.test/api/sample/${partial.id}/` }, partial.createdAt), updatedAt: partial.createdAt, ...partial };
      if (isTerminal(job.state) && job.finishedAt === null) job.finishedAt = job.updatedAt;
      jobs.set(job.id, job);
      for (const e of events ?? [{ type: 'claimed' }]) push(job, e, job.updatedAt);
      return { ...job };
    },
    claim(input, now) {
      const existing = jobs.get(input.id);
      if (existing) return { job: { ...existing }, created: false };
      const job = newJob(input, now);
      jobs.set(job.id, job);
      push(job, { type: 'claimed' }, now);
      return { job: { ...job }, created: true };
    },
    get(id) {
      const job = jobs.get(id);
      return job ? { ...job } : undefined;
    },
    has: (id) => jobs.has(id),
    update(id, patch: JobPatch, event, now) {
      const job = mustGet(id);
      // Same contract as the SQLite ledger: the state table decides which transitions exist.
      if (patch.state !== undefined) assertTransition(id, job.state, patch.state);
      if (patch.state !== undefined && patch.state !== job.state) job.stateSince = now;
      Object.assign(job, patch, { updatedAt: now });
      if (patch.state && isTerminal(patch.state) && patch.finishedAt === undefined) job.finishedAt = now;
      push(job, event, now);
      return { ...job };
    },
    appendEvent(id, event, now) {
      push(mustGet(id), event, now);
    },
    events(id) {
      return (eventsByJob.get(id) ?? []).map((e) => ({ ...e }));
    },
    findByIngestId(ingestId) {
      for (const job of jobs.values()) if (job.ingestId === ingestId) return { ...job };
      return undefined;
    },
    dueIds(states, now, limit) {
      return this.due(states, now, limit).map((j) => j.id);
    },
    due(states, now, limit) {
      return [...jobs.values()]
        .filter((j) => states.includes(j.state) && !isTerminal(j.state) && j.notBefore <= now)
        .sort((a, b) => a.createdAt - b.createdAt)
        .slice(0, limit)
        .map((j) => ({ ...j }));
    },
    list(query: JobQuery): JobPage {
      const limit = query.limit ?? 50;
      let rows = [...jobs.values()].filter(
        (j) =>
          (!query.states || query.states.includes(j.state)) &&
          (!query.sha256 || j.sha256 === query.sha256) &&
          (query.from === undefined || j.createdAt >= query.from) &&
          (query.to === undefined || j.createdAt <= query.to),
      );
      rows.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      if (query.cursor) {
        const [at, id] = decodeCursor(query.cursor);
        rows = rows.filter((j) => j.createdAt < at || (j.createdAt === at && j.id < id));
      }
      const page = rows.slice(0, limit);
      const nextCursor = rows.length > limit ? encodeCursor(page[page.length - 1]) : null;
      return { jobs: page.map((j) => ({ ...j })), nextCursor };
    },
    countByState() {
      const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const job of jobs.values()) counts[job.state]++;
      return counts;
    },
    inFlight() {
      return [...jobs.values()].filter((j) => !isTerminal(j.state) && j.state !== 'held').length;
    },
    inFlightByIdentity() {
      const out: Record<string, number> = {};
      for (const j of jobs.values()) {
        if (isTerminal(j.state) || j.state === 'held') continue;
        const name = j.identity ?? 'default';
        out[name] = (out[name] ?? 0) + 1;
      }
      return out;
    },
    oldestInFlightCreatedAt() {
      let oldest: number | null = null;
      for (const j of jobs.values()) {
        if (isTerminal(j.state) || j.state === 'held') continue;
        if (oldest === null || j.createdAt < oldest) oldest = j.createdAt;
      }
      return oldest;
    },
    oldestPerState() {
      const out = new Map<JobState, { state: JobState; jobId: string; since: number }>();
      for (const j of jobs.values()) {
        if (isTerminal(j.state)) continue;
        const since = j.stateSince ?? j.updatedAt;
        const best = out.get(j.state);
        if (!best || since < best.since) out.set(j.state, { state: j.state, jobId: j.id, since });
      }
      return [...out.values()];
    },
    finishedSince(from) {
      return [...jobs.values()]
        .filter((j) => isTerminal(j.state) && j.finishedAt !== null && j.finishedAt >= from)
        .map((j) => ({ state: j.state, finishedAt: j.finishedAt as number, createdAt: j.createdAt }));
    },
    storeMessages(queue, batch, now) {
      return batch.map((body) => {
        const m: StoredMessage = { seq: ++messageSeq, queue, ingestId: body.ingest_id, receivedAt: now, body, jobId: null, processedAt: null };
        messages.push(m);
        return { ...m };
      });
    },
    unprocessedMessages(limit) {
      return messages.filter((m) => m.processedAt === null).slice(0, limit).map((m) => ({ ...m }));
    },
    markMessageProcessed(messageSeqNo, jobId, now) {
      const m = messages.find((x) => x.seq === messageSeqNo);
      if (m) Object.assign(m, { jobId, processedAt: now });
    },
    recordRelatedSample(rec, now) {
      if (!related.some((r) => r.jobId === rec.jobId && r.key === rec.key)) related.push({ ...rec, createdAt: now });
    },
    relatedSamples(jobId) {
      return related.filter((r) => r.jobId === jobId).map((r) => ({ ...r }));
    },
    recordRelation(rec, now) {
      if (!rels.some((r) => r.jobId === rec.jobId && r.key === rec.key)) rels.push({ ...rec, createdAt: now });
    },
    relations(jobId) {
      return rels.filter((r) => r.jobId === jobId).map((r) => ({ ...r }));
    },
    findRelation(kind, sampleUrl, otherUrl) {
      const r = rels.find((x) => x.kind === kind && x.sampleUrl === sampleUrl && x.otherUrl === otherUrl);
      return r ? { ...r } : undefined;
    },
    recordOwnSample(sha256, origin) {
      const o = own.get(sha256);
      if (o && !(o.massSampleUrl === '' && origin.massSampleUrl !== '')) return;
      own.set(sha256, o ? { ...o, massSampleUrl: origin.massSampleUrl } : { ...origin });
    },
    forgetOwnSample(sha256, jobId) {
      const o = own.get(sha256);
      if (o && o.jobId === jobId && o.massSampleUrl === '') own.delete(sha256);
    },
    ownSample(sha256) {
      return own.get(sha256);
    },
    prune(before) {
      let events = 0;
      for (const [id, list] of eventsByJob) {
        const job = jobs.get(id);
        if (job && (job.state === 'done' || job.state === 'failed') && job.finishedAt !== null && job.finishedAt < before) {
          events += list.length;
          eventsByJob.delete(id);
        }
      }
      const keep = messages.filter((m) => m.processedAt === null || m.processedAt >= before);
      const removed = messages.length - keep.length;
      messages.splice(0, messages.length, ...keep);
      return { events, messages: removed };
    },
    // Memory is this ledger's disk: every write is durable when it returns, one commit each.
    flush: () => Promise.resolve(),
    pending: () => 0,
    commits: () => commits,
    isWritable() {
      return ledger.writable;
    },
    sizeBytes() {
      return 4096 + jobs.size * 512;
    },
    close() {},
  };
  for (const name of LEDGER_WRITES) {
    if (name === 'flush') continue;
    const write = ledger[name] as (...args: unknown[]) => unknown;
    (ledger as unknown as Record<string, unknown>)[name] = (...args: unknown[]): unknown => {
      const out = write.apply(ledger, args);
      commits++;
      return out;
    };
  }
  return ledger;
}

const hex = (n: number): string => n.toString(16).padStart(64, '0');

/**
 * Fills a ledger with jobs in several states as a running bridge would leave them: finished jobs spread
 * over the last hour, some in flight, a held one and failures with errors. Returns the ids by state.
 */
export function seedTypicalJobs(ledger: FakeLedger, now: number): { done: string[]; failed: string[]; held: string[]; inFlight: string[] } {
  const ids = { done: [] as string[], failed: [] as string[], held: [] as string[], inFlight: [] as string[] };
  let n = 0;
  const minute = 60_000;
  for (let i = 0; i < 24; i++) {
    const id = `sa-done-${++n}`;
    const finishedAt = now - (i * 2.5 + 0.5) * minute;
    ledger.seed(
      { id, state: 'done', createdAt: finishedAt - 40_000, updatedAt: finishedAt, finishedAt, sha256: hex(n), fileName: `sample-${n}.exe`, sid: `sid-${n}`, ingestId: `ing-${n}`, score: 100 + i, massReportUrl: `http://mass.test/api/report/${n}/` },
      [{ type: 'claimed' }, { type: 'ingested' }, { type: 'notified' }, { type: 'report-sent' }],
    );
    ids.done.push(id);
  }
  const failures: Array<[string, string, string]> = [
    ['AL_FAILURE', 'Assemblyline reported the submission as failed: all services errored', 'sid-f1'],
    ['SAMPLE_TOO_LARGE', 'sample is 300 MB, larger than MaxFileSize 100 MB', ''],
    ['RESULT_DEADLINE', 'no notification within 3600 s of ingest', 'sid-f3'],
  ];
  failures.forEach(([code, message, sid], i) => {
    const id = `sa-failed-${++n}`;
    const finishedAt = now - (i * 7 + 3) * minute;
    ledger.seed(
      { id, state: 'failed', createdAt: finishedAt - 60_000, updatedAt: finishedAt, finishedAt, sha256: hex(n), fileName: `bad-${n}.bin`, sid: sid || null, errorCode: code, errorMessage: message, lastError: message, lastErrorCode: code },
      [{ type: 'claimed' }, { type: 'error', code, message }, { type: 'report-sent' }],
    );
    ids.failed.push(id);
  });
  const held = `sa-held-${++n}`;
  ledger.seed(
    { id: held, state: 'held', createdAt: now - 20 * minute, updatedAt: now - 15 * minute, sha256: hex(n), lastError: 'MASS answered 400 to the error report', lastErrorCode: 'UPSTREAM_HTTP' },
    [{ type: 'claimed' }, { type: 'error', code: 'UPSTREAM_HTTP', message: 'MASS answered 400 to the error report' }],
  );
  ids.held.push(held);
  const states = ['claimed', 'ingesting', 'waiting', 'waiting', 'collecting', 'reporting'] as const;
  states.forEach((state, i) => {
    const id = `sa-${state}-${++n}`;
    ledger.seed({ id, state, createdAt: now - (i + 1) * 90_000, updatedAt: now - 10_000, sha256: hex(n), ingestId: state === 'claimed' ? null : `ing-${n}` });
    ids.inFlight.push(id);
  });
  return ids;
}
