import { randomBytes, randomUUID } from 'node:crypto';
import { analyseFile, type FileFacts } from './file-analysis.js';
import { matchesTagFilter } from './tag-filter.js';
import { crash } from './http-errors.js';

/** Seconds since the epoch, as MASS stores every timestamp (TimeFunctions drops microseconds). */
export type Seconds = number;

export interface AnalysisSystem {
  id: string;
  identifier_name: string;
  verbose_name: string;
  information_text: string | null;
  tag_filter_expression: string;
}

export interface AnalysisSystemInstance {
  id: string;
  systemId: string;
  uuid: string;
  last_seen: Seconds | null;
}

export type SampleCls =
  | 'Sample.FileSample'
  | 'Sample.FileSample.ExecutableBinarySample'
  | 'Sample.IPSample'
  | 'Sample.DomainSample'
  | 'Sample.URISample';

export interface Sample {
  id: string;
  seq: number;
  cls: SampleCls;
  delivery_date: Seconds;
  first_seen: Seconds;
  tags: string[];
  dispatched_to: string[]; // system ids
  created_by: string | null; // principal id
  tlp_level: number;
  file?: { bytes: Buffer; file_names: string[] } & FileFacts;
  ip_address?: string;
  domain?: string;
  uri?: string;
}

export interface AnalysisRequest {
  id: string;
  seq: number;
  systemId: string;
  sampleId: string;
  analysis_requested: Seconds;
  priority: number;
}

export interface ScheduledAnalysis {
  id: string;
  seq: number;
  instanceId: string;
  sampleId: string;
  analysis_scheduled: Seconds;
  priority: number;
}

export interface Report {
  id: string;
  seq: number;
  sampleId: string;
  systemId: string;
  analysis_date: Seconds | null;
  upload_date: Seconds;
  status: number;
  error_message: string | null;
  tags: string[];
  additional_metadata: Record<string, unknown>;
  json_report_objects: Map<string, Buffer>;
  raw_report_objects: Map<string, Buffer>;
}

export type RelationCls =
  | 'SampleRelation.DroppedBySampleRelation'
  | 'SampleRelation.ContactedBySampleRelation'
  | 'SampleRelation.ResolvedBySampleRelation'
  | 'SampleRelation.RetrievedBySampleRelation'
  | 'SampleRelation.SsdeepSampleRelation';

export interface SampleRelation {
  id: string;
  seq: number;
  cls: RelationCls;
  sampleId: string;
  otherId: string;
  match?: number;
}

export type Principal =
  | { kind: 'user'; id: string; level: number }
  | { kind: 'instance'; id: string; uuid: string };

/** MASS user levels (mass_flask_core/models/user.py). */
export const USER_LEVEL = { anonymous: 0, user: 1, privileged: 2, manager: 3, admin: 4 } as const;

/** Minutes of silence after which an instance counts as offline (AnalysisSystemInstance.is_online). */
export const ONLINE_WINDOW_SECONDS = 10 * 60;
/** mass_flask_scheduling MAX_SCHEDULE_THRESHOLD. */
export const MAX_SCHEDULE_THRESHOLD = 100;

/** mongoengine StringField(regex=r'^[\w:\-\_\/\+\.]+$'); Python's `$` also matches before a final newline. */
const SAMPLE_TAG = /^[\p{L}\p{N}\p{M}_:\-/+.]+\n?$/u;

export function isValidSampleTag(tag: unknown): tag is string {
  return typeof tag === 'string' && SAMPLE_TAG.test(tag);
}

/**
 * The name MASS stores for an uploaded file: Werkzeug's multipart parser strips an
 * IE-style Windows path (`C:\…` or `\\…`, MultiPartParser._fix_ie_filename), then
 * FileFunctions.get_file_name takes `os.path.basename`, which on the POSIX server splits on
 * `/` only (mass-project/mass_server a785629, mass_flask_core/utils/file_functions.py).
 * Any other backslash stays part of the name.
 */
export function uploadedBaseName(filename: string): string {
  const ie = filename.slice(1, 3) === ':\\' || filename.startsWith('\\\\') ? (filename.split('\\').pop() ?? '') : filename;
  return ie.slice(ie.lastIndexOf('/') + 1);
}

