/**
 * Reads an Assemblyline `/submission/full/` document of any 4.x layout into a small, typed model.
 * Every field is checked; what does not fit is skipped, never thrown on (ASSEMBLYLINE.md §6.3, §10).
 */
import {
  arr,
  bool,
  cleanText,
  entries,
  isRecord,
  num,
  numOrNull,
  rec,
  sha256Of,
  str,
  strOrNull,
  truncate,
  unwrapEnvelope,
} from './json.js';

export interface NAttack {
  id: string;
  pattern: string;
  categories: string[];
}

export interface NHeuristic {
  id: string;
  name: string;
  score: number;
  attack: NAttack[];
  signatures: string[];
}

export interface NTag {
  type: string;
  value: string;
  safelisted: boolean;
}

export interface NSection {
  title: string;
  format: string;
  depth: number;
  body: unknown;
  heuristic: NHeuristic | null;
  tags: NTag[];
}

export interface NExtracted {
  sha256: string;
  name: string;
  /** Upper-case parent_relation; AL < 4.2 had none, the model default is EXTRACTED. */
  relation: string;
  description: string;
  isSectionImage: boolean;
}

export interface NResult {
  key: string;
  sha256: string;
  service: string;
  serviceVersion: string;
  score: number;
  /** `.e` key: AL synthesised an empty result. */
  empty: boolean;
  sections: NSection[];
  extracted: NExtracted[];
  supplementary: NExtracted[];
}

export interface NError {
  key: string;
  sha256: string;
  service: string;
  serviceVersion: string;
  type: string;
  severity: string;
  status: string;
  message: string;
}

export interface NTreeNode {
  sha256: string;
  names: string[];
  type: string;
  size: number | null;
  score: number;
  truncated: boolean;
  children: NTreeNode[];
}

export interface NSubmission {
  sid: string | null;
  state: string | null;
  /** null when the document carried none. */
  maxScore: number | null;
  fileCount: number | null;
  errorCount: number | null;
  /** sha256 of the submitted file as AL saw it (files[0]; may differ from the uploaded one for CaRT). */
  rootSha256: string | null;
  rootName: string | null;
  completed: string | null;
  submitted: string | null;
  tree: NTreeNode[];
  fileInfos: Map<string, { size: number | null; type: string | null; isSupplementary: boolean }>;
  results: NResult[];
  /** Safelisted tags of every result, also of results left out for want of a usable sha256: a value AL safelisted anywhere never becomes a sample. */
  safelistedTags: NTag[];
  /** sha256s listed as extracted / supplementary by any result, also by results left out for want of a usable sha256. */
  listedExtracted: Set<string>;
  listedSupplementary: Set<string>;
  errors: NError[];
  missingResultKeys: number;
  missingErrorKeys: number;
  missingFileKeys: number;
}

/** Guards against hostile nesting; AL itself stops the tree at depth 6. */
const MAX_TREE_DEPTH = 32;
const MAX_TREE_NODES = 10000;
const MAX_TEXT = 4096;

/** AL error key suffix `.e<code>` → error type, for documents that lack `type` (ASSEMBLYLINE.md §6.2). */
const ERROR_CODES: Record<string, string> = {
  '0': 'UNKNOWN',
  '1': 'EXCEPTION',
  '10': 'MAX DEPTH REACHED',
  '11': 'MAX FILES REACHED',
  '12': 'MAX RETRY REACHED',
  '20': 'SERVICE BUSY',
  '21': 'SERVICE DOWN',
  '30': 'TASK PRE-EMPTED',
};

function text(v: unknown, max = MAX_TEXT): string {
  return cleanText(str(v), max);
}

function normaliseTag(raw: unknown): NTag | null {
  if (!isRecord(raw)) return null;
  const type = text(raw.type, 256).trim();
  // network.port values are integers; anything that is not a scalar is not a tag value
  const value = typeof raw.value === 'string' || typeof raw.value === 'number' ? text(raw.value).trim() : '';
  if (type === '' || value === '') return null;
  return { type, value, safelisted: bool(raw.safelisted) };
}

