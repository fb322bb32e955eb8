import type { Scenario, IocSpec } from './scenario.js';
import type {
  AttackRecord, ErrorRecord, FileRef, HeuristicRecord, ResultRecord, SectionRecord, SimStore, StoredFile, TagRecord,
} from './store.js';
import type { FileDigest } from './upload-digest.js';
import { entropy, md5Hex, sha1Hex, sha256Hex } from './util.js';

const DAY = 86_400_000;
/** Service versions and config hashes as in the constructed fixtures (responses/submission-full.json). */
const SERVICES = {
  Extract: { version: '4.7.0.stable2', hash: 'Hq7WMq5QkmN', tool: '7zip 23.01' },
  CAPE: { version: '4.7.0.stable5', hash: 'GtVYMoCzeuw', tool: '2.4' },
  FrankenStrings: { version: '4.7.0.stable1', hash: 'HBE9xXEZEwt', tool: null },
  ConfigExtractor: { version: '4.7.0.stable4', hash: 'KKSV5ZfPsOk', tool: null },
  YARA: { version: '4.7.0.stable3', hash: 'ESv5Rs5JFRV', tool: null },
} as const;
type ServiceName = keyof typeof SERVICES;

const ATTACK: Record<string, [string, string[]]> = {
  T1003: ['OS Credential Dumping', ['credential-access']],
  T1027: ['Obfuscated Files or Information', ['defense-evasion']],
  T1055: ['Process Injection', ['defense-evasion', 'privilege-escalation']],
  T1059: ['Command and Scripting Interpreter', ['execution']],
  T1071: ['Application Layer Protocol', ['command-and-control']],
  T1082: ['System Information Discovery', ['discovery']],
  T1105: ['Ingress Tool Transfer', ['command-and-control']],
  T1112: ['Modify Registry', ['defense-evasion']],
  T1204: ['User Execution', ['execution']],
  T1486: ['Data Encrypted for Impact', ['impact']],
  T1547: ['Boot or Logon Autostart Execution', ['persistence', 'privilege-escalation']],
  T1555: ['Credentials from Password Stores', ['credential-access']],
  T1566: ['Phishing', ['initial-access']],
};

/** Error type names and their key codes (ASSEMBLYLINE.md §6.2). */
const ERROR_CODES: Record<string, number> = {
  UNKNOWN: 0, EXCEPTION: 1, 'MAX DEPTH REACHED': 10, 'MAX FILES REACHED': 11, 'MAX RETRY REACHED': 12,
  'SERVICE BUSY': 20, 'SERVICE DOWN': 21, 'TASK PRE-EMPTED': 30,
};

const DYNAMIC_RELATIONS = new Set(['DYNAMIC', 'MEMDUMP', 'DOWNLOADED']);
export const MAX_DEPTH = 6;

export function attackRecord(id: string): AttackRecord {
  const known = ATTACK[id.split('.')[0]];
  return { attack_id: id, pattern: known ? known[0] : id, categories: known ? [...known[1]] : ['unknown'] };
}

export function sniffType(content: Buffer, name: string): { type: string; magic: string; mime: string } {
  const head = content.subarray(0, 8).toString('latin1');
  if (head.startsWith('MZ')) {
    if (/\.dll$/i.test(name)) return { type: 'executable/windows/dll32', magic: 'PE32 executable (DLL) (GUI) Intel 80386, for MS Windows', mime: 'application/x-dosexec' };
    return { type: 'executable/windows/pe32', magic: 'PE32 executable (GUI) Intel 80386, for MS Windows', mime: 'application/x-dosexec' };
  }
  if (head.startsWith('PK\x03\x04') || /\.zip$/i.test(name)) return { type: 'archive/zip', magic: 'Zip archive data, at least v2.0 to extract', mime: 'application/zip' };
  if (head.startsWith('%PDF')) return { type: 'document/pdf', magic: 'PDF document, version 1.7', mime: 'application/pdf' };
  if (head.startsWith('uri: ')) return { type: 'uri/http', magic: 'ASCII text', mime: 'text/plain' };
  if (/\.dll$/i.test(name)) return { type: 'executable/windows/dll32', magic: 'PE32 executable (DLL) (GUI) Intel 80386, for MS Windows', mime: 'application/x-dosexec' };
  if (/\.exe$/i.test(name)) return { type: 'executable/windows/pe32', magic: 'PE32 executable (GUI) Intel 80386, for MS Windows', mime: 'application/x-dosexec' };
  const printable = content.subarray(0, 4096).every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128);
  if (printable) return { type: 'text/plain', magic: 'ASCII text', mime: 'text/plain' };
  return { type: 'unknown', magic: 'data', mime: 'application/octet-stream' };
}

