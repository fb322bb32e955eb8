/** MASS 0.1 API resources as an analysis-system instance sees them (docs/protocol/MASS.md). */
import type { Readable } from 'node:stream';

export interface ScheduledAnalysis {
  id: string;
  url: string;
  /** Absolute sample URL, exactly as MASS returned it. */
  sample: string;
  analysis_system_instance: string;
  analysis_scheduled: string;
  priority: number;
}

export interface AnalysisSystem {
  id: string;
  identifier_name: string;
  verbose_name: string;
  tag_filter_expression: string;
  information_text: string | null;
  url: string;
}

export interface AnalysisSystemInstance {
  id: string;
  uuid: string;
  url: string;
  analysis_system: string;
  is_online: boolean;
  last_seen: string | null;
  scheduled_analyses_count: number;
}

export interface MassSample {
  _cls: string;
  id: string;
  url: string;
  tags: string[];
  tlp_level: number;
  delivery_date: string;
  first_seen: string;
  dispatched_to: string[];
  // Sample.FileSample (and ExecutableBinarySample)
  file?: string;
  file_names?: string[];
  file_size?: number;
  magic_string?: string;
  mime_type?: string;
  md5sum?: string;
  sha1sum?: string;
  sha256sum?: string;
  sha512sum?: string;
  ssdeep_hash?: string;
  shannon_entropy?: number;
  // Sample.IPSample / DomainSample / URISample
  ip_address?: string;
  domain?: string;
  uri?: string;
}

export interface MassReport {
  id: string;
  url: string;
  sample: string;
  analysis_system: string;
  analysis_date: string | null;
  upload_date: string;
  status: number;
  error_message: string | null;
  tags: string[];
  additional_metadata: Record<string, unknown>;
  json_report_objects: Record<string, string>;
  raw_report_objects: Record<string, string>;
}

export interface MassRelation {
  _cls: string;
  id: string;
  url: string;
  sample: string;
  other: string;
}

export type RelationKind = 'dropped-by' | 'contacted-by' | 'resolved-by' | 'retrieved-by';

export interface RawReportObject {
  data: Buffer | string;
  /** Default binary/octet-stream. Never application/json (that would make it a JSON object). */
  contentType?: string;
  filename?: string;
}

export interface ReportSubmission {
  /** Default: now, sent as UTC with +00:00. */
  analysisDate?: Date | string;
  /** Sanitized by the caller; the client rejects tags outside MASS's pattern before sending. */
  tags?: string[];
  additionalMetadata?: Record<string, unknown>;
  /** Non-null marks a failure report (MASS ignores `status`). */
  errorMessage?: string | null;
  /** Key = part name ([A-Za-z0-9_-]+), value serialised as JSON with Content-Type application/json. */
  jsonReportObjects?: Record<string, unknown>;
  rawReportObjects?: Record<string, RawReportObject | Buffer | string>;
}

export interface NewSampleOptions {
  /** Required by MASS for new samples; default 0. */
  tlpLevel?: number;
  tags?: string[];
}

export interface FileSampleUpload extends NewSampleOptions {
  filename: string;
  /** Streamed into the multipart body; a Buffer is fine for small files. */
  body: Readable | Buffer;
  /** Byte length of a Readable body, when known: the upload then carries a Content-Length instead of going out chunked. */
  size?: number;
}

