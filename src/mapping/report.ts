/**
 * Assemblyline submission → MASS report plan: additional_metadata, JSON report objects, sample tags and
 * the related-samples plan. Pure: no I/O, no clock (time comes in as `now`), never throws.
 * The shape of every object is documented in docs/report-format.md; keep the two in step.
 */
import { cleanText, isRecord, safeStringify, sha256Of, str, truncate } from './json.js';
import { cmp, normaliseMessage, normaliseSubmission, type NMessage, type NResult, type NSection, type NSubmission, type NTreeNode } from './normalize.js';
import { normaliseIoc, planRelated, type RelatedStats } from './related.js';
import { applyIocThreshold, iocLevels, IOC_MIN_VERDICTS, thresholdReport } from './ioc-threshold.js';
import { chooseSummaryView, summaryFromResults, TAG_GROUPS, type SummaryView } from './summary.js';
import { makeTag } from './tags.js';
import type { ErrorReportPlan, MappingInput, MappingOptions, ReportPlan } from './types.js';
import { LEVELS, normaliseThresholds, scoreBucket, verdictForScore } from './verdict.js';

/**
 * Bumped when a report object changes incompatibly. 2: the file tree is `al_results.file_tree` (version 1 sent it as
 * a third object, `al_file_tree`; every JSON report object costs MASS a GridFS file).
 */
export const REPORT_FORMAT_VERSION = 2;

export const TAG_KINDS = ['verdict', 'family', 'attack', 'score', 'heuristic'] as const;

const DEFAULTS: MappingOptions = {
  uiBaseUrl: '',
  bridgeVersion: 'unknown',
  tagKinds: ['verdict', 'family', 'attack', 'score'],
  maxTags: 50,
  tagPrefix: 'al:',
  maxSectionBody: 4096,
  extractedFiles: true,
  extractedRelations: ['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED'],
  maxDepth: 3,
  maxExtracted: 50,
  networkIocs: true,
  staticIocs: [],
  maxIocs: 200,
};

/** Full options from a partial set; values of the wrong type or out of range fall back to the defaults. */
export function defaultMappingOptions(partial?: Partial<MappingOptions>): MappingOptions {
  const p: Record<string, unknown> = isRecord(partial) ? partial : {};
  const count = (k: keyof MappingOptions): number => {
    const v = p[k];
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : (DEFAULTS[k] as number);
  };
  const strings = (k: keyof MappingOptions): string[] =>
    Array.isArray(p[k]) ? (p[k] as unknown[]).filter((x): x is string => typeof x === 'string').map((x) => x.trim()).filter((x) => x !== '') : [...(DEFAULTS[k] as string[])];
  const text = (k: keyof MappingOptions): string => (typeof p[k] === 'string' ? (p[k] as string) : (DEFAULTS[k] as string));
  const flag = (k: keyof MappingOptions): boolean => (typeof p[k] === 'boolean' ? (p[k] as boolean) : (DEFAULTS[k] as boolean));
  const out: MappingOptions = {
    uiBaseUrl: text('uiBaseUrl').trim(),
    bridgeVersion: text('bridgeVersion'),
    tagKinds: strings('tagKinds').map((k) => k.toLowerCase()),
    maxTags: count('maxTags'),
    tagPrefix: text('tagPrefix'),
    maxSectionBody: count('maxSectionBody'),
    extractedFiles: flag('extractedFiles'),
    extractedRelations: strings('extractedRelations').map((r) => r.toUpperCase()),
    maxDepth: count('maxDepth'),
    maxExtracted: count('maxExtracted'),
    networkIocs: flag('networkIocs'),
    staticIocs: strings('staticIocs')
      .map((s) => s.toLowerCase())
      .filter((s): s is 'ip' | 'domain' | 'uri' => s === 'ip' || s === 'domain' || s === 'uri'),
    maxIocs: count('maxIocs'),
  };
  if ((IOC_MIN_VERDICTS as readonly unknown[]).includes(p.iocMinVerdict)) out.iocMinVerdict = p.iocMinVerdict as MappingOptions['iocMinVerdict'];
  if (p.verdictThresholds !== undefined) out.verdictThresholds = normaliseThresholds(p.verdictThresholds);
  if (typeof p.maxExtractedSize === 'number' && Number.isFinite(p.maxExtractedSize) && p.maxExtractedSize >= 0) out.maxExtractedSize = Math.floor(p.maxExtractedSize);
  return out;
}