/** Section tags are a list since 4.0's API flattening; stored form `{type: {sub: [values]}}` is accepted too. */
function normaliseTags(raw: unknown): NTag[] {
  if (Array.isArray(raw)) return raw.map(normaliseTag).filter((t): t is NTag => t !== null);
  const out: NTag[] = [];
  const walk = (node: unknown, prefix: string, depth: number): void => {
    if (depth > 6) return;
    if (Array.isArray(node)) {
      for (const v of node) {
        if ((typeof v === 'string' || typeof v === 'number') && prefix !== '') {
          const t = normaliseTag({ type: prefix, value: v });
          if (t) out.push(t);
        }
      }
      return;
    }
    for (const [k, v] of entries(isRecord(node) ? node : null)) walk(v, prefix === '' ? k : `${prefix}.${k}`, depth + 1);
  };
  walk(raw, '', 0);
  return out;
}

function normaliseHeuristic(raw: unknown): NHeuristic | null {
  if (!isRecord(raw)) return null;
  const id = text(raw.heur_id, 256).trim();
  if (id === '') return null;
  const attack: NAttack[] = [];
  for (const a of arr(raw.attack)) {
    const r = rec(a);
    const aid = text(r.attack_id, 64).trim();
    if (aid === '') continue;
    attack.push({
      id: aid,
      pattern: text(r.pattern, 256),
      categories: arr(r.categories).map((c) => text(c, 128)).filter((c) => c !== ''),
    });
  }
  const signatures = arr(raw.signature)
    .map((s) => text(rec(s).name, 256))
    .filter((s) => s !== '');
  return { id, name: text(raw.name, 256), score: num(raw.score), attack, signatures };
}

/**
 * A section's tags in either layout. The API answer (ASSEMBLYLINE.md §6.3) is one list where safelisted
 * tags carry `safelisted: true`. The stored Result document keeps `tags` as the nested Tagging object and
 * the safelisted values apart in `safelisted_tags`, a flattened `{"network.dynamic.domain": [values]}`
 * (assemblyline-base odm/models/result.py Section.safelisted_tags, filled by the service-result
 * handler's tag safelister); nested keys are accepted there too. Those values come back with
 * `safelisted: true`, once per type and value.
 */
function sectionTags(raw: Record<string, unknown>): NTag[] {
  const tags = normaliseTags(raw.tags);
  if (!isRecord(raw.safelisted_tags)) return tags;
  const known = new Set(tags.filter((t) => t.safelisted).map((t) => `${t.type}\u0000${t.value}`));
  for (const t of normaliseTags(raw.safelisted_tags)) {
    const key = `${t.type}\u0000${t.value}`;
    if (known.has(key)) continue;
    known.add(key);
    tags.push({ ...t, safelisted: true });
  }
  return tags;
}

function normaliseSection(raw: unknown): NSection | null {
  if (!isRecord(raw)) return null;
  return {
    title: text(raw.title_text, 1024),
    format: text(raw.body_format, 64) || 'TEXT',
    depth: Math.max(0, Math.floor(num(raw.depth))),
    body: raw.body === undefined ? null : raw.body,
    heuristic: normaliseHeuristic(raw.heuristic),
    tags: sectionTags(raw),
  };
}

function normaliseExtracted(raw: unknown): NExtracted | null {
  const r = rec(raw);
  const sha256 = sha256Of(r.sha256);
  if (sha256 === null) return null;
  const relation = text(r.parent_relation, 64).trim().toUpperCase() || 'EXTRACTED';
  return {
    sha256,
    name: text(r.name, 1024) || sha256,
    relation,
    description: text(r.description, 1024),
    isSectionImage: bool(r.is_section_image),
  };
}