export interface SampleDownload {
  body: Readable;
  /** Content-Length when MASS sent one. */
  size?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

/**
 * What the bridge needs from MASS. Every method throws BridgeError (upstream 'mass'):
 * 403 → code AUTH, 404 → NOT_FOUND, other statuses → UPSTREAM_HTTP with `status`,
 * network failures → NETWORK. URLs passed in are used exactly as MASS returned them.
 */
export interface MassClient {
  readonly apiRoot: string;
  /** GET analysis_system_instance/<uuid>/scheduled_analyses/ (also the heartbeat). */
  poll(uuid: string, opts?: RequestOptions): Promise<ScheduledAnalysis[]>;
  getInstance(uuid: string, opts?: RequestOptions): Promise<AnalysisSystemInstance>;
  /** By id or absolute URL; NOT_FOUND once consumed. */
  getScheduledAnalysis(idOrUrl: string, opts?: RequestOptions): Promise<ScheduledAnalysis>;
  /** By absolute sample URL (or id). NOT_FOUND when invisible (TLP) or deleted. */
  getSample(urlOrId: string, opts?: RequestOptions): Promise<MassSample>;
  /** Streams the bytes of a file sample (sample.file URL). */
  downloadSample(sample: MassSample | string, opts?: RequestOptions): Promise<SampleDownload>;
  /** POST scheduled_analysis/<id>/submit_report/. 404 → NOT_FOUND (already consumed). */
  submitReport(scheduledAnalysis: ScheduledAnalysis | string, report: ReportSubmission, opts?: RequestOptions): Promise<MassReport>;
  /** GET sample/<id>/reports/ */
  listSampleReports(sampleUrlOrId: string, opts?: RequestOptions): Promise<MassReport[]>;
  submitFileSample(upload: FileSampleUpload, opts?: RequestOptions): Promise<MassSample>;
  submitIPSample(ip: string, options?: NewSampleOptions, opts?: RequestOptions): Promise<MassSample>;
  submitDomainSample(domain: string, options?: NewSampleOptions, opts?: RequestOptions): Promise<MassSample>;
  submitURISample(uri: string, options?: NewSampleOptions, opts?: RequestOptions): Promise<MassSample>;
  /** `sample` = the thing found, `other` = the analysed sample that produced it. */
  addRelation(kind: RelationKind, sampleUrl: string, otherUrl: string, opts?: RequestOptions): Promise<MassRelation>;
  /**
   * GET sample/<id>/relation_graph/?depth=N → the relations around a sample. Optional (added by the bridge):
   * used before every relation POST to find a relation another bridge, or an earlier POST whose answer was
   * lost, already made (MASS does not deduplicate relations, MASS.md §8).
   */
  getRelationGraph?(sampleUrlOrId: string, depth?: number, opts?: RequestOptions): Promise<MassRelation[]>;
  /** GET sample/?filters, following pages (filters re-sent on every page). */
  findSamples(filters: Record<string, string>, opts?: RequestOptions): Promise<MassSample[]>;
  // Admin-key calls (register command).
  getAnalysisSystem(name: string, opts?: RequestOptions): Promise<AnalysisSystem>;
  createAnalysisSystem(sys: { identifier_name: string; verbose_name: string; tag_filter_expression: string }, opts?: RequestOptions): Promise<AnalysisSystem>;
  createInstance(systemUrl: string, uuid?: string, opts?: RequestOptions): Promise<AnalysisSystemInstance>;
  close(): Promise<void>;
}

export interface MassClientOptions {
  /** Absolute API root ending with '/', e.g. http://mass.example.org/api/ */
  apiRoot: string;
  apiKey: string;
  /** Per-request timeout in ms (connect, headers, body). Default 30000. */
  timeoutMs?: number;
  /** Max parallel connections to MASS. Default 8. */
  connections?: number;
  /** Check the TLS certificate of an https:// MASS ([AssemblylineAnalysis] VerifyTLS). Default true. */
  verifyTls?: boolean;
  /** PEM contents (not a path) of extra certificate authorities to trust, beside the public roots ([AssemblylineAnalysis] CAFile). */
  ca?: string;
  /** Called once when verifyTls is false, to log the warning. */
  onInsecure?: () => void;
  /**
   * Other origins (scheme://host[:port]) under which MASS names its objects, e.g. the internal
   * origin a reverse proxy that rewrites Host makes MASS put in every URL ([GLOBAL] ServerAliases).
   * A URL MASS hands out on such an origin is requested on the apiRoot's origin instead; URLs on any
   * other origin are refused, so the API key only ever goes to the apiRoot's origin.
   */
  aliases?: string[];
  /**
   * Test-only (the bridge's crash points): called with the method and URL path of every request MASS answered
   * with 2xx, before the answer's body is read.
   */
  onAnswer?: (method: string, path: string) => void;
}
