/**
 * The related-samples plan: extracted files (with their parent) and network IOCs (with the file that
 * produced them) that the bridge turns into MASS samples and sample relations (MASS.md §7, §8).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import type { NSubmission, NTreeNode } from './normalize.js';
import { cmp } from './normalize.js';
import type { MappingOptions, RelatedItem } from './types.js';

export type FileItem = Extract<RelatedItem, { kind: 'file' }>;
export type IocItem = Extract<RelatedItem, { kind: 'ip' | 'domain' | 'uri' }>;
type IocKind = IocItem['kind'];

const RELATION_OF: Record<IocKind, IocItem['relation']> = {
  ip: 'contacted-by',
  domain: 'resolved-by',
  uri: 'retrieved-by',
};

/**
 * What the plan did with the extracted files and IOCs. File counts are relations, one per (file, parent)
 * pair reachable from the analysed sample, and every such pair is counted exactly once: as a planned
 * item (`files`) or under the first reason that keeps it out, checked in this order: deeper than
 * MaxDepth, its parent is not related, relation not in ExtractedRelations (counted per file), larger
 * than MaxExtractedSize (counted per file), cut by MaxExtracted.
 */
export interface RelatedStats {
  files: number;
  filesCutByMaxExtracted: number;
  /** Relations deeper than MaxDepth, also those below a file that is itself too deep. */
  filesBeyondMaxDepth: number;
  filesWithOtherRelation: number;
  /** Files whose known size is above `MappingOptions.maxExtractedSize`. */
  filesTooLarge: number;
  /** Relations within MaxDepth whose parent file is not related (skipped, too large or cut), so it has no MASS sample to point at. */
  filesUnderOmittedParent: number;
  iocs: number;
  iocsCutByMaxIocs: number;
  iocsSafelisted: number;
  iocsInvalid: number;
}

export interface RelatedPlan {
  items: RelatedItem[];
  notes: string[];
  stats: RelatedStats;
}

interface Candidate {
  relation: string;
  name: string;
  service?: string;
}

/** `sid` relations and IOC plans keep AL's root and the MASS sample apart: they differ for CaRT uploads. */
export interface RelatedContext {
  sub: NSubmission;
  /** The file AL analysed (files[0]) or null. */
  alRoot: string | null;
  /** The MASS sample the report is for; root relations point to it. */
  massRoot: string;
  /** `kind\0value` of IOCs marked safelisted elsewhere (e.g. in the summary). */
  safelisted: Set<string>;
  options: MappingOptions;
}

export function planRelated(ctx: RelatedContext): RelatedPlan {
  const notes: string[] = [];
  const stats: RelatedStats = {
    files: 0,
    filesCutByMaxExtracted: 0,
    filesBeyondMaxDepth: 0,
    filesWithOtherRelation: 0,
    filesTooLarge: 0,
    filesUnderOmittedParent: 0,
    iocs: 0,
    iocsCutByMaxIocs: 0,
    iocsSafelisted: 0,
    iocsInvalid: 0,
  };
  const files = ctx.options.extractedFiles ? planFiles(ctx, stats) : [];
  if (stats.filesCutByMaxExtracted > 0) {
    notes.push(`${stats.filesCutByMaxExtracted} extracted file relation(s) not reported: MaxExtracted is ${ctx.options.maxExtracted}`);
  }
  if (stats.filesBeyondMaxDepth > 0) {
    notes.push(`${stats.filesBeyondMaxDepth} extracted file relation(s) deeper than MaxDepth ${ctx.options.maxDepth} not reported`);
  }
  if (stats.filesWithOtherRelation > 0) {
    notes.push(
      `${stats.filesWithOtherRelation} extracted file(s) skipped: parent_relation not in ExtractedRelations (${ctx.options.extractedRelations.join(',') || 'none'})`,
    );
  }
  if (stats.filesTooLarge > 0) {
    notes.push(`${stats.filesTooLarge} extracted file(s) skipped: larger than MaxExtractedSize (${ctx.options.maxExtractedSize} bytes)`);
  }
  if (stats.filesUnderOmittedParent > 0) {
    notes.push(`${stats.filesUnderOmittedParent} extracted file relation(s) not reported: the file they were extracted from is not reported`);
  }
  const iocs = ctx.options.networkIocs ? planIocs(ctx, new Set(files.map((f) => f.sha256)), stats, notes) : [];
  if (stats.iocsCutByMaxIocs > 0) notes.push(`${stats.iocsCutByMaxIocs} network IOC(s) not reported: MaxIOCs is ${ctx.options.maxIocs}`);
  stats.files = files.length;
  stats.iocs = iocs.length;
  return { items: [...files, ...iocs], notes, stats };
}