/** Result key `<sha256>.<Service>.v<version>.c<hash>[.e]`; the first 64 characters are the file's sha256. */
function parseResultKey(key: string): { sha256: string | null; service: string; version: string; empty: boolean } {
  const parts = key.split('.');
  return {
    sha256: sha256Of(key.slice(0, 64)),
    service: parts[1] ?? '',
    version: (parts[2] ?? '').replace(/^v/, ''),
    empty: parts.length >= 5 && parts[parts.length - 1] === 'e',
  };
}

function normaliseResult(key: string, raw: unknown): NResult | null {
  if (!isRecord(raw)) return null;
  const parsed = parseResultKey(key);
  const response = rec(raw.response);
  const result = rec(raw.result);
  const sha256 = sha256Of(raw.sha256) ?? parsed.sha256;
  if (sha256 === null) return null;
  const sections = arr(result.sections)
    .map(normaliseSection)
    .filter((s): s is NSection => s !== null);
  return {
    key: truncate(key, 512),
    sha256,
    service: text(response.service_name, 128) || parsed.service || 'unknown',
    serviceVersion: text(response.service_version, 128) || parsed.version,
    score: num(result.score),
    empty: parsed.empty,
    sections,
    extracted: arr(response.extracted)
      .map(normaliseExtracted)
      .filter((e): e is NExtracted => e !== null),
    supplementary: arr(response.supplementary)
      .map(normaliseExtracted)
      .filter((e): e is NExtracted => e !== null),
  };
}

function normaliseError(key: string, raw: unknown): NError | null {
  if (!isRecord(raw)) return null;
  const parsed = parseResultKey(key);
  const response = rec(raw.response);
  const sha256 = sha256Of(raw.sha256) ?? parsed.sha256;
  if (sha256 === null) return null;
  const code = /\.e(\d+)$/.exec(key)?.[1];
  return {
    key: truncate(key, 512),
    sha256,
    service: text(response.service_name, 128) || parsed.service || 'unknown',
    serviceVersion: text(response.service_version, 128) || parsed.version,
    type: text(raw.type, 64) || (code !== undefined ? (ERROR_CODES[code] ?? 'UNKNOWN') : 'UNKNOWN'),
    severity: text(raw.severity, 32) || 'error',
    status: text(response.status, 64),
    message: text(response.message, MAX_TEXT),
  };
}

function normaliseTree(raw: unknown): NTreeNode[] {
  let budget = MAX_TREE_NODES;
  const walk = (level: unknown, depth: number, ancestors: Set<string>): NTreeNode[] => {
    const out: NTreeNode[] = [];
    if (depth > MAX_TREE_DEPTH) return out;
    for (const [key, value] of entries(level)) {
      if (budget <= 0) break;
      const node = rec(value);
      const sha256 = sha256Of(node.sha256) ?? sha256Of(key);
      if (sha256 === null || ancestors.has(sha256)) continue;
      budget--;
      const names = (Array.isArray(node.name) ? node.name : [node.name])
        .map((n) => text(n, 1024))
        .filter((n) => n !== '');
      const next = new Set(ancestors).add(sha256);
      out.push({
        sha256,
        names,
        type: text(node.type, 128),
        size: numOrNull(node.size),
        score: num(node.score),
        truncated: bool(node.truncated),
        children: walk(node.children, depth + 1, next),
      });
    }
    return out;
  };
  return walk(raw, 0, new Set());
}