/**
 * FileFunctions.get_file_extension (mass_server a785629, mass_flask_core/utils/file_functions.py):
 * the lower-cased text after the last `.` of the base name (`re.search(r"\.([^.]+)$")`),
 * or '' when there is none. Nothing is cleaned: FileSample._initialize adds it as the tag
 * `extension:<ext>` and save() then fails with 500 when that tag breaks the sample tag rule
 * (`download.php?id=7` → `extension:php?id=7`). Only new samples get the tag; a duplicate
 * upload skips _initialize, so its name is never looked at.
 */
export function fileExtension(baseName: string): string {
  const m = /\.([^.]+)$/.exec(baseName);
  return m ? m[1].toLowerCase() : '';
}

export function isObjectId(value: string): boolean {
  return /^[0-9a-fA-F]{24}$/.test(value);
}

export function isAdmin(p: Principal | null): boolean {
  return p !== null && p.kind === 'user' && p.level >= USER_LEVEL.admin;
}

export function maxTlp(p: Principal): number {
  if (p.kind === 'instance') return 0;
  if (p.level >= USER_LEVEL.admin) return 3;
  if (p.level >= USER_LEVEL.privileged) return 2;
  if (p.level >= USER_LEVEL.user) return 1;
  return 0;
}

/** Sort newest first on a seconds field; equal seconds keep insertion order (as mongomock does). */
export function newestFirst<T extends { seq: number }>(items: Iterable<T>, key: (item: T) => number): T[] {
  return [...items].sort((a, b) => key(b) - key(a) || a.seq - b.seq);
}

/**
 * The pending scheduled analyses by id, with an index by instance kept up to date on every set/delete, so the poll,
 * the scheduler and `scheduled_analyses_count` read one instance's items without scanning them all.
 */
export class ScheduledAnalyses extends Map<string, ScheduledAnalysis> {
  readonly #byInstance = new Map<string, Map<string, ScheduledAnalysis>>();

  override set(id: string, item: ScheduledAnalysis): this {
    const old = super.get(id);
    if (old) this.#byInstance.get(old.instanceId)?.delete(id);
    super.set(id, item);
    let own = this.#byInstance.get(item.instanceId);
    if (!own) this.#byInstance.set(item.instanceId, (own = new Map()));
    own.set(id, item);
    return this;
  }

  override delete(id: string): boolean {
    const old = super.get(id);
    if (old) this.#byInstance.get(old.instanceId)?.delete(id);
    return super.delete(id);
  }

  override clear(): void {
    this.#byInstance.clear();
    super.clear();
  }

  /** The pending items of one instance (any order). */
  forInstance(instanceId: string): Iterable<ScheduledAnalysis> {
    return this.#byInstance.get(instanceId)?.values() ?? [];
  }

  /** How many items one instance has pending. */
  countFor(instanceId: string): number {
    return this.#byInstance.get(instanceId)?.size ?? 0;
  }
}

export class MassStore {
  readonly systems = new Map<string, AnalysisSystem>();
  readonly instances = new Map<string, AnalysisSystemInstance>();
  readonly samples = new Map<string, Sample>();
  readonly requests = new Map<string, AnalysisRequest>();
  readonly scheduled = new ScheduledAnalyses();
  /**
   * The scheduler gives an instance new work only while it has at most this many pending items (MASS's
   * MAX_SCHEDULE_THRESHOLD, 100); adjustable so a test can show the rule with fewer samples.
   */
  scheduleThreshold = MAX_SCHEDULE_THRESHOLD;
  readonly reports = new Map<string, Report>();
  readonly relations = new Map<string, SampleRelation>();
  /**
   * Extra (not MASS): API calls that reached a route, by caller (instance uuid, or `user:<level>`) and
   * `<METHOD> <route name>`, for tests that count what a bridge asks. Shown by GET /_sim/state.
   */
  readonly calls = new Map<string, Map<string, number>>();
  /** API token → principal. */
  private readonly keys = new Map<string, Principal>();
  private readonly instanceKeys = new Map<string, string>(); // instance id → token
  private readonly idCounterStart = randomBytes(3).readUIntBE(0, 3);
  private idCounter = 0;
  private readonly idRandom = randomBytes(5).toString('hex');
  private seq = 0;

