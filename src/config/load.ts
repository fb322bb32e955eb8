/**
 * Loads the effective configuration: defaults < INI file < MASSAL_* environment (and
 * MASSAL_*_FILE for secrets) < command-line overrides. Validation collects every problem
 * before failing, each with where the offending value came from. Reads files, nothing else.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { BridgeError } from '../errors.js';
import type { BridgeConfig, MassIdentityConfig } from './types.js';
import { normalizeName, parseIni } from './ini.js';
import { IDENTITY_KEYS, IDENTITY_SECTION, identityEnvName, identityField, identityNameProblem, identitySectionName, mistypedIdentitySectionName, parseIdentityEnv, type IdentityField } from './identities.js';
import {
  CONFIG_KEYS,
  ENV_PREFIX,
  SECTIONS,
  closest,
  envName,
  findKey,
  findSection,
  keyId,
  parseListen,
  suggestKey,
  type ConfigKeySpec,
} from './schema.js';

export interface ConfigProblem {
  /** Where the value came from: `file <path>:<line>`, `env <NAME>`, `env <NAME>_FILE (<path>)`, `cli`, `default` or `not set`. */
  source: string;
  /** 'Section.Key' (canonical spelling for known keys, as written for unknown ones). */
  key: string;
  message: string;
}

export interface ConfigWarning extends ConfigProblem {
  /** Closest known key or section, for unknown names. */
  suggestion?: string;
}

export class ConfigError extends BridgeError {
  readonly problems: ConfigProblem[];
  readonly warnings: ConfigWarning[];

