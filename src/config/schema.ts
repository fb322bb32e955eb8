/**
 * Every configuration key in one table: INI section and spelling, environment variable,
 * default, how its text is parsed and where it lands in BridgeConfig. Loading, validation,
 * printing, the example file and docs/configuration.md are all driven by this table.
 */
import type { BridgeConfig } from './types.js';
import { normalizeName } from './ini.js';

export const SECTIONS = ['GLOBAL', 'AssemblylineAnalysis', 'Assemblyline', 'Bridge', 'Report', 'API'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** Where a key lands in BridgeConfig: [group, field]. */
export type ConfigPath = { [G in keyof BridgeConfig]: [G, keyof BridgeConfig[G] & string] }[keyof BridgeConfig];

export type ParseResult = { ok: true; value: unknown; warning?: string } | { ok: false; message: string };

export interface ConfigKeySpec {
  section: SectionName;
  /** Canonical spelling, as printed and documented. Matching is case-insensitive and ignores spaces, '-' and '_'. */
  key: string;
  path: ConfigPath;
  /** INI text of the default; '' = empty. */
  default: string;
  /** Human text when the default is computed from other keys (docs only). */
  derivedDefault?: string;
  /** Must be non-empty (conditional requirements live in the cross-checks of load.ts). */
  required?: boolean;
  /** Never printed, never echoed in a message; also settable through `<ENV>_FILE`. */
  secret?: boolean;
  /** A path that must name a readable file when non-empty. */
  readableFile?: boolean;
  description: string;
  parse: (text: string) => ParseResult;
  /** Back to INI text (for describeConfig). */
  format: (value: unknown) => string;
}

export const ENV_PREFIX = 'MASSAL_';

/** `MASSAL_<SECTION>_<KEY>`, upper case, spaces and dashes as '_': `mass api key` → MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY. */
export function envName(section: string, key: string): string {
  const part = (s: string) => s.trim().toUpperCase().replace(/[\s-]+/g, '_');
  return `${ENV_PREFIX}${part(section)}_${part(key)}`;
}

// ---- parsers -------------------------------------------------------------------------------

const ok = (value: unknown, warning?: string): ParseResult => (warning ? { ok: true, value, warning } : { ok: true, value });
const fail = (message: string): ParseResult => ({ ok: false, message });
const asText = (v: unknown) => String(v);

function str(opts: { maxLength?: number; minLength?: number; check?: (s: string) => string | undefined } = {}) {
  return (text: string): ParseResult => {
    if (text !== '' && opts.minLength !== undefined && text.length < opts.minLength) return fail(`must be at least ${opts.minLength} characters long`);
    if (opts.maxLength !== undefined && text.length > opts.maxLength) return fail(`must be at most ${opts.maxLength} characters long`);
    const problem = text === '' ? undefined : opts.check?.(text);
    return problem ? fail(problem) : ok(text);
  };
}

function int(min: number, max: number, note = '') {
  return (text: string): ParseResult => {
    if (!/^[+-]?\d+$/.test(text)) return fail('must be a whole number');
    const n = Number(text);
    if (!Number.isSafeInteger(n)) return fail('is too large');
    if (n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
      return fail(`must be ${range}${note ? ` (${note})` : ''}`);
    }
    return ok(n);
  };
}

/** Durations in seconds; decimals allowed so tests and demos can run fast. */
function seconds(min: number, max: number) {
  return (text: string): ParseResult => {
    if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text)) return fail('must be a number of seconds');
    const n = Number(text);
    if (n < min || n > max) return fail(`must be between ${min} and ${max} seconds`);
    return ok(n);
  };
}

const TRUE = new Set(['true', 'yes', '1', 'on']);
const FALSE = new Set(['false', 'no', '0', 'off']);
function bool(text: string): ParseResult {
  const t = text.toLowerCase();
  if (TRUE.has(t)) return ok(true);
  if (FALSE.has(t)) return ok(false);
  return fail('must be true/false, yes/no, on/off or 1/0');
}
const formatBool = (v: unknown) => (v ? 'true' : 'false');