/** Stores a file (or counts a sighting of a stored one); `digest`: its hashes and entropy if already computed. */
export function storeFile(store: SimStore, content: Buffer, name: string, now: number, supplementary = false, digest?: FileDigest): StoredFile {
  const sha256 = digest?.sha256 ?? sha256Hex(content);
  const existing = store.files.get(sha256);
  if (existing) {
    existing.lastSeen = now;
    existing.seenCount++;
    return existing;
  }
  const file: StoredFile = {
    sha256, sha1: digest?.sha1 ?? sha1Hex(content), md5: digest?.md5 ?? md5Hex(content), size: content.length, ...sniffType(content, name),
    entropy: digest?.entropy ?? entropy(content), content, firstSeen: now, lastSeen: now, seenCount: 1, isSupplementary: supplementary,
  };
  store.files.set(sha256, file);
  return file;
}

/** Deterministic bytes for a generated child: the same parent always extracts the same file. */
export function generatedContent(parentSha: string, name: string, nested: Scenario | undefined, kind = 'extracted'): Buffer {
  let text = `AL simulator ${kind} file "${name}" from ${parentSha}\n`;
  if (nested) text += `AL-SIM: ${JSON.stringify(nested)}\n`;
  return Buffer.from(text, 'utf8');
}

function section(title: string, body: unknown, format: string, extra: Partial<SectionRecord> = {}): SectionRecord {
  return { title_text: title, body, body_format: format, body_config: {}, depth: 0, auto_collapse: false, heuristic: null, tags: [], ...extra };
}

function heuristic(id: string, name: string, score: number, attack: string[] = [], signatures: string[] = []): HeuristicRecord {
  return {
    heur_id: id, name, score, attack: attack.map(attackRecord),
    signature: signatures.map((s) => ({ name: s, frequency: 1, safe: false })),
  };
}

function tag(type: string, value: string | number, safelisted = false): TagRecord {
  return { type, value, safelisted };
}

export function resultKey(sha256: string, service: string, version: string, hash: string, empty: boolean): string {
  return `${sha256}.${service}.v${version.replace(/\./g, '_')}.c${hash}${empty ? '.e' : ''}`;
}

interface FileTask {
  sha256: string;
  name: string;
  depth: number;
  scenario: Scenario;
}

export interface AnalysisOutcome {
  resultKeys: string[];
  errorKeys: string[];
  fileShas: string[];
  supplementaryShas: string[];
  maxScore: number;
  hadErrors: boolean;
}

export interface AnalysisInput {
  store: SimStore;
  rootSha256: string;
  rootName: string;
  rootScenario: Scenario;
  started: number;
  completed: number;
  ttlDays: number;
  /** The submission's classification: the classification of its results unless a scenario sets one. */
  classification: string;
  resolveScenario: (sha256: string, content: Buffer, nested?: Scenario) => Scenario;
}

