import { requireAuthenticated, requireRole } from './auth.js';
import { crash, HtmlError, JsonError, NOT_FOUND } from './http-errors.js';
import { mediaType, multipartBoundary, MultipartError, parseMultipart, type MultipartPart } from './multipart.js';
import { fullListBody, genericListBody, paginate, parsePageArgument } from './pagination.js';
import { Serializer } from './serialize.js';
import {
  isAdmin,
  isObjectId,
  newestFirst,
  type MassStore,
  type Principal,
  type RelationCls,
  type Report,
  type Sample,
  type ScheduledAnalysis,
} from './store.js';

export interface ApiRequest {
  method: string;
  /** Decoded path, starting with the API root path (e.g. /api/sample/). */
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  body: Buffer;
  principal: Principal | null;
  /** scheme://host[script] as MASS derives it from the request. */
  origin: string;
}

export type ApiResult =
  | { status: number; json: unknown }
  | { status: number; raw: Buffer; contentType: string }
  | { status: number; html: true }
  | { status: 204 }
  | { status: 308; location: string };

interface Ctx extends ApiRequest {
  params: Record<string, string>;
  ser: Serializer;
  store: MassStore;
  perPage: number;
}

type Handler = (ctx: Ctx) => ApiResult;

interface Route {
  name: string;
  re: RegExp;
  methods: Partial<Record<string, Handler>>;
}

const P = '([^/]+)';

function route(name: string, pattern: string, keys: string[], methods: Partial<Record<string, Handler>>): Route & { keys: string[] } {
  return { name, re: new RegExp(`^/api/${pattern}$`), methods, keys };
}

const json = (status: number, body: unknown): ApiResult => ({ status, json: body });

// ------------------------------------------------------------------ request body helpers

/** Flask 0.12 request.get_json(): None unless the media type is JSON; bad JSON is a BadRequest (HTML 400). */
function getJson(ctx: Ctx): unknown {
  const type = mediaType(ctx.contentType);
  if (type !== 'application/json' && !type.endsWith('+json')) return undefined;
  try {
    return JSON.parse(ctx.body.toString('utf8'));
  } catch {
    throw new HtmlError(400, 'malformed JSON body');
  }
}

const NO_JSON = (): JsonError =>
  new JsonError(400, { error: 'No JSON data provided. Make sure to set the content type of your request to: application/json' });

function jsonObjectBody(ctx: Ctx): Record<string, unknown> {
  const data = getJson(ctx);
  if (!data) throw NO_JSON();
  if (typeof data !== 'object' || Array.isArray(data)) throw crash('JSON body is not an object');
  return data as Record<string, unknown>;
}

function multipartParts(ctx: Ctx): MultipartPart[] {
  const boundary = multipartBoundary(ctx.contentType);
  if (!boundary) return [];
  try {
    return parseMultipart(ctx.body, boundary);
  } catch (err) {
    if (err instanceof MultipartError) throw new HtmlError(400, 'malformed multipart body');
    throw err;
  }
}

/** request.form[name]: first part without a filename. */
function formField(parts: MultipartPart[], name: string): string | undefined {
  const part = parts.find((p) => p.name === name && p.filename === undefined);
  return part?.body.toString('utf8');
}

/** request.files: parts with a filename, first of each name. */
function files(parts: MultipartPart[]): Map<string, MultipartPart> {
  const out = new Map<string, MultipartPart>();
  for (const p of parts) if (p.filename !== undefined && !out.has(p.name)) out.set(p.name, p);
  return out;
}

function parseJsonOrCrash(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw crash('metadata is not JSON (json.loads without a guard)');
  }
}

// ------------------------------------------------------------------ reference URLs (ForeignReferenceField)

type RefResult<T> = { value: T } | { error: string };

