/**
 * TypeScript counterpart of the Python `mass_client` tutorial classes (mass-project/mass_client,
 * doc/source/tutorial.rst): subclass FileAnalysisClient (or Domain/IP/URI), implement
 * doAnalysis(request), start(). One scheduled analysis at a time, synchronously, like the original.
 * The bridge itself does not use this loop; it runs the ledger-driven pipeline (docs/mass-client.md).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeName, parseIni } from '../config/ini.js';
import { BridgeError, isTransient } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { createMassClient } from './client.js';
import type {
  FileSampleUpload,
  MassClient,
  MassRelation,
  MassReport,
  MassSample,
  NewSampleOptions,
  RawReportObject,
  RelationKind,
  ScheduledAnalysis,
} from './types.js';

/** The tutorial's INI, resolved. Times are in seconds, as in the INI. */
export interface AnalysisClientSettings {
  /** [GLOBAL] ServerURL joined with APIEndpoint, ending with '/'. */
  apiRoot: string;
  /** [GLOBAL] SleepTime: the idle loop's tick; the stop flag and the poll clock are checked once per tick. */
  sleepTime: number;
  /** [<section>] PollTime: time between two polls, counted in SleepTime ticks (so rounded up to a multiple of it). */
  pollTime: number;
  /** [<section>] UUID of the analysis-system instance. */
  uuid: string;
  /** [<section>] SystemName: identifier_name of the analysis system. */
  systemName: string;
  /** [<section>] `mass api key`, falling back to [GLOBAL] `mass api key`. Secret. */
  apiKey: string;
}

/**
 * A tutorial INI as parseAnalysisIni reads it: section name (as written) → key (as written) → value.
 * Section names are case-sensitive; keys are matched ignoring case, spaces, '-' and '_'.
 */
export type IniDocument = Record<string, Record<string, string>>;

export interface AnalysisClientOptions {
  /** Parsed INI (readAnalysisIni / parseAnalysisIni), the equivalent of the Python ConfigParser argument. */
  ini?: IniDocument;
  /** Already resolved settings; used instead of `ini`. */
  settings?: AnalysisClientSettings;
  /** INI section of this client. Default: the static `configSection`, else the class name (as in Python). */
  section?: string;
  logger?: Logger;
  /** Injected MASS client; otherwise one is created from the settings (and closed by stop()). */
  massClient?: MassClient;
  /** Per-request timeout for the created MASS client, ms. */
  timeoutMs?: number;
  /**
   * Check at start that the instance exists and, when it does not, try to create it under SystemName
   * (the Python client's _check_registration; creating needs an admin key). Default true.
   */
  checkRegistration?: boolean;
}

function invalidConfig(message: string): BridgeError {
  return new BridgeError('CONFIG_INVALID', message);
}

/** Keys are matched as the bridge's configuration matches them: `mass api key` ≡ `MASS_API_KEY`. */
function lookup(section: Record<string, string> | undefined, key: string): string | undefined {
  if (!section) return undefined;
  const wanted = normalizeName(key);
  for (const [k, v] of Object.entries(section)) {
    if (normalizeName(k) === wanted && typeof v === 'string') return v.trim();
  }
  return undefined;
}

/** configparser semantics: section names are case-sensitive. */
function sectionOf(ini: IniDocument, name: string): Record<string, string> | undefined {
  const s = ini[name];
  return s && typeof s === 'object' && !Array.isArray(s) ? s : undefined;
}

/**
 * Reads INI text with the same reader as the bridge's configuration (config/ini.ts: configparser
 * rules, whole-line comments only, so a key may contain `;` or `#`). `source` names the text in
 * messages. Throws BridgeError CONFIG_INVALID listing every syntax problem with its line.
 */
export function parseAnalysisIni(text: string, source = 'INI'): IniDocument {
  const parsed = parseIni(text);
  if (parsed.problems.length > 0) {
    throw invalidConfig(`${source}: ${parsed.problems.map((p) => `line ${p.line}: ${p.message}`).join('; ')}`);
  }
  const doc: IniDocument = {};
  for (const s of parsed.sections) doc[s.name] ??= {};
  for (const e of parsed.entries) (doc[e.section] ??= {})[e.key] = e.value;
  return doc;
}

function seconds(value: string | undefined, where: string): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n) || n <= 0) {
    throw invalidConfig(`${where} must be a positive number of seconds, got ${JSON.stringify(value ?? null)}`);
  }
  return n;
}

/** parseAnalysisIni of the file at `path`; CONFIG_INVALID when it cannot be read. */
export async function readAnalysisIni(path: string): Promise<IniDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalidConfig(`cannot read ${path}: ${(err as Error).message}`);
  }
  return parseAnalysisIni(text, path);
}