/** Runs the simulated services over the root file and everything it extracts (breadth first, depth ≤ 6). */
export function analyse(input: AnalysisInput): AnalysisOutcome {
  const { store } = input;
  const expiry = input.started + input.ttlDays * DAY;
  const out: AnalysisOutcome = { resultKeys: [], errorKeys: [], fileShas: [], supplementaryShas: [], maxScore: 0, hadErrors: false };
  const seen = new Set<string>([input.rootSha256]);
  const tasks: FileTask[] = [{ sha256: input.rootSha256, name: input.rootName, depth: 0, scenario: input.rootScenario }];
  let step = 0;
  while (tasks.length > 0) {
    const task = tasks.shift() as FileTask;
    out.fileShas.push(task.sha256);
    const file = store.files.get(task.sha256) as StoredFile;
    const span = Math.max(1, input.completed - input.started);
    const t0 = input.started + Math.floor((span * step) / (step + 2));
    step++;
    const built = buildServiceResults(file, task.name, task.scenario, t0, input.completed, expiry);
    // Results carry the submission's classification, or the one the file's scenario sets (a service marking its result).
    for (const r of built.results) r.classification = task.scenario.classification ?? input.classification;
    let fileScore = 0;
    for (const r of built.results) {
      store.results.set(r.key, r);
      out.resultKeys.push(r.key);
      fileScore += r.sections.reduce((acc, s) => acc + (s.heuristic?.score ?? 0), 0);
    }
    for (const e of built.errors) {
      store.errors.set(e.key, e);
      out.errorKeys.push(e.key);
      out.hadErrors = true;
    }
    out.maxScore = Math.max(out.maxScore, fileScore);
    for (const child of built.children) {
      const stored = storeFile(store, child.content, child.name, input.started, false);
      if (seen.has(stored.sha256) || task.depth + 1 > MAX_DEPTH) continue;
      seen.add(stored.sha256);
      tasks.push({ sha256: stored.sha256, name: child.name, depth: task.depth + 1, scenario: input.resolveScenario(stored.sha256, child.content, child.scenario) });
    }
    for (const supp of built.supplementary) {
      const stored = storeFile(store, supp.content, supp.name, input.started, true);
      if (!out.supplementaryShas.includes(stored.sha256)) out.supplementaryShas.push(stored.sha256);
    }
  }
  return out;
}

interface BuiltChild {
  name: string;
  content: Buffer;
  scenario?: Scenario;
}

interface BuiltResults {
  results: ResultRecord[];
  errors: ErrorRecord[];
  children: BuiltChild[];
  supplementary: BuiltChild[];
}

function isDynamicIoc(i: IocSpec): boolean {
  return i.type.startsWith('network.dynamic.');
}

