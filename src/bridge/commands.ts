/**
 * The `run` and `register` commands as functions the CLI calls. No process access here: the CLI
 * passes the config, a logger, the shutdown signal and an output stream, and turns the result into an exit code.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import { createAssemblylineClient } from '../assemblyline/client.js';
import { assemblylineClientOptionsFromConfig } from '../assemblyline/options.js';
import type { IdentityDeps } from './context.js';
import { checkIngestConfiguration } from './ingest-check.js';
import { massIdentities } from '../config/identities.js';
import type { BridgeConfig } from '../config/types.js';
import { BridgeError, listenError } from '../errors.js';
import { openLedger, type LedgerOptions } from '../ledger/sqlite.js';
import type { Ledger } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { createMassClient, sameMassUrl } from '../mass/client.js';
import { massClientOptionsFromConfig } from '../mass/options.js';
import type { AnalysisSystem, MassClient } from '../mass/types.js';
import type { AssemblylineClient } from '../assemblyline/types.js';
import { createMetrics, type BridgeMetrics } from '../metrics.js';
import { createBridge, type Bridge } from './bridge.js';
import { crashPointOfMassAnswer } from './crash-point.js';

export interface BridgeRuntime {
  bridge: Bridge;
  ledger: Ledger;
  mass: MassClient;
  assemblyline: AssemblylineClient;
  metrics: BridgeMetrics;
  /**
   * Resolves, with the `LEDGER` error, when the ledger can make nothing durable any more (an fsync of its WAL file
   * failed; it is not retried, as PostgreSQL does not): the runtime has then logged one fatal line and is stopping
   * the bridge (no new upstream request; what is on disk stays the truth, a restart does the rest again). Never
   * resolves otherwise. `run` turns it into exit code EXIT_LEDGER_FAILED.
   */
  fatal: Promise<BridgeError>;
  /** Closes the clients and the ledger (after bridge.stop()). Safe twice. */
  close(): Promise<void>;
}

/** The exit code of `run` after the ledger could not make its writes durable (a failed fsync of its WAL file). */
export const EXIT_LEDGER_FAILED = 3;

/** Ledger at <StateDir>/bridge.sqlite, the two clients and the bridge, wired from the configuration. */
/** The steps' MASS connections when [Bridge] Concurrency is lower (the MASS client's default). */
const MIN_MASS_CONNECTIONS = 8;