function resolveReference<T>(ctx: Ctx, value: unknown, attr: string, endpoint: string, lookup: (params: Record<string, string>) => T | undefined): RefResult<T> {
  if (typeof value !== 'string') throw crash(`${attr} is not a string`);
  let url = value.endsWith('/') ? value : `${value}/`;
  // value.replace(request.url_root, '/', 1): the URL must carry exactly this request's origin
  const root = `${ctx.origin}/`;
  const local = url.replace(root, '/');
  if (local === url) {
    return { error: `Reference URL for field ${attr} incorrectly specified: Network location of the URL does not match the servers network location.` };
  }
  url = local.split('?')[0];
  const match = matchRoute(safeDecode(url), 'GET');
  if (match.kind !== 'ok') return { error: `Reference URL for field ${attr} incorrectly specified: The path of the URL points to a nonexistent API endpoint.` };
  if (match.route.name !== endpoint) {
    return { error: `Reference URL for field ${attr} incorrectly specified. The path of the URL points to an endpoint that differs from the correct endpoint for this field.` };
  }
  const found = lookup(match.params);
  if (found === undefined) return { error: `Reference URL for field ${attr} incorrectly specified. The format of the URL is correct but the referenced object could not be found.` };
  return { value: found };
}

function sampleById(ctx: Ctx) {
  return (params: Record<string, string>): Sample | undefined => {
    if (!isObjectId(params.id)) throw crash('ObjectId invalid');
    return ctx.store.samples.get(params.id.toLowerCase());
  };
}

/** A reference field of a create body: where its URL must point and how the target is found there. */
interface RefField {
  attr: string;
  endpoint: string;
  lookup: (ctx: Ctx) => (params: Record<string, string>) => { id: string } | undefined;
}

const SYSTEM_REF: RefField = { attr: 'analysis_system', endpoint: 'analysis_system_detail', lookup: (ctx) => (p) => ctx.store.systemByName(p.name) };
const INSTANCE_REF: RefField = {
  attr: 'analysis_system_instance',
  endpoint: 'analysis_system_instance_detail',
  lookup: (ctx) => (p) => ctx.store.instanceByUuid(p.uuid),
};
const SAMPLE_REF: RefField = { attr: 'sample', endpoint: 'sample_detail', lookup: sampleById };

/** An optional reference field: the target's id, or undefined (absent, or its error recorded under the field's name). */
function referenceField(ctx: Ctx, data: Record<string, unknown>, errors: Record<string, string[]>, field: RefField): string | undefined {
  if (data[field.attr] === undefined) return undefined;
  const ref = resolveReference(ctx, data[field.attr], field.attr, field.endpoint, field.lookup(ctx));
  if ('error' in ref) {
    errors[field.attr] = [ref.error];
    return undefined;
  }
  return ref.value.id;
}

// ------------------------------------------------------------------ lookups

function objectIdParam(ctx: Ctx): string {
  const id = ctx.params.id;
  if (!isObjectId(id)) throw crash(`'${id}' is not a valid ObjectId`);
  return id.toLowerCase();
}

function visibleSample(ctx: Ctx, principal: Principal): Sample {
  const id = objectIdParam(ctx);
  const sample = ctx.store.samples.get(id);
  if (!sample || !ctx.store.canSee(principal, sample)) throw NOT_FOUND(ctx.params.id);
  return sample;
}

function listPage<T>(ctx: Ctx, items: T[], listPath: string) {
  const page = parsePageArgument(ctx.query);
  return paginate(items, page, ctx.perPage, `${ctx.ser.urls.api}${listPath}`);
}

// ------------------------------------------------------------------ analysis systems and instances

const systemList: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  const items = [...ctx.store.systems.values()].sort((a, b) => (a.identifier_name < b.identifier_name ? -1 : a.identifier_name > b.identifier_name ? 1 : 0));
  const page = listPage(ctx, items, 'analysis_system/');
  return json(200, genericListBody(page, page.items.map((s) => ctx.ser.system(s))));
};

const stringFieldErrors = (data: Record<string, unknown>, fields: string[]): Record<string, string[]> => {
  const errors: Record<string, string[]> = {};
  for (const f of fields) if (data[f] !== undefined && data[f] !== null && typeof data[f] !== 'string') errors[f] = ['Not a valid string.'];
  return errors;
};

const systemCreate: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  const data = jsonObjectBody(ctx);
  const errors = stringFieldErrors(data, ['identifier_name', 'verbose_name', 'information_text', 'tag_filter_expression']);
  if (Object.keys(errors).length > 0) return json(400, errors);
  return json(201, ctx.ser.system(ctx.store.createSystem(data)));
};

function systemByParam(ctx: Ctx) {
  const system = ctx.store.systemByName(ctx.params.name);
  if (!system) throw NOT_FOUND(ctx.params.name);
  return system;
}