  constructor(private readonly nowMs: () => number) {}

  /** Extra: counts one API call of `principal` to a route (see `calls`). */
  countCall(principal: Principal | null, method: string, route: string): void {
    const who = principal === null ? 'anonymous' : principal.kind === 'instance' ? principal.uuid : `user:${principal.level}`;
    const byRoute = this.calls.get(who) ?? new Map<string, number>();
    this.calls.set(who, byRoute);
    const what = `${method} ${route}`;
    byRoute.set(what, (byRoute.get(what) ?? 0) + 1);
  }

  now(): Seconds {
    return Math.floor(this.nowMs() / 1000);
  }

  /** 24-hex ObjectId-like ids: 4-byte time, 5 random bytes, 3-byte counter. */
  newId(): string {
    const time = (this.now() >>> 0).toString(16).padStart(8, '0');
    const counter = ((this.idCounterStart + this.idCounter++) % 0x1000000).toString(16).padStart(6, '0');
    return `${time}${this.idRandom}${counter}`;
  }

  private nextSeq(): number {
    return ++this.seq;
  }

  // ---------------------------------------------------------------- principals and keys

  /** A MASS-like opaque token: itsdangerous-shaped `<base64 payload>.<base64 signature>`. */
  private newToken(id: string): string {
    return `${Buffer.from(JSON.stringify(id)).toString('base64url')}.${randomBytes(20).toString('base64url')}`;
  }

  createUser(level: number, token?: string): { principal: Principal; key: string } {
    const principal: Principal = { kind: 'user', id: this.newId(), level };
    const key = token ?? this.newToken(principal.id);
    this.keys.set(key, principal);
    return { principal, key };
  }

  /** The key of an instance, made on first request (InstanceAPIKey.get_or_create). */
  instanceKey(instance: AnalysisSystemInstance, token?: string): string {
    let key = this.instanceKeys.get(instance.id);
    if (!key) {
      key = token ?? this.newToken(instance.id);
      this.instanceKeys.set(instance.id, key);
      this.keys.set(key, { kind: 'instance', id: instance.id, uuid: instance.uuid });
    }
    return key;
  }

  principalForKey(token: string): Principal | null {
    const p = this.keys.get(token);
    if (!p) return null;
    if (p.kind === 'instance' && !this.instances.has(p.id)) return null;
    return p;
  }

  // ---------------------------------------------------------------- systems and instances

  systemByName(name: string): AnalysisSystem | undefined {
    for (const s of this.systems.values()) if (s.identifier_name === name) return s;
    return undefined;
  }

  instanceByUuid(uuid: string): AnalysisSystemInstance | undefined {
    for (const i of this.instances.values()) if (i.uuid === uuid) return i;
    return undefined;
  }

  createSystem(input: { identifier_name?: unknown; verbose_name?: unknown; information_text?: unknown; tag_filter_expression?: unknown }): AnalysisSystem {
    const name = input.identifier_name;
    const verbose = input.verbose_name;
    const filter = input.tag_filter_expression ?? '';
    // mongoengine validation on save: required fields and lengths; unique identifier_name → 500
    if (typeof name !== 'string' || name.length < 3 || name.length > 50) throw crash('identifier_name invalid');
    if (typeof verbose !== 'string' || verbose.length > 200) throw crash('verbose_name invalid');
    if (typeof filter !== 'string' || filter.length > 400) throw crash('tag_filter_expression invalid');
    if (input.information_text !== undefined && input.information_text !== null && typeof input.information_text !== 'string') throw crash('information_text invalid');
    if (this.systemByName(name)) throw crash('duplicate identifier_name');
    const system: AnalysisSystem = {
      id: this.newId(),
      identifier_name: name,
      verbose_name: verbose,
      information_text: (input.information_text as string | null | undefined) ?? null,
      tag_filter_expression: filter,
    };
    this.systems.set(system.id, system);
    // create_requests_for_new_analysis_system: every existing sample is matched against the new filter
    for (const sample of this.sampleList()) this.matchSampleAndSystem(sample, system);
    return system;
  }