export async function openBridgeRuntime(
  config: BridgeConfig,
  logger: Logger,
  opts: {
    metrics?: BridgeMetrics;
    /**
     * For tests: wraps the MASS client the pipeline steps use (not the poll's own client); called once per identity,
     * with the name of each identity after the first (`identity` is absent for the first, `default`).
     */
    wrapMass?: (client: MassClient, identity?: string) => MassClient;
    /** Test-only hook at each named side-effect boundary (see crash-point.ts). */
    crashPoint?: (name: string) => void;
    /** For tests: the fsync of the ledger's WAL file (LedgerOptions.fsync), e.g. one that fails like a broken disk. */
    ledgerFsync?: LedgerOptions['fsync'];
  } = {},
): Promise<BridgeRuntime> {
  const massOptions = await massClientOptionsFromConfig(config, { onInsecure: () => logger.warn('MASS TLS verification is OFF (VerifyTLS = false)') });
  mkdirSync(config.bridge.stateDir, { recursive: true });
  const ledgerFile = join(config.bridge.stateDir, 'bridge.sqlite');
  let onFatal: (err: BridgeError) => void = () => undefined;
  const fatal = new Promise<BridgeError>((resolve) => {
    onFatal = resolve;
  });
  // Set once the bridge exists.
  let stopBridge: () => void = () => undefined;
  const ledger = openLedger(ledgerFile, {
    fsync: opts.ledgerFsync,
    onSyncFailure(err) {
      const cause = err.cause as NodeJS.ErrnoException | undefined;
      logger.fatal({ ledger: ledgerFile, code: cause?.code }, `${err.message} (a failed fsync is never retried: the bridge stops)`);
      onFatal(err);
      stopBridge();
    },
  });
  const metrics = opts.metrics ?? createMetrics();
  // Test-only: MASS answered the creation of a related sample, relation or report, its body is not read yet.
  const crashPoint = opts.crashPoint;
  const onAnswer = crashPoint && ((method: string, path: string) => {
    const point = crashPointOfMassAnswer(method, path);
    if (point) crashPoint(point);
  });
  // Each running step holds at most one MASS connection (a download stays open during its upload), so [Bridge]
  // Concurrency steps need as many; fewer would queue steps behind each other's MASS calls.
  massOptions.connections = Math.max(MIN_MASS_CONNECTIONS, config.bridge.concurrency);
  const rawMass = createMassClient(onAnswer ? { ...massOptions, onAnswer } : massOptions);
  const mass = opts.wrapMass ? opts.wrapMass(rawMass) : rawMass;
  // The heartbeat gets its own connection: streamed sample downloads may hold every connection of the main pool for minutes.
  const pollClient = createMassClient({ ...massOptions, connections: 1, onInsecure: undefined });
  // Every further identity: the same MASS with its own instance key, and its own poll connection.
  const identities: Array<IdentityDeps & { raw: MassClient; pollClient: MassClient }> = (config.mass.identities ?? []).map((identity) => {
    const own = { ...massOptions, apiKey: identity.apiKey, onInsecure: undefined };
    const raw = createMassClient(onAnswer ? { ...own, onAnswer } : own);
    return { name: identity.name, uuid: identity.uuid, raw, mass: opts.wrapMass ? opts.wrapMass(raw, identity.name) : raw, pollClient: createMassClient({ ...own, connections: 1 }) };
  });
  const closeMass = () => [rawMass.close(), pollClient.close(), ...identities.flatMap((i) => [i.raw.close(), i.pollClient.close()])];
  let assemblyline: AssemblylineClient;
  try {
    assemblyline = createAssemblylineClient(
      await assemblylineClientOptionsFromConfig(config.assemblyline, {
        onInsecure: () => logger.warn('Assemblyline TLS verification is OFF (VerifyTLS = false)'),
      }),
    );
  } catch (err) {
    await Promise.allSettled(closeMass());
    ledger.close();
    throw err;
  }
  const bridge = createBridge({ config, mass, pollClient, identities, assemblyline, ledger, logger, metrics, crashPoint: opts.crashPoint });
  // Nothing the running steps write can become durable: they are aborted at once (they checkpoint in the ledger).
  stopBridge = () => void bridge.stop({ graceMs: 0 });
  let closed = false;
  return {
    bridge,
    ledger,
    mass,
    assemblyline,
    metrics,
    fatal,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...closeMass(), assemblyline.close()]);
      ledger.close();
    },
  };
}

export interface RunCommandOptions {
  config: BridgeConfig;
  logger: Logger;
  /** Aborted on SIGTERM/SIGINT by the CLI: stop claiming, finish or checkpoint within GracePeriod, exit 0. */
  signal: AbortSignal;
  /** `run --once`: one poll-to-idle cycle, then exit. */
  once?: boolean;
  /** Start the status API on [API] Listen (default true). */
  api?: boolean;
  /** Test-only hook at each named side-effect boundary (see crash-point.ts); the CLI builds it from MASSAL_TEST_CRASH_AT. */
  crashPoint?: (name: string) => void;
  /** For tests: the fsync of the ledger's WAL file (see openBridgeRuntime). */
  ledgerFsync?: LedgerOptions['fsync'];
}

/**
 * `mass-al-bridge run`: returns the exit code (0 normal stop; 1 when --once left jobs unfinished; EXIT_LEDGER_FAILED
 * when an fsync of the ledger failed, after the bridge stopped).
 */