const systemDetail: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  return json(200, ctx.ser.system(systemByParam(ctx)));
};

const systemUpdate: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  const data = getJson(ctx);
  if (!data) throw NO_JSON();
  const system = systemByParam(ctx);
  if (typeof data !== 'object' || Array.isArray(data)) throw crash('PUT body is not an object');
  const patch = data as Record<string, unknown>;
  for (const key of Object.keys(patch)) {
    if (!['verbose_name', 'information_text', 'tag_filter_expression'].includes(key)) throw crash(`cannot modify ${key}`);
    if (patch[key] !== null && typeof patch[key] !== 'string') throw crash(`${key} is not a string`);
  }
  Object.assign(system, patch);
  return json(200, ctx.ser.system(system));
};

const systemDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.deleteSystem(systemByParam(ctx));
  return { status: 204 };
};

const instanceList: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  // ordering ['analysis_system', 'uuid']
  const items = [...ctx.store.instances.values()].sort((a, b) => (a.systemId === b.systemId ? (a.uuid < b.uuid ? -1 : 1) : a.systemId < b.systemId ? -1 : 1));
  const page = listPage(ctx, items, 'analysis_system_instance/');
  return json(200, genericListBody(page, page.items.map((i) => ctx.ser.instance(i))));
};

const instanceCreate: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  const data = jsonObjectBody(ctx);
  const errors: Record<string, string[]> = stringFieldErrors(data, ['uuid']);
  const systemId = referenceField(ctx, data, errors, SYSTEM_REF);
  if (Object.keys(errors).length > 0) return json(400, errors);
  if (systemId === undefined) throw crash('analysis_system is required');
  return json(201, ctx.ser.instance(ctx.store.createInstance(systemId, data.uuid as string | undefined)));
};

function instanceByParam(ctx: Ctx) {
  const instance = ctx.store.instanceByUuid(ctx.params.uuid);
  if (!instance) throw NOT_FOUND(ctx.params.uuid);
  return instance;
}

const instanceDetail: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  return json(200, ctx.ser.instance(instanceByParam(ctx)));
};

const instanceDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.deleteInstance(instanceByParam(ctx));
  return { status: 204 };
};

const adminOnlyUnsupportedPut: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  // obj.modify() with reference URLs as plain strings fails validation upstream
  throw crash('PUT not supported on this resource');
};

/** The poll. Only the instance itself (or an admin) may read the queue; it is the heartbeat. */
const poll: Handler = (ctx) => {
  const p = requireRole(ctx.principal, 'admin', 'instance');
  const uuid = ctx.params.uuid;
  let instance;
  if (p.kind === 'instance' && p.uuid === uuid) {
    instance = ctx.store.instanceByUuid(uuid);
  } else if (isAdmin(p)) {
    instance = ctx.store.instanceByUuid(uuid);
    if (!instance) throw crash('admin polled an unknown uuid: unhandled DoesNotExist');
  }
  // upstream message has two spaces after "instance"
  if (!instance) return json(404, { error: `Analysis instance  '${uuid}' not found` });
  const items = ctx.store.poll(instance);
  return json(200, { results: items.map((s) => ctx.ser.scheduled(s)) });
};

// ------------------------------------------------------------------ scheduled analyses and requests

const scheduledList: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  const items = newestFirst(ctx.store.scheduled.values(), (s) => s.analysis_scheduled);
  const page = listPage(ctx, items, 'scheduled_analysis/');
  return json(200, genericListBody(page, page.items.map((s) => ctx.ser.scheduled(s))));
};

function scheduledByParam(ctx: Ctx): ScheduledAnalysis {
  const item = ctx.store.scheduled.get(objectIdParam(ctx));
  if (!item) throw NOT_FOUND(ctx.params.id);
  return item;
}

const scheduledDetail: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin', 'instance');
  return json(200, ctx.ser.scheduled(scheduledByParam(ctx)));
};

const scheduledDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.scheduled.delete(scheduledByParam(ctx).id);
  return { status: 204 };
};

const METHOD_NOT_ALLOWED: Handler = () => json(405, { error: 'Method not allowed for this endpoint.' });

function priorityField(data: Record<string, unknown>, errors: Record<string, string[]>): number {
  if (data.priority === undefined) return 0;
  if (typeof data.priority !== 'number' || !Number.isInteger(data.priority)) {
    errors.priority = ['Not a valid integer.'];
    return 0;
  }
  return data.priority;
}

