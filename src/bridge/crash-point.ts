/**
 * Test-only crash points. The bridge calls `ctx.crashPoint(name)` at each side-effect boundary (after a claim,
 * when MASS answered a sample download and its body is not read yet, while the upload to Assemblyline is under
 * way, after Assemblyline accepted an ingest, after a notification-queue pop, when MASS answered the creation of a
 * related sample, relation or report and before that answer is read, after it was read). By default this does
 * nothing. The CLI builds a hook from `MASSAL_TEST_CRASH_AT` (`<point>[:N]`) that kills the process the N-th time
 * (default 1st) that point is reached, so that a test can prove that a restart on the same ledger ends every
 * scheduled analysis exactly once.
 */
import { Transform, type Readable } from 'node:stream';

/** Every named crash point, in pipeline order. */
export const CRASH_POINTS = [
  'after-claim',
  'mid-download',
  'mid-upload',
  'after-ingest-accepted',
  'after-queue-pop',
  'after-related-sample-created',
  'after-related-sample-answer',
  'after-relation-created',
  'after-relation-answer',
  'after-report-created',
  'after-report-answer',
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

/** Bytes of the file handed to the Assemblyline upload before `mid-upload` is reached (when the file is larger). */
export const MID_UPLOAD_BYTES = 128 * 1024;

/**
 * Parses `<point>[:N]` and returns a hook that calls `kill` the N-th time `point` is reached (N ≥ 1, default 1).
 * Returns undefined for an empty spec. Throws an Error naming the known points for an unknown point or a bad N.
 */
export function crashPointFromSpec(spec: string | undefined, kill: (name: string) => void): ((name: string) => void) | undefined {
  if (!spec) return undefined;
  const [point, nth = '1'] = spec.split(':');
  if (!(CRASH_POINTS as readonly string[]).includes(point ?? '')) throw new Error(`MASSAL_TEST_CRASH_AT: unknown crash point "${point}" (known: ${CRASH_POINTS.join(', ')})`);
  const n = Number(nth);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MASSAL_TEST_CRASH_AT: "${nth}" is not a count ≥ 1`);
  let seen = 0;
  return (name) => {
    if (name !== point) return;
    seen++;
    if (seen === n) kill(name);
  };
}

/**
 * The crash point of a 2xx MASS answer whose body is not read yet (`method`, URL `path` as the MASS client sent
 * them): the creation of a related sample (`sample/submit_{file,ip,domain,uri}/`), of a sample relation
 * (`sample_relation/submit_*`) or of a report (`scheduled_analysis/<id>/submit_report/`); undefined for any other call.
 */
export function crashPointOfMassAnswer(method: string, path: string): CrashPointName | undefined {
  if (method !== 'POST') return undefined;
  if (/\/sample\/submit_(file|ip|domain|uri)\/$/.test(path)) return 'after-related-sample-created';
  if (/\/sample_relation\/submit_[a-z_]+\/$/.test(path)) return 'after-relation-created';
  if (/\/submit_report\/$/.test(path)) return 'after-report-created';
  return undefined;
}

/**
 * Passes the file to upload through unchanged and calls `reached` once, when the upload asks for more after
 * `afterBytes` bytes went out (the upload to Assemblyline is under way, Assemblyline has not answered). Used only
 * while a crash point is armed; ending or destroying the returned stream destroys `source`.
 */
export function midUploadTap(source: Readable, reached: () => void, afterBytes = MID_UPLOAD_BYTES): Readable {
  let sent = 0;
  let fired = false;
  // No read-ahead: a chunk passes only once the upload took the one before.
  const tap = new Transform({
    highWaterMark: 1,
    transform(chunk: Buffer, _encoding, done) {
      if (!fired && sent >= afterBytes) {
        fired = true;
        reached();
      }
      sent += chunk.length;
      done(null, chunk);
    },
  });
  source.once('error', (err) => tap.destroy(err));
  tap.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(tap);
}
