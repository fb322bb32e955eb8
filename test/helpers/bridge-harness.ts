/**
 * Simulators + real clients + ledger + bridge on loopback, for the bridge's integration and reliability tests.
 * Everything opened here is closed through t.after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import type { AssemblylineClient } from '../../src/assemblyline/types.js';
import { createBridge, type Bridge } from '../../src/bridge/bridge.js';
import type { BridgeConfig } from '../../src/config/types.js';
import { openLedger } from '../../src/ledger/sqlite.js';
import type { Ledger } from '../../src/ledger/types.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { waitFor } from './wait.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassClient, MassRelation, MassReport, MassSample } from '../../src/mass/types.js';
import { createMetrics, type BridgeMetrics } from '../../src/metrics.js';
import { createAssemblylineSimulator, type AssemblylineSimulator, type AssemblylineSimulatorOptions } from '../../src/simulators/assemblyline/index.js';
import { createMassSimulator, type MassSimulator, type MassSimulatorOptions } from '../../src/simulators/mass/index.js';

type After = { after: (fn: () => unknown) => void };

export type ConfigOverrides = { [K in keyof BridgeConfig]?: Partial<BridgeConfig[K]> };

export interface Endpoints {
  massApiRoot: string;
  uuid: string;
  massKey: string;
  alUrl: string;
  alUser: string;
  alApiKey: string;
  stateDir: string;
}

/** A complete configuration with fast test timings (seconds, fractions allowed). */
export function makeConfig(e: Endpoints, overrides: ConfigOverrides = {}): BridgeConfig {
  const base: BridgeConfig = {
    global: { serverUrl: e.massApiRoot.replace(/api\/$/, ''), apiEndpoint: 'api/', apiRoot: e.massApiRoot, serverAliases: [], sleepTime: 0.1 },
    mass: { pollTime: 0.1, uuid: e.uuid, systemName: 'assemblyline', apiKey: e.massKey, timeout: 10, verifyTls: true, caFile: '' },
    assemblyline: {
      url: e.alUrl, user: e.alUser, apiKey: e.alApiKey, password: '', auth: 'apikey', clientCert: '', clientKey: '', verifyTls: true,
      caFile: '', timeout: 10, notificationQueue: 'mass-bridge-test', priority: 150, classification: '', services: [], deepScan: false,
      ttl: 0, neverDrop: false, hashFirst: true, ignoreCache: false, submissionProfile: '', ingestType: 'MASS', uiUrl: e.alUrl, maxConcurrentCalls: 8, maxFileSize: 104857600,
      metadata: {}, bridgeMetadata: true,
    },
    bridge: {
      stateDir: e.stateDir, concurrency: 8, maxInFlight: 500, maxFileSize: 104857600, resultDeadline: 5, queuePageSize: 50,
      queuePollTime: 0.05, queueReadsPerMinute: 60_000, maxAttempts: 3, retryBaseDelay: 0.02, retryMaxDelay: 0.2, stepRetries: 3, outageBudget: 3600, gracePeriod: 5,
      reanalyseOwnSamples: false, retainDays: 90, instanceName: 'test-bridge', logLevel: 'silent',
    },
    report: {
      tagKinds: ['verdict', 'family', 'attack', 'score'], maxTags: 50, tagPrefix: 'al:', maxSectionBody: 4096, relatedTlp: 0,
      extractedFiles: true, extractedRelations: ['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED'], maxDepth: 3, maxExtracted: 50,
      maxExtractedSize: 50 * 1024 * 1024, networkIocs: true, staticIocs: [], maxIocs: 200,
      // The simulated CAPE tags IOCs at info level (its network sections score 0): relate them all here.
      iocMinVerdict: 'info',
    },
    api: { listen: '127.0.0.1:0', host: '127.0.0.1', port: 0, token: '', readAuth: 'none', readToken: '' },
  };
  for (const [section, values] of Object.entries(overrides)) {
    Object.assign((base as unknown as Record<string, object>)[section], values);
  }
  return base;
}

export interface MassSimState {
  samples: number;
  scheduled_pending: number;
  analysis_requests: number;
  reports: MassReport[];
  relations: MassRelation[];
  /** API calls that reached a route, by caller (instance uuid or `user:<level>`) and `<METHOD> <route name>`. */
  calls: Record<string, Record<string, number>>;
}

export interface Simulators {
  mass: MassSimulator;
  al: AssemblylineSimulator;
  massOrigin: string;
  alOrigin: string;
  endpoints: Endpoints;
  /** Admin-key MASS client, to look at MASS like an operator. */
  admin: MassClient;
  /** Registers a closer; all run in reverse order after the test. */
  defer(fn: () => unknown): void;
  massState(): Promise<MassSimState>;
  massControl(path: string, body: unknown, method?: string): Promise<unknown>;
  alControl(path: string, body: unknown, method?: string): Promise<unknown>;
  /** A file sample uploaded by a normal MASS user (dispatched like a real upload). */
  seedFile(name: string, content: string, opts?: { tlp?: number; tags?: string[] }): Promise<MassSample>;
  /** An IP/domain/URI sample created through the real API with the user key. */
  seedNonFile(kind: 'ip' | 'domain' | 'uri', value: string): Promise<MassSample>;
}