/** POST of a scheduled analysis or an analysis request: a target reference, a sample reference and a priority. */
function createForSample(target: RefField, create: (ctx: Ctx, targetId: string, sampleId: string, priority: number) => unknown): Handler {
  return (ctx) => {
    requireRole(ctx.principal, 'admin');
    const data = jsonObjectBody(ctx);
    const errors: Record<string, string[]> = {};
    const targetId = referenceField(ctx, data, errors, target);
    const sampleId = referenceField(ctx, data, errors, SAMPLE_REF);
    const priority = priorityField(data, errors);
    if (Object.keys(errors).length > 0) return json(400, errors);
    if (targetId === undefined || sampleId === undefined) throw crash('required reference missing');
    return json(201, create(ctx, targetId, sampleId, priority));
  };
}

const scheduledCreate = createForSample(INSTANCE_REF, (ctx, instanceId, sampleId, priority) =>
  ctx.ser.scheduled(ctx.store.createScheduled(instanceId, sampleId, priority)),
);

const requestList: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  const items = newestFirst(ctx.store.requests.values(), (r) => r.analysis_requested);
  const page = listPage(ctx, items, 'analysis_request/');
  return json(200, genericListBody(page, page.items.map((r) => ctx.ser.request(r))));
};

function requestByParam(ctx: Ctx) {
  const item = ctx.store.requests.get(objectIdParam(ctx));
  if (!item) throw NOT_FOUND(ctx.params.id);
  return item;
}

const requestDetail: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  return json(200, ctx.ser.request(requestByParam(ctx)));
};

const requestDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.requests.delete(requestByParam(ctx).id);
  return { status: 204 };
};

const requestCreate = createForSample(SYSTEM_REF, (ctx, systemId, sampleId, priority) => ctx.ser.request(ctx.store.createRequest(systemId, sampleId, priority)));

// ------------------------------------------------------------------ report submission

const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** marshmallow 2 DateTime: ISO 8601 date-time (a date alone is rejected); stored as UTC seconds. */
export function parseAnalysisDate(value: string): number | null {
  const m = ISO_DATETIME.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m;
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, s ? +s : 0);
  const check = new Date(ms);
  if (check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || (s !== undefined && +s > 59)) return null;
  let offsetMinutes = 0;
  const tz = m[8];
  if (tz && tz.toUpperCase() !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  return Math.floor(ms / 1000) - offsetMinutes * 60;
}

const submitReport: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin', 'instance');
  // (1) find the scheduled analysis: non-hex id → 500, unknown or consumed → 404
  const item = scheduledByParam(ctx);
  const parts = multipartParts(ctx);
  // (2) metadata must be a plain form field (no filename)
  const metadataText = formField(parts, 'metadata');
  if (metadataText === undefined) return json(400, { error: 'JSON metadata missing in POST request.' });
  // (3) json.loads without a guard
  const data = parseJsonOrCrash(metadataText);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw crash('metadata is not a JSON object');
  const meta = data as Record<string, unknown>;
  // (4) ReportSchema().load(data, partial=True) field errors
  const errors: Record<string, string[]> = {};
  let analysisDate: number | null = null;
  if (meta.analysis_date !== undefined && meta.analysis_date !== null) {
    analysisDate = typeof meta.analysis_date === 'string' ? parseAnalysisDate(meta.analysis_date) : null;
    if (analysisDate === null) errors.analysis_date = ['Not a valid datetime.'];
  }
  let tags: string[] = [];
  if (meta.tags !== undefined) {
    if (!Array.isArray(meta.tags)) errors.tags = ['Not a valid list.'];
    else if (!meta.tags.every((t) => typeof t === 'string')) errors.tags = ['Not a valid string.'];
    else tags = meta.tags as string[];
  }
  let additional: Record<string, unknown> = {};
  if (meta.additional_metadata !== undefined) {
    const am = meta.additional_metadata;
    if (am === null || typeof am !== 'object' || Array.isArray(am)) errors.additional_metadata = ['Not a valid mapping type.'];
    else additional = am as Record<string, unknown>;
  }
  let errorMessage: string | null = null;
  if (meta.error_message !== undefined && meta.error_message !== null) {
    if (typeof meta.error_message !== 'string') errors.error_message = ['Not a valid string.'];
    else errorMessage = meta.error_message;
  }
  if (Object.keys(errors).length > 0) return json(400, errors);
  // report objects: keyed by part name; JSON by the part's media type (parameters ignored); stored unchecked
  const jsonObjects = new Map<string, Buffer>();
  const rawObjects = new Map<string, Buffer>();
  for (const [name, part] of files(parts)) {
    if (mediaType(part.contentType) === 'application/json') jsonObjects.set(name, Buffer.from(part.body));
    else rawObjects.set(name, Buffer.from(part.body));
  }
  // (5)-(7): save, copy tags (may fail with 500 after the save), delete the item
  const report = ctx.store.saveReport(item, {
    analysis_date: analysisDate,
    error_message: errorMessage,
    tags,
    additional_metadata: additional,
    json_report_objects: jsonObjects,
    raw_report_objects: rawObjects,
  });
  return json(201, ctx.ser.report(report));
};