export async function runCommand(opts: RunCommandOptions): Promise<number> {
  const { config, logger, signal } = opts;
  const runtime = await openBridgeRuntime(config, logger, { crashPoint: opts.crashPoint, ledgerFsync: opts.ledgerFsync });
  const { bridge, ledger, metrics } = runtime;
  let ledgerFailed = false;
  const fatal = runtime.fatal.then(() => {
    ledgerFailed = true;
  });
  let api: FastifyInstance | null = null;
  try {
    if (opts.api !== false) {
      api = await buildApi({ ledger, control: bridge.control, metrics, token: config.api.token, readAuth: config.api.readAuth, readToken: config.api.readToken, logger });
      const { host, port } = config.api;
      const address = await api.listen({ host, port }).catch((err: unknown) => {
        throw listenError(err, 'the status API', host, port, 'choose another address with [API] Listen (environment MASSAL_API_LISTEN, or --set API.Listen=127.0.0.1:PORT)');
      });
      logger.info({ address }, 'status API listening');
    }
    const graceMs = config.bridge.gracePeriod * 1000;
    if (opts.once) {
      const onAbort = () => void bridge.stop({ graceMs });
      signal.addEventListener('abort', onAbort, { once: true });
      const summary = await bridge.runOnce();
      signal.removeEventListener('abort', onAbort);
      if (ledgerFailed || ledger.syncFailed?.()) {
        // Not a finished run: the counts stopped at the failed fsync, and nothing since then is on disk.
        logger.warn({ ...summary, ledgerFailed: true }, 'run --once stopped: the ledger could not make its writes durable (see the fatal line); a restart does the rest');
        return EXIT_LEDGER_FAILED;
      }
      logger.info(summary, 'run --once finished');
      return summary.remaining > 0 && !signal.aborted ? 1 : 0;
    }
    bridge.start();
    logger.info(
      { uuid: config.mass.uuid, identities: massIdentities(config).map((i) => `${i.name}=${i.uuid}`), mass: config.global.apiRoot, assemblyline: config.assemblyline.url },
      'bridge running',
    );
    // ingest-gate: say once what the Assemblyline user may change and what ingest will meet (doctor says the same).
    void checkIngestConfiguration(config, runtime.assemblyline, signal).then(
      (findings) => {
        for (const f of findings) {
          if (f.ok) logger.info({ check: 'assemblyline-ingest' }, f.what);
          else logger.error({ check: 'assemblyline-ingest', fix: f.fix }, f.what);
        }
      },
      (err: unknown) => logger.warn({ err }, 'the Assemblyline ingest configuration could not be checked'),
    );
    const aborted = new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([aborted, fatal]);
    // After a failed fsync the runtime has already begun to stop the bridge at once; this waits for it.
    await bridge.stop({ graceMs });
    return ledgerFailed ? EXIT_LEDGER_FAILED : 0;
  } finally {
    if (api) await api.close().catch(() => undefined);
    await runtime.close();
  }
}

export interface RegisterCommandOptions {
  config: BridgeConfig;
  /** A MASS admin user's API key (never logged or printed). */
  adminKey: string;
  stdout: Writable;
  /** Tag filter of a newly created analysis system. */
  tagFilter?: string;
  /**
   * How many instances (identities) to make sure exist (default 1): the first is [AssemblylineAnalysis], the others
   * the [AssemblylineAnalysis:NAME] sections of the configuration in order, then new ones named `identity2`, ….
   */
  instances?: number;
  /** For tests: a client instead of one built from config (apiRoot + adminKey). */
  mass?: MassClient;
}

/**
 * The UUID register gives identity `name` when the configuration names none: derived from the first instance's UUID
 * (a name-based, version-5-shaped UUID), so a second run with the same first UUID finds the same instances.
 */