  constructor(problems: ConfigProblem[], warnings: ConfigWarning[] = []) {
    const lines = problems.map((p) => `  - ${formatProblem(p)}`);
    super('CONFIG_INVALID', `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.warnings = warnings;
  }
}

/** One problem as `Section.Key (source): message`; a problem of the file itself as `file PATH[:LINE]: message`. */
export function formatProblem(p: ConfigProblem): string {
  if (p.key.startsWith('(')) return `${p.source}: ${p.message}`;
  return `${p.key} (${p.source}): ${p.message}`;
}

/** CLI overrides: a list of {section, key, value}, or a record keyed 'Section.Key'. */
export type CliOverrides = Array<{ section: string; key: string; value: string }> | Record<string, string>;

export interface LoadConfigOptions {
  /** INI file; optional (everything may come from the environment). */
  file?: string;
  /** Usually process.env; only MASSAL_* names are read. */
  env?: Record<string, string | undefined>;
  cli?: CliOverrides;
  /** For the InstanceName default; os.hostname() when absent. */
  hostname?: string;
  /** Missing secrets are not problems (for `register`, which runs before the instance key exists). */
  allowMissingSecrets?: boolean;
  /** 'Section.Key' ids that may stay empty although normally required, e.g. 'AssemblylineAnalysis.UUID' for `register`. */
  optional?: readonly string[];
}

export interface LoadedConfig {
  config: BridgeConfig;
  warnings: ConfigWarning[];
  /** 'Section.Key' → where its value came from (same wording as ConfigProblem.source; `default` or `derived`). */
  sources: Record<string, string>;
}

interface RawValue {
  text: string;
  source: string;
}

/** An `[AssemblylineAnalysis:NAME]` identity as read from the layers, keyed by its normalised name. */
interface RawIdentity {
  name: string;
  /** Where it was first named (for problems that concern the whole identity). */
  source: string;
  values: Partial<Record<IdentityField, RawValue>>;
}
type RawIdentities = Map<string, RawIdentity>;

function rawIdentity(identities: RawIdentities, name: string, source: string): RawIdentity {
  const id = normalizeName(name);
  let found = identities.get(id);
  if (!found) {
    found = { name, source, values: {} };
    identities.set(id, found);
  }
  return found;
}

const FILE_SUFFIX = '_FILE';

export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigWarning[] = [];
  const raw = new Map<ConfigKeySpec, RawValue>(CONFIG_KEYS.map((s) => [s, { text: s.default, source: 'default' }]));
  const rawIdentities: RawIdentities = new Map();

  // A file that cannot be read is the one problem worth reporting: every other one would follow from it.
  if (opts.file !== undefined && !readFileLayer(opts.file, raw, rawIdentities, problems, warnings)) throw new ConfigError(problems, warnings);
  readEnvLayer(opts.env ?? {}, raw, rawIdentities, problems, warnings);
  readCliLayer(opts.cli, raw, rawIdentities, problems);

  const mayBeEmpty = (spec: ConfigKeySpec) => (spec.secret && opts.allowMissingSecrets === true) || (opts.optional ?? []).includes(keyId(spec));
  const values = new Map<ConfigKeySpec, unknown>();
  for (const spec of CONFIG_KEYS) {
    const { text, source } = raw.get(spec)!;
    const at = { source, key: keyId(spec) };
    if (text === '') {
      if (spec.required && !mayBeEmpty(spec)) {
        problems.push(requiredProblem(spec, source));
        continue;
      }
      const empty = spec.parse('');
      if (!empty.ok && spec.default !== '') {
        problems.push({ ...at, message: `is empty; ${empty.message}` });
        continue;
      }
      values.set(spec, empty.ok ? empty.value : '');
      continue;
    }
    const parsed = spec.parse(text);
    if (!parsed.ok) {
      // Secrets are never echoed, not even when malformed.
      problems.push({ ...at, message: spec.secret ? parsed.message : `${parsed.message} (got '${clip(text)}')` });
      continue;
    }
    if (parsed.warning) warnings.push({ ...at, message: spec.secret ? parsed.warning : `'${clip(text)}' ${parsed.warning}` });
    values.set(spec, parsed.value);
  }

  const get = (section: string, key: string): unknown => values.get(findKey(section, key)!);
  const where = (section: string, key: string) => {
    const spec = findKey(section, key)!;
    return { source: raw.get(spec)!.source, key: keyId(spec) };
  };

  crossCheck(get, where, (section, key) => mayBeEmpty(findKey(section, key)!), problems, warnings);
  fileChecks(values, raw, problems);
  const identities = checkIdentities(rawIdentities, get('AssemblylineAnalysis', 'UUID'), {
    uuidMayBeEmpty: mayBeEmpty(findKey('AssemblylineAnalysis', 'UUID')!),
    keyMayBeEmpty: mayBeEmpty(findKey('AssemblylineAnalysis', 'mass api key')!),
  }, problems, warnings);

  const inFlight = get('Bridge', 'MaxInFlight');
  if (identities.length > 0 && typeof inFlight === 'number' && inFlight < 101 * (identities.length + 1)) {
    warnings.push({
      ...where('Bridge', 'MaxInFlight'),
      message: `is below 101 × ${identities.length + 1} identities (${101 * (identities.length + 1)}): MASS gives each identity up to 101 scheduled analyses, and claiming stops at MaxInFlight, so the identities cannot all be kept busy`,
    });
  }

  if (problems.length) throw new ConfigError(problems, warnings);

  const config = build(values, opts.hostname ?? osHostname());
  if (identities.length > 0) config.mass.identities = identities;
  const sources: Record<string, string> = {};
  for (const spec of CONFIG_KEYS) {
    const { source, text } = raw.get(spec)!;
    sources[keyId(spec)] = text === '' && spec.derivedDefault ? 'derived' : source;
  }
  for (const identity of rawIdentities.values()) {
    for (const k of IDENTITY_KEYS) sources[`${IDENTITY_SECTION}:${identity.name}.${k.key}`] = identity.values[k.field]?.source ?? 'not set';
  }
  return { config, warnings, sources };
}

/** An empty key that must be set (`condition`: when it is only required in some setups, e.g. "with Auth = apikey"). */
function requiredProblem(spec: ConfigKeySpec, source: string, condition?: string): ConfigProblem {
  const env = envName(spec.section, spec.key);
  return {
    source: source === 'default' ? 'not set' : source,
    key: keyId(spec),
    message: `is required${condition ? ` ${condition}` : ''}: set ${spec.key} in [${spec.section}] or ${env}${spec.secret ? ` (or ${env}${FILE_SUFFIX})` : ''}`,
  };
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

/** Adds the file's values to `raw`; false when the file cannot be read at all. */
function readFileLayer(file: string, raw: Map<ConfigKeySpec, RawValue>, identities: RawIdentities, problems: ConfigProblem[], warnings: ConfigWarning[]): boolean {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    problems.push({ source: `file ${file}`, key: '(file)', message: `cannot read the configuration file: ${READ_ERRORS[code] ? `${READ_ERRORS[code]} (${code})` : code}` });
    return false;
  }
  const doc = parseIni(text);
  for (const p of doc.problems) problems.push({ source: `file ${file}:${p.line}`, key: '(syntax)', message: p.message });
  const unknownSections = new Set<string>();
  const withIdentityKeys = new Set(doc.entries.filter((e) => identityField(e.key) !== undefined).map((e) => e.section));
  for (const s of doc.sections) {
    if (findSection(s.name)) continue;
    const identity = identitySectionName(s.name);
    if (identity !== undefined) {
      rawIdentity(identities, identity, `file ${file}:${s.line}`);
      continue;
    }
    unknownSections.add(s.name);
    const mistyped = mistypedIdentitySectionName(s.name);
    if (mistyped !== undefined) {
      // An error, not a warning: ignoring it would leave that identity's scheduled analyses unpolled without a word.
      const fixed = identityNameProblem(mistyped) ? '' : `; did you mean [${IDENTITY_SECTION}:${mistyped}]?`;
      problems.push({ source: `file ${file}:${s.line}`, key: s.name, message: `section [${s.name}] is no identity section: write each further identity as [${IDENTITY_SECTION}:NAME]${fixed}` });
      continue;
    }
    if (withIdentityKeys.has(s.name)) {
      // It sets a UUID or mass api key: meant as an identity, whose scheduled analyses would go unpolled.
      problems.push({ source: `file ${file}:${s.line}`, key: s.name, message: `section [${s.name}] sets an identity's UUID or mass api key but is no identity section: write each further identity as [${IDENTITY_SECTION}:NAME]` });
      continue;
    }
    const suggestion = closest(s.name, SECTIONS);
    warnings.push({
      source: `file ${file}:${s.line}`,
      key: s.name,
      message: `unknown section [${s.name}] is ignored${suggestion ? `; did you mean [${suggestion}]?` : ''}`,
      ...(suggestion ? { suggestion: `[${suggestion}]` } : {}),
    });
  }
  for (const e of doc.entries) {
    if (unknownSections.has(e.section)) continue;
    const source = `file ${file}:${e.line}`;
    const identity = identitySectionName(e.section);
    if (identity !== undefined) {
      const field = identityField(e.key);
      if (field) rawIdentity(identities, identity, source).values[field] = { text: e.value, source };
      else {
        warnings.push({
          source,
          key: `${e.section}.${e.key}`,
          message: `unknown key '${e.key}' in [${e.section}] is ignored: an identity section sets only ${IDENTITY_KEYS.map((k) => k.key).join(' and ')}; the other [${IDENTITY_SECTION}] keys apply to every identity`,
        });
      }
      continue;
    }
    const spec = findKey(e.section, e.key);
    if (!spec) {
      const suggestion = suggestKey(e.section, e.key);
      warnings.push({
        source,
        key: `${e.section}.${e.key}`,
        message: `unknown key '${e.key}' in [${e.section}] is ignored${suggestion ? `; did you mean ${suggestion}?` : ''}`,
        ...(suggestion ? { suggestion } : {}),
      });
      continue;
    }
    raw.set(spec, { text: e.value, source });
  }
  return true;
}