/** Resolves the tutorial's [GLOBAL] + client section into settings. */
export function analysisClientSettingsFromIni(ini: IniDocument, section: string): AnalysisClientSettings {
  const global = sectionOf(ini, 'GLOBAL');
  if (!global) throw invalidConfig('INI has no [GLOBAL] section');
  const local = sectionOf(ini, section);
  if (!local) throw invalidConfig(`INI has no [${section}] section`);
  const serverUrl = lookup(global, 'ServerURL');
  if (!serverUrl) throw invalidConfig('[GLOBAL] ServerURL is missing');
  const endpoint = lookup(global, 'APIEndpoint') ?? 'api/';
  let apiRoot: string;
  try {
    // Python concatenates ServerURL + APIEndpoint; resolving against a slash-terminated base does the same without doubling slashes.
    const base = new URL(serverUrl.endsWith('/') ? serverUrl : `${serverUrl}/`);
    const url = new URL(endpoint.replace(/^\/+/, ''), base);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    apiRoot = url.href;
  } catch {
    throw invalidConfig(`[GLOBAL] ServerURL ${JSON.stringify(serverUrl)} is not an absolute URL`);
  }
  const uuid = lookup(local, 'UUID');
  if (!uuid) throw invalidConfig(`[${section}] UUID is missing`);
  const systemName = lookup(local, 'SystemName');
  if (!systemName) throw invalidConfig(`[${section}] SystemName is missing`);
  const apiKey = lookup(local, 'mass api key') ?? lookup(global, 'mass api key');
  if (!apiKey) throw invalidConfig(`[${section}] mass api key is missing (nor set in [GLOBAL])`);
  return {
    apiRoot,
    sleepTime: seconds(lookup(global, 'SleepTime'), '[GLOBAL] SleepTime'),
    pollTime: seconds(lookup(local, 'PollTime'), `[${section}] PollTime`),
    uuid,
    systemName,
    apiKey,
  };
}

/** What doAnalysis receives: the scheduled analysis, its sample, and the calls to answer it. */
export class AnalysisRequest {
  readonly scheduledAnalysis: ScheduledAnalysis;
  /** Sample metadata as MASS returned it (the Python client's `sample_dict`). */
  readonly sample: MassSample;
  readonly #mass: MassClient;
  readonly #onReported: () => void;
  #reported = false;

  constructor(mass: MassClient, scheduledAnalysis: ScheduledAnalysis, sample: MassSample, onReported: () => void) {
    this.#mass = mass;
    this.scheduledAnalysis = scheduledAnalysis;
    this.sample = sample;
    this.#onReported = onReported;
  }

  /** URL of the scheduled analysis (the Python `analysis_request['url']`). */
  get url(): string {
    return this.scheduledAnalysis.url;
  }

  /** True once a report (success or error) was accepted for this request. */
  get reported(): boolean {
    return this.#reported;
  }