export function derivedInstanceUuid(firstUuid: string, name: string): string {
  const b = createHash('sha1').update(`mass-al-bridge identity\u0000${firstUuid}\u0000${name.toLowerCase()}`).digest();
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * `mass-al-bridge register`: creates the analysis system (SystemName, filter sample-type:filesample) and
 * `instances` instances of it, idempotently (GET first). MASS hands out no instance keys over the API (MASS.md §1).
 * An instance whose UUID the configuration gives is created with that UUID; the first one without is created with
 * a UUID MASS chooses, every further one with a UUID derived from the first's (derivedInstanceUuid).
 */
export async function registerCommand(opts: RegisterCommandOptions): Promise<number> {
  const { config, stdout } = opts;
  const count = Math.max(1, Math.floor(opts.instances ?? 1));
  const mass = opts.mass ?? createMassClient(await massClientOptionsFromConfig(config, { apiKey: opts.adminKey }));
  const out = (line: string) => stdout.write(`${line}\n`);
  try {
    const name = config.mass.systemName;
    let system: AnalysisSystem;
    try {
      system = await mass.getAnalysisSystem(name);
      out(`analysis system '${name}' exists (filter: ${system.tag_filter_expression || '(empty: matches everything)'})`);
    } catch (err) {
      if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
      system = await mass.createAnalysisSystem({
        identifier_name: name,
        verbose_name: 'Assemblyline',
        tag_filter_expression: opts.tagFilter ?? 'sample-type:filesample',
      });
      out(`analysis system '${name}' created (filter: ${system.tag_filter_expression})`);
    }
    const configured = massIdentities(config);
    const wanted = Array.from({ length: count }, (_, i) => configured[i] ?? { name: `identity${i + 1}`, uuid: '', apiKey: '' });
    const registered: Array<{ name: string; uuid: string }> = [];
    for (const identity of wanted) {
      const first = registered[0]?.uuid;
      const uuid = await ensureInstance(mass, system, identity.uuid || (first ? derivedInstanceUuid(first, identity.name) : ''), out);
      registered.push({ name: identity.name, uuid });
    }
    if (count === 1) {
      out(`UUID = ${registered[0].uuid}`);
      out('Set [AssemblylineAnalysis] UUID to this value. MASS gives instance keys out only in its web UI: copy the');
      out(`instance key from ${webUiUrl(config)}webui/admin/analysis_systems/ into [AssemblylineAnalysis] mass api key.`);
    } else {
      out('');
      out(`The ${count} identities as INI sections (the UUIDs are set; fill in each mass api key):`);
      for (const [i, identity] of registered.entries()) {
        out('');
        out(i === 0 ? '[AssemblylineAnalysis]' : `[AssemblylineAnalysis:${identity.name}]`);
        out(`UUID = ${identity.uuid}`);
        out('mass api key =');
      }
      out('');
      out(`Keep the other [AssemblylineAnalysis] keys in the first section, and set [Bridge] MaxInFlight to at least ${101 * count}`);
      out('(MASS gives each identity up to 101 scheduled analyses at a time). MASS gives instance keys out only in its web UI:');
      out(`copy each instance's key from ${webUiUrl(config)}webui/admin/analysis_systems/ into its section's mass api key.`);
    }
    if (configured.length > count) {
      out(`note: the configuration lists ${configured.length} identities; only the first ${count} were checked (--instances ${count})`);
    }
    return 0;
  } finally {
    if (!opts.mass) await mass.close();
  }
}

/** The instance `uuid` of `system` (created when absent; '' = MASS chooses the UUID); returns its UUID. */
async function ensureInstance(mass: MassClient, system: AnalysisSystem, uuid: string, out: (line: string) => void): Promise<string> {
  if (uuid) {
    try {
      const inst = await mass.getInstance(uuid);
      if (!sameMassUrl(inst.analysis_system, system.url)) out(`warning: instance ${uuid} belongs to ${inst.analysis_system}, not to ${system.url}`);
      out(`analysis system instance ${uuid} exists`);
      return uuid;
    } catch (err) {
      if (!(err instanceof BridgeError && err.code === 'NOT_FOUND')) throw err;
    }
  }
  const inst = await mass.createInstance(system.url, uuid || undefined);
  out(`analysis system instance created: ${inst.uuid}`);
  return inst.uuid;
}

function webUiUrl(config: BridgeConfig): string {
  const base = config.global.serverUrl || config.global.apiRoot;
  return base.endsWith('/') ? base : `${base}/`;
}