function readEnvLayer(env: Record<string, string | undefined>, raw: Map<ConfigKeySpec, RawValue>, identities: RawIdentities, problems: ConfigProblem[], warnings: ConfigWarning[]): void {
  const known = new Set<string>();
  for (const spec of CONFIG_KEYS) {
    const name = envName(spec.section, spec.key);
    known.add(name);
    const direct = env[name];
    let fromFile: string | undefined;
    if (spec.secret) {
      known.add(name + FILE_SUFFIX);
      fromFile = env[name + FILE_SUFFIX];
    }
    if (direct !== undefined && fromFile !== undefined) {
      problems.push({ source: `env ${name}`, key: keyId(spec), message: `both ${name} and ${name}${FILE_SUFFIX} are set; set only one` });
      continue;
    }
    if (direct !== undefined) {
      raw.set(spec, { text: direct.trim(), source: `env ${name}` });
    } else if (fromFile !== undefined) {
      const source = `env ${name}${FILE_SUFFIX} (${fromFile})`;
      try {
        // Docker secrets end with a newline; only that is trimmed.
        const secret = readFileSync(fromFile, 'utf8').replace(/[\r\n]+$/, '');
        if (secret === '') problems.push({ source, key: keyId(spec), message: 'the secret file is empty' });
        else raw.set(spec, { text: secret, source });
      } catch (err) {
        problems.push({ source, key: keyId(spec), message: `cannot read the secret file: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      }
    }
  }
  const knownNames = [...known];
  for (const name of Object.keys(env)) {
    if (!name.startsWith(ENV_PREFIX) || known.has(name) || env[name] === undefined) continue;
    const identityVar = parseIdentityEnv(name);
    if (identityVar) {
      readIdentityEnv(env, name, identityVar, identities, problems);
      continue;
    }
    const suggestion = closest(name.slice(ENV_PREFIX.length), knownNames.map((n) => n.slice(ENV_PREFIX.length)));
    warnings.push({
      source: `env ${name}`,
      key: name,
      message: `unknown variable ${name} is ignored${suggestion ? `; did you mean ${ENV_PREFIX}${suggestion}?` : ''}`,
      ...(suggestion ? { suggestion: ENV_PREFIX + suggestion } : {}),
    });
  }
}

/** One `MASSAL_ASSEMBLYLINEANALYSIS_<NAME>_…` variable; the `_FILE` form of the key is read like every secret file. */
function readIdentityEnv(
  env: Record<string, string | undefined>,
  name: string,
  v: { name: string; field: IdentityField; file: boolean },
  identities: RawIdentities,
  problems: ConfigProblem[],
): void {
  const key = `${IDENTITY_SECTION}:${v.name}.${IDENTITY_KEYS.find((k) => k.field === v.field)!.key}`;
  if (v.file) {
    if (env[name.slice(0, -FILE_SUFFIX.length)] !== undefined) return; // reported once, for the direct variable
    const path = env[name]!;
    const source = `env ${name} (${path})`;
    try {
      const secret = readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
      if (secret === '') problems.push({ source, key, message: 'the secret file is empty' });
      else rawIdentity(identities, v.name, source).values[v.field] = { text: secret, source };
    } catch (err) {
      problems.push({ source, key, message: `cannot read the secret file: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
    }
    return;
  }
  if (v.field === 'apiKey' && env[name + FILE_SUFFIX] !== undefined) {
    problems.push({ source: `env ${name}`, key, message: `both ${name} and ${name}${FILE_SUFFIX} are set; set only one` });
    return;
  }
  rawIdentity(identities, v.name, `env ${name}`).values[v.field] = { text: env[name]!.trim(), source: `env ${name}` };
}

function readCliLayer(cli: CliOverrides | undefined, raw: Map<ConfigKeySpec, RawValue>, identities: RawIdentities, problems: ConfigProblem[]): void {
  if (!cli) return;
  const items = Array.isArray(cli)
    ? cli
    : Object.entries(cli).map(([id, value]) => {
        const dot = id.indexOf('.');
        return { section: dot < 0 ? '' : id.slice(0, dot), key: dot < 0 ? id : id.slice(dot + 1), value };
      });
  for (const { section, key, value } of items) {
    const identity = identitySectionName(section);
    const field = identity === undefined ? undefined : identityField(key);
    if (identity !== undefined && field) {
      rawIdentity(identities, identity, 'cli').values[field] = { text: value.trim(), source: 'cli' };
      continue;
    }
    const spec = findKey(section, key);
    if (!spec) {
      const suggestion = suggestKey(section, key);
      // A typo on the command line is an error, not a warning: the operator is right there.
      problems.push({ source: 'cli', key: `${section}.${key}`, message: `unknown key${suggestion ? `; did you mean ${suggestion}?` : ''}` });
      continue;
    }
    raw.set(spec, { text: value.trim(), source: 'cli' });
  }
}

type Getter = (section: string, key: string) => unknown;
type Where = (section: string, key: string) => { source: string; key: string };

function crossCheck(get: Getter, where: Where, mayBeEmpty: (section: string, key: string) => boolean, problems: ConfigProblem[], warnings: ConfigWarning[]): void {
  const auth = get('Assemblyline', 'Auth');
  const need = (key: string, why: string) => {
    const v = get('Assemblyline', key);
    if (v === '' && !mayBeEmpty('Assemblyline', key)) problems.push(requiredProblem(findKey('Assemblyline', key)!, where('Assemblyline', key).source, why));
  };
  if (auth === 'apikey') {
    need('User', 'with Auth = apikey');
    need('APIKey', 'with Auth = apikey');
  } else if (auth === 'password') {
    need('User', 'with Auth = password');
    need('Password', 'with Auth = password');
  }
  const cert = get('Assemblyline', 'ClientCert');
  const key = get('Assemblyline', 'ClientKey');
  if (typeof cert === 'string' && typeof key === 'string' && (cert === '') !== (key === '')) {
    const missing = cert === '' ? 'ClientCert' : 'ClientKey';
    problems.push({ ...where('Assemblyline', missing), source: 'not set', message: 'ClientCert and ClientKey go together; set both or neither' });
  }

  const base = get('Bridge', 'RetryBaseDelay');
  const max = get('Bridge', 'RetryMaxDelay');
  if (typeof base === 'number' && typeof max === 'number' && max < base) {
    problems.push({ ...where('Bridge', 'RetryMaxDelay'), message: `must not be smaller than RetryBaseDelay (${base})` });
  }

  const poll = get('AssemblylineAnalysis', 'PollTime');
  if (typeof poll === 'number' && poll >= 600) {
    warnings.push({ ...where('AssemblylineAnalysis', 'PollTime'), message: 'is 10 minutes or more: MASS considers the instance offline between polls and schedules nothing to it' });
  }
  if (get('AssemblylineAnalysis', 'VerifyTLS') === false) {
    warnings.push({ ...where('AssemblylineAnalysis', 'VerifyTLS'), message: 'is off: the MASS certificate is not checked' });
  }
  const serverUrl = get('GLOBAL', 'ServerURL');
  const aliases = get('GLOBAL', 'ServerAliases');
  if (typeof serverUrl === 'string' && serverUrl !== '' && Array.isArray(aliases)) {
    let origin: string | undefined;
    try {
      origin = new URL(serverUrl).origin;
    } catch {}
    if (origin !== undefined && aliases.includes(origin)) {
      warnings.push({ ...where('GLOBAL', 'ServerAliases'), message: `lists ${origin}, the origin of ServerURL itself; only other origins need listing` });
    }
  }
  if (get('Assemblyline', 'VerifyTLS') === false) {
    warnings.push({ ...where('Assemblyline', 'VerifyTLS'), message: 'is off: the Assemblyline certificate is not checked' });
  }
  const calls = get('Assemblyline', 'MaxConcurrentCalls');
  if (typeof calls === 'number' && calls > 10) {
    warnings.push({ ...where('Assemblyline', 'MaxConcurrentCalls'), message: 'is above 10, the default per-user quota of Assemblyline (it answers 503 beyond it)' });
  }
  const bridgeMax = get('Bridge', 'MaxFileSize');
  const alMax = get('Assemblyline', 'MaxFileSize');
  if (typeof bridgeMax === 'number' && typeof alMax === 'number' && bridgeMax > alMax) {
    warnings.push({ ...where('Bridge', 'MaxFileSize'), message: `is above [Assemblyline] MaxFileSize (${alMax}); larger samples will be refused by Assemblyline (413)` });
  }
  const deadline = get('Bridge', 'ResultDeadline');
  if (typeof deadline === 'number' && deadline >= 2 * 86400) {
    warnings.push({ ...where('Bridge', 'ResultDeadline'), message: 'is 2 days or more: Assemblyline forgets ingests in flight that long and never notifies, so reconciliation starts late' });
  }
  const inFlight = get('Bridge', 'MaxInFlight');
  const concurrency = get('Bridge', 'Concurrency');
  if (typeof inFlight === 'number' && typeof concurrency === 'number' && inFlight < concurrency) {
    warnings.push({ ...where('Bridge', 'MaxInFlight'), message: `is below Concurrency (${concurrency}); some workers will stay idle` });
  }
}

/**
 * Checks the `[AssemblylineAnalysis:NAME]` identities: a valid name, a UUID (shaped as for the first identity) and
 * a key each, no UUID twice (MASS would give two identities one queue). Returns them in the order first named.
 */
function checkIdentities(
  identities: RawIdentities,
  firstUuid: unknown,
  opts: { uuidMayBeEmpty: boolean; keyMayBeEmpty: boolean },
  problems: ConfigProblem[],
  warnings: ConfigWarning[],
): MassIdentityConfig[] {
  const out: MassIdentityConfig[] = [];
  const uuids = new Map<string, string>();
  if (typeof firstUuid === 'string' && firstUuid !== '') uuids.set(firstUuid.toLowerCase(), `[${IDENTITY_SECTION}]`);
  const uuidSpec = findKey(IDENTITY_SECTION, 'UUID')!;
  for (const identity of identities.values()) {
    const section = `${IDENTITY_SECTION}:${identity.name}`;
    const nameProblem = identityNameProblem(identity.name);
    if (nameProblem) {
      problems.push({ source: identity.source, key: section, message: nameProblem });
      continue;
    }
    const requiredHere = (k: (typeof IDENTITY_KEYS)[number]) => {
      const env = identityEnvName(identity.name, k.key);
      return `is required: set ${k.key} in [${section}] or ${env}${k.secret ? ` (or ${env}${FILE_SUFFIX})` : ''}`;
    };
    const uuidRaw = identity.values.uuid;
    let uuid = '';
    if (uuidRaw === undefined || uuidRaw.text === '') {
      if (!opts.uuidMayBeEmpty) problems.push({ source: uuidRaw?.source ?? 'not set', key: `${section}.UUID`, message: requiredHere(IDENTITY_KEYS[0]) });
    } else {
      const parsed = uuidSpec.parse(uuidRaw.text);
      if (!parsed.ok) problems.push({ source: uuidRaw.source, key: `${section}.UUID`, message: `${parsed.message} (got '${clip(uuidRaw.text)}')` });
      else {
        uuid = uuidRaw.text;
        if (parsed.warning) warnings.push({ source: uuidRaw.source, key: `${section}.UUID`, message: `'${clip(uuidRaw.text)}' ${parsed.warning}` });
        const twice = uuids.get(uuid.toLowerCase());
        if (twice) problems.push({ source: uuidRaw.source, key: `${section}.UUID`, message: `is also the UUID of ${twice}: each identity needs an instance of its own` });
        uuids.set(uuid.toLowerCase(), `[${section}]`);
      }
    }
    const keyRaw = identity.values.apiKey;
    if ((keyRaw === undefined || keyRaw.text === '') && !opts.keyMayBeEmpty) {
      problems.push({ source: keyRaw?.source ?? 'not set', key: `${section}.mass api key`, message: requiredHere(IDENTITY_KEYS[1]) });
    }
    out.push({ name: identity.name, uuid, apiKey: keyRaw?.text ?? '' });
  }
  return out;
}

function fileChecks(values: Map<ConfigKeySpec, unknown>, raw: Map<ConfigKeySpec, RawValue>, problems: ConfigProblem[]): void {
  for (const spec of CONFIG_KEYS) {
    if (!spec.readableFile) continue;
    const path = values.get(spec);
    if (typeof path !== 'string' || path === '') continue;
    const at = { source: raw.get(spec)!.source, key: keyId(spec) };
    try {
      if (!statSync(path).isFile()) {
        problems.push({ ...at, message: `'${path}' is not a file` });
        continue;
      }
      accessSync(path, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({ ...at, message: code === 'ENOENT' ? `'${path}' does not exist` : `'${path}' is not readable (${code ?? 'error'})` });
    }
  }
}

/** The MASS API root: ServerURL joined with APIEndpoint, always ending with '/'. */
export function joinApiRoot(serverUrl: string, apiEndpoint: string): string {
  const base = serverUrl.replace(/\/+$/, '');
  const path = apiEndpoint.replace(/^\/+/, '').replace(/\/+$/, '');
  return path === '' ? `${base}/` : `${base}/${path}/`;
}

function build(values: Map<ConfigKeySpec, unknown>, host: string): BridgeConfig {
  const groups: Record<string, Record<string, unknown>> = { global: {}, mass: {}, assemblyline: {}, bridge: {}, report: {}, api: {} };
  for (const spec of CONFIG_KEYS) groups[spec.path[0]][spec.path[1]] = values.get(spec);
  const config = groups as unknown as BridgeConfig;
  config.global.apiRoot = joinApiRoot(config.global.serverUrl, config.global.apiEndpoint);
  if (config.assemblyline.uiUrl === '') config.assemblyline.uiUrl = config.assemblyline.url;
  if (config.bridge.instanceName === '') config.bridge.instanceName = `${host}-${config.mass.uuid.slice(0, 8)}`;
  const listen = parseListen(config.api.listen)!;
  config.api.host = listen.host;
  config.api.port = listen.port;
  return config;
}