/** Builds result documents shaped like the constructed fixtures: Extract, CAPE, FrankenStrings, ConfigExtractor, YARA. */
export function buildServiceResults(file: StoredFile, name: string, s: Scenario, started: number, completed: number, expiry: number): BuiltResults {
  const out: BuiltResults = { results: [], errors: [], children: [], supplementary: [] };
  const score = s.score ?? 0;
  const families = s.families ?? [];
  const attack = s.attack ?? [];
  const iocs = s.iocs ?? [];
  const extracted = (s.extracted ?? []).map((e) => {
    const relation = (e.relation ?? 'EXTRACTED').toUpperCase();
    const content = e.content !== undefined ? Buffer.from(e.content, 'utf8') : generatedContent(file.sha256, e.name, e.scenario);
    return { spec: e, relation, content, sha256: sha256Hex(content) };
  });
  const supplementary = (s.supplementary ?? []).map((sp) => {
    const content = sp.content !== undefined ? Buffer.from(sp.content, 'utf8') : generatedContent(file.sha256, sp.name, undefined, 'supplementary');
    return { name: sp.name, content, sha256: sha256Hex(content) };
  });
  for (const e of extracted) out.children.push({ name: e.spec.name, content: e.content, scenario: e.spec.scenario });
  for (const sp of supplementary) out.supplementary.push({ name: sp.name, content: sp.content });

  const mk = (service: ServiceName, sections: SectionRecord[], ex: FileRef[] = [], supp: FileRef[] = [], offset = 0): ResultRecord => {
    const meta = SERVICES[service];
    return {
      key: resultKey(file.sha256, service, meta.version, meta.hash, false), sha256: file.sha256, service, version: meta.version,
      toolVersion: meta.tool, empty: false, started: started + offset, completed: Math.max(started + offset, completed - 1000 + offset),
      expiry, sections, extracted: ex, supplementary: supp,
    };
  };

  // Extract: unpacked children (EXTRACTED and other static relations).
  const staticChildren = extracted.filter((e) => !DYNAMIC_RELATIONS.has(e.relation));
  const extractSections = staticChildren.length > 0
    ? [section(`Successfully extracted ${staticChildren.length} file${staticChildren.length === 1 ? '' : 's'}`, staticChildren.map((e) => e.spec.name).join('\n'), 'TEXT', {
      heuristic: heuristic('EXTRACT.2', 'Extracted from executable', 0),
      tags: staticChildren.map((e) => tag('file.name.extracted', e.spec.name)),
    })]
    : [section('No files extracted', null, 'TEXT')];
  out.results.push(mk('Extract', extractSections, staticChildren.map((e) => ({
    name: e.spec.name, sha256: e.sha256, description: 'Extracted using 7zip', parent_relation: e.relation,
  }))));

  // Where the scenario score lands: ConfigExtractor for families, else CAPE signatures.
  const dynamicIocs = iocs.filter(isDynamicIoc);
  const staticIocs = iocs.filter((i) => !isDynamicIoc(i));
  const dynamicChildren = extracted.filter((e) => DYNAMIC_RELATIONS.has(e.relation));
  const scoreInCape = families.length === 0 && (attack.length > 0 || score !== 0);
  const needCape = dynamicIocs.length > 0 || dynamicChildren.length > 0 || supplementary.length > 0 || scoreInCape;
  if (needCape) {
    out.results.push(mk('CAPE', capeSections(file, name, score, scoreInCape ? attack : [], scoreInCape, dynamicIocs, started),
      dynamicChildren.map((e) => ({ name: e.spec.name, sha256: e.sha256, description: e.relation === 'DYNAMIC' ? 'Dropped file' : 'Memory dump', parent_relation: e.relation })),
      supplementary.map((sp) => ({ name: sp.name, sha256: sp.sha256, description: 'CAPE Sandbox analysis artefact', parent_relation: 'INFORMATION' })), 50));
  }
  if (staticIocs.length > 0) {
    const body = staticIocs.map((i) => String(i.value)).join('\n');
    out.results.push(mk('FrankenStrings', [section('Network IOC strings found in file', body, 'TEXT', {
      tags: staticIocs.map((i) => tag(i.type, i.type === 'network.port' ? Number(i.value) : i.value, i.safelisted ?? false)),
    })], [], [], 20));
  }
  if (families.length > 0) {
    const sections: SectionRecord[] = families.map((fam, idx) => section(fam, { category: ['malware'], family: [fam] }, 'KEY_VALUE', {
      heuristic: heuristic('CONFIGEXTRACTOR.1', 'Extracted Malware Configuration', idx === 0 ? score : 0, idx === 0 ? attack : []),
      tags: [tag('attribution.family', fam.toUpperCase()), tag('file.rule.configextractor', `MACO.${fam}`)],
    }));
    out.results.push(mk('ConfigExtractor', sections, [], [], 30));
  }
  // YARA matched nothing: an empty `.e` result, synthesised on read.
  const yara = SERVICES.YARA;
  out.results.push({
    key: resultKey(file.sha256, 'YARA', yara.version, yara.hash, true), sha256: file.sha256, service: 'YARA', version: yara.version,
    toolVersion: null, empty: true, started, completed, expiry, sections: [], extracted: [], supplementary: [],
  });
  for (const err of s.service_errors ?? []) {
    const message = err.message ?? 'EXCEPTION';
    const type = ERROR_CODES[message] !== undefined ? message : 'EXCEPTION';
    out.errors.push({
      key: `${file.sha256}.${err.service}.v0.c0.e${ERROR_CODES[type]}`, sha256: file.sha256, service: err.service, version: '0',
      status: err.status ?? 'FAIL_NONRECOVERABLE', message, type, created: completed - 500, expiry,
    });
  }
  return out;
}

function sandboxTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function capeSections(file: StoredFile, name: string, score: number, attack: string[], carryScore: boolean, iocs: IocSpec[], started: number): SectionRecord[] {
  const sections: SectionRecord[] = [];
  const t = (offsetS: number): string => sandboxTime(started + offsetS * 1000);
  sections.push(section('Analysis Information', {
    duration: '213 seconds', end_time: t(213), machine: 'win10x64-07', package: 'exe', routing: 'internet', start_time: t(0), task_id: 4711,
  }, 'KEY_VALUE'));
  const signatures: { name: string; description: string; attack: string[]; score: number }[] = [];
  if (carryScore) {
    if (attack.length > 0) {
      attack.forEach((id, idx) => signatures.push({ name: `sim_${id.toLowerCase()}`, description: `Behaviour matching ${attackRecord(id).pattern}`, attack: [id], score: idx === 0 ? score : 0 }));
    } else {
      signatures.push({ name: 'sim_suspicious_behaviour', description: 'Suspicious behaviour observed', attack: [], score });
    }
  }
  if (signatures.length > 0) {
    sections.push(section('Signatures', null, 'TEXT', { auto_collapse: true }));
    signatures.forEach((sig, idx) => sections.push(section(`Signature: ${sig.name}`, [
      ['TEXT', sig.description, {}], ['KEY_VALUE', { pid: 2260, process_name: name }, {}],
    ], 'MULTI', { depth: 1, heuristic: heuristic(`CAPE.${32 + idx}`, sig.name, sig.score, sig.attack, [sig.name]) })));
  }
  const ips = iocs.filter((i) => i.type === 'network.dynamic.ip');
  const domains = iocs.filter((i) => i.type === 'network.dynamic.domain');
  const uris = iocs.filter((i) => i.type.startsWith('network.dynamic.uri'));
  const others = iocs.filter((i) => !ips.includes(i) && !domains.includes(i) && !uris.includes(i));
  const firstIp = ips.find((i) => !i.safelisted)?.value ?? ips[0]?.value ?? null;
  const connections: Record<string, unknown>[] = [];
  if (iocs.length > 0) sections.push(section('Network Activity', null, 'TEXT', { auto_collapse: true }));
  if (domains.length > 0) {
    sections.push(section('Protocol: DNS', domains.map((d) => ({ answer: firstIp, domain: d.value, type: 'A' })), 'TABLE', {
      depth: 1, body_config: { column_order: ['domain', 'answer', 'type'] }, heuristic: heuristic('CAPE.1000', 'Domain detected', 0),
      tags: [tag('network.protocol', 'dns'), ...domains.map((d) => tag(d.type, d.value, d.safelisted ?? false))],
    }));
    domains.filter((d) => !d.safelisted).forEach((d, idx) => connections.push({
      connection_type: 'dns', destination_ip: '192.168.0.1', destination_port: 53, direction: 'outbound',
      dns_details: { domain: d.value, lookup_type: 'A', resolved_domains: [], resolved_ips: firstIp === null ? [] : [firstIp] },
      process: 2260, source_ip: '192.168.0.14', source_port: 53211 + idx, sources: ['CAPE'], time_observed: t(30 + idx), transport_layer_protocol: 'udp',
    }));
  }
  if (ips.length > 0) {
    const rows = ips.map((ip, idx) => ({
      dest_ip: ip.value, dest_port: 443, domain: null, image: `C:\\Users\\admin\\Desktop\\${name}`, pid: 2260, protocol: 'tcp',
      src_ip: '192.168.0.14', src_port: 49712 + idx, timestamp: t(31 + idx),
    }));
    sections.push(section('TCP/UDP Network Traffic', rows, 'TABLE', {
      depth: 1,
      body_config: { column_order: ['timestamp', 'protocol', 'src_ip', 'src_port', 'domain', 'dest_ip', 'dest_port', 'image', 'pid'] },
      heuristic: heuristic('CAPE.1004', 'TCP/UDP Detected', 0),
      tags: [...ips.map((i) => tag(i.type, i.value, i.safelisted ?? false)), tag('network.protocol', 'tcp'),
        ...rows.flatMap((r) => [tag('network.port', 443), tag('network.port', r.src_port)]).filter((x, i, all) => all.findIndex((y) => y.value === x.value) === i)],
    }));
    ips.filter((i) => !i.safelisted).forEach((ip, idx) => connections.push({
      connection_type: null, destination_ip: ip.value, destination_port: 443, direction: 'outbound', process: 2260,
      source_ip: '192.168.0.14', source_port: 49712 + idx, sources: ['CAPE'], time_observed: t(31 + idx), transport_layer_protocol: 'tcp',
    }));
  }
  if (uris.length > 0) {
    sections.push(section('Protocol: HTTP/HTTPS', uris.map((u) => ({
      method: 'GET', process_name: `${name} (2260)`, request: { UserAgent: 'Mozilla/4.0 (compatible; MSIE 6.0)' }, uri: u.value,
    })), 'TABLE', {
      depth: 1, body_config: { column_order: ['process_name', 'method', 'request', 'uri'] }, heuristic: heuristic('CAPE.1002', 'HTTP/HTTPS detected', 0),
      tags: [tag('network.protocol', 'http'), ...uris.map((u) => tag(u.type, u.value, u.safelisted ?? false))],
    }));
    uris.filter((u) => !u.safelisted).forEach((u, idx) => connections.push({
      connection_type: 'http', destination_ip: firstIp, destination_port: 80, direction: 'outbound',
      http_details: {
        request_body: null, request_headers: { UserAgent: 'Mozilla/4.0 (compatible; MSIE 6.0)' }, request_method: 'GET', request_uri: u.value,
        response_body: null, response_content_fileinfo: null, response_content_mimetype: null, response_headers: {}, response_status_code: 200,
      },
      process: 2260, source_ip: '192.168.0.14', source_port: 49800 + idx, sources: ['CAPE'], time_observed: t(40 + idx), transport_layer_protocol: 'tcp',
    }));
  }
  if (others.length > 0) {
    sections.push(section('Other network indicators', others.map((o) => String(o.value)).join('\n'), 'TEXT', {
      depth: 1, tags: others.map((o) => tag(o.type, o.type === 'network.port' ? Number(o.value) : o.value, o.safelisted ?? false)),
    }));
  }
  sections.push(section('Processes', {
    analysis_information: {
      analysis_metadata: {
        end_time: t(213), machine_metadata: { architecture: 'x64', hostname: 'win10x64-07', hypervisor: 'kvm', ip: '192.168.0.14', platform: 'windows', version: '10.0.19045' },
        routing: 'internet', start_time: t(0), task_id: 4711, window_size: '1280x720',
      },
      sandbox_name: 'CAPE Sandbox', sandbox_version: '2.4',
    },
    network_connections: connections,
    processes: [{
      command_line: `"C:\\Users\\admin\\Desktop\\${name}" `, end_time: null, file_count: 0, image: `C:\\Users\\admin\\Desktop\\${name}`,
      image_hash: file.sha256, integrity_level: 'medium', original_file_name: name, pid: 2260, ppid: 4412, registry_count: 0,
      safelisted: false, sources: ['CAPE'], start_time: t(4),
    }],
    signatures: signatures.map((sig) => ({
      actors: [], attacks: sig.attack.map(attackRecord), classification: 'TLP:CLEAR', description: sig.description, malware_families: [],
      name: sig.name, pid: [2260], score: sig.score, sources: ['CAPE'], type: 'CUCKOO',
    })),
  }, 'SANDBOX'));
  return sections;
}
