/** `mass-al-bridge simulate`: both simulators on this machine, printing how to use them. */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createMassSimulator } from '../simulators/mass/index.js';
import { createAssemblylineSimulator } from '../simulators/assemblyline/index.js';
import type { Logger } from '../log.js';
import { renderSimulatorIni } from './sim-config.js';

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
    logger: opts.logger.child({ simulator: 'assemblyline' }),
  });
  try {
    const massOrigin = await mass.listen({ host: opts.host, port: opts.massPort });
    const alOrigin = await al.listen({ host: opts.host, port: opts.alPort });
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
  w('Control endpoints: <origin>/_sim/... (see README "Simulators").');
  if (opts.writeConfig) {
    const file = resolve(opts.writeConfig);
    await writeFile(
      file,
      renderSimulatorIni({
        massOrigin: sims.massOrigin,
        instanceUuid: mass.instance.uuid,
        instanceKey: mass.instance.key,
        alOrigin: sims.alOrigin,
        alUser: al.user,
        alApiKey: al.apiKey,
        stateDir: resolve(opts.stateDir ?? 'state'),
      }),
      { mode: 0o600 },
    );
    w(`Bridge configuration written to ${file}; start the bridge with: mass-al-bridge run --config ${opts.writeConfig}`);
  }
  w('Press Ctrl-C to stop.');
  await new Promise<void>((res) => {
    if (opts.signal.aborted) return res();
    opts.signal.addEventListener('abort', () => res(), { once: true });
  });
  await sims.close();
  return 0;
}