/** Accepts `submission/full` (with or without envelope) and also a bare `submission/tree` answer (`{tree: …}`). */
export function normaliseSubmission(input: unknown): NSubmission {
  const doc = rec(unwrapEnvelope(input));
  const times = rec(doc.times);
  const files = arr(doc.files).map(rec);
  const treeRaw = doc.file_tree !== undefined ? doc.file_tree : doc.tree;
  const tree = normaliseTree(treeRaw);
  const fileInfos: NSubmission['fileInfos'] = new Map();
  for (const [key, value] of entries(isRecord(doc.file_infos) ? doc.file_infos : null)) {
    const info = rec(value);
    const sha256 = sha256Of(info.sha256) ?? sha256Of(key);
    if (sha256 === null) continue;
    fileInfos.set(sha256, {
      size: numOrNull(info.size),
      type: strOrNull(info.type),
      isSupplementary: bool(info.is_supplementary),
    });
  }
  const results: NResult[] = [];
  const safelistedTags: NTag[] = [];
  const listedExtracted = new Set<string>();
  const listedSupplementary = new Set<string>();
  for (const [key, value] of entries(doc.results)) {
    const r = normaliseResult(key, value);
    if (r) results.push(r);
    const sections = r ? r.sections : arr(rec(rec(value).result).sections).map(normaliseSection).filter((s): s is NSection => s !== null);
    for (const s of sections) safelistedTags.push(...s.tags.filter((t) => t.safelisted));
    const response = rec(rec(value).response);
    const listed = (raw: unknown) => arr(raw).map(normaliseExtracted).filter((e): e is NExtracted => e !== null);
    for (const e of r ? r.extracted : listed(response.extracted)) if (!e.isSectionImage) listedExtracted.add(e.sha256);
    for (const e of r ? r.supplementary : listed(response.supplementary)) listedSupplementary.add(e.sha256);
  }
  const errors: NError[] = [];
  for (const [key, value] of entries(doc.errors)) {
    const e = normaliseError(key, value);
    if (e) errors.push(e);
  }
  const first = files[0] ?? {};
  return {
    sid: strOrNull(doc.sid) !== null ? text(doc.sid, 64) : null,
    state: strOrNull(doc.state) !== null ? text(doc.state, 32) : null,
    maxScore: numOrNull(doc.max_score),
    fileCount: numOrNull(doc.file_count),
    errorCount: numOrNull(doc.error_count),
    rootSha256: sha256Of(first.sha256) ?? (tree.length === 1 ? tree[0].sha256 : null),
    rootName: strOrNull(first.name) !== null ? text(first.name, 1024) : null,
    completed: strOrNull(times.completed) !== null ? text(times.completed, 64) : null,
    submitted: strOrNull(times.submitted) !== null ? text(times.submitted, 64) : null,
    tree,
    fileInfos,
    results: results.sort((a, b) => cmp(a.sha256, b.sha256) || cmp(a.service, b.service) || cmp(a.key, b.key)),
    safelistedTags,
    listedExtracted,
    listedSupplementary,
    errors: errors.sort((a, b) => cmp(a.sha256, b.sha256) || cmp(a.service, b.service) || cmp(a.key, b.key)),
    missingResultKeys: arr(doc.missing_result_keys).length,
    missingErrorKeys: arr(doc.missing_error_keys).length,
    missingFileKeys: arr(doc.missing_file_keys).length,
  };
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Notification message fields the report uses (ASSEMBLYLINE.md §4.3); any layout, including pre-2021. */
export interface NMessage {
  ingestId: string | null;
  sid: string | null;
  score: number | null;
  failure: string | null;
  rootSha256: string | null;
  rootName: string | null;
}

export function normaliseMessage(input: unknown): NMessage | null {
  const msg = unwrapEnvelope(input);
  const m = Array.isArray(msg) ? rec(msg[0]) : rec(msg);
  if (Object.keys(m).length === 0) return null;
  const sub = rec(m.submission);
  const file = rec(arr(sub.files)[0]);
  const short = (v: unknown, max: number): string | null => (strOrNull(v) !== null ? text(v, max) : null);
  return {
    ingestId: short(m.ingest_id, 64),
    sid: short(sub.sid, 64),
    score: numOrNull(m.score),
    failure: short(m.failure, 512),
    rootSha256: sha256Of(file.sha256),
    rootName: short(file.name, 1024),
  };
}