// ------------------------------------------------------------------ reports

function reportByParam(ctx: Ctx): Report {
  const report = ctx.store.reports.get(objectIdParam(ctx));
  if (!report) throw NOT_FOUND(ctx.params.id);
  return report;
}

const reportList: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  const items = newestFirst(ctx.store.reports.values(), (r) => r.upload_date);
  const page = listPage(ctx, items, 'report/');
  return json(200, genericListBody(page, page.items.map((r) => ctx.ser.report(r))));
};

const reportDetail: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  return json(200, ctx.ser.report(reportByParam(ctx)));
};

const reportDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.reports.delete(reportByParam(ctx).id);
  return { status: 204 };
};

function reportObject(kind: 'json' | 'raw'): Handler {
  return (ctx) => {
    requireAuthenticated(ctx.principal);
    const report = reportByParam(ctx);
    const map = kind === 'json' ? report.json_report_objects : report.raw_report_objects;
    const body = map.get(ctx.params.object_name);
    // report.json_report_objects[name] raises KeyError for an unknown name: 500
    if (body === undefined) throw crash('unknown report object');
    return { status: 200, raw: body, contentType: kind === 'json' ? 'application/json' : 'binary/octet-stream' };
  };
}

// ------------------------------------------------------------------ samples

const DATE_FILTER = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\+00:00$/;

/** BaseResource._create_date_from_string: strptime('%Y-%m-%dT%H:%M:%S+00:00') or a 500. */
function dateFilter(value: string): number {
  const m = DATE_FILTER.exec(value);
  if (!m) throw crash('date filter format');
  const [, y, mo, d, h, mi, s] = m.map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const c = new Date(ms);
  if (c.getUTCMonth() !== mo - 1 || c.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw crash('date filter range');
  return ms / 1000;
}

function pythonInt(value: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) throw crash('not an int');
  return Number.parseInt(value, 10);
}

function pythonFloat(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || Number.isNaN(n)) throw crash('not a float');
  return n;
}

type SampleFilter = (s: Sample) => boolean;

function stringField(s: Sample, field: string): string | undefined {
  switch (field) {
    case 'ip_address':
      return s.ip_address;
    case 'domain':
      return s.domain;
    case 'uri':
      return s.uri;
    case '_cls':
      return s.cls;
    case 'md5sum':
    case 'sha1sum':
    case 'sha256sum':
    case 'sha512sum':
    case 'mime_type':
      return s.file?.[field];
    default:
      return undefined;
  }
}