export async function startSimulators(
  t: After,
  opts: { mass?: MassSimulatorOptions; al?: AssemblylineSimulatorOptions } = {},
): Promise<Simulators> {
  // One t.after that closes in reverse order of opening (bridge before clients before simulators).
  const closers: Array<() => unknown> = [];
  const defer = (fn: () => unknown): void => void closers.push(fn);
  t.after(async () => {
    for (const close of closers.reverse()) await close();
  });
  const mass = await createMassSimulator({ schedulerIntervalMs: 100, ...opts.mass });
  defer(() => mass.close());
  // BRIDGE_TEST_SIM_LOG=debug shows the simulators' own logs when a test needs investigating.
  const simLog = process.env.BRIDGE_TEST_SIM_LOG ? createLogger({ level: process.env.BRIDGE_TEST_SIM_LOG }) : undefined;
  const al = await createAssemblylineSimulator({ analysisDelayMs: 50, logger: simLog, ...opts.al });
  defer(() => al.close());
  const massOrigin = await mass.listen({ host: '127.0.0.1', port: 0 });
  const alOrigin = await al.listen({ host: '127.0.0.1', port: 0 });
  const stateDir = mkdtempSync(join(tmpdir(), 'bridge-it-'));
  defer(() => rmSync(stateDir, { recursive: true, force: true }));
  let instance = { uuid: '', key: '' };
  try {
    instance = mass.instance;
  } catch {} // seed: false → no instance yet (the register test creates one)
  const endpoints: Endpoints = {
    massApiRoot: `${massOrigin}/api/`,
    uuid: instance.uuid,
    massKey: instance.key,
    alUrl: alOrigin,
    alUser: al.user,
    alApiKey: al.apiKey,
    stateDir,
  };
  const admin = createMassClient({ apiRoot: endpoints.massApiRoot, apiKey: mass.adminKey });
  defer(() => admin.close());
  const call = async (origin: string, path: string, body: unknown, method = 'POST', headers: Record<string, string> = {}) => {
    const res = await fetch(`${origin}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 200)}`);
    return text ? (JSON.parse(text) as unknown) : null;
  };
  return {
    mass,
    al,
    massOrigin,
    alOrigin,
    endpoints,
    admin,
    defer,
    massState: async () => (await call(massOrigin, '/_sim/state', undefined, 'GET')) as MassSimState,
    massControl: (path, body, method) => call(massOrigin, path, body, method),
    alControl: (path, body, method) => call(alOrigin, path, body, method),
    seedFile: async (name, content, o = {}) =>
      (await call(massOrigin, '/_sim/samples', { file_name: name, content_text: content, tlp_level: o.tlp ?? 0, tags: o.tags ?? [] })) as MassSample,
    seedNonFile: async (kind, value) => {
      const field = kind === 'ip' ? 'ip_address' : kind;
      return (await call(massOrigin, `/api/sample/submit_${kind}/`, { [field]: value, tlp_level: 0, tags: [] }, 'POST', {
        authorization: `APIKEY ${mass.userKey}`,
      })) as MassSample;
    },
  };
}

export interface Harness extends Simulators {
  config: BridgeConfig;
  ledger: Ledger;
  massClient: MassClient;
  alClient: AssemblylineClient;
  bridge: Bridge;
  /** The bridge's metrics (what /metrics serves). */
  metrics: BridgeMetrics;
}

/** Simulators, then a bridge (not started) with real clients and a file ledger in a temp dir. */
export async function startHarness(
  t: After,
  opts: {
    mass?: MassSimulatorOptions;
    al?: AssemblylineSimulatorOptions;
    config?: ConfigOverrides;
    logger?: Logger;
    /** Wraps the bridge's MASS client, e.g. to lose answers after MASS acted on a request. */
    wrapMass?: (client: MassClient) => MassClient;
    /** Wraps the bridge's Assemblyline client, e.g. to see each ingest request or change an answer. */
    wrapAl?: (client: AssemblylineClient) => AssemblylineClient;
    /** The bridge's clock (ms). */
    now?: () => number;
    /** The bridge's upper bound of one poll (ms; default 4 minutes). */
    maxPollMs?: number;
  } = {},
): Promise<Harness> {
  const sims = await startSimulators(t, opts);
  const config = makeConfig(sims.endpoints, opts.config);
  const ledger = openLedger(join(config.bridge.stateDir, 'bridge.sqlite'));
  const massClient = createMassClient({ apiRoot: config.global.apiRoot, apiKey: config.mass.apiKey });
  const alClient = createAssemblylineClient({ url: config.assemblyline.url, user: config.assemblyline.user, auth: 'apikey', apiKey: config.assemblyline.apiKey });
  const metrics = createMetrics({ collectProcessMetrics: false });
  const bridge = createBridge({
    config,
    mass: opts.wrapMass ? opts.wrapMass(massClient) : massClient,
    assemblyline: opts.wrapAl ? opts.wrapAl(alClient) : alClient,
    ledger,
    logger: opts.logger ?? silentLogger(),
    metrics,
    now: opts.now,
    maxPollMs: opts.maxPollMs,
  });
  sims.defer(async () => {
    await bridge.stop({ graceMs: 2000 });
    await Promise.allSettled([massClient.close(), alClient.close()]);
    ledger.close();
  });
  return { ...sims, config, ledger, massClient, alClient, bridge, metrics };
}

