/** `mass-al-bridge simulate`: both simulators on this machine, printing how to use them. */
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createMassSimulator } from '../simulators/mass/index.js';
import { createAssemblylineSimulator } from '../simulators/assemblyline/index.js';
import { listenError } from '../errors.js';
import type { Logger } from '../log.js';
import { LOCKED_DOWN_BRIDGE_KEYS, LOCKED_DOWN_QUOTAS, lockedDownAssemblylineOptions, renderSimulatorIni } from './sim-config.js';

export interface SimulateOptions {
  host: string;
  massPort: number;
  alPort: number;
  massAdminKey?: string;
  alUser?: string;
  alApiKey?: string;
  writeConfig?: string;
  /** State directory written into the generated config. */
  stateDir?: string;
  out: NodeJS.WritableStream;
  logger: Logger;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  schedulerIntervalMs?: number;
  /** Configure the Assemblyline simulator's user like a locked-down production user (see sim-config.ts). */
  lockedDown?: boolean;
}

export interface RunningSimulators {
  massOrigin: string;
  alOrigin: string;
  close(): Promise<void>;
}

export async function startSimulators(opts: Omit<SimulateOptions, 'out' | 'signal' | 'writeConfig'>): Promise<RunningSimulators & {
  mass: Awaited<ReturnType<typeof createMassSimulator>>;
  al: Awaited<ReturnType<typeof createAssemblylineSimulator>>;
}> {
  const mass = await createMassSimulator({
    adminKey: opts.massAdminKey,
    logger: opts.logger.child({ simulator: 'mass' }),
    schedulerIntervalMs: opts.schedulerIntervalMs ?? 5000,
  });
  const al = await createAssemblylineSimulator({
    user: opts.alUser,
    apiKey: opts.alApiKey,
    ...(opts.lockedDown ? lockedDownAssemblylineOptions() : {}),
    logger: opts.logger.child({ simulator: 'assemblyline' }),
  });
  try {
    const massOrigin = await mass.listen({ host: opts.host, port: opts.massPort }).catch((err: unknown) => {
      throw listenError(err, 'the MASS simulator', opts.host, opts.massPort, 'choose another port with --mass-port N (0: any free port)', 'choose another address with --host ADDRESS');
    });
    const alOrigin = await al.listen({ host: opts.host, port: opts.alPort }).catch((err: unknown) => {
      throw listenError(err, 'the Assemblyline simulator', opts.host, opts.alPort, 'choose another port with --al-port N (0: any free port)', 'choose another address with --host ADDRESS');
    });
    return {
      mass,
      al,
      massOrigin,
      alOrigin,
      async close() {
        await Promise.allSettled([mass.close(), al.close()]);
      },
    };
  } catch (err) {
    await Promise.allSettled([mass.close(), al.close()]);
    throw err;
  }
}

/**
 * The uuids of every analysis-system instance the MASS simulator holds, read through its API as an
 * admin (MASS's generic lists leave `next` out when there is a next page: page on until `next: null`).
 */
async function instanceUuids(massOrigin: string, adminKey: string): Promise<string[]> {
  const uuids: string[] = [];
  for (let page = 1; page < 1000; page++) {
    const res = await fetch(`${massOrigin}/api/analysis_system_instance/?page=${page}`, { headers: { authorization: `APIKEY ${adminKey}` } });
    if (!res.ok) break;
    const body = (await res.json()) as { results?: Array<{ uuid?: string }>; next?: unknown };
    for (const i of body.results ?? []) if (i.uuid) uuids.push(i.uuid);
    if ('next' in body || !body.results?.length) break;
  }
  return uuids;
}

/**
 * Prints the instance key of every instance created while the simulators run (by `register`, say):
 * the simulator's stand-in for the MASS web UI page that shows instance keys. Stops with `signal`.
 */