function planFiles(ctx: RelatedContext, stats: RelatedStats): FileItem[] {
  const { sub, options } = ctx;
  const start = ctx.alRoot ?? ctx.massRoot;
  const isRoot = (sha: string): boolean => sha === start || sha === ctx.massRoot;
  const edges = new Map<string, Map<string, Candidate[]>>();
  const addEdge = (parent: string, child: string, c: Candidate): void => {
    if (parent === child || isRoot(child)) return;
    let m = edges.get(parent);
    if (!m) edges.set(parent, (m = new Map()));
    const list = m.get(child);
    if (list) list.push(c);
    else m.set(child, [c]);
  };

  const extractedShas = new Set<string>();
  const supplementaryShas = new Set<string>();
  for (const r of sub.results) {
    for (const e of r.extracted) {
      // section images are screenshots for the AL UI, not samples
      if (e.isSectionImage) continue;
      extractedShas.add(e.sha256);
      addEdge(r.sha256, e.sha256, { relation: e.relation, name: e.name, service: r.service });
    }
    for (const s of r.supplementary) supplementaryShas.add(s.sha256);
  }
  for (const [sha, info] of sub.fileInfos) if (info.isSupplementary) supplementaryShas.add(sha);

  const sizes = new Map<string, number>();
  const treeNames = new Map<string, string>();
  // the tree repeats what results extracted; it alone knows children whose result is missing (e.g. tree-only input)
  const walk = (nodes: NTreeNode[], parent: string | null): void => {
    for (const n of nodes) {
      if (n.size !== null && !sizes.has(n.sha256)) sizes.set(n.sha256, n.size);
      if (n.names[0] !== undefined && !treeNames.has(n.sha256)) treeNames.set(n.sha256, n.names[0]);
      if (parent !== null) {
        const known = edges.get(parent)?.get(n.sha256);
        const supplementaryOnly =
          (supplementaryShas.has(n.sha256) || sub.listedSupplementary.has(n.sha256)) && !extractedShas.has(n.sha256) && !sub.listedExtracted.has(n.sha256);
        // AL's model default parent_relation is EXTRACTED
        if (!known && !supplementaryOnly) addEdge(parent, n.sha256, { relation: 'EXTRACTED', name: n.names[0] ?? n.sha256 });
      }
      walk(n.children, n.sha256);
    }
  };
  walk(sub.tree, null);
  for (const [sha, info] of sub.fileInfos) if (info.size !== null && !sizes.has(sha)) sizes.set(sha, info.size);

  const allowed = options.extractedRelations.map((r) => r.toUpperCase());
  const maxSize = options.maxExtractedSize;
  const childrenOf = (sha: string): Array<[string, Candidate[]]> =>
    [...(edges.get(sha) ?? new Map<string, Candidate[]>()).entries()].sort((a, b) => cmp(a[0], b[0]));
  const items: FileItem[] = [];
  const seenPairs = new Set<string>();
  const expanded = new Set<string>([start, ctx.massRoot]);
  const queue: Array<{ sha: string; depth: number }> = [{ sha: start, depth: 0 }];
  const rejected = new Set<string>();
  const tooLarge = new Set<string>();
  /** Files reached but not related, with the depth they were reached at: their own children are counted below. */
  const omitted: Array<{ sha: string; depth: number }> = [];
  while (queue.length > 0) {
    const { sha: parent, depth } = queue.shift()!;
    for (const [child, candidates] of childrenOf(parent)) {
      const pair = `${child}:${parent}`;
      if (seenPairs.has(pair)) continue;
      seenPairs.add(pair);
      if (depth + 1 > options.maxDepth) {
        stats.filesBeyondMaxDepth++;
        omitted.push({ sha: child, depth: depth + 1 });
        continue;
      }
      const chosen = candidates
        .filter((c) => allowed.includes(c.relation))
        .sort((a, b) => allowed.indexOf(a.relation) - allowed.indexOf(b.relation))[0];
      if (!chosen) {
        // its children stay out too: their parent will not exist in MASS
        if (!rejected.has(child)) stats.filesWithOtherRelation++;
        rejected.add(child);
        omitted.push({ sha: child, depth: depth + 1 });
        continue;
      }
      const size = sizes.get(child) ?? null;
      if (maxSize !== undefined && size !== null && size > maxSize) {
        if (!tooLarge.has(child)) stats.filesTooLarge++;
        tooLarge.add(child);
        omitted.push({ sha: child, depth: depth + 1 });
        continue;
      }
      if (items.length >= options.maxExtracted) {
        stats.filesCutByMaxExtracted++;
        omitted.push({ sha: child, depth: depth + 1 });
        continue;
      }
      const parentIsRoot = isRoot(parent);
      const parentSha = parentIsRoot ? ctx.massRoot : parent;
      items.push({
        kind: 'file',
        key: `file:${child}`,
        relationKey: `file:${child}:${parentSha}`,
        sha256: child,
        name: chosen.name || treeNames.get(child) || child,
        parentSha256: parentSha,
        parentRelation: chosen.relation,
        depth: depth + 1,
        size,
        relation: 'dropped-by',
        ...(parentIsRoot ? {} : { dependsOn: `file:${parent}` }),
        ...(chosen.service ? { service: chosen.service } : {}),
      });
      if (!expanded.has(child)) {
        expanded.add(child);
        queue.push({ sha: child, depth: depth + 1 });
      }
    }
  }
  countBelowOmitted(omitted, expanded, seenPairs, childrenOf, options.maxDepth, stats);
  return items;
}