  /**
   * Downloads the sample into a fresh private temporary directory, calls fn with the file path
   * (a path, not a stream, as in Python), and removes the directory whatever happens.
   */
  async temporarySampleFile<T>(fn: (path: string) => Promise<T> | T, opts: { mode?: number } = {}): Promise<T> {
    if (!this.sample.file) {
      throw new BridgeError('SAMPLE_NOT_FILE', `sample ${this.sample.id} (${this.sample._cls}) has no file`, { upstream: 'mass', transient: false });
    }
    const dir = await mkdtemp(join(tmpdir(), 'mass-sample-'));
    try {
      const path = join(dir, 'sample');
      const download = await this.#mass.downloadSample(this.sample);
      await pipeline(download.body, createWriteStream(path, { mode: opts.mode ?? 0o600 }));
      return await fn(path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async submitReport(report: {
    additionalMetadata?: Record<string, unknown>;
    jsonReportObjects?: Record<string, unknown>;
    rawReportObjects?: Record<string, RawReportObject | Buffer | string>;
    tags?: string[];
    analysisDate?: Date | string;
    errorMessage?: string | null;
  } = {}): Promise<MassReport> {
    const result = await this.#mass.submitReport(this.scheduledAnalysis, report);
    this.#markReported();
    return result;
  }

  /** Closes the request as failed: MASS ignores `status`, a non-null error_message is the failure signal. */
  async submitErrorReport(message: string): Promise<MassReport> {
    return this.submitReport({ errorMessage: message });
  }

  submitFileSample(upload: FileSampleUpload): Promise<MassSample> {
    return this.#mass.submitFileSample(upload);
  }

  submitIPSample(ip: string, options?: NewSampleOptions): Promise<MassSample> {
    return this.#mass.submitIPSample(ip, options);
  }

  submitDomainSample(domain: string, options?: NewSampleOptions): Promise<MassSample> {
    return this.#mass.submitDomainSample(domain, options);
  }

  submitURISample(uri: string, options?: NewSampleOptions): Promise<MassSample> {
    return this.#mass.submitURISample(uri, options);
  }

  /** `sample` = what was found, `other` = the sample that produced it (default: the analysed sample). */
  addRelation(kind: RelationKind, sample: MassSample | string, other: MassSample | string = this.sample): Promise<MassRelation> {
    const url = (s: MassSample | string): string => (typeof s === 'string' ? s : s.url);
    return this.#mass.addRelation(kind, url(sample), url(other));
  }

  #markReported(): void {
    if (!this.#reported) {
      this.#reported = true;
      this.#onReported();
    }
  }
}

/** Matches the scheduled analysis's instance URL against our uuid, as the Python client does. */
function instanceUuidOf(sa: ScheduledAnalysis): string | undefined {
  return /\/analysis_system_instance\/([^/]+)\/?$/.exec(sa.analysis_system_instance ?? '')?.[1];
}

/**
 * Base class. Do not derive from it directly; use FileAnalysisClient, DomainAnalysisClient,
 * IPAnalysisClient or URIAnalysisClient (or a base of your own that sets the two fields below).
 */
export abstract class AnalysisClient {
  /** INI section name; default: the class name. */
  static configSection?: string;

  /** `_cls` prefix this client analyses, e.g. 'Sample.FileSample' (also matches ExecutableBinarySample). */
  protected abstract readonly sampleClassPrefix: string;
  /** Error report for a sample of another type (the Python client's messages). */
  protected abstract readonly wrongTypeMessage: string;

  readonly settings: AnalysisClientSettings;
  readonly mass: MassClient;
  protected readonly log: Logger;
  readonly #ownsMass: boolean;
  readonly #checkRegistration: boolean;
  /** Scheduled-analysis URLs handed to doAnalysis and not reported yet (Python: _analyses_in_progress). */
  readonly #inProgress = new Set<string>();
  #stopController = new AbortController();
  #running?: Promise<void>;
  #stopping?: Promise<void>;

  /** Subclasses implement the analysis; throwing sends an error report with the message. */
  abstract doAnalysis(request: AnalysisRequest): Promise<void> | void;

  constructor(options: AnalysisClientOptions) {
    const section = options.section ?? (this.constructor as typeof AnalysisClient).configSection ?? this.constructor.name;
    if (options.settings) this.settings = options.settings;
    else if (options.ini) this.settings = analysisClientSettingsFromIni(options.ini, section);
    else throw invalidConfig('AnalysisClient needs `ini` or `settings`');
    this.log = (options.logger ?? createLogger({ name: section })).child({ client: section, uuid: this.settings.uuid });
    this.#ownsMass = !options.massClient;
    this.mass = options.massClient ?? createMassClient({ apiRoot: this.settings.apiRoot, apiKey: this.settings.apiKey, timeoutMs: options.timeoutMs });
    this.#checkRegistration = options.checkRegistration ?? true;
  }

  /** True between start() and the end of the loop. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /**
   * Starts the poll loop. The promise settles when the loop ends: resolves after stop(), rejects on
   * a configuration error MASS reports (403 key refused, 404 uuid/key mismatch, registration failed).
   * Calling it again while running returns the same promise.
   */
  start(): Promise<void> {
    if (this.#running) return this.#running;
    if (this.#stopController.signal.aborted) this.#stopController = new AbortController();
    this.#stopping = undefined;
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops polling and sleeping at once, waits for the analysis in progress. Safe to call twice. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopController.abort();
    const running = this.#running;
    this.#stopping = (async () => {
      if (running) await running.catch(() => undefined);
      if (this.#ownsMass) await this.mass.close();
    })();
    return this.#stopping;
  }

  /** One poll and the analyses it returns; what the loop runs every PollTime. Exposed for tests and one-shot use. */
  async pollServer(signal: AbortSignal = this.#stopController.signal): Promise<void> {
    this.log.info('polling for scheduled analyses');
    const list = await this.mass.poll(this.settings.uuid, { signal });
    for (const sa of list) {
      if (signal.aborted) return;
      if (this.#inProgress.has(sa.url)) continue;
      await this.#handover(sa);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#stopController.signal;
    this.log.info('starting the analysis client');
    if (this.#checkRegistration) await this.#ensureRegistered(signal);
    const sleepMs = this.settings.sleepTime * 1000;
    const pollMs = this.settings.pollTime * 1000;
    let sinceLastPoll = 0;
    let doPoll = true;
    // The tutorial client's loop: poll, then tick SleepTime until PollTime has passed.
    while (!signal.aborted) {
      if (doPoll) {
        doPoll = false;
        try {
          await this.pollServer(signal);
        } catch (err) {
          if (signal.aborted) break;
          if (isFatal(err)) {
            this.log.error({ err }, 'MASS refused this instance; stopping');
            throw err;
          }
          this.log.warn({ err }, 'polling for scheduled analyses failed; trying again');
        }
      } else {
        try {
          await sleep(sleepMs, undefined, { signal });
        } catch {
          break;
        }
        sinceLastPoll += sleepMs;
        if (sinceLastPoll >= pollMs) {
          doPoll = true;
          sinceLastPoll = 0;
        }
      }
    }
    this.log.info('analysis client stopped');
  }

  async #ensureRegistered(signal: AbortSignal): Promise<void> {
    const { uuid, systemName } = this.settings;
    try {
      await this.mass.getInstance(uuid, { signal });
      this.log.info('analysis system instance is registered with the MASS server');
      return;
    } catch (err) {
      if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
    }
    this.log.info('analysis system instance not registered; trying to register it');
    try {
      await this.mass.createInstance(new URL(`analysis_system/${encodeURIComponent(systemName)}/`, this.mass.apiRoot).href, uuid, { signal });
    } catch (err) {
      throw new BridgeError('CONFIG_INVALID', `registering instance ${uuid} of system ${systemName} failed (creating an instance needs an admin key)`, {
        cause: err,
      });
    }
    this.log.info('analysis system instance registered');
  }

  async #handover(listed: ScheduledAnalysis): Promise<void> {
    const log = this.log.child({ scheduledAnalysis: listed.id });
    this.#inProgress.add(listed.url);
    let keep = false;
    try {
      // Re-read the item: it may have been consumed since the poll.
      const sa = await this.mass.getScheduledAnalysis(listed.url);
      const owner = instanceUuidOf(sa);
      if (owner !== this.settings.uuid) {
        log.warn({ owner }, 'not processing an analysis scheduled for a different instance');
        return;
      }
      let sample: MassSample;
      try {
        sample = await this.mass.getSample(sa.sample);
      } catch (err) {
        // MASS schedules TLP 1-3 samples but hides them from instances (404); only an error report closes the item.
        if (err instanceof BridgeError && err.code === 'NOT_FOUND') {
          await this.#errorReport(sa, 'ERROR - Sample not visible to this analysis system (TLP above 0, or deleted).', log);
          return;
        }
        throw err;
      }
      if (!sample._cls?.startsWith(this.sampleClassPrefix)) {
        await this.#errorReport(sa, this.wrongTypeMessage, log);
        return;
      }
      const request = new AnalysisRequest(this.mass, sa, sample, () => this.#inProgress.delete(sa.url));
      log.info({ sample: sample.url }, 'analyzing sample');
      try {
        await this.doAnalysis(request);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ err }, 'analysis failed; sending an error report');
        if (!request.reported) await this.#errorReport(sa, message || 'analysis failed', log);
        return;
      }
      if (!request.reported) {
        // As in the Python client, an unreported item stays "in progress" here and pending on MASS.
        keep = true;
        log.warn('doAnalysis returned without submitting a report; the item stays pending on MASS');
      }
    } catch (err) {
      if (err instanceof BridgeError && err.code === 'NOT_FOUND') log.info('scheduled analysis already consumed');
      else log.warn({ err }, 'handling the scheduled analysis failed; it will be tried again on a later poll');
    } finally {
      if (!keep) this.#inProgress.delete(listed.url);
    }
  }

  async #errorReport(sa: ScheduledAnalysis, message: string, log: Logger): Promise<void> {
    try {
      await this.mass.submitReport(sa, { errorMessage: message });
      log.info({ error: message }, 'error report sent');
    } catch (err) {
      if (err instanceof BridgeError && err.code === 'NOT_FOUND') return;
      log.warn({ err }, 'sending the error report failed');
      if (isTransient(err)) throw err;
    }
  }
}

function isFatal(err: unknown): boolean {
  return err instanceof BridgeError && (err.code === 'AUTH' || err.code === 'NOT_FOUND' || err.code === 'CONFIG_INVALID');
}

export abstract class FileAnalysisClient extends AnalysisClient {
  protected readonly sampleClassPrefix = 'Sample.FileSample';
  protected readonly wrongTypeMessage = 'ERROR - No file found to scan.';
}

export abstract class DomainAnalysisClient extends AnalysisClient {
  protected readonly sampleClassPrefix = 'Sample.DomainSample';
  protected readonly wrongTypeMessage = 'ERROR - No domain found to scan.';
}

export abstract class IPAnalysisClient extends AnalysisClient {
  protected readonly sampleClassPrefix = 'Sample.IPSample';
  protected readonly wrongTypeMessage = 'ERROR - No IP found to scan.';
}

export abstract class URIAnalysisClient extends AnalysisClient {
  protected readonly sampleClassPrefix = 'Sample.URISample';
  protected readonly wrongTypeMessage = 'ERROR - No URI found to scan.';
}