/** `<ui>/submission/<sid>` (the AL 4 UI route), or null without a UI base URL or sid. */
export function submissionLink(uiBaseUrl: string | undefined, sid: string | null | undefined): string | null {
  if (!uiBaseUrl || !sid) return null;
  let base = uiBaseUrl.trim();
  try {
    // a URL with user:password@ must not end up in a report
    const u = new URL(base);
    u.username = '';
    u.password = '';
    base = u.href;
  } catch {}
  return truncate(`${base.replace(/\/+$/, '')}/submission/${encodeURIComponent(sid)}`, 512);
}

interface BuildArgs {
  sub: NSubmission;
  view: SummaryView;
  message: NMessage | null;
  cacheHit: boolean;
  massRoot: string;
  now: string;
  options: MappingOptions;
  withRelated: boolean;
  maxScore: number;
  notes: string[];
  extraMetadata?: Record<string, unknown>;
}

function perFileScores(results: NResult[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of results) m.set(r.sha256, (m.get(r.sha256) ?? 0) + r.score);
  return m;
}

function treeMaxScore(nodes: NTreeNode[]): number | null {
  let best: number | null = null;
  const walk = (ns: NTreeNode[]): void => {
    for (const n of ns) {
      best = best === null ? n.score : Math.max(best, n.score);
      walk(n.children);
    }
  };
  walk(nodes);
  return best;
}

/** AL's max_score is the highest per-file total; compute it the same way when the document lacks it. */
function maxScoreOf(sub: NSubmission, message: NMessage | null): number {
  if (sub.maxScore !== null) return sub.maxScore;
  const scores = [...perFileScores(sub.results).values()];
  if (scores.length > 0) return Math.max(...scores);
  return treeMaxScore(sub.tree) ?? message?.score ?? 0;
}

const text = (v: unknown, max: number): string => cleanText(str(v), max);

function build(a: BuildArgs): ReportPlan {
  const { sub, view, options } = a;
  const notes = [...a.notes];
  const thresholds = normaliseThresholds(options.verdictThresholds);
  const sid = sub.sid ?? a.message?.sid ?? null;
  const verdict = verdictForScore(a.maxScore, thresholds);
  const link = submissionLink(options.uiBaseUrl, sid);
  const alRoot = sub.rootSha256 ?? a.message?.rootSha256 ?? null;

  const safelisted = new Set<string>();
  for (const t of [...view.tags, ...sub.safelistedTags]) {
    const k = /^network\.(?:dynamic|static)\.(ip|domain|uri)$/.exec(t.type)?.[1] as 'ip' | 'domain' | 'uri' | undefined;
    if (k && t.safelisted) safelisted.add(`${k}\u0000${normaliseIoc(k, t.value) ?? t.value.trim()}`);
  }
  // [Report] IOCMinVerdict (ioc-threshold.ts): IOCs are planned without the MaxIOCs cap, thresholded, then capped.
  const minVerdict = a.withRelated ? options.iocMinVerdict : undefined;
  const planned = a.withRelated
    ? planRelated({ sub, alRoot, massRoot: a.massRoot, safelisted, options: minVerdict ? { ...options, maxIocs: Number.MAX_SAFE_INTEGER } : options })
    : { items: [], notes: [], stats: null as RelatedStats | null };
  const thresholded = minVerdict && planned.stats ? applyIocThreshold({ ...planned, stats: planned.stats }, iocLevels(view.tags), minVerdict, options.maxIocs) : null;
  const related = thresholded?.plan ?? planned;
  notes.push(...related.notes);

  const tags = sampleTags(view, verdict, a.maxScore, options, thresholds, notes);
  const { resultsObject, trimmed } = resultsReport(sub, sid, options.maxSectionBody, link);
  if (trimmed > 0) notes.push(`${trimmed} section bod${trimmed === 1 ? 'y' : 'ies'} trimmed to ${options.maxSectionBody} characters`);
  if (sub.missingResultKeys > 0 || sub.missingErrorKeys > 0 || sub.missingFileKeys > 0) {
    notes.push(
      `Assemblyline could not load ${sub.missingResultKeys} result(s), ${sub.missingErrorKeys} error(s) and ${sub.missingFileKeys} file record(s) of this submission`,
    );
  }

  const services = [...new Set(sub.results.map((r) => r.service))].sort(cmp);
  const treeShas = new Set<string>();
  const collect = (ns: NTreeNode[]): void => {
    for (const n of ns) {
      treeShas.add(n.sha256);
      collect(n.children);
    }
  };
  collect(sub.tree);
  for (const r of sub.results) treeShas.add(r.sha256);

  // Two objects, not three: MASS stores each JSON report object as a GridFS file, its largest cost per report.
  const jsonReportObjects: Record<string, unknown> = {
    al_summary: summaryReport(view, sid, link, verdict, a.maxScore, related.stats, notes, a.now),
    al_results: { ...resultsObject, file_tree: fileTreeReport(sub) },
  };
  if (sub.errors.length > 0) jsonReportObjects.al_errors = errorsReport(sub, sid);
  const summaryRelated = (jsonReportObjects.al_summary as Record<string, unknown>).related;
  if (thresholded && isRecord(summaryRelated)) summaryRelated.iocs_below_min_verdict = thresholdReport(thresholded.outcome);

  // MASS loads additional_metadata with every report list: small, flat values, keys without '.' or '$'
  const MAX_SERVICES = 25;
  const assemblyline: Record<string, unknown> = {
    sid,
    link,
    max_score: a.maxScore,
    verdict,
    file_count: sub.fileCount ?? (treeShas.size > 0 ? treeShas.size : null),
    error_count: sub.errorCount ?? sub.errors.length,
    services: services.slice(0, MAX_SERVICES).map((s) => truncate(s, 48)),
    completed: sub.completed,
    cache_hit: a.cacheHit,
    bridge_version: truncate(options.bridgeVersion, 64),
  };
  if (services.length > MAX_SERVICES) assemblyline.services_total = services.length;
  if (a.message?.ingestId) assemblyline.ingest_id = a.message.ingestId;
  if (sub.state !== null && sub.state !== 'completed') assemblyline.state = sub.state;
  if (alRoot !== null && alRoot !== a.massRoot) assemblyline.analysed_sha256 = alRoot;
  if (notes.length > 0) assemblyline.notes = notes.length;
  Object.assign(assemblyline, a.extraMetadata ?? {});

  return {
    additionalMetadata: { assemblyline },
    jsonReportObjects,
    tags,
    related: related.items,
    notes,
    verdict,
    maxScore: a.maxScore,
    sid,
  };
}