/** SampleResource.filter_parameters. */
function sampleFilters(query: URLSearchParams): SampleFilter[] {
  const filters: SampleFilter[] = [];
  const get = (k: string) => query.get(k);
  for (const field of ['ip_address', 'domain', 'uri', 'md5sum', 'sha1sum', 'sha256sum', 'sha512sum', 'mime_type', '_cls']) {
    const v = get(field);
    if (v !== null) filters.push((s) => stringField(s, field) === v);
  }
  const ops: [string, string, (a: string, b: string) => boolean][] = [
    ['ip_address', 'startswith', (a, b) => a.startsWith(b)],
    ['domain', 'contains', (a, b) => a.includes(b)],
    ['domain', 'startswith', (a, b) => a.startsWith(b)],
    ['domain', 'endswith', (a, b) => a.endsWith(b)],
    ['uri', 'contains', (a, b) => a.includes(b)],
    ['uri', 'startswith', (a, b) => a.startsWith(b)],
    ['uri', 'endswith', (a, b) => a.endsWith(b)],
    ['_cls', 'startswith', (a, b) => a.startsWith(b)],
  ];
  for (const [field, op, test] of ops) {
    const v = get(`${field}__${op}`);
    if (v !== null) filters.push((s) => {
      const value = stringField(s, field);
      return value !== undefined && test(value, v);
    });
  }
  const fileNames = get('file_names');
  if (fileNames !== null) filters.push((s) => s.file?.file_names.includes(fileNames) ?? false);
  const numeric: [string, (s: Sample) => number | undefined, (v: string) => number][] = [
    ['file_size', (s) => s.file?.file_size, pythonInt],
    ['shannon_entropy', (s) => s.file?.shannon_entropy, pythonFloat],
    ['delivery_date', (s) => s.delivery_date, dateFilter],
    ['first_seen', (s) => s.first_seen, dateFilter],
  ];
  for (const [field, read, parse] of numeric) {
    const lte = get(`${field}__lte`);
    if (lte !== null) {
      const bound = parse(lte);
      filters.push((s) => (read(s) ?? Number.NaN) <= bound);
    }
    const gte = get(`${field}__gte`);
    if (gte !== null) {
      const bound = parse(gte);
      filters.push((s) => (read(s) ?? Number.NaN) >= bound);
    }
  }
  const all = get('tags__all');
  if (all !== null) {
    const wanted = all.split(',');
    filters.push((s) => wanted.every((t) => s.tags.includes(t)));
  }
  return filters;
}

const sampleList: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  const page0 = parsePageArgument(ctx.query); // the page is read before the filters
  const filters = sampleFilters(ctx.query);
  const items = ctx.store.sampleList().filter((s) => ctx.store.canSee(p, s) && filters.every((f) => f(s)));
  const page = paginate(items, page0, ctx.perPage, `${ctx.ser.urls.api}sample/`);
  return json(200, fullListBody(page, page.items.map((s) => ctx.ser.sample(s))));
};

const sampleDetail: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  return json(200, ctx.ser.sample(visibleSample(ctx, p)));
};

const sampleDownload: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  const sample = visibleSample(ctx, p);
  if (!sample.file) return json(400, { error: 'There is no file available for this sample' });
  return { status: 200, raw: sample.file.bytes, contentType: 'application/octet-stream' };
};

const sampleReports: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  const sample = visibleSample(ctx, p);
  return json(200, { results: ctx.store.reportsOf(sample.id).map((r) => ctx.ser.report(r)) });
};

const sampleRelationGraph: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  const sample = visibleSample(ctx, p);
  const depthArg = ctx.query.get('depth');
  const depth = depthArg === null ? 3 : pythonInt(depthArg);
  return json(200, { results: ctx.store.relationGraph(sample.id, depth).map((r) => ctx.ser.relation(r)) });
};

const samplePost: Handler = () =>
  json(400, {
    error: 'Posting samples directly to the sample endpoint is not allowed. Instead please use the respective endpoints of each specific sample type.',
  });

const samplePut: Handler = () => json(400, { error: 'Updating sample objects via the API is not supported yet.' });

const sampleDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  // BaseResource.delete calls self.queryset.get, but the sample queryset is a method: AttributeError
  throw crash('sample delete is broken upstream');
};

const submitFile: Handler = (ctx) => {
  const p = requireAuthenticated(ctx.principal);
  const parts = multipartParts(ctx);
  const file = files(parts).get('file');
  if (!file) return json(400, { error: 'File payload missing in POST request.' });
  const metadataText = formField(parts, 'metadata');
  const metadata = metadataText === undefined ? {} : parseJsonOrCrash(metadataText);
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw crash('metadata is not a JSON object');
  const sample = ctx.store.submitSample(p, { cls: 'file', bytes: Buffer.from(file.body), filename: file.filename ?? '' }, metadata as Record<string, unknown>);
  return json(201, ctx.ser.sample(sample));
};

