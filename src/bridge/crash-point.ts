/**
 * Test-only crash points. The bridge calls `ctx.crashPoint(name)` at each side-effect boundary (after a claim,
 * when MASS answered a sample download and its body is not read yet, after Assemblyline accepted an ingest,
 * after a notification-queue pop, after MASS answered a related sample, relation or report). By default this does nothing. The CLI builds a hook from `MASSAL_TEST_CRASH_AT`
 * (`<point>[:N]`) that kills the process the N-th time (default 1st) that point is reached, so that a test can
 * prove that a restart on the same ledger ends every scheduled analysis exactly once.
 */

/** Every named crash point, in pipeline order. */
export const CRASH_POINTS = [
  'after-claim',
  'mid-download',
  'after-ingest-accepted',
  'after-queue-pop',
  'after-related-sample-answer',
  'after-relation-answer',
  'after-report-answer',
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

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