function sampleTags(
  view: SummaryView,
  verdict: ReportPlan['verdict'],
  maxScore: number,
  options: MappingOptions,
  thresholds: ReturnType<typeof normaliseThresholds>,
  notes: string[],
): string[] {
  const kinds = new Set(options.tagKinds.map((k) => k.toLowerCase()));
  const p = options.tagPrefix;
  const out: string[] = [];
  const seen = new Set<string>(); // a Set, not out.includes: a result may carry 100 000 tags
  const add = (t: string | null): void => {
    if (t !== null && !seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  };
  if (kinds.has('verdict')) add(makeTag(p, 'verdict', verdict));
  if (kinds.has('score')) add(makeTag(p, 'score', scoreBucket(maxScore, thresholds)));
  if (kinds.has('family')) {
    const families = view.tags.filter((t) => t.type === 'attribution.family' && !t.safelisted).map((t) => makeTag(p, 'family', t.value));
    families.filter((t): t is string => t !== null).sort(cmp).forEach(add);
  }
  if (kinds.has('attack')) {
    view.attack.map((a) => makeTag(p, 'attack', a.id)).filter((t): t is string => t !== null).sort(cmp).forEach(add);
  }
  if (kinds.has('heuristic')) {
    view.heuristics
      .filter((h) => h.level === 'malicious' || h.level === 'suspicious')
      .map((h) => makeTag(p, 'heuristic', h.id))
      .filter((t): t is string => t !== null)
      .sort(cmp)
      .forEach(add);
  }
  if (out.length > options.maxTags) {
    notes.push(`${out.length - options.maxTags} sample tag(s) not set: MaxTags is ${options.maxTags}`);
    return out.slice(0, options.maxTags);
  }
  return out;
}

function summaryReport(
  view: SummaryView,
  sid: string | null,
  link: string | null,
  verdict: ReportPlan['verdict'],
  maxScore: number,
  stats: RelatedStats | null,
  notes: string[],
  now: string,
): Record<string, unknown> {
  const tags: Record<string, unknown> = {};
  for (const g of TAG_GROUPS) {
    tags[g] = view.tags.filter((t) => t.group === g).map((t) => ({ type: t.type, value: t.value, level: t.level, safelisted: t.safelisted }));
  }
  const heuristics: Record<string, unknown> = {};
  for (const l of LEVELS) heuristics[l] = view.heuristics.filter((h) => h.level === l).map((h) => ({ heur_id: h.id, name: h.name }));
  const categories = [...new Set(view.attack.flatMap((a) => (a.categories.length > 0 ? a.categories : ['unknown'])))].sort(cmp);
  const attackMatrix = categories.map((category) => ({
    category,
    techniques: view.attack
      .filter((a) => (a.categories.length > 0 ? a.categories.includes(category) : category === 'unknown'))
      .sort((x, y) => cmp(x.id, y.id))
      .map((a) => ({ attack_id: a.id, pattern: a.pattern, level: a.level })),
  }));
  return {
    format_version: REPORT_FORMAT_VERSION,
    sid,
    link,
    verdict,
    max_score: maxScore,
    source: view.source,
    partial: view.partial,
    reported_at: text(nowOr(now), 64),
    tags,
    heuristics,
    attack_matrix: attackMatrix,
    related: stats
      ? {
          files: stats.files,
          files_cut_by_max_extracted: stats.filesCutByMaxExtracted,
          files_beyond_max_depth: stats.filesBeyondMaxDepth,
          files_with_other_relation: stats.filesWithOtherRelation,
          files_too_large: stats.filesTooLarge,
          files_under_omitted_parent: stats.filesUnderOmittedParent,
          iocs: stats.iocs,
          iocs_cut_by_max_iocs: stats.iocsCutByMaxIocs,
          iocs_safelisted: stats.iocsSafelisted,
          iocs_invalid: stats.iocsInvalid,
        }
      : null,
    notes,
  };
}

function nowOr(now: unknown): string {
  return typeof now === 'string' ? now : '';
}

/** Files in tree order (root first), then files that have results but no tree node. */
function fileOrder(sub: NSubmission): string[] {
  const order = new Set<string>();
  const walk = (ns: NTreeNode[]): void => {
    for (const n of ns) {
      order.add(n.sha256);
      walk(n.children);
    }
  };
  if (sub.rootSha256) order.add(sub.rootSha256);
  walk(sub.tree);
  for (const sha of [...sub.results.map((r) => r.sha256), ...sub.errors.map((e) => e.sha256)].sort(cmp)) order.add(sha);
  return [...order];
}

function namesAndTypes(sub: NSubmission): Map<string, { name: string | null; type: string | null; score: number | null }> {
  const m = new Map<string, { name: string | null; type: string | null; score: number | null }>();
  const walk = (ns: NTreeNode[]): void => {
    for (const n of ns) {
      if (!m.has(n.sha256)) m.set(n.sha256, { name: n.names[0] ?? null, type: n.type || null, score: n.score });
      walk(n.children);
    }
  };
  walk(sub.tree);
  for (const r of sub.results) {
    for (const e of r.extracted) if (!m.has(e.sha256)) m.set(e.sha256, { name: e.name, type: null, score: null });
  }
  if (sub.rootSha256 && !m.has(sub.rootSha256)) m.set(sub.rootSha256, { name: sub.rootName, type: null, score: null });
  for (const [sha, info] of sub.fileInfos) {
    const cur = m.get(sha);
    if (cur && cur.type === null) cur.type = info.type;
  }
  return m;
}

function sectionReport(s: NSection, maxBody: number): { section: Record<string, unknown>; trimmed: boolean } {
  const out: Record<string, unknown> = {
    title: s.title,
    depth: s.depth,
    body_format: s.format,
    heuristic: s.heuristic
      ? {
          heur_id: s.heuristic.id,
          name: s.heuristic.name,
          score: s.heuristic.score,
          attack_ids: [...new Set(s.heuristic.attack.map((a) => a.id))],
          signatures: s.heuristic.signatures,
        }
      : null,
    tags: s.tags.map((t) => ({ type: t.type, value: t.value, safelisted: t.safelisted })),
  };
  if (s.body === null || s.body === undefined) {
    out.body = null;
    return { section: out, trimmed: false };
  }
  const serialised = typeof s.body === 'string' ? s.body : safeStringify(s.body);
  if (serialised.length <= maxBody) {
    // round-trip so the object holds plain JSON only
    out.body = typeof s.body === 'string' ? s.body : safeParse(serialised);
    return { section: out, trimmed: false };
  }
  out.body = serialised.slice(0, maxBody);
  out.body_truncated = true;
  out.body_length = serialised.length;
  out.body_note = `Body trimmed to ${maxBody} of ${serialised.length} characters${typeof s.body === 'string' ? '' : ' of its JSON text'}; the full section is in Assemblyline.`;
  return { section: out, trimmed: true };
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

function resultsReport(sub: NSubmission, sid: string | null, maxBody: number, link: string | null): { resultsObject: Record<string, unknown>; trimmed: number } {
  let trimmed = 0;
  const info = namesAndTypes(sub);
  const scores = perFileScores(sub.results);
  const byFile = new Map<string, NResult[]>();
  for (const r of sub.results) {
    const list = byFile.get(r.sha256);
    if (list) list.push(r);
    else byFile.set(r.sha256, [r]);
  }
  const files = fileOrder(sub)
    .filter((sha) => byFile.has(sha))
    .map((sha) => {
      const i = info.get(sha);
      return {
        sha256: sha,
        name: i?.name ?? null,
        type: i?.type ?? null,
        score: scores.get(sha) ?? i?.score ?? 0,
        results: (byFile.get(sha) ?? []).map((r) => ({
          service: r.service,
          service_version: r.serviceVersion,
          score: r.score,
          empty: r.empty,
          sections: r.sections.map((s) => {
            const x = sectionReport(s, maxBody);
            if (x.trimmed) trimmed++;
            return x.section;
          }),
          extracted: r.extracted.map((e) => ({ sha256: e.sha256, name: e.name, parent_relation: e.relation, description: e.description })),
          supplementary: r.supplementary.map((e) => ({ sha256: e.sha256, name: e.name, description: e.description })),
        })),
      };
    });
  return {
    resultsObject: { format_version: REPORT_FORMAT_VERSION, sid, link, max_section_body: maxBody, files },
    trimmed,
  };
}

/** `al_results.file_tree`: the submission's file tree with each child's parent_relation (docs/report-format.md). */
function fileTreeReport(sub: NSubmission): Record<string, unknown> {
  const relation = new Map<string, string>();
  for (const r of sub.results) for (const e of r.extracted) if (!relation.has(`${r.sha256}:${e.sha256}`)) relation.set(`${r.sha256}:${e.sha256}`, e.relation);
  const convert = (n: NTreeNode, parent: string | null, depth: number): Record<string, unknown> => ({
    sha256: n.sha256,
    name: n.names[0] ?? null,
    names: n.names,
    type: n.type || null,
    size: n.size,
    score: n.score,
    depth,
    parent_relation: parent === null ? 'ROOT' : (relation.get(`${parent}:${n.sha256}`) ?? null),
    truncated: n.truncated,
    children: n.children.map((c) => convert(c, n.sha256, depth + 1)),
  });
  return {
    root_sha256: sub.rootSha256,
    tree: sub.tree.map((n) => convert(n, null, 0)),
  };
}

function errorsReport(sub: NSubmission, sid: string | null): Record<string, unknown> {
  const info = namesAndTypes(sub);
  return {
    format_version: REPORT_FORMAT_VERSION,
    sid,
    count: sub.errors.length,
    errors: sub.errors.map((e) => ({
      sha256: e.sha256,
      file_name: info.get(e.sha256)?.name ?? null,
      service: e.service,
      service_version: e.serviceVersion,
      type: e.type,
      severity: e.severity,
      status: e.status,
      message: e.message,
    })),
  };
}

/** A plan that still closes the MASS item if something unforeseen happens inside the mapping. */
function fallbackPlan(err: unknown, options: MappingOptions, cacheHit: boolean): ReportPlan {
  const note = `mapping failed: ${text(err instanceof Error ? err.message : err, 200) || 'unknown error'}`;
  return {
    additionalMetadata: { assemblyline: { sid: null, cache_hit: cacheHit, bridge_version: truncate(options.bridgeVersion, 64), mapping_error: true } },
    jsonReportObjects: { al_summary: { format_version: REPORT_FORMAT_VERSION, notes: [note] } },
    tags: [],
    related: [],
    notes: [note],
    verdict: 'info',
    maxScore: 0,
    sid: null,
  };
}

function safeOptions(options: unknown): MappingOptions {
  try {
    return defaultMappingOptions(options as Partial<MappingOptions>);
  } catch {
    return defaultMappingOptions();
  }
}

/**
 * The report for one analysed MASS sample.
 * `input.full` is `/submission/full/` (any 4.x layout, envelope or not; a bare `/submission/tree/` answer works
 * too); `input.summary` (optional) is `/submission/summary/`; `input.message` the notification message.
 */
export function mapSubmissionToReport(input: MappingInput, options: MappingOptions): ReportPlan {
  const opts = safeOptions(options);
  const inp: Record<string, unknown> = isRecord(input) ? input : {};
  const cacheHit = inp.cacheHit === true;
  try {
    const sub = normaliseSubmission(inp.full);
    const message = normaliseMessage(inp.message);
    const notes: string[] = [];
    const hasResults = sub.sid !== null || sub.results.length > 0 || sub.tree.length > 0;
    if (!hasResults) notes.push('no Assemblyline results document: report built from the notification message only');
    const chosen = chooseSummaryView(inp.summary, sub.results, sub.state === null || sub.state === 'completed');
    if (chosen.note !== null) notes.push(chosen.note);
    const view = chosen.view;
    const massRoot = sha256Of(inp.rootSha256) ?? sub.rootSha256 ?? message?.rootSha256 ?? '';
    return build({
      sub,
      view,
      message,
      cacheHit,
      massRoot,
      now: nowOr(inp.now),
      options: opts,
      withRelated: massRoot !== '',
      maxScore: maxScoreOf(sub, message),
      notes,
    });
  } catch (err) {
    return fallbackPlan(err, opts, cacheHit);
  }
}

export interface OwnSampleInput {
  /** The parent's `/submission/full/` payload. */
  full: unknown;
  /** sha256 of the file the bridge extracted and submitted to MASS, now scheduled for analysis. */
  sha256: string;
  /** sid of the parent's submission (defaults to the sid inside `full`). */
  parentSid?: string | null;
  cacheHit?: boolean;
  now: string;
}

/** Every file reachable from `sha` through results' extracted lists and the tree. */
function subtreeOf(sub: NSubmission, sha: string): { shas: Set<string>; node: NTreeNode | null } {
  const children = new Map<string, Set<string>>();
  const add = (p: string, c: string): void => {
    const s = children.get(p);
    if (s) s.add(c);
    else children.set(p, new Set([c]));
  };
  for (const r of sub.results) for (const e of r.extracted) add(r.sha256, e.sha256);
  let node: NTreeNode | null = null;
  const walk = (ns: NTreeNode[]): void => {
    for (const n of ns) {
      for (const c of n.children) add(n.sha256, c.sha256);
      // prefer the occurrence that carries children (AL marks repeats as truncated)
      if (n.sha256 === sha && (node === null || (node.children.length === 0 && n.children.length > 0))) node = n;
      walk(n.children);
    }
  };
  walk(sub.tree);
  const shas = new Set<string>([sha]);
  const queue = [sha];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      if (shas.has(c)) continue;
      shas.add(c);
      queue.push(c);
    }
  }
  return { shas, node };
}