/** Reports on MASS grouped by sample URL. */
/** Waits (30 s at most) until MASS holds `reports` reports, nothing is pending or requested on MASS and the ledger has nothing in flight; returns MASS's state. */
export async function settled(h: Harness, reports: number): Promise<MassSimState> {
  return waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= reports && s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs: 30_000, what: `${reports} reports and nothing in flight` },
  );
}

export function reportsBySample(state: MassSimState): Map<string, MassReport[]> {
  const out = new Map<string, MassReport[]>();
  for (const r of state.reports) out.set(r.sample, [...(out.get(r.sample) ?? []), r]);
  return out;
}

export interface Workload {
  /** Scheduled analyses created (each must end with exactly one report). */
  analyses: number;
  /** Of which must end with an error report. */
  errorReports: number;
  /** Ingests Assemblyline may see: one per file analysis plus the documented re-ingests (Skipped). */
  maxIngests: number;
  /** Sample URLs of the error cases by kind. */
  errorSamples: { nonFile: string[]; hidden: string[]; oversize: string[] };
}

/** Admin shortcut past the scheduler (MASS.md §3): schedules a sample for our instance again. */
export async function scheduleAgain(sims: Simulators, sampleUrl: string): Promise<void> {
  const res = await fetch(`${sims.endpoints.massApiRoot}scheduled_analysis/`, {
    method: 'POST',
    headers: { authorization: `APIKEY ${sims.mass.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ analysis_system_instance: `${sims.endpoints.massApiRoot}analysis_system_instance/${sims.endpoints.uuid}/`, sample: sampleUrl }),
  });
  if (res.status !== 201) throw new Error(`schedule again → ${res.status}: ${await res.text()}`);
}

/**
 * The issue-3 acceptance mix. Needs a MASS simulator whose tag filter also matches IP and domain samples,
 * and a bridge MaxFileSize below 5000 bytes.
 */
export async function seedWorkload(sims: Simulators, normal: number): Promise<Workload> {
  const errorSamples: Workload['errorSamples'] = { nonFile: [], hidden: [], oversize: [] };
  const normals: string[] = [];
  for (let i = 0; i < normal; i++) normals.push((await sims.seedFile(`doc-${i}.bin`, `ordinary file number ${i}\n`)).url);
  // The same content scheduled twice: two scheduled analyses, two reports.
  for (const url of normals.slice(0, 5)) await scheduleAgain(sims, url);
  for (let i = 0; i < 5; i++) errorSamples.nonFile.push((await sims.seedNonFile('ip', `198.51.100.${i + 1}`)).url);
  for (let i = 0; i < 5; i++) errorSamples.nonFile.push((await sims.seedNonFile('domain', `host${i}.example.net`)).url);
  for (let i = 0; i < 3; i++) errorSamples.hidden.push((await sims.seedFile(`secret-${i}.bin`, `amber file ${i}\n`, { tlp: 2 })).url);
  for (let i = 0; i < 3; i++) errorSamples.oversize.push((await sims.seedFile(`big-${i}.bin`, `big ${i}\n${'x'.repeat(6000)}`)).url);
  for (let i = 0; i < 3; i++) await sims.seedFile(`skip-${i}.bin`, `skipped once ${i}\nAL-SIM: {"failure": "Skipped", "failure_times": 1}\n`);
  for (let i = 0; i < 3; i++) await sims.seedFile(`lost-${i}.bin`, `notification lost ${i}\nAL-SIM: {"lose_notification_times": 1}\n`);
  return {
    analyses: normal + 5 + 10 + 12,
    errorReports: 16,
    maxIngests: normal + 5 + 3 * 2 + 3,
    errorSamples,
  };
}

// Parenthesised: the MASS simulator's filter parser does not chain three 'or' operands.
export const WORKLOAD_TAG_FILTER = 'sample-type:filesample or (sample-type:ipsample or sample-type:domainsample)';

/** A Proxy that replaces some methods of a client; the replacement gets the original (bound) method. */
export function overrideMethods<T extends object>(
  client: T,
  overrides: { [K in keyof T]?: T[K] extends (...a: infer A) => infer R ? (original: (...a: A) => R, ...a: A) => R : never },
): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      const override = (overrides as Record<PropertyKey, unknown>)[prop];
      if (typeof value !== 'function' || typeof override !== 'function') return value;
      const original = (value as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => (override as (...a: unknown[]) => unknown)(original, ...args);
    },
  });
}
