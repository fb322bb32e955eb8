/**
 * Assemblyline 4 REST documents as the bridge reads them (docs/protocol/ASSEMBLYLINE.md).
 * Parsing is lenient: unknown fields are kept, old (4.0/4.4) layouts are accepted.
 */
import type { Readable } from 'node:stream';
import type { BridgeError } from '../errors.js';

export interface IngestParams {
  priority?: number;
  classification?: string;
  deep_scan?: boolean;
  ttl?: number;
  never_drop?: boolean;
  ignore_cache?: boolean;
  generate_alert?: boolean;
  services?: { selected?: string[]; excluded?: string[] };
  description?: string;
  [key: string]: unknown;
}

export interface IngestRequest {
  /** File name shown in AL. */
  name: string;
  /** Streamed into the multipart `bin` part. */
  body: Readable | Buffer;
  /** Byte length of a Readable body when known: sent as Content-Length instead of chunked encoding. */
  size?: number;
  /** Flat string metadata for correlation (mass_scheduled_analysis, mass_sample, bridge_instance, bridge_job). */
  metadata: Record<string, string>;
  params: IngestParams;
  notificationQueue: string;
  submissionProfile?: string;
  /** Ingest type; default 'MASS'. */
  type?: string;
}

/** An ingest of a file AL already stores: the options of IngestRequest, the lowercase hex sha256 instead of the bytes. */
export type IngestBySha256Request = Omit<IngestRequest, 'body' | 'size'> & { sha256: string };

