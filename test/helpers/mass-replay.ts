import { readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The recorded MASS exchanges (test/fixtures/mass-recorded, see its README). */
export const RECORDINGS_DIR = fileURLToPath(new URL('../fixtures/mass-recorded/', import.meta.url));
export const RECORDED_PORT = 5077;

export interface RecordedPart {
  name: string;
  filename: string | null;
  content_type: string | null;
  body_encoding: 'text' | 'base64';
  body: string;
}

export interface RecordedExchange {
  note: string;
  sent_by: string;
  auth: string;
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body_kind: 'empty' | 'json' | 'multipart' | 'text' | 'base64';
    body: unknown;
  };
  response: {
    status: number;
    content_type: string;
    body_kind: 'empty' | 'json' | 'text' | 'base64';
    body: unknown;
  };
  test_only_route?: boolean;
}

export function loadRecordings(dir = RECORDINGS_DIR): { file: string; exchanges: RecordedExchange[] }[] {
  return readdirSync(dir)
    .filter((f) => /^[a-z]-.*\.json$/.test(f))
    .sort()
    .map((file) => ({ file, exchanges: JSON.parse(readFileSync(join(dir, file), 'utf8')) as RecordedExchange[] }));
}

/**
 * Maps what the recording saw (origin, server-made ids and uuids) to what the live simulator made,
 * learned from responses as the flow goes on.
 */
export class LiveMapping {
  private readonly ids = new Map<string, string>();

  constructor(private readonly livePort: number) {}

  /** Recorded `http://127.0.0.1:5077` / `localhost:5077` (URLs and Host headers) → same host, live port. */
  rewriteOrigin(text: string): string {
    return text.replace(/(127\.0\.0\.1|localhost):5077/g, `$1:${this.livePort}`);
  }

  learn(recorded: unknown, live: unknown): void {
    if (Array.isArray(recorded) && Array.isArray(live)) {
      recorded.forEach((r, i) => this.learn(r, live[i]));
      return;
    }
    if (isObject(recorded) && isObject(live)) {
      for (const key of ['id', 'uuid']) {
        const r = recorded[key];
        const l = live[key];
        if (typeof r === 'string' && typeof l === 'string' && r !== l && !this.ids.has(r)) this.ids.set(r, l);
      }
      for (const key of Object.keys(recorded)) if (key in live) this.learn(recorded[key], live[key]);
    }
  }

  liveId(recorded: string): string | undefined {
    return this.ids.get(recorded);
  }

  /** Rewrites a recorded string (path, URL, body text) into the live one. */
  map(text: string): string {
    let out = this.rewriteOrigin(text);
    for (const [recorded, live] of this.ids) out = out.split(recorded).join(live);
    return out;
  }

  mapJson(value: unknown): unknown {
    if (typeof value === 'string') return this.map(value);
    if (Array.isArray(value)) return value.map((v) => this.mapJson(v));
    if (isObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.mapJson(v);
      return out;
    }
    return value;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Rebuilds a multipart body from the recorded parts, with the recorded boundary. */
export function buildMultipart(boundary: string, parts: RecordedPart[], mapText: (s: string) => string): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== null) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.content_type !== null) head += `Content-Type: ${part.content_type}\r\n`;
    head += '\r\n';
    chunks.push(Buffer.from(head));
    chunks.push(part.body_encoding === 'base64' ? Buffer.from(part.body, 'base64') : Buffer.from(mapText(part.body), 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

export interface LiveResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

/** A plain HTTP request to 127.0.0.1 with full control of the Host header. */
export function send(port: number, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Promise<LiveResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function mediaType(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

/**
 * Deep comparison of a recorded JSON body (already mapped to live ids/origin) with the live one:
 * same keys, types and values; `tags` compared as sets (MASS merges tags as a Python set);
 * arrays listed in `unordered` compared without regard to order (relation_graph is built from a set).
 */
export function diffJson(recorded: unknown, live: unknown, path = '$', unordered = false): string[] {
  if (recorded === null || live === null) return recorded === live ? [] : [`${path}: expected ${JSON.stringify(recorded)}, got ${JSON.stringify(live)}`];
  if (Array.isArray(recorded)) {
    if (!Array.isArray(live)) return [`${path}: expected an array, got ${typeof live}`];
    if (recorded.length !== live.length) return [`${path}: expected ${recorded.length} items, got ${live.length}`];
    if (path.endsWith('.tags')) {
      const a = [...recorded].map(String).sort();
      const b = [...live].map(String).sort();
      return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${path}: tag sets differ: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`];
    }
    if (unordered) {
      const key = (v: unknown) => (isObject(v) ? String(v.id) : JSON.stringify(v));
      const a = [...recorded].sort((x, y) => key(x).localeCompare(key(y)));
      const b = [...live].sort((x, y) => key(x).localeCompare(key(y)));
      return a.flatMap((r, i) => diffJson(r, b[i], `${path}[~${i}]`));
    }
    return recorded.flatMap((r, i) => diffJson(r, live[i], `${path}[${i}]`));
  }
  if (isObject(recorded)) {
    if (!isObject(live)) return [`${path}: expected an object, got ${JSON.stringify(live)}`];
    const rk = Object.keys(recorded).sort();
    const lk = Object.keys(live).sort();
    if (JSON.stringify(rk) !== JSON.stringify(lk)) return [`${path}: keys differ: expected ${rk.join(',')}, got ${lk.join(',')}`];
    return rk.flatMap((k) => diffJson(recorded[k], live[k], `${path}.${k}`, unordered && k === 'results'));
  }
  if (typeof recorded !== typeof live) return [`${path}: expected ${typeof recorded}, got ${typeof live}`];
  return recorded === live ? [] : [`${path}: expected ${JSON.stringify(recorded)}, got ${JSON.stringify(live)}`];
}