  createInstance(systemId: string, uuid?: string): AnalysisSystemInstance {
    const id = uuid ?? randomUUID();
    if (id.length > 36) throw crash('uuid too long');
    if (this.instanceByUuid(id)) throw crash('duplicate uuid');
    const instance: AnalysisSystemInstance = { id: this.newId(), systemId, uuid: id, last_seen: null };
    this.instances.set(instance.id, instance);
    return instance;
  }

  isOnline(instance: AnalysisSystemInstance): boolean {
    return instance.last_seen !== null && this.now() - instance.last_seen < ONLINE_WINDOW_SECONDS;
  }

  pendingFor(instanceId: string): ScheduledAnalysis[] {
    return newestFirst(
      this.scheduled.forInstance(instanceId),
      (s) => s.analysis_scheduled,
    );
  }

  /** The poll: the only heartbeat; returns every pending item, newest first. */
  poll(instance: AnalysisSystemInstance): ScheduledAnalysis[] {
    instance.last_seen = this.now();
    return this.pendingFor(instance.id);
  }

  deleteInstance(instance: AnalysisSystemInstance): void {
    this.instances.delete(instance.id);
    // deviation: upstream leaves dangling references; dropping the queue keeps every read well-formed
    for (const s of [...this.scheduled.forInstance(instance.id)]) this.scheduled.delete(s.id);
  }

  deleteSystem(system: AnalysisSystem): void {
    this.systems.delete(system.id);
    for (const i of [...this.instances.values()]) if (i.systemId === system.id) this.deleteInstance(i);
    for (const r of [...this.requests.values()]) if (r.systemId === system.id) this.requests.delete(r.id);
  }

  // ---------------------------------------------------------------- dispatch and scheduling

  private matchSampleAndSystem(sample: Sample, system: AnalysisSystem): void {
    if (sample.dispatched_to.includes(system.id)) return;
    if (!matchesTagFilter(system.tag_filter_expression, sample.tags)) return;
    this.createRequest(system.id, sample.id, 0);
    sample.dispatched_to.push(system.id);
  }

  createRequest(systemId: string, sampleId: string, priority: number): AnalysisRequest {
    const request: AnalysisRequest = { id: this.newId(), seq: this.nextSeq(), systemId, sampleId, analysis_requested: this.now(), priority };
    this.requests.set(request.id, request);
    return request;
  }

  createScheduled(instanceId: string, sampleId: string, priority = 0): ScheduledAnalysis {
    const item: ScheduledAnalysis = { id: this.newId(), seq: this.nextSeq(), instanceId, sampleId, analysis_scheduled: this.now(), priority };
    this.scheduled.set(item.id, item);
    return item;
  }

  /**
   * One run of mass_flask_scheduling schedule_analyses: each AnalysisRequest goes to the online instance
   * of its system with the fewest pending items; instances above scheduleThreshold (MAX_SCHEDULE_THRESHOLD) are skipped;
   * unplaceable requests wait. `priority` is not copied. Returns how many were scheduled.
   */
  runScheduler(): number {
    const candidates = new Map<string, { instance: AnalysisSystemInstance; count: number }[]>();
    for (const instance of this.instances.values()) {
      if (!candidates.has(instance.systemId)) candidates.set(instance.systemId, []);
      if (!this.isOnline(instance)) continue;
      const count = this.scheduled.countFor(instance.id);
      if (count <= this.scheduleThreshold) candidates.get(instance.systemId)!.push({ instance, count });
    }
    let scheduled = 0;
    for (const request of [...this.requests.values()]) {
      const list = candidates.get(request.systemId);
      if (!list || list.length === 0) continue;
      let best = list[0];
      for (const c of list) if (c.count < best.count) best = c;
      this.createScheduled(best.instance.id, request.sampleId);
      best.count++;
      if (best.count > this.scheduleThreshold) list.splice(list.indexOf(best), 1);
      this.requests.delete(request.id);
      scheduled++;
    }
    return scheduled;
  }

  // ---------------------------------------------------------------- samples

