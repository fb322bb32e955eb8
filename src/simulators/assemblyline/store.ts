import type { Scenario } from './scenario.js';

export interface StoredFile {
  sha256: string;
  sha1: string;
  md5: string;
  size: number;
  type: string;
  magic: string;
  mime: string;
  entropy: number;
  content: Buffer;
  firstSeen: number;
  lastSeen: number;
  seenCount: number;
  isSupplementary: boolean;
}

export interface TagRecord {
  type: string;
  value: string | number;
  safelisted: boolean;
}

export interface AttackRecord {
  attack_id: string;
  pattern: string;
  categories: string[];
}

export interface HeuristicRecord {
  heur_id: string;
  name: string;
  score: number;
  attack: AttackRecord[];
  signature: { name: string; frequency: number; safe: boolean }[];
}

export interface SectionRecord {
  title_text: string;
  body: unknown;
  body_format: string;
  body_config: Record<string, unknown>;
  depth: number;
  auto_collapse: boolean;
  heuristic: HeuristicRecord | null;
  tags: TagRecord[];
}

export interface FileRef {
  name: string;
  sha256: string;
  description: string;
  parent_relation: string;
}

export interface ResultRecord {
  key: string;
  sha256: string;
  service: string;
  version: string;
  toolVersion: string | null;
  /** `.e` results carry nothing; the API synthesises their document on each read. */
  empty: boolean;
  started: number;
  completed: number;
  expiry: number;
  sections: SectionRecord[];
  extracted: FileRef[];
  supplementary: FileRef[];
  /** The result's classification (default: the unrestricted level). */
  classification?: string;
}

export interface ErrorRecord {
  key: string;
  sha256: string;
  service: string;
  version: string;
  status: string;
  message: string;
  type: string;
  created: number;
  expiry: number;
}

export interface SubmissionParams {
  [key: string]: unknown;
  priority: number;
  never_drop: boolean;
  ignore_cache: boolean;
  ignore_size: boolean;
  type: string;
}

export interface SubmissionRecord {
  sid: string;
  user: string;
  state: 'submitted' | 'completed';
  files: { name: string; sha256: string; size: number }[];
  metadata: Record<string, string>;
  params: SubmissionParams;
  submitted: number;
  completed: number | null;
  expiry: number;
  scanKey: string;
  resultKeys: string[];
  errorKeys: string[];
  /** Every file the analysis reached, root first (excludes supplementary files). */
  fileShas: string[];
  supplementaryShas: string[];
}

export interface IngestRecord {
  ingestId: string;
  user: string;
  sha256: string;
  name: string;
  size: number;
  queue: string | null;
  threshold: number | null;
  metadata: Record<string, string>;
  params: SubmissionParams;
  ingestTime: number;
  ts: number;
  scenario: Scenario;
  outcome: 'queued' | 'analysing' | 'completed' | 'cache-hit' | 'failed';
}

export interface CacheEntry {
  sid: string;
  score: number;
  at: number;
  hadErrors: boolean;
}

export interface QueuedMessage {
  message: Record<string, unknown>;
  /** The time the 24 h cleanup looks at (notify_time, else ingest_time). */
  notifyTime: string | null;
  ingestTime: string | null;
}

export class SimStore {
  readonly files = new Map<string, StoredFile>();
  readonly results = new Map<string, ResultRecord>();
  readonly errors = new Map<string, ErrorRecord>();
  readonly submissions = new Map<string, SubmissionRecord>();
  readonly ingests = new Map<string, IngestRecord>();
  readonly cache = new Map<string, CacheEntry>();
  readonly queues = new Map<string, QueuedMessage[]>();
  readonly scenarios = new Map<string, Scenario>();
  readonly ingestsBySha256: Record<string, number> = {};
  readonly notificationsBySha256: Record<string, number> = {};
  messagesQueued = 0;
  messagesLost = 0;
  ingestCount = 0;
}

/** Since 4.7.4 the Redis key is `nq-` + uppercase hex of the user name + `-` + name: per-user queues. */
export function queueKey(user: string, queue: string): string {
  return `nq-${Buffer.from(user, 'utf8').toString('hex').toUpperCase()}-${queue}`;
}
