/**
 * The bridge harness with a fault proxy in front of each simulator: the bridge reaches MASS and
 * Assemblyline only through the proxies, so a test can take either upstream down, slow it or
 * cut its connections while the bridge runs. Also builds the status API on the bridge's control
 * (not listening; asked through inject) so a test can ask /ready like a probe.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/app.js';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import { createBridge, type Bridge } from '../../src/bridge/bridge.js';
import type { BridgeConfig } from '../../src/config/types.js';
import { openLedger } from '../../src/ledger/sqlite.js';
import type { Ledger } from '../../src/ledger/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import { createMetrics } from '../../src/metrics.js';
import type { AssemblylineSimulatorOptions } from '../../src/simulators/assemblyline/index.js';
import type { MassSimulatorOptions } from '../../src/simulators/mass/index.js';
import { makeConfig, startSimulators, type ConfigOverrides, type MassSimState, type Simulators } from './bridge-harness.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { waitFor } from './wait.js';

type After = { after: (fn: () => unknown) => void };

export interface ReadyAnswer {
  status: number;
  ready: boolean;
  checks: { ledger: boolean; mass: boolean; assemblyline: boolean };
  reasons: string[];
}

export interface ProxiedHarness extends Simulators {
  massProxy: FaultProxy;
  alProxy: FaultProxy;
  config: BridgeConfig;
  ledger: Ledger;
  bridge: Bridge;
  api: FastifyInstance;
  ready(): Promise<ReadyAnswer>;
  /** Waits until MASS holds `reports` reports, nothing is scheduled or requested and the ledger has nothing in flight. */
  settled(reports: number, timeoutMs?: number): Promise<MassSimState>;
}

export async function startProxiedHarness(
  t: After,
  opts: {
    mass?: MassSimulatorOptions;
    al?: AssemblylineSimulatorOptions;
    config?: ConfigOverrides;
    logger?: Logger;
    /** Client timeouts in ms (default 2000 for both), so a black hole is noticed quickly. */
    timeoutMs?: number;
    /** /ready wants an Assemblyline answer at most this old (ms, default 1000). */
    readyAssemblylineWindowMs?: number;
  } = {},
): Promise<ProxiedHarness> {
  const sims = await startSimulators(t, opts);
  const massProxy = await startFaultProxy(sims.massOrigin);
  sims.defer(() => massProxy.close());
  const alProxy = await startFaultProxy(sims.alOrigin);
  sims.defer(() => alProxy.close());
  const config = makeConfig({ ...sims.endpoints, massApiRoot: `${massProxy.origin}/api/`, alUrl: alProxy.origin }, opts.config);
  const ledger = openLedger(join(config.bridge.stateDir, 'bridge.sqlite'));
  const timeoutMs = opts.timeoutMs ?? 2000;
  const massClient = createMassClient({ apiRoot: config.global.apiRoot, apiKey: config.mass.apiKey, timeoutMs });
  const alClient = createAssemblylineClient({
    url: config.assemblyline.url, user: config.assemblyline.user, auth: 'apikey', apiKey: config.assemblyline.apiKey, timeoutMs,
    maxConcurrentCalls: config.assemblyline.maxConcurrentCalls,
  });
  const metrics = createMetrics({ collectProcessMetrics: false });
  const bridge = createBridge({ config, mass: massClient, assemblyline: alClient, ledger, logger: opts.logger ?? silentLogger(), metrics });
  const api = await buildApi({ ledger, control: bridge.control, metrics, readyAssemblylineWindowMs: opts.readyAssemblylineWindowMs ?? 1000 });
  sims.defer(async () => {
    await api.close();
    await bridge.stop({ graceMs: 2000 });
    await Promise.allSettled([massClient.close(), alClient.close()]);
    ledger.close();
  });
  return {
    ...sims,
    massProxy,
    alProxy,
    config,
    ledger,
    bridge,
    api,
    async ready() {
      const res = await api.inject({ method: 'GET', url: '/ready' });
      return { status: res.statusCode, ...(res.json() as Omit<ReadyAnswer, 'status'>) };
    },
    settled(reports, timeoutMs = 40_000) {
      return waitFor(
        async () => {
          const s = await sims.massState();
          return s.reports.length >= reports && s.scheduled_pending === 0 && s.analysis_requests === 0 && ledger.inFlight() === 0 ? s : null;
        },
        { timeoutMs, intervalMs: 50, what: `${reports} reports on MASS, nothing pending, nothing in flight` },
      );
    },
  };
}