  sampleList(): Sample[] {
    return newestFirst(this.samples.values(), (s) => s.delivery_date);
  }

  canSee(principal: Principal, sample: Sample): boolean {
    return sample.tlp_level <= maxTlp(principal) || sample.created_by === principal.id;
  }

  /**
   * Sample.create_or_update + save: dedup, tag merge, TLP raise-from-0, creator, validation, dispatch.
   * Validation failures throw a 500 before anything is stored.
   */
  submitSample(
    principal: Principal,
    kind: { cls: 'file'; bytes: Buffer; filename: string } | { cls: 'ip'; value: string } | { cls: 'domain'; value: string } | { cls: 'uri'; value: string },
    metadata: Record<string, unknown>,
  ): Sample {
    const tags = metadata.tags === undefined ? [] : metadata.tags;
    if (!Array.isArray(tags)) throw crash('tags is not a list');
    let existing: Sample | undefined;
    let facts: FileFacts | undefined;
    if (kind.cls === 'file') {
      facts = analyseFile(kind.bytes);
      const f = facts;
      existing = [...this.samples.values()].find(
        (s) =>
          s.file !== undefined &&
          s.file.md5sum === f.md5sum &&
          s.file.sha1sum === f.sha1sum &&
          s.file.sha256sum === f.sha256sum &&
          s.file.sha512sum === f.sha512sum &&
          s.file.ssdeep_hash === f.ssdeep_hash &&
          s.file.shannon_entropy === f.shannon_entropy,
      );
    } else {
      const field = kind.cls === 'ip' ? 'ip_address' : kind.cls;
      existing = [...this.samples.values()].find((s) => s[field] === kind.value);
    }
    const now = this.now();
    const base: Sample = existing
      ? { ...existing, tags: [...existing.tags] }
      : this.newSample(kind, facts, now);
    // Sample._update
    if ('tlp_level' in metadata && !base.tlp_level) base.tlp_level = metadata.tlp_level as number;
    if (!base.created_by) base.created_by = principal.id;
    for (const t of tags as unknown[]) if (!base.tags.includes(t as string)) base.tags.push(t as string);
    // save(): field validation
    if (!Number.isInteger(base.tlp_level) || base.tlp_level < 0 || base.tlp_level > 3) throw crash('tlp_level missing or invalid');
    if (!base.tags.every(isValidSampleTag)) throw crash('sample tag does not match the tag regex');
    if (existing) {
      Object.assign(existing, base);
      return existing;
    }
    this.samples.set(base.id, base);
    // update_dispatch_request_for_new_sample: only on creation
    for (const system of this.systems.values()) this.matchSampleAndSystem(base, system);
    return base;
  }

  private newSample(
    kind: { cls: 'file'; bytes: Buffer; filename: string } | { cls: 'ip' | 'domain' | 'uri'; value: string },
    facts: FileFacts | undefined,
    now: Seconds,
  ): Sample {
    const sample: Sample = {
      id: this.newId(),
      seq: this.nextSeq(),
      cls: 'Sample.FileSample',
      delivery_date: now,
      first_seen: now,
      tags: [],
      dispatched_to: [],
      created_by: null,
      tlp_level: Number.NaN,
    };
    if (kind.cls === 'file' && facts) {
      const name = uploadedBaseName(kind.filename);
      const extension = fileExtension(name);
      const tags: string[] = [];
      // save() validates this tag like every other one: an extension such as `php?id=7` → 500
      if (extension !== '') tags.push(`extension:${extension}`);
      if (facts.mime_type !== '') tags.push(`mime:${facts.mime_type}`);
      tags.push(...tagsFromMagic(facts.magic_string));
      tags.push('sample-type:filesample');
      const executable = tags.includes('filetype:windows-binary');
      if (executable) tags.push('sample-type:executablebinarysample');
      sample.cls = executable ? 'Sample.FileSample.ExecutableBinarySample' : 'Sample.FileSample';
      sample.tags = tags;
      sample.file = { ...facts, bytes: kind.bytes, file_names: [name] };
    } else if (kind.cls === 'ip') {
      sample.cls = 'Sample.IPSample';
      sample.ip_address = kind.value;
      sample.tags = ['sample-type:ipsample'];
    } else if (kind.cls === 'domain') {
      sample.cls = 'Sample.DomainSample';
      sample.domain = kind.value;
      sample.tags = ['sample-type:domainsample'];
    } else if (kind.cls === 'uri') {
      sample.cls = 'Sample.URISample';
      sample.uri = kind.value;
      sample.tags = ['sample-type:urisample'];
    }
    return sample;
  }