export interface IngestMessage {
  ingest_id: string;
  failure: string;
  score: number | null;
  extended_scan?: string;
  retries?: number;
  ingest_time?: string;
  notify_time?: string;
  /** Before mid-2021 scan_key sat at the top level. */
  scan_key?: string | null;
  submission: {
    sid: string;
    files: Array<{ name: string; sha256: string; size: number }>;
    metadata: Record<string, unknown>;
    params: Record<string, unknown>;
    notification?: { queue?: string | null; threshold?: number | null };
    scan_key?: string | null;
    time?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Fields shared by the submission record and /submission/full/ (results/errors differ in shape). */
export interface SubmissionCommon {
  sid: string;
  state: 'submitted' | 'completed' | 'failed' | string;
  max_score: number;
  file_count: number;
  error_count: number;
  files: Array<{ name: string; sha256: string; size: number }>;
  metadata: Record<string, unknown>;
  params: Record<string, unknown>;
  times: { submitted?: string; completed?: string | null };
  classification?: string;
  verdict?: { malicious: string[]; non_malicious: string[] };
  [key: string]: unknown;
}

export interface Submission extends SubmissionCommon {
  results: string[];
  errors: string[];
}

export interface FileTreeNode {
  name: string[];
  type: string;
  sha256: string;
  size: number;
  score: number;
  truncated?: boolean;
  children: Record<string, FileTreeNode>;
}

export interface SectionTag {
  type: string;
  value: string | number;
  short_type?: string;
  safelisted?: boolean;
}

export interface Heuristic {
  heur_id: string;
  name: string;
  score: number;
  attack?: Array<{ attack_id: string; pattern: string; categories: string[] }>;
  signature?: Array<{ name: string; frequency: number; safe: boolean }>;
}

export interface Section {
  title_text: string;
  body: unknown;
  body_format: string;
  body_config?: Record<string, unknown>;
  depth: number;
  classification?: string;
  heuristic: Heuristic | null;
  tags: SectionTag[];
  [key: string]: unknown;
}

export interface ExtractedFile {
  name: string;
  sha256: string;
  description?: string;
  classification?: string;
  parent_relation?: string;
  is_section_image?: boolean;
  allow_dynamic_recursion?: boolean;
}

export interface Result {
  sha256: string;
  classification?: string;
  response: {
    service_name: string;
    service_version: string;
    extracted: ExtractedFile[];
    supplementary: ExtractedFile[];
    [key: string]: unknown;
  };
  result: { score: number; sections: Section[] };
  [key: string]: unknown;
}

export interface ServiceError {
  sha256: string;
  type?: string;
  severity?: string;
  response: { service_name: string; service_version?: string; status?: string; message: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Extends SubmissionCommon, not Omit<Submission, ...>: Omit over an index signature drops every named field. */
export interface SubmissionFull extends SubmissionCommon {
  file_tree: Record<string, FileTreeNode>;
  file_infos: Record<string, Record<string, unknown>>;
  results: Record<string, Result>;
  errors: Record<string, ServiceError>;
  missing_result_keys?: string[];
  missing_error_keys?: string[];
  missing_file_keys?: string[];
}

export interface SubmissionSummary {
  tags: Record<string, Record<string, Array<[string | number, string, boolean, string]>>>;
  heuristics: Record<string, Array<[string, string]>>;
  attack_matrix: Record<string, Array<[string, string, string]>>;
  classification?: string;
  filtered?: boolean;
  partial?: boolean;
  [key: string]: unknown;
}

export interface SearchResult<T = Record<string, unknown>> {
  total: number;
  offset: number;
  rows: number;
  items: T[];
  next_deep_paging_id?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

/**
 * What the bridge needs from Assemblyline. Every method throws BridgeError (upstream 'assemblyline'):
 * 401/403 → AUTH, 404 → NOT_FOUND (except where a method returns null), 503 with "daily" quota → QUOTA_DAILY,
 * other statuses → UPSTREAM_HTTP with `status` and the envelope's api_error_message, network → NETWORK.
 */
/** A file's content being downloaded (AssemblylineClient.openFile). */
export interface FileContent {
  body: Readable;
  /** Byte length when known (expected size, or the raw download's Content-Length). */
  size?: number;
}

export interface AssemblylineClient {
  /** POST /api/v4/ingest/ multipart (json + bin), body streamed. Returns the ingest_id. */
  ingest(req: IngestRequest, opts?: RequestOptions): Promise<{ ingestId: string }>;
  /**
   * POST /api/v4/ingest/ as JSON with `sha256` instead of the file: AL ingests the copy it already stores
   * (ASSEMBLYLINE.md §3.1). Returns null when AL answers 404 "SHA256 does not exist in Assemblyline…" (§3.4);
   * every other refusal is thrown as for `ingest`. Optional so hand-written fakes of this interface stay valid.
   */
  ingestBySha256?(req: IngestBySha256Request, opts?: RequestOptions): Promise<{ ingestId: string } | null>;
  /** GET /api/v4/ingest/get_message_list/<queue>/?page_size=N (destructive read). */
  getMessages(queue: string, pageSize: number, opts?: RequestOptions): Promise<IngestMessage[]>;
  /** Non-destructive check that this user may read `queue` (and ingest: same role); reads nothing from it. */
  checkQueueAccess?(queue: string, opts?: RequestOptions): Promise<void>;
  /** null on 404. */
  getSubmission(sid: string, opts?: RequestOptions): Promise<Submission | null>;
  /** null on 404. */
  getSubmissionFull(sid: string, opts?: RequestOptions): Promise<SubmissionFull | null>;
  /** null on 404. */
  getSubmissionSummary(sid: string, opts?: RequestOptions): Promise<SubmissionSummary | null>;
  /** false on 404. */
  isCompleted(sid: string, opts?: RequestOptions): Promise<boolean>;
  /** GET /api/v4/search/submission/?query=...&fl=...&rows=... */
  searchSubmissions(query: string, options?: { fl?: string; rows?: number; sort?: string }, opts?: RequestOptions): Promise<SearchResult>;
  /** GET /api/v4/file/download/<sha256>/?encoding=raw|cart ; the raw body stream (CaRT not decoded here). */
  downloadFile(sha256: string, options?: { encoding?: 'raw' | 'cart'; sid?: string }, opts?: RequestOptions): Promise<Readable>;
  /** Raw bytes whatever the server allows: tries encoding=raw, falls back to CaRT and decodes it. */
  downloadFileBytes(sha256: string, options?: { sid?: string; maxBytes?: number }, opts?: RequestOptions): Promise<Buffer>;
  /**
   * The content of a stored file as a stream, whatever the server allows (encoding=raw; once raw downloads are
   * refused with 403, encoding=cart decoded as it streams; ASSEMBLYLINE.md §6.6, §8). Memory does not grow with
   * the file's size. The stream is checked as it goes (assemblyline/verified.ts): more than `maxBytes` is
   * SAMPLE_TOO_LARGE, a length other than `size` (when given) or a sha256 other than `sha256` is
   * UPSTREAM_PROTOCOL, and the error comes instead of the last chunk, so a consumer never gets a complete
   * wrong file. `size` of the answer: the expected size, else the raw download's Content-Length.
   * Destroying `body` releases the download (and its slot in the call limiter).
   */
  openFile(sha256: string, options?: { sid?: string; maxBytes?: number; size?: number }, opts?: RequestOptions): Promise<FileContent>;
  /** GET /api/v4/file/children/<sha256>/ */
  fileChildren(sha256: string, opts?: RequestOptions): Promise<Array<{ name: string; sha256: string }>>;
  /** GET /api/v4/user/whoami/: the user's roles, clearance, quotas and the submission profiles they may use. */
  whoami?(opts?: RequestOptions): Promise<AssemblylineUser>;
  /**
   * Dry check of the ingest parameters, without a file and without side effects: a JSON ingest naming a sha256
   * that cannot exist. Assemblyline checks the submission profile and the parameters first (400 when it refuses
   * them), then looks the file up (404). Resolves null when the parameters pass, else the refusal.
   * Metadata schemes and classification are checked after the file lookup, so they are not covered.
   */
  checkIngestParams?(req: Pick<IngestRequest, 'metadata' | 'params' | 'submissionProfile' | 'type'>, opts?: RequestOptions): Promise<BridgeError | null>;
  close(): Promise<void>;
}

/** The part of /api/v4/user/whoami/ the bridge reads (assemblyline-ui api/v4/user.py `who_am_i`). */
export interface AssemblylineUser {
  username: string;
  roles: string[];
  classification: string;
  api_daily_quota?: number;
  submission_daily_quota?: number;
  c12nDef?: { levels?: Array<{ lvl: number; name: string; short_name?: string; aliases?: string[] }> };
  configuration?: {
    submission?: {
      dtl?: number;
      max_dtl?: number;
      profiles?: Record<string, { display_name?: string; params?: Record<string, unknown>; restricted_params?: Record<string, string[]> }>;
    };
  };
  [key: string]: unknown;
}

export interface AssemblylineClientOptions {
  /** e.g. https://al.example.org (no /api suffix) */
  url: string;
  user: string;
  /** How AL authenticates the calls; a client certificate is not one of them (it is a TLS option, below). */
  auth: 'apikey' | 'password';
  apiKey?: string;
  password?: string;
  /** PEM contents (not paths) of a TLS client certificate for an mTLS proxy in front of AL; combined with `auth`. */
  clientCert?: string;
  clientKey?: string;
  /** Default true. */
  verifyTls?: boolean;
  /** PEM contents of extra CAs. */
  ca?: string;
  timeoutMs?: number;
  /** Max concurrent calls (AL allows 10 per user). Default 8. */
  maxConcurrentCalls?: number;
  /** Called once when verifyTls is false, to log the warning. */
  onInsecure?: () => void;
  /** Cap of one JSON answer in bytes (default 64 MiB); a larger answer is an UPSTREAM_PROTOCOL error, never read whole. */
  maxAnswerBytes?: number;
}