/**
 * Echo-back answer (MASS.md §7: a file the bridge submits comes back to the bridge as new work): the report
 * for one file of a parent submission, made from the parent's results without a new ingest. The plan covers
 * the file's own results and its subtree, and has no related items, so nothing is submitted again (no loop).
 */
export function mapOwnSampleReport(input: OwnSampleInput, options: MappingOptions): ReportPlan {
  const opts = safeOptions(options);
  const inp: Record<string, unknown> = isRecord(input) ? input : {};
  const cacheHit = inp.cacheHit === true;
  try {
    const full = normaliseSubmission(inp.full);
    const sha = sha256Of(inp.sha256) ?? '';
    const parentSid = typeof inp.parentSid === 'string' && inp.parentSid !== '' ? text(inp.parentSid, 64) : full.sid;
    const { shas, node } = subtreeOf(full, sha);
    const results = full.results.filter((r) => shas.has(r.sha256));
    const errors = full.errors.filter((e) => shas.has(e.sha256));
    const extractedName = full.results.flatMap((r) => r.extracted).find((e) => e.sha256 === sha)?.name ?? null;
    const info = full.fileInfos.get(sha);
    const tree: NTreeNode[] = node
      ? [node]
      : sha === ''
        ? []
        : [{ sha256: sha, names: extractedName ? [extractedName] : [], type: info?.type ?? '', size: info?.size ?? null, score: 0, truncated: false, children: [] }];
    const sub: NSubmission = {
      ...full,
      sid: parentSid,
      maxScore: null,
      fileCount: shas.size,
      errorCount: errors.length,
      rootSha256: sha || null,
      rootName: node?.names[0] ?? extractedName,
      tree,
      results,
      errors,
      fileInfos: new Map([...full.fileInfos].filter(([k]) => shas.has(k))),
      missingResultKeys: 0,
      missingErrorKeys: 0,
      missingFileKeys: 0,
    };
    const notes: string[] = [];
    if (sha === '') notes.push('no valid sha256 given for the file');
    else if (results.length === 0 && !node) notes.push(`file ${sha} not found in Assemblyline submission ${parentSid ?? '(unknown)'}`);
    return build({
      sub,
      view: summaryFromResults(results),
      message: null,
      cacheHit,
      massRoot: sha,
      now: nowOr(inp.now),
      options: opts,
      withRelated: false,
      // sub.maxScore is null: the highest per-file total of the subtree's results, else of its tree
      maxScore: maxScoreOf(sub, null),
      notes,
      extraMetadata: { answered_from_parent_submission: true, parent_sid: parentSid, sha256: sha || null },
    });
  } catch (err) {
    return fallbackPlan(err, opts, cacheHit);
  }
}