function httpUrl(text: string): ParseResult {
  // new URL() quietly percent-encodes spaces: 'http://mass/ ; my MASS' would become a path.
  const space = /\s/.exec(text);
  if (space) {
    const rest = text.slice(space.index).trim();
    if (rest.startsWith(';') || rest.startsWith('#')) {
      return fail(`must not contain spaces: '${rest}' reads as part of the value (no inline comments in this INI format); put the comment on a line of its own`);
    }
    return fail('must not contain spaces; write a space in a path as %20');
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('must be an http:// or https:// URL');
  // Credentials in a URL would be printed and logged like any other URL.
  if (url.username || url.password) return fail('must not contain a user name or password; use the credential keys');
  if (url.search || url.hash) return fail('must not contain a query string or fragment');
  return ok(text);
}

/** Comma-separated http(s) origins (scheme://host[:port]), each normalised as a browser would (lower-case host, no default port). */
function origins(text: string): ParseResult {
  const out: string[] = [];
  for (const item of text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== '')) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return fail(`'${item}' is not an absolute http:// or https:// origin, e.g. http://mass-internal:8000`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail(`'${item}' must start with http:// or https://`);
    if (url.username || url.password) return fail(`'${item}' must not contain a user name or password`);
    if (url.pathname !== '/' || url.search || url.hash) return fail(`'${item}' must be an origin only (scheme://host[:port]), without a path`);
    if (!out.includes(url.origin)) out.push(url.origin);
  }
  return ok(out);
}

function oneOf<T extends string>(values: readonly T[], normalise: (s: string) => string = (s) => s.toLowerCase()) {
  return (text: string): ParseResult => {
    const v = normalise(text);
    return (values as readonly string[]).includes(v) ? ok(v) : fail(`must be one of ${values.join(', ')}`);
  };
}

/** Comma- (or newline-) separated list; optionally restricted to known values. */
function list(values?: readonly string[], normalise: (s: string) => string = (s) => s) {
  return (text: string): ParseResult => {
    const items = text
      .split(/[,\n]/)
      .map((s) => normalise(s.trim()))
      .filter((s) => s !== '');
    if (values) {
      const bad = items.filter((i) => !values.includes(i));
      if (bad.length) return fail(`unknown value(s) ${bad.join(', ')}; allowed: ${values.join(', ')}`);
    }
    return ok([...new Set(items)]);
  };
}
const formatList = (v: unknown) => (v as string[]).join(',');