  // ---------------------------------------------------------------- reports

  /** Steps 5-7 of submit_report: save, copy tags onto the sample (may fail: 500 after save), delete the item. */
  saveReport(item: ScheduledAnalysis, report: Omit<Report, 'id' | 'seq' | 'sampleId' | 'systemId' | 'upload_date' | 'status'>): Report {
    const instance = this.instances.get(item.instanceId);
    if (!instance) throw crash('instance of scheduled analysis is gone');
    const saved: Report = {
      ...report,
      id: this.newId(),
      seq: this.nextSeq(),
      sampleId: item.sampleId,
      systemId: instance.systemId,
      upload_date: this.now(),
      status: 0, // MASS ignores the submitted status
    };
    this.reports.set(saved.id, saved);
    // copy_report_tags post_save signal: Sample.add_tags → save() validates every tag
    const sample = this.samples.get(item.sampleId);
    if (sample) {
      const merged = [...sample.tags];
      for (const t of saved.tags) if (!merged.includes(t)) merged.push(t);
      if (!merged.every(isValidSampleTag)) throw crash('report tag breaks the sample tag regex (report already stored)');
      sample.tags = merged;
    }
    this.scheduled.delete(item.id);
    return saved;
  }

  reportsOf(sampleId: string): Report[] {
    return newestFirst([...this.reports.values()].filter((r) => r.sampleId === sampleId), (r) => r.upload_date);
  }

  // ---------------------------------------------------------------- relations

  createRelation(cls: RelationCls, sampleId: string, otherId: string, match?: number): SampleRelation {
    const relation: SampleRelation = { id: this.newId(), seq: this.nextSeq(), cls, sampleId, otherId };
    if (match !== undefined) relation.match = match;
    this.relations.set(relation.id, relation);
    return relation;
  }

  /** GraphFunctions.get_relation_graph: breadth-first over relations touching the sample, `depth` rounds. */
  relationGraph(sampleId: string, depth: number): SampleRelation[] {
    const found = new Map<string, SampleRelation>();
    const queried = new Set<string>();
    let current = [sampleId];
    for (let d = 0; d < depth; d++) {
      const currentSet = new Set(current);
      for (const id of current) queried.add(id);
      const next: string[] = [];
      for (const r of this.relations.values()) {
        if (!currentSet.has(r.sampleId) && !currentSet.has(r.otherId)) continue;
        found.set(r.id, r);
        if (!queried.has(r.sampleId)) next.push(r.sampleId);
        if (!queried.has(r.otherId)) next.push(r.otherId);
      }
      current = next;
    }
    return [...found.values()];
  }
}

/** FileFunctions.get_extra_tags_from_magic_string. */
export function tagsFromMagic(magic: string): string[] {
  const tags: string[] = [];
  if (/PDF document/.test(magic)) tags.push('filetype:pdf');
  if (/PE32 executable/.test(magic)) tags.push('filetype:pe-32', 'filetype:windows-binary');
  if (/PE32\+ executable/.test(magic)) tags.push('filetype:pe-64', 'filetype:windows-binary');
  if (/Microsoft Word|Microsoft Excel|Composite Document File/.test(magic)) tags.push('filetype:ms-office');
  if (/capture file/.test(magic)) tags.push('filetype:pcap');
  if (/HTML document/.test(magic)) tags.push('filetype:html');
  if (/Java Jar file|Java archive data/.test(magic)) tags.push('filetype:java-jar');
  if (/Windows Registry/.test(magic)) tags.push('filetype:windows-registry');
  if (/Zip archive/.test(magic)) tags.push('filetype:archive');
  if (/Macromedia Flash data/.test(magic)) tags.push('filetype:flash');
  return tags;
}