/**
 * Whether the file (sha256, lower-case hex) is an extracted child in this `submission/full` answer: listed in a
 * result's `response.extracted`, or a node below the root of `file_tree` (ASSEMBLYLINE.md §6.3). The submitted
 * file itself is not a child. Used before a file another bridge submitted to MASS is answered from the
 * submission its tags name: the tags are only trusted when Assemblyline confirms them.
 */
export function extractedChildIn(full: unknown, sha256: string): boolean {
  const sha = sha256Of(sha256);
  if (sha === null) return false;
  let sub: NSubmission;
  try {
    sub = normaliseSubmission(full);
  } catch {
    return false;
  }
  if (sub.results.some((r) => r.extracted.some((e) => e.sha256 === sha))) return true;
  const below = (nodes: NTreeNode[]): boolean => nodes.some((n) => n.sha256 === sha || below(n.children));
  return sub.tree.some((root) => below(root.children));
}

export interface ErrorReportInput {
  /** Machine-readable reason, e.g. a BridgeError code (AL_SKIPPED, SAMPLE_TOO_LARGE, …). */
  code: string;
  /** Human-readable reason; must not contain secrets (callers pass BridgeError messages). */
  message: string;
  sid?: string | null;
  ingestId?: string | null;
  attempts?: number;
  bridgeVersion: string;
  uiBaseUrl?: string;
  now: string;
}

