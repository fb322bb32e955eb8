import type { ErrorRecord, ResultRecord, SectionRecord, SimStore, StoredFile, SubmissionRecord, TagRecord } from './store.js';
import { isoMicro } from './util.js';

const CLASSIFICATION = 'TLP:CLEAR';
const DAY = 86_400_000;
const TREE_DEPTH = 6;

/** Tag types the default summary configuration shows (ASSEMBLYLINE.md §6.5). */
const SUMMARY_TAG_GROUPS: Record<string, string> = {
  'network.email.address': 'ioc',
  'network.static.ip': 'ioc', 'network.static.domain': 'ioc', 'network.static.uri': 'ioc',
  'network.dynamic.ip': 'ioc', 'network.dynamic.domain': 'ioc', 'network.dynamic.uri': 'ioc',
  'attribution.actor': 'attribution', 'attribution.campaign': 'attribution', 'attribution.exploit': 'attribution',
  'attribution.implant': 'attribution', 'attribution.family': 'attribution', 'attribution.network': 'attribution',
  'av.virus_name': 'attribution', 'file.config': 'attribution', 'technique.obfuscation': 'attribution',
  'file.behavior': 'behavior',
};

export function hType(score: number | undefined): string {
  if (score === undefined) return 'info';
  if (score >= 1000) return 'malicious';
  if (score >= 300) return 'suspicious';
  if (score >= 0) return 'info';
  return 'safe';
}
const H_RANK: Record<string, number> = { safe: 0, info: 1, suspicious: 2, malicious: 3 };

function renderTags(tags: TagRecord[]): Record<string, unknown>[] {
  return tags.map((t) => ({ type: t.type, value: t.value, short_type: t.type.split('.').pop(), safelisted: t.safelisted }));
}

function renderSection(s: SectionRecord, classification: string): Record<string, unknown> {
  return {
    title_text: s.title_text, body: s.body, body_format: s.body_format, body_config: s.body_config, depth: s.depth,
    classification, auto_collapse: s.auto_collapse, promote_to: null, heuristic: s.heuristic, tags: renderTags(s.tags),
  };
}

export function resultScore(r: ResultRecord): number {
  return r.sections.reduce((acc, s) => acc + (s.heuristic?.score ?? 0), 0);
}

/** A Result document; `.e` keys are synthesised with the read time, as AL's create_empty_result_from_key does. */
export function renderResult(store: SimStore, r: ResultRecord, now: number): Record<string, unknown> {
  const classification = r.classification ?? CLASSIFICATION;
  const fileRef = (f: { name: string; sha256: string; description: string; parent_relation: string }): Record<string, unknown> => ({
    ...f, classification, is_section_image: false, allow_dynamic_recursion: false,
  });
  if (r.empty) {
    const read = isoMicro(now);
    return {
      archive_ts: null, classification, created: read, drop_file: false, expiry_ts: isoMicro(now + 5 * DAY), from_archive: false, partial: false,
      response: {
        extracted: [], milestones: { service_completed: read, service_started: read }, service_context: null, service_debug_info: null,
        service_name: r.service, service_tool_version: null, service_version: r.version.replace(/\./g, '_'), supplementary: [],
      },
      result: { score: 0, sections: [] }, sha256: r.sha256, size: null, type: null,
    };
  }
  const file = store.files.get(r.sha256);
  return {
    archive_ts: null, classification, created: isoMicro(r.completed), drop_file: false, expiry_ts: isoMicro(r.expiry), from_archive: false, partial: false,
    response: {
      extracted: r.extracted.map(fileRef), milestones: { service_completed: isoMicro(r.completed), service_started: isoMicro(r.started) },
      service_context: null, service_debug_info: null, service_name: r.service, service_tool_version: r.toolVersion, service_version: r.version,
      supplementary: r.supplementary.map(fileRef),
    },
    result: { score: resultScore(r), sections: r.sections.map((sec) => renderSection(sec, classification)) },
    sha256: r.sha256, size: file?.size ?? null, type: file?.type ?? null,
  };
}

