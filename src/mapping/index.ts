/** Public surface of the pure mapping (Assemblyline results → MASS report plan). */
export {
  mapSubmissionToReport,
  mapOwnSampleReport,
  extractedChildIn,
  mapErrorReport,
  defaultMappingOptions,
  submissionLink,
  REPORT_FORMAT_VERSION,
  TAG_KINDS,
  type OwnSampleInput,
  type ErrorReportInput,
} from './report.js';
export { sanitizeTag, MASS_TAG_PATTERN, extractedFileTags, extractedInSids } from './tags.js';
export { verdictForScore, scoreBucket, DEFAULT_VERDICT_THRESHOLDS } from './verdict.js';
export { normaliseIoc, normaliseDomain, isAbsoluteUrl, relationTarget } from './related.js';
export { massSafeFileName } from './names.js';
export type * from './types.js';