/**
 * A failure report. MASS ignores the report `status`: a non-null error_message is the only failure signal
 * (MASS.md §6). No sample tags: MASS merges tags into the sample for good, and a later successful analysis
 * could not remove an error tag.
 */
export function mapErrorReport(input: ErrorReportInput): ErrorReportPlan {
  const inp: Record<string, unknown> = isRecord(input) ? input : {};
  const code = text(inp.code, 64).trim() || 'UNKNOWN';
  const message = text(inp.message, 2000).replace(/\s+/g, ' ').trim();
  const sid = typeof inp.sid === 'string' && inp.sid !== '' ? text(inp.sid, 64) : null;
  const ingestId = typeof inp.ingestId === 'string' && inp.ingestId !== '' ? text(inp.ingestId, 64) : null;
  const attempts = typeof inp.attempts === 'number' && Number.isFinite(inp.attempts) ? Math.max(0, Math.floor(inp.attempts)) : null;
  const errorMessage = `Assemblyline analysis failed (${code})${message ? `: ${message}` : ''}`;
  const assemblyline: Record<string, unknown> = {
    error: true,
    code,
    sid,
    ingest_id: ingestId,
    link: submissionLink(typeof inp.uiBaseUrl === 'string' ? inp.uiBaseUrl : undefined, sid),
    attempts,
    bridge_version: text(inp.bridgeVersion, 64) || 'unknown',
    reported_at: text(inp.now, 64),
  };
  return { errorMessage, additionalMetadata: { assemblyline }, tags: [] };
}