export function renderError(e: ErrorRecord): Record<string, unknown> {
  return {
    archive_ts: null, created: isoMicro(e.created), expiry_ts: isoMicro(e.expiry), severity: 'error', sha256: e.sha256, type: e.type,
    response: { message: e.message, service_debug_info: null, service_name: e.service, service_tool_version: null, service_version: e.version, status: e.status },
  };
}

export function renderFileInfo(f: StoredFile, expiry: number | null): Record<string, unknown> {
  const head = f.content.subarray(0, 64);
  return {
    archive_ts: null, ascii: Array.from(head, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join(''), classification: CLASSIFICATION,
    comments: [], entropy: f.entropy, expiry_ts: expiry === null ? null : isoMicro(expiry), from_archive: false, hex: head.toString('hex'),
    is_section_image: false, is_supplementary: f.isSupplementary, label_categories: { attribution: [], info: [], technique: [] }, labels: [],
    magic: f.magic, md5: f.md5, mime: f.mime, seen: { count: f.seenCount, first: isoMicro(f.firstSeen), last: isoMicro(f.lastSeen) },
    sha1: f.sha1, sha256: f.sha256, size: f.size, ssdeep: `3:${f.md5.slice(0, 12)}:${f.md5.slice(12, 20)}`, tlsh: `T1${f.sha1.toUpperCase()}${f.md5.toUpperCase().slice(0, 28)}`,
    type: f.type,
  };
}

function submissionResults(store: SimStore, sub: SubmissionRecord): ResultRecord[] {
  return sub.resultKeys.map((k) => store.results.get(k)).filter((r): r is ResultRecord => r !== undefined);
}

export function maxScore(store: SimStore, sub: SubmissionRecord): number {
  const perFile = new Map<string, number>();
  for (const r of submissionResults(store, sub)) perFile.set(r.sha256, (perFile.get(r.sha256) ?? 0) + resultScore(r));
  return Math.max(0, ...perFile.values());
}

/** The Submission document (result and error keys only). */
export function renderSubmission(store: SimStore, sub: SubmissionRecord): Record<string, unknown> {
  const times: Record<string, string> = { submitted: isoMicro(sub.submitted) };
  if (sub.completed !== null) times.completed = isoMicro(sub.completed);
  return {
    archive_ts: null, archived: false, classification: String(sub.params.classification ?? CLASSIFICATION), error_count: sub.errorKeys.length, errors: [...sub.errorKeys],
    expiry_ts: isoMicro(sub.expiry), file_count: sub.fileShas.length, files: sub.files.map((f) => ({ ...f })), from_archive: false,
    max_score: maxScore(store, sub), metadata: { ...sub.metadata }, params: structuredClone(sub.params), results: [...sub.resultKeys],
    scan_key: sub.scanKey, sid: sub.sid, state: sub.state, times, to_be_deleted: false, tracing_events: [],
    verdict: { malicious: [], non_malicious: [] },
  };
}

interface TreeNode {
  name: string[];
  type: string;
  sha256: string;
  size: number;
  score: number;
  truncated: boolean;
  children: Record<string, TreeNode>;
}

/** get_or_create_file_tree: children from `response.extracted`, depth ≤ 6, files shown once unless fullTree. */
export function buildTree(store: SimStore, sub: SubmissionRecord, fullTree = false): Record<string, TreeNode> {
  const results = submissionResults(store, sub);
  const children = new Map<string, { sha256: string; name: string }[]>();
  const scores = new Map<string, number>();
  for (const r of results) {
    scores.set(r.sha256, (scores.get(r.sha256) ?? 0) + resultScore(r));
    const list = children.get(r.sha256) ?? [];
    for (const e of r.extracted) list.push({ sha256: e.sha256, name: e.name });
    children.set(r.sha256, list);
  }
  const shown = new Set<string>();
  const node = (sha256: string, names: string[], depth: number): TreeNode => {
    const f = store.files.get(sha256);
    const n: TreeNode = { name: names, type: f?.type ?? 'unknown', sha256, size: f?.size ?? 0, score: scores.get(sha256) ?? 0, truncated: false, children: {} };
    const kids = children.get(sha256) ?? [];
    for (const kid of kids) {
      if (n.children[kid.sha256]) {
        if (!n.children[kid.sha256].name.includes(kid.name)) n.children[kid.sha256].name.push(kid.name);
        continue;
      }
      if (!fullTree && shown.has(kid.sha256)) {
        n.truncated = true;
        continue;
      }
      shown.add(kid.sha256);
      // Past the maximum depth a child is dropped without marking `truncated` (assemblyline-base v4.7.4.stable9
      // datastore/helper.py get_or_create_file_tree: process_file returns at lvl >= max_depth + 1).
      if (depth + 1 > TREE_DEPTH) continue;
      n.children[kid.sha256] = node(kid.sha256, [kid.name], depth + 1);
    }
    return n;
  };
  const root = sub.files[0];
  shown.add(root.sha256);
  return { [root.sha256]: node(root.sha256, [root.name], 0) };
}

export function renderFull(store: SimStore, sub: SubmissionRecord, now: number, fullTree: boolean): Record<string, unknown> {
  const doc = renderSubmission(store, sub);
  const results: Record<string, unknown> = {};
  for (const r of submissionResults(store, sub)) results[r.key] = renderResult(store, r, now);
  const errors: Record<string, unknown> = {};
  for (const k of sub.errorKeys) {
    const e = store.errors.get(k);
    if (e) errors[k] = renderError(e);
  }
  const fileInfos: Record<string, unknown> = {};
  for (const sha of sub.fileShas) {
    const f = store.files.get(sha);
    if (f) fileInfos[sha] = renderFileInfo(f, sub.expiry);
  }
  return {
    ...doc, errors, results, file_infos: fileInfos, file_tree: buildTree(store, sub, fullTree),
    missing_error_keys: sub.errorKeys.filter((k) => !store.errors.has(k)),
    missing_file_keys: sub.fileShas.filter((k) => !store.files.has(k)),
    missing_result_keys: sub.resultKeys.filter((k) => !store.results.has(k)),
  };
}

export function renderTree(store: SimStore, sub: SubmissionRecord): Record<string, unknown> {
  return { classification: String(sub.params.classification ?? CLASSIFICATION), filtered: false, partial: sub.state !== 'completed', supplementary: [...sub.supplementaryShas], tree: buildTree(store, sub) };
}

interface TagSummary {
  tags: Record<string, Record<string, [string | number, string, boolean, string][]>>;
  heuristics: Record<string, [string, string][]>;
  attack_matrix: Record<string, [string, string, string][]>;
  map: Record<string, string[]>;
  heuristic_sections: Record<string, unknown[]>;
  heuristic_name_map: Record<string, string[]>;
  signatures: [string, string, boolean][];
}

function pushUnique<T>(list: T[], item: T, same: (a: T) => boolean): void {
  if (!list.some(same)) list.push(item);
}

function summarise(results: ResultRecord[]): TagSummary {
  const out: TagSummary = { tags: { attribution: {}, behavior: {}, ioc: {} }, heuristics: {}, attack_matrix: {}, map: {}, heuristic_sections: {}, heuristic_name_map: {}, signatures: [] };
  const link = (a: string, b: string): void => {
    if (!(out.map[a] ??= []).includes(b)) out.map[a].push(b);
    if (!(out.map[b] ??= []).includes(a)) out.map[b].push(a);
  };
  for (const r of results) {
    for (const s of r.sections) {
      const h = s.heuristic;
      const level = hType(h?.score);
      if (h) {
        const bucket = (out.heuristics[level] ??= []);
        pushUnique(bucket, [h.heur_id, h.name], (x) => x[0] === h.heur_id);
        (out.heuristic_sections[h.heur_id] ??= []).push(renderSection(s, r.classification ?? CLASSIFICATION));
        pushUnique((out.heuristic_name_map[h.name] ??= []), h.heur_id, (x) => x === h.heur_id);
        for (const a of h.attack) {
          link(r.sha256, `attack_pattern__${a.attack_id}`);
          for (const c of a.categories) {
            const list = (out.attack_matrix[c] ??= []);
            const existing = list.find((x) => x[0] === a.attack_id);
            if (!existing) list.push([a.attack_id, a.pattern, level]);
            else if (H_RANK[level] > H_RANK[existing[2]]) existing[2] = level;
          }
        }
        link(r.sha256, `heuristic__${h.heur_id}`);
        for (const sig of h.signature) {
          link(r.sha256, `heuristic.signature__${sig.name}`);
          pushUnique(out.signatures, [sig.name, level, sig.safe], (x) => x[0] === sig.name);
        }
      }
      for (const t of s.tags) {
        const group = SUMMARY_TAG_GROUPS[t.type];
        if (!group) continue;
        const list = (out.tags[group][t.type] ??= []);
        const existing = list.find((x) => x[0] === t.value);
        if (!existing) list.push([t.value, level, t.safelisted, CLASSIFICATION]);
        else if (H_RANK[level] > H_RANK[existing[1]]) existing[1] = level;
        link(r.sha256, `${t.type}__${t.value}`);
      }
    }
  }
  return out;
}

export function renderSummary(store: SimStore, sub: SubmissionRecord): Record<string, unknown> {
  const s = summarise(submissionResults(store, sub));
  return {
    attack_matrix: s.attack_matrix, classification: CLASSIFICATION, filtered: false, heuristic_name_map: s.heuristic_name_map,
    heuristic_sections: s.heuristic_sections, heuristics: s.heuristics, map: s.map, partial: sub.state !== 'completed', tags: s.tags,
  };
}

/** GET submission/<sid>/file/<sha256>/: one file's results within a submission. */
export function renderSubmissionFile(store: SimStore, sub: SubmissionRecord, sha256: string, now: number): Record<string, unknown> | null {
  const f = store.files.get(sha256);
  if (!f || !sub.fileShas.includes(sha256)) return null;
  const results = submissionResults(store, sub).filter((r) => r.sha256 === sha256);
  const s = summarise(results);
  const tags: Record<string, unknown[]> = {};
  for (const r of results) {
    for (const sec of r.sections) {
      for (const t of sec.tags) {
        const list = (tags[t.type] ??= []) as [unknown, string, boolean, string][];
        if (!list.some((x) => x[0] === t.value)) list.push([t.value, hType(sec.heuristic?.score), t.safelisted, CLASSIFICATION]);
      }
    }
  }
  return {
    attack_matrix: s.attack_matrix,
    errors: sub.errorKeys.filter((k) => k.startsWith(sha256)).map((k) => store.errors.get(k)).filter((e) => e !== undefined).map((e) => renderError(e as ErrorRecord)),
    file_info: renderFileInfo(f, sub.expiry), heuristics: s.heuristics, metadata: {},
    results: results.map((r) => ({ ...renderResult(store, r, now), section_hierarchy: sectionHierarchy(r.sections) })),
    signatures: s.signatures, tags,
  };
}

function sectionHierarchy(sections: SectionRecord[]): { id: number; children: unknown[] }[] {
  const root: { id: number; children: { id: number; children: unknown[] }[] }[] = [];
  const stack: { depth: number; node: { id: number; children: { id: number; children: unknown[] }[] } }[] = [];
  sections.forEach((s, id) => {
    const node = { id, children: [] as { id: number; children: unknown[] }[] };
    while (stack.length > 0 && stack[stack.length - 1].depth >= s.depth) stack.pop();
    if (stack.length === 0) root.push(node);
    else stack[stack.length - 1].node.children.push(node);
    stack.push({ depth: s.depth, node });
  });
  return root;
}

/** file/children: newest result per service across all submissions, its extracted files. */
export function fileChildren(store: SimStore, sha256: string): { name: string; sha256: string }[] {
  const newest = new Map<string, ResultRecord>();
  for (const r of store.results.values()) {
    if (r.sha256 !== sha256 || r.empty) continue;
    const prev = newest.get(r.service);
    if (!prev || prev.completed <= r.completed) newest.set(r.service, r);
  }
  const out: { name: string; sha256: string }[] = [];
  for (const r of newest.values()) {
    for (const e of r.extracted) if (!out.some((x) => x.sha256 === e.sha256 && x.name === e.name)) out.push({ name: e.name, sha256: e.sha256 });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