/** `host:port`; IPv6 hosts in brackets. Port 0 asks the OS for a free port (tests). */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}
function listen(text: string): ParseResult {
  return parseListen(text) ? ok(text) : fail("must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
}

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function instanceUuid(text: string): ParseResult {
  // MASS stores any uuid of at most 36 characters; it becomes a URL path segment.
  if (text.length > 36) return fail('must be at most 36 characters (MASS limit)');
  if (/[/?#%\s]/.test(text)) return fail("must not contain '/', '?', '#', '%' or spaces: it is part of the poll URL");
  return ok(text, UUID_SHAPE.test(text) ? undefined : 'is not shaped like a uuid; MASS accepts it, but check it was copied whole');
}

/** Since AL 4.7.4 names shaped like `<even-length upper-case hex>-…` are read as per-user keys (ASSEMBLYLINE.md §4.2). */
export function notificationQueueProblem(name: string): string | undefined {
  if (name.includes('/')) return "must not contain '/'";
  if (/^(?:[0-9A-F]{2})+-/.test(name)) return "must not start with upper-case hex of even length followed by '-' (Assemblyline reads that as a per-user queue key)";
  if (/\s/.test(name)) return 'must not contain spaces';
  return undefined;
}

function apiKeyShape(text: string): string | undefined {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) return "must be '<key name>:<secret>' as shown when the key was created in Assemblyline";
  return undefined;
}

const MASS_TAG = /^[A-Za-z0-9_:\-/+.]*$/;

export const TAG_KINDS = ['verdict', 'family', 'attack', 'score', 'heuristic'] as const;
export const PARENT_RELATIONS = ['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED', 'INFORMATION', 'ROOT'] as const;
export const STATIC_IOC_TYPES = ['ip', 'domain', 'uri'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const AUTH_MODES = ['apikey', 'password'] as const;

/** Auth mode; `certificate` was never an Assemblyline login method and gets the fix spelled out. */
function authMode(text: string): ParseResult {
  const v = text.toLowerCase();
  if (v === 'certificate') {
    return fail(
      'certificate is not an Assemblyline authentication method (Assemblyline reads X-USER + X-APIKEY or a session, never a client certificate): ' +
        'set Auth = apikey with APIKey (or password with Password), and keep ClientCert/ClientKey: they are still sent in the TLS handshake to an mTLS proxy',
    );
  }
  return oneOf(AUTH_MODES)(text);
}

/** Whole number in a range, or empty for "not sent" (0). */
function optionalInt(min: number, max: number, note = '') {
  const parseInt = int(min, max, note);
  return (text: string): ParseResult => (text === '' ? ok(0) : parseInt(text));
}
const formatOptionalInt = (v: unknown) => (v === 0 ? '' : String(v));

/** The bridge's own ingest metadata keys ([Assemblyline] BridgeMetadata, src/bridge/ingest-request.ts): not for [Assemblyline] Metadata. */
export const BRIDGE_METADATA_KEYS = ['mass_scheduled_analysis', 'mass_sample', 'bridge_instance', 'bridge_job', 'bridge_attempt'] as const;

/** `key=value` pairs separated by commas or new lines; keys are Assemblyline metadata field names, each once, none of the bridge's own. */
function keyValues(text: string): ParseResult {
  const out: Record<string, string> = {};
  for (const item of text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return fail(`'${item}' is not key=value`);
    const key = item.slice(0, eq).trim();
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) return fail(`metadata key '${key}' may only contain letters, digits and _ . -`);
    if (key in out) return fail(`metadata key '${key}' is given twice`);
    if ((BRIDGE_METADATA_KEYS as readonly string[]).includes(key)) {
      return fail(`metadata key '${key}' is one the bridge sets itself (${BRIDGE_METADATA_KEYS.join(', ')}); choose another name`);
    }
    out[key] = item.slice(eq + 1).trim();
  }
  return ok(out);
}
const formatKeyValues = (v: unknown) => Object.entries(v as Record<string, string>).map(([k, x]) => `${k}=${x}`).join(',');
/** Summary levels of Assemblyline from which a network IOC is related ([Report] IOCMinVerdict). */
export const IOC_MIN_VERDICTS = ['info', 'suspicious', 'malicious'] as const;
export const READ_AUTH_MODES = ['none', 'token'] as const;

// ---- the table -----------------------------------------------------------------------------

type SpecInput = Omit<ConfigKeySpec, 'format'> & { format?: ConfigKeySpec['format'] };
const spec = (s: SpecInput): ConfigKeySpec => ({ format: asText, ...s });

const MAX = Number.MAX_SAFE_INTEGER;

export const CONFIG_KEYS: readonly ConfigKeySpec[] = [
  // [GLOBAL]: as in the MASS client tutorial
  spec({ section: 'GLOBAL', key: 'ServerURL', path: ['global', 'serverUrl'], default: '', required: true, parse: httpUrl,
    description: 'URL of the MASS server, e.g. http://mass.example.org/' }),
  spec({ section: 'GLOBAL', key: 'APIEndpoint', path: ['global', 'apiEndpoint'], default: 'api/',
    parse: str({ check: (s) => (s.includes('://') ? 'must be a path relative to ServerURL, not a URL' : /[?#]/.test(s) ? 'must not contain ? or #' : undefined) }),
    description: "Path of the REST API relative to ServerURL; the API root is ServerURL joined with APIEndpoint, always ending with '/'" }),
  spec({ section: 'GLOBAL', key: 'ServerAliases', path: ['global', 'serverAliases'], default: '', parse: origins, format: formatList,
    description: 'Comma-separated origins (scheme://host[:port]) that are the same MASS as ServerURL, e.g. the internal origin a reverse proxy that rewrites the Host header makes MASS put in its URLs; such URLs are requested through ServerURL. The API key is never sent to any other origin' }),
  spec({ section: 'GLOBAL', key: 'SleepTime', path: ['global', 'sleepTime'], default: '3', parse: seconds(0.1, 3600),
    description: 'Seconds to wait between two request cycles when a poll failed (MASS client tutorial semantics)' }),

  // [AssemblylineAnalysis]: the analysis-client section of the tutorial
  spec({ section: 'AssemblylineAnalysis', key: 'PollTime', path: ['mass', 'pollTime'], default: '10', parse: seconds(0.1, 86400),
    description: 'Seconds between two polls of MASS for scheduled analyses; the poll is also the heartbeat (MASS marks an instance offline after 10 minutes without one)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'UUID', path: ['mass', 'uuid'], default: '', required: true, parse: instanceUuid,
    description: 'UUID of this analysis-system instance on MASS (at most 36 characters)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'SystemName', path: ['mass', 'systemName'], default: 'assemblyline', required: true,
    parse: str({ minLength: 3, maxLength: 50, check: (s) => (/[/?#%\s]/.test(s) ? "must not contain '/', '?', '#', '%' or spaces" : undefined) }),
    description: 'identifier_name of the analysis system on MASS (3 to 50 characters)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'mass api key', path: ['mass', 'apiKey'], default: '', required: true, secret: true, parse: str(),
    description: 'Instance API key, copied from the MASS web UI (webui/admin/analysis_systems/)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'Timeout', path: ['mass', 'timeout'], default: '30', parse: seconds(1, 3600),
    description: 'Seconds before a MASS request is abandoned (production MASS ends requests after 20 s itself)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'VerifyTLS', path: ['mass', 'verifyTls'], default: 'true', parse: bool, format: formatBool,
    description: 'Verify the TLS certificate of MASS (https:// ServerURL)' }),
  spec({ section: 'AssemblylineAnalysis', key: 'CAFile', path: ['mass', 'caFile'], default: '', readableFile: true, parse: str(),
    description: 'PEM bundle of certificate authorities to trust for MASS, beside the system store (empty = system store only)' }),

  // [Assemblyline]
  spec({ section: 'Assemblyline', key: 'URL', path: ['assemblyline', 'url'], default: '', required: true, parse: httpUrl,
    description: 'Base URL of Assemblyline, e.g. https://al.example.org' }),
  spec({ section: 'Assemblyline', key: 'User', path: ['assemblyline', 'user'], default: '', parse: str(),
    description: 'Assemblyline user; the same user must ingest and read the notification queue. Required for apikey and password auth' }),
  spec({ section: 'Assemblyline', key: 'Auth', path: ['assemblyline', 'auth'], default: 'apikey', parse: authMode,
    description: 'How to authenticate: apikey (X-USER/X-APIKEY headers) or password (session login). A client certificate is not an authentication method of Assemblyline: see ClientCert' }),
  spec({ section: 'Assemblyline', key: 'APIKey', path: ['assemblyline', 'apiKey'], default: '', secret: true, parse: str({ check: apiKeyShape }),
    description: "API key as '<key name>:<secret>', with read and write access. Required for apikey auth" }),
  spec({ section: 'Assemblyline', key: 'Password', path: ['assemblyline', 'password'], default: '', secret: true, parse: str(),
    description: 'Password for session login. Required for password auth' }),
  spec({ section: 'Assemblyline', key: 'ClientCert', path: ['assemblyline', 'clientCert'], default: '', readableFile: true, parse: str(),
    description: 'PEM client certificate sent in the TLS handshake, for an mTLS proxy in front of Assemblyline; used together with apikey or password auth' }),
  spec({ section: 'Assemblyline', key: 'ClientKey', path: ['assemblyline', 'clientKey'], default: '', readableFile: true, parse: str(),
    description: 'PEM private key of ClientCert' }),
  spec({ section: 'Assemblyline', key: 'VerifyTLS', path: ['assemblyline', 'verifyTls'], default: 'true', parse: bool, format: formatBool,
    description: 'Verify the TLS certificate of Assemblyline' }),
  spec({ section: 'Assemblyline', key: 'CAFile', path: ['assemblyline', 'caFile'], default: '', readableFile: true, parse: str(),
    description: 'PEM bundle of certificate authorities to trust for Assemblyline (empty = system store)' }),
  spec({ section: 'Assemblyline', key: 'Timeout', path: ['assemblyline', 'timeout'], default: '60', parse: seconds(1, 3600),
    description: 'Seconds before an Assemblyline request is abandoned' }),
  spec({ section: 'Assemblyline', key: 'NotificationQueue', path: ['assemblyline', 'notificationQueue'], default: 'mass-al-bridge', required: true,
    parse: str({ maxLength: 200, check: notificationQueueProblem }),
    description: "Notification queue the bridge ingests with and reads; one per bridge. No '/', and not starting with even-length upper-case hex + '-'" }),
  spec({ section: 'Assemblyline', key: 'Priority', path: ['assemblyline', 'priority'], default: '', format: formatOptionalInt,
    parse: optionalInt(2, 250, 'Assemblyline always drops priority 1 and caps ingest priority at 250'),
    description: 'Ingest priority, 2 to 250 (empty = not sent: the submission profile or server default decides; 1 is always dropped by Assemblyline; more than 250 is capped)' }),
  spec({ section: 'Assemblyline', key: 'Classification', path: ['assemblyline', 'classification'], default: '', parse: str(),
    description: "Classification of submissions (empty = not sent: the server default); must be at or below the Assemblyline user's clearance" }),
  spec({ section: 'Assemblyline', key: 'Services', path: ['assemblyline', 'services'], default: '', parse: list(), format: formatList,
    description: 'Comma-separated services or service categories to select (empty = profile or user default)' }),
  spec({ section: 'Assemblyline', key: 'DeepScan', path: ['assemblyline', 'deepScan'], default: 'false', parse: bool, format: formatBool,
    description: 'Ask services for a deep scan (false = not sent)' }),
  spec({ section: 'Assemblyline', key: 'TTL', path: ['assemblyline', 'ttl'], default: '0', parse: int(0, 36500),
    description: 'Days Assemblyline keeps the submission (0 = server default)' }),
  spec({ section: 'Assemblyline', key: 'NeverDrop', path: ['assemblyline', 'neverDrop'], default: 'false', parse: bool, format: formatBool,
    description: "Send params.never_drop on every ingest so the ingester never samples the file out under load (false = sent only on the re-ingest of a file Assemblyline dropped as 'Skipped')" }),
  spec({ section: 'Assemblyline', key: 'Metadata', path: ['assemblyline', 'metadata'], default: '', parse: keyValues, format: formatKeyValues,
    description: 'Metadata sent with every ingest, as key=value pairs separated by commas (for deployments whose metadata scheme requires fields)' }),
  spec({ section: 'Assemblyline', key: 'BridgeMetadata', path: ['assemblyline', 'bridgeMetadata'], default: 'true', parse: bool, format: formatBool,
    description: 'Also send the bridge\'s own metadata (mass_scheduled_analysis, mass_sample, bridge_instance, bridge_job, bridge_attempt); turn off where a strict metadata scheme forbids them' }),
  spec({ section: 'Assemblyline', key: 'HashFirst', path: ['assemblyline', 'hashFirst'], default: 'true', parse: bool, format: formatBool,
    description: 'Ingest by sha256 first: a file Assemblyline already stores is neither downloaded from MASS nor uploaded; only when Assemblyline does not hold it is the sample downloaded and uploaded' }),
  spec({ section: 'Assemblyline', key: 'IgnoreCache', path: ['assemblyline', 'ignoreCache'], default: 'false', parse: bool, format: formatBool,
    description: "Send params.ignore_cache on every ingest: Assemblyline analyses the file again instead of answering from its result cache (after services changed)" }),
  spec({ section: 'Assemblyline', key: 'SubmissionProfile', path: ['assemblyline', 'submissionProfile'], default: '', parse: str(),
    description: 'Submission profile, e.g. static (empty = none; required by Assemblyline for users without submission_customize, who may then not change the parameters the profile restricts)' }),
  spec({ section: 'Assemblyline', key: 'IngestType', path: ['assemblyline', 'ingestType'], default: 'MASS', required: true, parse: str({ maxLength: 100 }),
    description: 'Ingest type recorded on every submission' }),
  spec({ section: 'Assemblyline', key: 'UIURL', path: ['assemblyline', 'uiUrl'], default: '', derivedDefault: 'the URL value', parse: httpUrl,
    description: 'Base URL for links into the Assemblyline web UI' }),
  spec({ section: 'Assemblyline', key: 'MaxConcurrentCalls', path: ['assemblyline', 'maxConcurrentCalls'], default: '8', parse: int(1, 1000),
    description: 'Most Assemblyline requests in flight at once; Assemblyline refuses more than 10 per user by default (503)' }),
  spec({ section: 'Assemblyline', key: 'MaxFileSize', path: ['assemblyline', 'maxFileSize'], default: '104857600', parse: int(1, MAX),
    description: 'Largest file in bytes Assemblyline accepts (its default is 104857600)' }),

  // [Bridge]
  spec({ section: 'Bridge', key: 'StateDir', path: ['bridge', 'stateDir'], default: 'state', required: true, parse: str(),
    description: 'Directory of the job ledger (bridge.sqlite); relative paths are relative to the working directory' }),
  spec({ section: 'Bridge', key: 'Concurrency', path: ['bridge', 'concurrency'], default: '16', parse: int(1, 256),
    description: 'Download, upload and collect steps run in parallel; the steps get as many connections to MASS (at least 8). Steps wait on upstream answers, not on this machine: with MASS and Assemblyline 20 ms away, 4 steps at once kept the latency benchmark at 0.56 of what its analyses allow, 16 at 0.8. Assemblyline calls stay within [Assemblyline] MaxConcurrentCalls whatever this is' }),
  spec({ section: 'Bridge', key: 'MaxInFlight', path: ['bridge', 'maxInFlight'], default: '100', parse: int(1, 100000),
    description: 'Jobs claimed but not yet reported; no new scheduled analyses are taken above this number' }),
  spec({ section: 'Bridge', key: 'MaxFileSize', path: ['bridge', 'maxFileSize'], default: '104857600', parse: int(1, MAX),
    description: 'Samples larger than this many bytes get an error report without being uploaded' }),
  spec({ section: 'Bridge', key: 'ResultDeadline', path: ['bridge', 'resultDeadline'], default: '21600', parse: seconds(1, 30 * 86400),
    description: 'Seconds without a notification after which the bridge looks the submission up itself (reconcile)' }),
  spec({ section: 'Bridge', key: 'QueuePageSize', path: ['bridge', 'queuePageSize'], default: '100', parse: int(1, 10000),
    description: 'Messages read from the notification queue per request (page_size)' }),
  spec({ section: 'Bridge', key: 'QueuePollTime', path: ['bridge', 'queuePollTime'], default: '5', parse: seconds(0.01, 3600),
    description: 'Seconds between notification-queue reads while no job waits for a notification, and the longest wait between reads while jobs wait (after a read that brought a full page of messages the next read follows at once, after an empty one the wait starts at 0.05 s and doubles, but the next read comes no later than the next waiting job is expected to finish, from the analysis times seen so far)' }),
  spec({ section: 'Bridge', key: 'QueueReadsPerMinute', path: ['bridge', 'queueReadsPerMinute'], default: '600', parse: int(1, 1000000),
    description: 'Most notification-queue reads per minute on average (bursts of a sixth of it are allowed). It binds only while many jobs finish one after another (the reads follow the expected finishes; with nothing waiting there is one read every QueuePollTime): at 600, notifications of jobs finishing back to back are read about 0.1 s late. Assemblyline counts queue reads against a user\'s daily API quota (off by default): with a quota of N calls a day, keep this well under N / 1440 to leave room for the other calls' }),
  spec({ section: 'Bridge', key: 'MaxAttempts', path: ['bridge', 'maxAttempts'], default: '3', parse: int(1, 100),
    description: "Ingest attempts per sample ('Skipped', lost notification, expired result) before an error report is sent" }),
  spec({ section: 'Bridge', key: 'RetryBaseDelay', path: ['bridge', 'retryBaseDelay'], default: '1', parse: seconds(0.001, 3600),
    description: 'First delay in seconds of the exponential backoff of a failing upstream call' }),
  spec({ section: 'Bridge', key: 'RetryMaxDelay', path: ['bridge', 'retryMaxDelay'], default: '60', parse: seconds(0.001, 86400),
    description: 'Longest backoff delay in seconds' }),
  spec({ section: 'Bridge', key: 'StepRetries', path: ['bridge', 'stepRetries'], default: '5', parse: int(1, 1000),
    description: 'Attempts of one upstream call that fails transiently before the step fails' }),
  spec({ section: 'Bridge', key: 'OutageBudget', path: ['bridge', 'outageBudget'], default: '43200', parse: seconds(1, 30 * 86400),
    description: 'Seconds a job waits in one state, with backoff, for an upstream that is down, answers 5xx or refuses the credentials or a quota; then the job ends with an error report naming that upstream, a related item still missing is skipped with a note, and a report that cannot be delivered goes to held for an operator. Waiting never changes what is reported' }),
  spec({ section: 'Bridge', key: 'GracePeriod', path: ['bridge', 'gracePeriod'], default: '30', parse: seconds(0, 3600),
    description: 'Seconds to finish work after SIGTERM before exiting' }),
  spec({ section: 'Bridge', key: 'RetainDays', path: ['bridge', 'retainDays'], default: '90', parse: int(0, 36500),
    description: 'Days to keep the event history of finished jobs and the processed notifications in the ledger (0 = keep for ever); the jobs themselves are kept' }),
  spec({ section: 'Bridge', key: 'ReanalyseOwnSamples', path: ['bridge', 'reanalyseOwnSamples'], default: 'false', parse: bool, format: formatBool,
    description: 'Analyse files the bridge itself submitted to MASS (MASS dispatches them back to the bridge)' }),
  spec({ section: 'Bridge', key: 'InstanceName', path: ['bridge', 'instanceName'], default: '', derivedDefault: 'hostname-<first 8 characters of UUID>',
    parse: str({ maxLength: 200 }), description: 'Name of this bridge in the metadata sent to Assemblyline and in logs' }),
  spec({ section: 'Bridge', key: 'LogLevel', path: ['bridge', 'logLevel'], default: 'info', parse: oneOf(LOG_LEVELS),
    description: `Log level: ${LOG_LEVELS.join(', ')}` }),

  // [Report]
  spec({ section: 'Report', key: 'Tags', path: ['report', 'tagKinds'], default: TAG_KINDS.join(','), parse: list(TAG_KINDS, (s) => s.toLowerCase()), format: formatList,
    description: `Tag families put on the MASS sample, a subset of ${TAG_KINDS.join(', ')}` }),
  spec({ section: 'Report', key: 'MaxTags', path: ['report', 'maxTags'], default: '50', parse: int(0, 10000),
    description: 'Most tags sent with one report' }),
  spec({ section: 'Report', key: 'TagPrefix', path: ['report', 'tagPrefix'], default: 'al:',
    parse: str({ maxLength: 50, check: (s) => (MASS_TAG.test(s) ? undefined : 'may only contain letters, digits and _ : - / + . (MASS tag rule)') }),
    description: 'Prefix of every tag the bridge puts on MASS samples' }),
  spec({ section: 'Report', key: 'MaxSectionBody', path: ['report', 'maxSectionBody'], default: '20000', parse: int(0, MAX),
    description: 'Characters of a result section body kept in the report before it is trimmed' }),
  spec({ section: 'Report', key: 'RelatedTLP', path: ['report', 'relatedTlp'], default: '0', parse: int(0, 3),
    description: 'tlp_level of the samples the bridge creates on MASS (0 white .. 3 red)' }),
  spec({ section: 'Report', key: 'ExtractedFiles', path: ['report', 'extractedFiles'], default: 'true', parse: bool, format: formatBool,
    description: 'Submit extracted and dropped files to MASS as new samples with a dropped-by relation' }),
  spec({ section: 'Report', key: 'ExtractedRelations', path: ['report', 'extractedRelations'], default: 'EXTRACTED,DYNAMIC,MEMDUMP,DOWNLOADED',
    parse: list(PARENT_RELATIONS, (s) => s.toUpperCase()), format: formatList,
    description: `Assemblyline parent_relation values whose files are submitted, a subset of ${PARENT_RELATIONS.join(', ')}` }),
  spec({ section: 'Report', key: 'MaxDepth', path: ['report', 'maxDepth'], default: '3', parse: int(0, 6),
    description: 'Deepest level of extracted files submitted (Assemblyline file trees stop at 6)' }),
  spec({ section: 'Report', key: 'MaxExtracted', path: ['report', 'maxExtracted'], default: '50', parse: int(0, 10000),
    description: 'Most extracted files submitted per report' }),
  spec({ section: 'Report', key: 'MaxExtractedSize', path: ['report', 'maxExtractedSize'], default: '52428800', parse: int(0, MAX),
    description: 'Largest extracted file in bytes submitted to MASS' }),
  spec({ section: 'Report', key: 'NetworkIOCs', path: ['report', 'networkIocs'], default: 'true', parse: bool, format: formatBool,
    description: 'Submit contacted IPs, resolved domains and retrieved URIs (network.dynamic.*) as samples with relations' }),
  spec({ section: 'Report', key: 'StaticIOCs', path: ['report', 'staticIocs'], default: '', parse: list(STATIC_IOC_TYPES, (s) => s.toLowerCase()), format: formatList,
    description: `Which network.static.* tag types also become samples, a subset of ${STATIC_IOC_TYPES.join(', ')} (empty = none)` }),
  spec({ section: 'Report', key: 'MaxIOCs', path: ['report', 'maxIocs'], default: '200', parse: int(0, 100000),
    description: 'Most IOC samples submitted per report' }),
  spec({ section: 'Report', key: 'IOCMinVerdict', path: ['report', 'iocMinVerdict'], default: 'suspicious', parse: oneOf(IOC_MIN_VERDICTS),
    description: `Lowest Assemblyline verdict (${IOC_MIN_VERDICTS.join(', ')}) of a network IOC that becomes a sample with a relation; the report counts the IOCs left out` }),

  // [API]
  spec({ section: 'API', key: 'Listen', path: ['api', 'listen'], default: '127.0.0.1:8080', parse: listen,
    description: 'host:port of the status API, metrics and status page' }),
  spec({ section: 'API', key: 'Token', path: ['api', 'token'], default: '', secret: true, parse: str(),
    description: 'Bearer token for the write routes of the status API (empty = write routes off)' }),
  spec({ section: 'API', key: 'ReadAuth', path: ['api', 'readAuth'], default: 'none', parse: oneOf(READ_AUTH_MODES),
    description: 'none: read routes (status, jobs, metrics, API docs, status page) are open; token: they need a bearer token, ReadToken or Token. /health and /ready stay open for probes either way' }),
  spec({ section: 'API', key: 'ReadToken', path: ['api', 'readToken'], default: '', secret: true, parse: str(),
    description: 'Bearer token that grants the read routes only; setting it turns read auth on (as ReadAuth = token). Token grants reads too' }),
];

/** 'Section.Key' with canonical spelling, e.g. 'AssemblylineAnalysis.mass api key'. */
export const keyId = (s: Pick<ConfigKeySpec, 'section' | 'key'>) => `${s.section}.${s.key}`;

/** The secret keys as 'Section.Key'. */
export const SECRET_KEYS: readonly string[] = CONFIG_KEYS.filter((s) => s.secret).map(keyId);

const BY_NAME = new Map(CONFIG_KEYS.map((s) => [`${normalizeName(s.section)}.${normalizeName(s.key)}`, s]));

export function findSection(name: string): SectionName | undefined {
  return SECTIONS.find((s) => normalizeName(s) === normalizeName(name));
}

export function findKey(section: string, key: string): ConfigKeySpec | undefined {
  return BY_NAME.get(`${normalizeName(section)}.${normalizeName(key)}`);
}

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return prev[b.length];
}

/** The closest of `candidates` to `name` (compared normalised), or undefined when nothing is near. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  const n = normalizeName(name);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(n, normalizeName(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(n.length / 3)) ? best : undefined;
}

/** Suggestion for an unknown key: the nearest key of the same section, else the nearest anywhere. */
export function suggestKey(section: string, key: string): string | undefined {
  const sec = findSection(section);
  if (sec) {
    const same = closest(key, CONFIG_KEYS.filter((s) => s.section === sec).map((s) => s.key));
    if (same) return `[${sec}] ${same}`;
  }
  const exact = CONFIG_KEYS.find((s) => normalizeName(s.key) === normalizeName(key));
  if (exact) return `[${exact.section}] ${exact.key}`;
  const any = closest(key, CONFIG_KEYS.map(keyId).map((id) => id.slice(id.indexOf('.') + 1)));
  if (!any) return undefined;
  const s = CONFIG_KEYS.find((c) => c.key === any);
  return s ? `[${s.section}] ${s.key}` : undefined;
}
