/**
 * One simulator (MASS or Assemblyline) on 127.0.0.1:0 in its own process, so the benchmark process measures
 * only itself (the simulators keep every upload in memory) and each simulator has its own event loop, as the
 * real services do. Prints one JSON line (origin, loopback keys, seeded samples) on stdout, then runs until its
 * stdin closes (the parent ended or stopped it), SIGTERM/SIGINT, or BENCH_SIM_MAX_MS (default 10 min) passes.
 *
 *   node --import tsx bench/sim-server.ts --sim=mass [--file-mb=256 [--seed=<64 hex digits>]] [--instances=1]
 *   node --import tsx bench/sim-server.ts --sim=al [--al-delay-ms=50] [--max-file-mb=256] [--async-quota=0]
 *
 * --instances=K creates K - 1 more instances of the seeded analysis system (for several identities);
 * --async-quota=N gives the Assemblyline user N concurrent submissions (0 = unlimited).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/log.js';
import { createMassClient } from '../src/mass/client.js';
import type { MassSample } from '../src/mass/types.js';
import { createAssemblylineSimulator } from '../src/simulators/assemblyline/index.js';
import { createMassSimulator } from '../src/simulators/mass/index.js';
import { generated, type AlSimInfo, type MassSimInfo, type SeededSample } from './lib.js';

const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sim: { type: 'string' },
      'al-delay-ms': { type: 'string', default: '50' },
      'file-mb': { type: 'string', default: '0' },
      'max-file-mb': { type: 'string', default: '0' },
      seed: { type: 'string', default: randomBytes(32).toString('hex') },
      instances: { type: 'string', default: '1' },
      'async-quota': { type: 'string', default: '0' },
    },
    strict: true,
  });
  const sim = values.sim;
  if (sim !== 'mass' && sim !== 'al') throw new Error('--sim=mass|al required');
  const alDelayMs = Number(values['al-delay-ms']);
  const fileMb = Number(values['file-mb']);
  const maxFileMb = Number(values['max-file-mb']);
  const instances = Number(values.instances);
  const asyncQuota = Number(values['async-quota']);
  if (![alDelayMs, fileMb, maxFileMb, asyncQuota].every((v) => Number.isInteger(v) && v >= 0) || !Number.isInteger(instances) || instances < 1) {
    throw new Error('--al-delay-ms, --file-mb, --max-file-mb and --async-quota take non-negative integers, --instances a positive one');
  }
  const logger = silentLogger();
  const server =
    sim === 'mass'
      ? // Scheduler ticks only on request (/_sim/scheduler/run): the benchmark decides when work appears.
        await createMassSimulator({ schedulerIntervalMs: 0, logger, bodyLimit: (fileMb + 16) * MiB * 2 })
      : await createAssemblylineSimulator({
          analysisDelayMs: alDelayMs,
          logger,
          maxFileSize: Math.max(104_857_600, (maxFileMb + 1) * MiB),
          ...(asyncQuota > 0 ? { quotas: { asyncSubmissions: asyncQuota } } : {}),
        });
  let closing: Promise<void> | undefined;
  const shutdown = (code: number): Promise<void> => {
    closing ??= server.close().then(() => {
      process.exitCode = code;
    });
    return closing;
  };
  process.stdin.on('end', () => void shutdown(0));
  process.stdin.on('close', () => void shutdown(0));
  process.stdin.resume();
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));
  const maxMs = Number(process.env.BENCH_SIM_MAX_MS ?? 600_000);
  setTimeout(() => {
    process.stderr.write(`sim-server: BENCH_SIM_MAX_MS (${maxMs} ms) passed, stopping\n`);
    void shutdown(3).then(() => process.exit(3));
  }, maxMs).unref();

  const origin = await server.listen({ host: '127.0.0.1', port: 0 });
  if (!('adminKey' in server)) {
    const info: AlSimInfo = { alOrigin: origin, alUser: server.user, alApiKey: server.apiKey };
    process.stdout.write(`${JSON.stringify(info)}\n`);
    return;
  }
  const mass = server;
  const samples: Record<string, SeededSample> = {};
  if (fileMb > 0) {
    // Seeded through the real API as a MASS user would upload (the JSON control endpoint would need base64 in memory).
    const user = createMassClient({ apiRoot: `${origin}/api/`, apiKey: mass.userKey, timeoutMs: 600_000 });
    try {
      const seed = async (name: string, body: Readable, size: number): Promise<SeededSample> => {
        const s: MassSample = await user.submitFileSample({ filename: name, body, size, tlpLevel: 0 });
        return { url: s.url, sha256: s.sha256sum ?? '', size: s.file_size ?? size };
      };
      samples.warmup = await seed('bench-warmup.bin', Readable.from([randomBytes(64 * 1024)]), 64 * 1024);
      samples.big = await seed(`bench-${fileMb}MiB.bin`, generated(fileMb, values.seed), fileMb * MiB);
    } finally {
      await user.close();
    }
  }
  const extraInstances: Array<{ uuid: string; key: string }> = [];
  if (instances > 1) {
    const admin = createMassClient({ apiRoot: `${origin}/api/`, apiKey: mass.adminKey });
    try {
      const system = await admin.getAnalysisSystem('assemblyline');
      for (let i = 1; i < instances; i++) {
        const { uuid } = await admin.createInstance(system.url);
        extraInstances.push({ uuid, key: mass.instanceKeyFor(uuid)! });
      }
    } finally {
      await admin.close();
    }
  }
  const info: MassSimInfo = {
    massOrigin: origin,
    adminKey: mass.adminKey,
    userKey: mass.userKey,
    instanceUuid: mass.instance.uuid,
    instanceKey: mass.instance.key,
    samples,
    extraInstances,
  };
  process.stdout.write(`${JSON.stringify(info)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`sim-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
