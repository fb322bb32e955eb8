/** The pure mapping's contract: Assemblyline result documents in, a MASS report plan out. */

export interface MappingOptions {
  /** Base URL of the Assemblyline UI, e.g. https://al.example.org ; links are <ui>/submission/<sid> */
  uiBaseUrl: string;
  bridgeVersion: string;
  /** Tag families to put on the MASS sample: verdict, family, attack, score, heuristic. */
  tagKinds: string[];
  maxTags: number;
  tagPrefix: string;
  maxSectionBody: number;
  extractedFiles: boolean;
  extractedRelations: string[];
  maxDepth: number;
  maxExtracted: number;
  /**
   * Added (optional): bytes; an extracted file whose size Assemblyline reports above this is not related
   * (nor its own children), with a note. Files of unknown size are planned and left to the bridge.
   */
  maxExtractedSize?: number;
  networkIocs: boolean;
  staticIocs: Array<'ip' | 'domain' | 'uri'>;
  maxIocs: number;
  /**
   * Added (optional): [Report] IOCMinVerdict. Network IOCs whose summary level is below it become neither samples
   * nor relations (ioc-threshold.ts); absent = no threshold.
   */
  iocMinVerdict?: 'info' | 'suspicious' | 'malicious';
  /**
   * Added (optional): Assemblyline's submission verdict thresholds (AL config `submission.verdicts`).
   * Default = AL's DEFAULT_VERDICTS: suspicious 300, highly_suspicious 700, malicious 1000.
   */
  verdictThresholds?: VerdictThresholds;
}

/** Added: minimum scores per verdict; below 0 is always `safe`, 0 up to `suspicious` is `info`. */
export interface VerdictThresholds {
  suspicious: number;
  highly_suspicious: number;
  malicious: number;
}

export interface MappingInput {
  /** /submission/full/ payload (api_response), any AL version; treated as untrusted JSON. */
  full: unknown;
  /** /submission/summary/ payload when fetched. */
  summary?: unknown;
  /** The notification message, when there was one. */
  message?: unknown;
  cacheHit: boolean;
  /** sha256 of the MASS sample being analysed (root of the tree). */
  rootSha256: string;
  /** ISO time the report is made (no clock in mapping). */
  now: string;
}

export type RelatedItem =
  | {
      kind: 'file';
      /** Stable key: file:<sha256> */
      key: string;
      sha256: string;
      name: string;
      /** sha256 of the file it was extracted from (root or another extracted file). */
      parentSha256: string;
      parentRelation: string;
      depth: number;
      size: number | null;
      relation: 'dropped-by';
      /** Added (optional): unique per (sha256, parent): file:<sha256>:<parentSha256>. `key` repeats when one file has two parents. */
      relationKey?: string;
      /** Added (optional): the Assemblyline service that extracted it, when known. */
      service?: string;
      /**
       * Added (optional): the key (`file:<parentSha256>`) of the earlier file item whose MASS sample this
       * relation points to; absent when the parent is the analysed MASS sample. When that item got no MASS
       * sample, this item must be neither uploaded nor related (see `relationTarget`).
       */
      dependsOn?: string;
    }
  | {
      kind: 'ip' | 'domain' | 'uri';
      /** Stable key: ip:<value> */
      key: string;
      value: string;
      /** The AL tag type, e.g. network.dynamic.ip */
      tagType: string;
      /** sha256 of the file whose result carried the tag. */
      sourceSha256: string;
      relation: 'contacted-by' | 'resolved-by' | 'retrieved-by';
      /**
       * Added (optional): the AL file whose result carried the tag, when that file is neither the root nor a
       * planned file item; `sourceSha256` is then the root, so every relation has a MASS sample to point at.
       */
      observedInSha256?: string;
      /**
       * Added (optional): the key (`file:<sourceSha256>`) of the file item whose MASS sample this relation
       * points to; absent when `sourceSha256` is the analysed MASS sample. When that item got no MASS
       * sample, the IOC is related to the analysed sample instead (see `relationTarget`).
       */
      dependsOn?: string;
    };

export interface ReportPlan {
  additionalMetadata: Record<string, unknown>;
  jsonReportObjects: Record<string, unknown>;
  /** Already sanitized to MASS's tag pattern and capped. */
  tags: string[];
  /**
   * Files first (parents before children), then IOCs. An item whose `dependsOn` names a file item points
   * at that file's MASS sample; the relating step asks `relationTarget` what to do when it has none.
   */
  related: RelatedItem[];
  /** Human-readable notes on what was cut (caps), also inside the summary object. */
  notes: string[];
  verdict: 'malicious' | 'highly_suspicious' | 'suspicious' | 'info' | 'safe';
  maxScore: number;
  /** Added (optional): the Assemblyline submission the plan was made from (null when unknown). */
  sid?: string | null;
}

export interface ErrorReportPlan {
  errorMessage: string;
  additionalMetadata: Record<string, unknown>;
  tags: string[];
}