function announceNewInstances(sims: RunningSimulators & { mass: Awaited<ReturnType<typeof createMassSimulator>> }, out: (s: string) => void, signal: AbortSignal): void {
  const known = new Set<string>([sims.mass.instance.uuid]);
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    instanceUuids(sims.massOrigin, sims.mass.adminKey)
      .then((uuids) => {
        for (const uuid of uuids) {
          if (known.has(uuid)) continue;
          known.add(uuid);
          const key = sims.mass.instanceKeyFor(uuid);
          if (key) out(`MASS simulator: instance ${uuid} was created; its instance key (for [AssemblylineAnalysis] mass api key): ${key}`);
        }
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, 1000);
  timer.unref();
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}

/** How the locked-down Assemblyline user is configured and what the bridge needs for it, as lines for the terminal. */
export function lockedDownDescription(): string[] {
  const o = lockedDownAssemblylineOptions();
  const profile = o.profiles![0];
  return [
    `locked down     roles ${o.roles!.join(', ')} (no submission_customize); clearance ${o.userClassification}`,
    `                profile ${profile.name} restricts ${profile.restrictedParams.submission.join(', ')}, excludes ${profile.excludedServices!.join(', ')}`,
    `                required metadata: ${Object.keys(o.metadataScheme!.ingest._default).join(', ')}`,
    `                quotas: ${LOCKED_DOWN_QUOTAS.asyncSubmissions} async concurrent submissions, ${LOCKED_DOWN_QUOTAS.dailyApiCalls} API calls a day`,
    `                bridge keys: ${Object.entries(LOCKED_DOWN_BRIDGE_KEYS).map(([k, v]) => `${k} = ${v || '(empty)'}`).join('; ')}`,
  ];
}

/** Runs until the signal aborts; returns the exit code. */
export async function simulateCommand(opts: SimulateOptions): Promise<number> {
  const sims = await startSimulators(opts);
  const { mass, al } = sims;
  const w = (s: string) => opts.out.write(`${s}\n`);
  w('MASS simulator');
  w(`  API root        ${sims.massOrigin}/api/`);
  w(`  admin key       ${mass.adminKey}`);
  w(`  user key        ${mass.userKey}`);
  w(`  instance UUID   ${mass.instance.uuid}`);
  w(`  instance key    ${mass.instance.key}`);
  w('Assemblyline simulator');
  w(`  URL             ${sims.alOrigin}`);
  w(`  user            ${al.user}`);
  w(`  API key         ${al.apiKey}`);
  w(`  password        ${al.password}`);
  if (opts.lockedDown) {
    for (const line of lockedDownDescription()) w(`  ${line}`);
  }
  w('Control endpoints: <origin>/_sim/... (see README "Simulators").');
  if (opts.writeConfig) {
    const file = resolve(opts.writeConfig);
    const stateDir = resolve(opts.stateDir ?? 'state');
    // The configuration names this StateDir: it exists, so `doctor` passes with the file as written (a StateDir
    // that does not exist is a doctor finding, as it is often a typo).
    await mkdir(stateDir, { recursive: true });
    await writeFile(
      file,
      renderSimulatorIni({
        massOrigin: sims.massOrigin,
        instanceUuid: mass.instance.uuid,
        instanceKey: mass.instance.key,
        alOrigin: sims.alOrigin,
        alUser: al.user,
        alApiKey: al.apiKey,
        stateDir,
        lockedDown: opts.lockedDown,
      }),
      { mode: 0o600 },
    );
    w(`Bridge configuration written to ${file}; start the bridge with: mass-al-bridge run --config ${opts.writeConfig}`);
  }
  w('The simulator has no web UI: the instance key of an instance created from now on (mass-al-bridge register) is printed here.');
  w('Press Ctrl-C to stop.');
  announceNewInstances(sims, w, opts.signal);
  await new Promise<void>((res) => {
    if (opts.signal.aborted) return res();
    opts.signal.addEventListener('abort', () => res(), { once: true });
  });
  await sims.close();
  return 0;
}