/**
 * Counts the relations below files that were reached but not related (each reached at its smallest
 * depth): deeper than MaxDepth, or else under an omitted parent. Files that are related through another
 * parent were expanded by the plan and are not walked again.
 */
function countBelowOmitted(
  omitted: Array<{ sha: string; depth: number }>,
  expanded: Set<string>,
  seenPairs: Set<string>,
  childrenOf: (sha: string) => Array<[string, Candidate[]]>,
  maxDepth: number,
  stats: RelatedStats,
): void {
  const depthOf = new Map<string, number>();
  const byDepth = new Map<number, string[]>();
  const reach = (sha: string, depth: number): void => {
    if (expanded.has(sha)) return;
    const known = depthOf.get(sha);
    if (known !== undefined && known <= depth) return;
    depthOf.set(sha, depth);
    const bucket = byDepth.get(depth);
    if (bucket) bucket.push(sha);
    else byDepth.set(depth, [sha]);
  };
  for (const o of omitted) reach(o.sha, o.depth);
  const done = new Set<string>();
  for (let depth = 1; byDepth.size > 0; depth++) {
    const bucket = byDepth.get(depth) ?? [];
    byDepth.delete(depth);
    for (const sha of bucket) {
      if (done.has(sha) || depthOf.get(sha) !== depth) continue;
      done.add(sha);
      for (const [child] of childrenOf(sha)) {
        const pair = `${child}:${sha}`;
        if (seenPairs.has(pair)) continue;
        seenPairs.add(pair);
        if (depth + 1 > maxDepth) stats.filesBeyondMaxDepth++;
        else stats.filesUnderOmittedParent++;
        reach(child, depth + 1);
      }
    }
  }
}

const IOC_KINDS: readonly IocKind[] = ['ip', 'domain', 'uri'];

function iocKindOf(type: string, staticKinds: readonly string[]): { kind: IocKind; dynamic: boolean } | null {
  const m = /^network\.(dynamic|static)\.(ip|domain|uri)$/.exec(type);
  if (!m) return null;
  const kind = m[2] as IocKind;
  if (m[1] === 'dynamic') return { kind, dynamic: true };
  return staticKinds.includes(kind) ? { kind, dynamic: false } : null;
}

/** The canonical value of an IOC, or null when it is not a syntactically valid one. */
export function normaliseIoc(kind: IocKind, raw: string): string | null {
  const value = raw.trim();
  if (value === '' || value.length > 2048) return null;
  if (kind === 'ip') {
    const ip = value.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    // zone ids (fe80::1%eth0) are local to the sandbox
    return !ip.includes('%') && isIP(ip) !== 0 ? ip : null;
  }
  if (kind === 'domain') return normaliseDomain(value);
  return isAbsoluteUrl(value) ? value : null;
}

const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const TLD_RE = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

