import { isRecord } from './util.js';

/** Outcome script for one file (docs/simulators-assemblyline.md, "AL-SIM directive"). */
export interface Scenario {
  score?: number;
  families?: string[];
  attack?: string[];
  extracted?: ExtractedSpec[];
  supplementary?: { name: string; content?: string }[];
  iocs?: IocSpec[];
  service_errors?: ServiceErrorSpec[];
  failure?: string;
  failure_times?: number;
  lose_notification_times?: number;
  delay_ms?: number;
  /** Classification the services give this file's results (e.g. TLP:RED); default: the submission's. */
  classification?: string;
}
export interface ExtractedSpec {
  name: string;
  relation?: string;
  content?: string;
  scenario?: Scenario;
}
export interface IocSpec {
  type: string;
  value: string | number;
  safelisted?: boolean;
}
export interface ServiceErrorSpec {
  service: string;
  status?: string;
  message?: string;
}

const DIRECTIVE = 'AL-SIM:';

/** Finds `AL-SIM: {json}` in file content; the JSON runs to the end of that line. */
export function parseDirective(content: Buffer): Scenario | null {
  // Searched in the bytes (a file of hundreds of MiB is no string: V8 caps string length, and the copy costs).
  const needle = Buffer.from(DIRECTIVE, 'latin1');
  let from = 0;
  for (;;) {
    const idx = content.indexOf(needle, from);
    if (idx < 0) return null;
    let end = content.indexOf(0x0a, idx);
    if (end < 0) end = content.length;
    const jsonText = Buffer.from(content.subarray(idx + needle.length, end).toString('latin1').trim(), 'latin1').toString('utf8');
    try {
      const parsed: unknown = JSON.parse(jsonText);
      if (isRecord(parsed)) return validateScenario(parsed);
    } catch {
      // not a directive after all; keep looking
    }
    from = end;
  }
}

export function validateScenario(input: unknown): Scenario {
  if (!isRecord(input)) throw new Error('scenario must be an object');
  const s = input as Scenario;
  if (s.score !== undefined && typeof s.score !== 'number') throw new Error('score must be a number');
  if (s.classification !== undefined && typeof s.classification !== 'string') throw new Error('classification must be a string');
  for (const key of ['families', 'attack', 'extracted', 'supplementary', 'iocs', 'service_errors'] as const) {
    if (s[key] !== undefined && !Array.isArray(s[key])) throw new Error(`${key} must be a list`);
  }
  for (const e of s.extracted ?? []) {
    if (!isRecord(e) || typeof e.name !== 'string') throw new Error('extracted entries need a name');
    if (e.scenario !== undefined) validateScenario(e.scenario);
  }
  for (const i of s.iocs ?? []) {
    if (!isRecord(i) || typeof i.type !== 'string' || (typeof i.value !== 'string' && typeof i.value !== 'number')) {
      throw new Error('iocs entries need type and value');
    }
  }
  if (s.failure !== undefined && s.failure !== 'Skipped' && !s.failure.startsWith('File too large')) {
    throw new Error('failure must be "Skipped" or "File too large"');
  }
  return s;
}
