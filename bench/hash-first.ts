/**
 * Hash-first ingest: a large sample Assemblyline already holds, ingested by sha256 (measured) against the
 * MASS download streamed into a multipart upload (baseline), in the same run, through the real clients.
 * The upload goes first and leaves the file in Assemblyline; the hash-first ingest then finds it there.
 * Reports sample bytes moved and time of each; the check fails if the hash-first ingest moved any sample byte.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createAssemblylineClient } from '../src/assemblyline/client.js';
import { ingestHashFirst } from '../src/bridge/hash-first.js';
import { createMassClient } from '../src/mass/client.js';
import { envInt, fmtRatio, getJson, mib, startSimServer, type BenchOutcome, type Say } from './lib.js';

interface AlState {
  ingests: Array<{ ingest_id: string; sha256: string }>;
}

/** Counts the bytes that pass through. */
class Counter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

export async function benchHashFirst(say: Say): Promise<BenchOutcome> {
  const fileMb = envInt('BENCH_FILE_MB', 256);
  say(`hash-first: seeding a ${fileMb} MiB sample into the MASS simulator (child process)…`);
  const sims = await startSimServer({ alDelayMs: 50, fileMb });
  const { info } = sims;
  const big = info.samples.big;
  const mass = createMassClient({ apiRoot: `${info.massOrigin}/api/`, apiKey: info.instanceKey, timeoutMs: 300_000 });
  const al = createAssemblylineClient({ url: info.alOrigin, user: info.alUser, auth: 'apikey', apiKey: info.alApiKey, timeoutMs: 300_000 });
  const request = (tag: string) => ({
    name: `bench-${fileMb}MiB.bin`,
    metadata: { bridge_job: `bench-hash-first-${tag}` },
    params: { priority: 150, never_drop: true, generate_alert: false },
    notificationQueue: 'bench-hash-first',
  });
  try {
    /** MASS download streamed into the multipart upload; returns sample bytes read from MASS and sent to AL. */
    const upload = async (tag: string): Promise<{ ingestId: string; fromMass: number; toAl: number }> => {
      const download = await mass.downloadSample(big.url);
      const counted = download.body.pipe(new Counter());
      const { ingestId } = await al.ingest({ ...request(tag), body: counted, size: download.size ?? big.size });
      return { ingestId, fromMass: counted.bytes, toAl: counted.bytes };
    };

    let t = performance.now();
    const baseline = await upload('upload');
    const uploadMs = performance.now() - t;
    say(`hash-first: upload     moved ${mib(baseline.fromMass)} from MASS and ${mib(baseline.toAl)} to Assemblyline in ${(uploadMs / 1000).toFixed(2)} s`);

    t = performance.now();
    let measured = { ingestId: '', fromMass: 0, toAl: 0 };
    const byHash = await ingestHashFirst(al, { enabled: true, sha256: big.sha256, request: request('sha256') });
    if (byHash) measured = { ...measured, ingestId: byHash.ingestId };
    else measured = await upload('fallback'); // must not happen: Assemblyline holds the file
    const hashMs = performance.now() - t;
    say(`hash-first: hash-first moved ${mib(measured.fromMass)} from MASS and ${mib(measured.toAl)} to Assemblyline in ${(hashMs / 1000).toFixed(3)} s${byHash ? ' (ingested by sha256)' : ' (FELL BACK to the upload)'}`);

    const alState = await getJson<AlState>(`${info.alOrigin}/_sim/state`);
    const sha = (id: string) => alState.ingests.find((i) => i.ingest_id === id)?.sha256;
    const zeroBytes = byHash !== null && measured.fromMass === 0 && measured.toAl === 0;
    const sameFile = sha(baseline.ingestId) === big.sha256 && sha(measured.ingestId) === big.sha256;
    say(`hash-first: check: hash-first moved no sample bytes: ${zeroBytes ? 'OK' : 'FAILED'}; both ingests are the seeded file (sha256): ${sameFile ? 'OK' : 'FAILED'}`);
    const timeRatio = hashMs / uploadMs;
    return {
      ok: zeroBytes && sameFile,
      rows: [
        {
          bench: `hash-first: sample bytes moved, ${fileMb} MiB held by AL`,
          baseline: `upload ${mib(baseline.fromMass + baseline.toAl)}`,
          measured: `hash-first ${mib(measured.fromMass + measured.toAl)}`,
          ratio: fmtRatio((measured.fromMass + measured.toAl) / (baseline.fromMass + baseline.toAl)),
          target: '0 bytes',
          met: zeroBytes,
        },
        {
          bench: 'hash-first: time to ingest',
          baseline: `upload ${(uploadMs / 1000).toFixed(2)} s`,
          measured: `hash-first ${(hashMs / 1000).toFixed(3)} s`,
          ratio: fmtRatio(timeRatio),
          target: '< 1× upload',
          met: timeRatio < 1,
        },
      ],
    };
  } finally {
    await Promise.allSettled([mass.close(), al.close()]);
    await sims.stop();
  }
}