export function normaliseDomain(raw: string): string | null {
  let d = raw.trim().toLowerCase().replace(/\.$/, '');
  if (d === '' || /[\s/:@?#]/.test(d)) return null;
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(d)) d = domainToASCII(d);
  if (d === '' || d.length > 253) return null;
  const labels = d.split('.');
  if (labels.length < 2) return null;
  if (!labels.every((l) => LABEL_RE.test(l))) return null;
  return TLD_RE.test(labels[labels.length - 1]) ? d : null;
}

export function isAbsoluteUrl(value: string): boolean {
  if (/\s/.test(value)) return false;
  try {
    const u = new URL(value);
    return /^[a-z][a-z0-9+.-]*:$/.test(u.protocol) && u.hostname !== '';
  } catch {
    return false;
  }
}

function planIocs(ctx: RelatedContext, plannedFiles: Set<string>, stats: RelatedStats, notes: string[]): IocItem[] {
  const { sub, options } = ctx;
  const root = ctx.alRoot ?? ctx.massRoot;
  // root results first, then by sha256: the first file that shows an IOC is its source
  const results = [...sub.results].sort((a, b) => Number(b.sha256 === root) - Number(a.sha256 === root) || cmp(a.sha256, b.sha256));
  const staticKinds = options.staticIocs;
  const safelisted = new Set(ctx.safelisted);
  // a value safelisted anywhere is never reported (AL safelists per tag occurrence)
  for (const r of results) {
    for (const s of r.sections) {
      for (const tag of s.tags) {
        if (!tag.safelisted) continue;
        const k = /^network\.(?:dynamic|static)\.(ip|domain|uri)$/.exec(tag.type)?.[1] as IocKind | undefined;
        if (!k) continue;
        const v = normaliseIoc(k, tag.value);
        safelisted.add(`${k}\u0000${v ?? tag.value.trim()}`);
      }
    }
  }
  const items: IocItem[] = [];
  const seen = new Set<string>();
  const invalid: Record<IocKind, number> = { ip: 0, domain: 0, uri: 0 };
  const safelistedSeen = new Set<string>();
  const cut = new Set<string>();
  for (const pass of [true, false]) {
    for (const r of results) {
      for (const s of r.sections) {
        for (const tag of s.tags) {
          const k = iocKindOf(tag.type, staticKinds);
          if (!k || k.dynamic !== pass) continue;
          const value = normaliseIoc(k.kind, tag.value);
          if (value === null) {
            invalid[k.kind]++;
            continue;
          }
          const key = `${k.kind}\u0000${value}`;
          if (tag.safelisted || safelisted.has(key)) {
            safelistedSeen.add(key);
            continue;
          }
          if (seen.has(key)) continue;
          seen.add(key);
          if (items.length >= options.maxIocs) {
            cut.add(key);
            continue;
          }
          const source = r.sha256 === root || r.sha256 === ctx.massRoot ? ctx.massRoot : r.sha256;
          const known = source === ctx.massRoot || plannedFiles.has(source);
          items.push({
            kind: k.kind,
            key: `${k.kind}:${value}`,
            value,
            tagType: tag.type,
            sourceSha256: known ? source : ctx.massRoot,
            relation: RELATION_OF[k.kind],
            ...(known ? {} : { observedInSha256: source }),
            ...(known && source !== ctx.massRoot ? { dependsOn: `file:${source}` } : {}),
          });
        }
      }
    }
  }
  for (const kind of IOC_KINDS) {
    if (invalid[kind] > 0) {
      const what = kind === 'ip' ? 'valid IP addresses' : kind === 'domain' ? 'plausible host names' : 'absolute URLs';
      notes.push(`${invalid[kind]} ${kind} tag value(s) dropped: not ${what}`);
    }
  }
  stats.iocsInvalid = invalid.ip + invalid.domain + invalid.uri;
  stats.iocsSafelisted = safelistedSeen.size;
  stats.iocsCutByMaxIocs = cut.size;
  return items;
}

/**
 * Where one planned related item's relation points, decided by the relating step while it walks
 * `ReportPlan.related` in order (files come parents first, so a parent's fate is known before its
 * children are reached).
 *
 * `hasMassSample(key)` answers whether the file item with that key (`file:<sha256>`) got a MASS sample
 * in this job (created now or earlier). Answers:
 * - `{ action: 'relate', otherKey: null }`: relate to the analysed MASS sample (the scheduled one).
 * - `{ action: 'relate', otherKey: 'file:<sha256>' }`: relate to that file item's MASS sample.
 * - `{ action: 'relate', otherKey: null, note }` (IOC items only): the file whose result carried the IOC
 *   has no MASS sample, so the IOC is related to the analysed sample, as the plan already does for IOCs
 *   of files it does not relate (`observedInSha256`); `note` says so for the report.
 * - `{ action: 'skip', reason }` (file items only): the parent has no MASS sample (too large, refused
 *   by MASS, skipped). Neither upload the file nor relate it: `dropped-by` the analysed sample would be a
 *   relation that is not true. `reason` goes into the report. A file with two parents has one item per
 *   parent, so its other item may still create the sample and relate it to the parent that exists.
 * Pure; never throws.
 */
export function relationTarget(
  item: RelatedItem,
  hasMassSample: (key: string) => boolean,
): { action: 'relate'; otherKey: string | null; note: string | null } | { action: 'skip'; reason: string } {
  const dependsOn = item.dependsOn ?? null;
  if (dependsOn === null || hasMassSample(dependsOn)) return { action: 'relate', otherKey: dependsOn, note: null };
  const source = dependsOn.replace(/^file:/, '');
  if (item.kind === 'file') {
    return {
      action: 'skip',
      reason: `extracted file ${item.name} (${item.sha256}) not related: the file it was extracted from (${source}) has no MASS sample`,
    };
  }
  return {
    action: 'relate',
    otherKey: null,
    note: `${item.kind} ${item.value} related to the analysed sample: the file it was seen in (${source}) has no MASS sample`,
  };
}