function submitValue(cls: 'ip' | 'domain' | 'uri', field: string): Handler {
  return (ctx) => {
    const p = requireAuthenticated(ctx.principal);
    const data = jsonObjectBody(ctx);
    const value = data[field];
    if (typeof value !== 'string') throw crash(`${field} missing or not a string`);
    return json(201, ctx.ser.sample(ctx.store.submitSample(p, { cls, value }, data)));
  };
}

// ------------------------------------------------------------------ relations

const relationList: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  const page = listPage(ctx, [...ctx.store.relations.values()], 'sample_relation/');
  return json(200, fullListBody(page, page.items.map((r) => ctx.ser.relation(r))));
};

function relationByParam(ctx: Ctx) {
  const relation = ctx.store.relations.get(objectIdParam(ctx));
  if (!relation) throw NOT_FOUND(ctx.params.id);
  return relation;
}

const relationDetail: Handler = (ctx) => {
  requireAuthenticated(ctx.principal);
  return json(200, ctx.ser.relation(relationByParam(ctx)));
};

const relationDelete: Handler = (ctx) => {
  requireRole(ctx.principal, 'admin');
  ctx.store.relations.delete(relationByParam(ctx).id);
  return { status: 204 };
};

const relationPost: Handler = () =>
  json(400, {
    error: 'Posting sample relations directly to the sample relation endpoint is not allowed. Instead please use the respective endpoints of each specific relation type.',
  });

const relationPut: Handler = () => json(400, { error: 'Updating relation objects via the API is not supported yet.' });

function submitRelation(cls: RelationCls): Handler {
  return (ctx) => {
    requireRole(ctx.principal, 'admin', 'instance');
    const data = getJson(ctx);
    // schema.load(data).data is saved without looking at the errors: any problem is a 500
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw crash('relation body is not a JSON object');
    const body = data as Record<string, unknown>;
    const resolved: string[] = [];
    for (const attr of ['sample', 'other']) {
      if (body[attr] === undefined) throw crash(`${attr} missing`);
      const ref = resolveReference(ctx, body[attr], attr, 'sample_detail', sampleById(ctx));
      if ('error' in ref) throw crash(ref.error);
      resolved.push(ref.value.id);
    }
    let match: number | undefined;
    if (cls === 'SampleRelation.SsdeepSampleRelation') {
      if (typeof body.match !== 'number' || body.match < 0 || body.match > 100) throw crash('match missing or out of range');
      match = body.match;
    }
    return json(201, ctx.ser.relation(ctx.store.createRelation(cls, resolved[0], resolved[1], match)));
  };
}

// ------------------------------------------------------------------ the route table (Werkzeug order: static before dynamic)

