import { isRecord } from './util.js';

/** Fields AL stores (and therefore returns) for a submission unless `fl` asks for others. */
const STORED_FIELDS = [
  'archive_ts', 'classification', 'error_count', 'expiry_ts', 'file_count', 'files', 'from_archive', 'max_score',
  'params.description', 'params.priority', 'params.submitter', 'sid', 'state', 'times.completed', 'times.submitted', 'to_be_deleted', 'verdict',
];

interface Term {
  field: string;
  value: string;
  quoted: boolean;
}

export class SearchQueryError extends Error {}

/** A small Lucene subset: `field:value`, `field:"value"`, `*`, `*:*`, joined by AND. */
export function parseQuery(query: string): Term[] | null {
  const trimmed = query.trim();
  if (trimmed === '*' || trimmed === '*:*') return [];
  const terms: Term[] = [];
  const re = /\s*([A-Za-z0-9_.*]+):("((?:[^"\\]|\\.)*)"|[^\s"]+)\s*(?:AND\s+|&&\s+|$)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(trimmed)) !== null) {
    consumed = re.lastIndex;
    const quoted = m[3] !== undefined;
    terms.push({ field: m[1], value: quoted ? m[3].replace(/\\(.)/g, '$1') : m[2].replace(/\\(.)/g, '$1'), quoted });
    if (consumed >= trimmed.length) break;
  }
  if (consumed < trimmed.length) throw new SearchQueryError(`Unsupported search query: ${query}`);
  return terms;
}

function valuesAt(doc: unknown, path: string[]): unknown[] {
  if (path.length === 0) return Array.isArray(doc) ? doc : [doc];
  if (Array.isArray(doc)) return doc.flatMap((d) => valuesAt(d, path));
  if (!isRecord(doc)) return [];
  if (path[0] === 'metadata' && path.length > 1 && isRecord(doc.metadata)) {
    // metadata is flattened with dots: the rest of the path is one key
    return valuesAt((doc.metadata as Record<string, unknown>)[path.slice(1).join('.')], []);
  }
  return valuesAt(doc[path[0]], path.slice(1));
}

function matchesTerm(doc: Record<string, unknown>, t: Term): boolean {
  if (t.field === '*' || t.field === '_exists_') return true;
  const values = valuesAt(doc, t.field.split('.'));
  if (!t.quoted && t.value === '*') return values.some((v) => v !== null && v !== undefined);
  const pattern = !t.quoted && t.value.includes('*')
    ? new RegExp(`^${t.value.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i')
    : null;
  return values.some((v) => {
    if (v === null || v === undefined) return false;
    const s = String(v);
    return pattern ? pattern.test(s) : s === t.value || s.toLowerCase() === t.value.toLowerCase();
  });
}

export function matches(doc: Record<string, unknown>, terms: Term[]): boolean {
  return terms.every((t) => matchesTerm(doc, t));
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = target;
  for (let i = 0; i < path.length - 1; i++) {
    const next = cur[path[i]];
    if (!isRecord(next)) cur[path[i]] = {};
    cur = cur[path[i]] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

function getPath(doc: unknown, path: string[]): unknown {
  let cur = doc;
  for (let i = 0; i < path.length; i++) {
    if (!isRecord(cur)) return undefined;
    if (path[i] === 'metadata' && i === 0 && path.length > 1) return (cur.metadata as Record<string, unknown> | undefined)?.[path.slice(1).join('.')];
    cur = cur[path[i]];
  }
  return cur;
}

/** Keeps only stored fields, or exactly the `fl` ones (`metadata.*` must be named). */
export function project(doc: Record<string, unknown>, fl: string | undefined): Record<string, unknown> {
  const fields = fl ? fl.split(',').map((f) => f.trim()).filter(Boolean) : STORED_FIELDS;
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    if (field === '*') {
      for (const f of STORED_FIELDS) {
        const v = getPath(doc, f.split('.'));
        if (v !== undefined) setPath(out, f.split('.'), v);
      }
      continue;
    }
    if (field.endsWith('.*')) {
      const v = getPath(doc, field.slice(0, -2).split('.'));
      if (v !== undefined) setPath(out, field.slice(0, -2).split('.'), v);
      continue;
    }
    const v = getPath(doc, field.split('.'));
    if (v === undefined) continue;
    if (field.startsWith('metadata.')) setPath(out, ['metadata', field.slice('metadata.'.length)], v);
    else setPath(out, field.split('.'), v);
  }
  return out;
}