const ROUTES = [
  route('analysis_system', 'analysis_system/', [], { GET: systemList, POST: systemCreate }),
  route('analysis_system_detail', `analysis_system/${P}/`, ['name'], { GET: systemDetail, PUT: systemUpdate, DELETE: systemDelete }),
  route('analysis_system_instance', 'analysis_system_instance/', [], { GET: instanceList, POST: instanceCreate }),
  route('analysis_system_instance_scheduled_analyses', `analysis_system_instance/${P}/scheduled_analyses/`, ['uuid'], { GET: poll }),
  route('analysis_system_instance_detail', `analysis_system_instance/${P}/`, ['uuid'], { GET: instanceDetail, PUT: adminOnlyUnsupportedPut, DELETE: instanceDelete }),
  route('scheduled_analysis', 'scheduled_analysis/', [], { GET: scheduledList, POST: scheduledCreate }),
  route('scheduled_analysis_submit_report', `scheduled_analysis/${P}/submit_report/`, ['id'], { POST: submitReport }),
  route('scheduled_analysis_detail', `scheduled_analysis/${P}/`, ['id'], { GET: scheduledDetail, PUT: METHOD_NOT_ALLOWED, DELETE: scheduledDelete }),
  route('analysis_request', 'analysis_request/', [], { GET: requestList, POST: requestCreate }),
  route('analysis_request_detail', `analysis_request/${P}/`, ['id'], { GET: requestDetail, PUT: adminOnlyUnsupportedPut, DELETE: requestDelete }),
  route('sample', 'sample/', [], { GET: sampleList, POST: samplePost }),
  route('sample_submit_file', 'sample/submit_file/', [], { POST: submitFile }),
  route('sample_submit_ip', 'sample/submit_ip/', [], { POST: submitValue('ip', 'ip_address') }),
  route('sample_submit_domain', 'sample/submit_domain/', [], { POST: submitValue('domain', 'domain') }),
  route('sample_submit_uri', 'sample/submit_uri/', [], { POST: submitValue('uri', 'uri') }),
  route('sample_download', `sample/${P}/download/`, ['id'], { GET: sampleDownload }),
  route('sample_reports', `sample/${P}/reports/`, ['id'], { GET: sampleReports }),
  route('sample_relation_graph', `sample/${P}/relation_graph/`, ['id'], { GET: sampleRelationGraph }),
  route('sample_detail', `sample/${P}/`, ['id'], { GET: sampleDetail, PUT: samplePut, DELETE: sampleDelete }),
  route('report', 'report/', [], { GET: reportList, POST: METHOD_NOT_ALLOWED }),
  route('json_report_object', `report/${P}/json_report_object/${P}/`, ['id', 'object_name'], { GET: reportObject('json') }),
  route('raw_report_object', `report/${P}/raw_report_object/${P}/`, ['id', 'object_name'], { GET: reportObject('raw') }),
  route('report_detail', `report/${P}/`, ['id'], { GET: reportDetail, PUT: METHOD_NOT_ALLOWED, DELETE: reportDelete }),
  route('sample_relation', 'sample_relation/', [], { GET: relationList, POST: relationPost }),
  route('sample_relation_submit_dropped_by', 'sample_relation/submit_dropped_by/', [], { POST: submitRelation('SampleRelation.DroppedBySampleRelation') }),
  route('sample_relation_submit_resolved_by', 'sample_relation/submit_resolved_by/', [], { POST: submitRelation('SampleRelation.ResolvedBySampleRelation') }),
  route('sample_relation_submit_contacted_by', 'sample_relation/submit_contacted_by/', [], { POST: submitRelation('SampleRelation.ContactedBySampleRelation') }),
  route('sample_relation_submit_retrieved_by', 'sample_relation/submit_retrieved_by/', [], { POST: submitRelation('SampleRelation.RetrievedBySampleRelation') }),
  route('sample_relation_submit_ssdeep', 'sample_relation/submit_ssdeep/', [], { POST: submitRelation('SampleRelation.SsdeepSampleRelation') }),
  route('sample_relation_detail', `sample_relation/${P}/`, ['id'], { GET: relationDetail, PUT: relationPut, DELETE: relationDelete }),
];

type RouteMatch = { kind: 'ok'; route: (typeof ROUTES)[number]; handler: Handler; params: Record<string, string> } | { kind: 'method' } | { kind: 'none' };

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Werkzeug MapAdapter.match: first rule whose path and method fit; path-only matches give 405. */
function matchRoute(path: string, method: string): RouteMatch {
  const m = method === 'HEAD' ? 'GET' : method;
  let pathMatched = false;
  for (const r of ROUTES) {
    const found = r.re.exec(path);
    if (!found) continue;
    const handler = r.methods[m];
    if (!handler) {
      pathMatched = true;
      continue;
    }
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => (params[k] = found[i + 1]));
    return { kind: 'ok', route: r, handler, params };
  }
  return pathMatched ? { kind: 'method' } : { kind: 'none' };
}

/** Serves one request to the MASS API. Errors thrown as JsonError/HtmlError become their replies. */
export function handleApiRequest(store: MassStore, perPage: number, req: ApiRequest): ApiResult {
  const match = matchRoute(req.path, req.method);
  if (match.kind === 'method') return { status: 405, html: true };
  if (match.kind === 'none') {
    // Werkzeug strict_slashes: a known path without its trailing slash is redirected
    if (!req.path.endsWith('/') && matchRoute(`${req.path}/`, req.method).kind === 'ok') {
      const qs = req.query.toString();
      return { status: 308, location: `${req.origin}${req.path}/${qs ? `?${qs}` : ''}` };
    }
    return { status: 404, html: true };
  }
  store.countCall(req.principal, req.method, match.route.name);
  const ctx: Ctx = { ...req, params: match.params, ser: new Serializer(store, `${req.origin}/api/`), store, perPage };
  try {
    return match.handler(ctx);
  } catch (err) {
    if (err instanceof JsonError) return { status: err.status, json: err.body };
    if (err instanceof HtmlError) return { status: err.status, html: true };
    throw err;
  }
}

export { safeDecode };
