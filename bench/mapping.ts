/**
 * Mapping: mapSubmissionToReport over the recorded /submission/full/ fixture vs a baseline of
 * JSON.parse(JSON.stringify(doc)) of the same document (a deep copy: the floor for any code that
 * walks the whole document). Many short rounds alternate baseline and candidate; the ratio is the median of each
 * round's ratio, so that load on a shared machine, which changes within a second, hits both sides of a round alike.
 */
import { readFileSync } from 'node:fs';
import { defaultMappingOptions, mapSubmissionToReport } from '../src/mapping/index.js';
import { envInt, fmtNum, fmtRatio, median, type BenchOutcome, type Say } from './lib.js';

const FIXTURE = new URL('../test/fixtures/assemblyline-fixtures/responses/submission-full.json', import.meta.url);
const ROUNDS = 40;

/** Regression guard: mapping a submission costs at most this many deep copies of it (1.6× measured when set). */
const MAX_RATIO = 3;

export async function benchMapping(say: Say): Promise<BenchOutcome> {
  const iterations = envInt('BENCH_MAPPING_N', 2000);
  const envelope = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { api_response: { sid: string; files: Array<{ sha256: string }> } };
  // What the Assemblyline client hands the bridge: the api_response, parsed.
  const full = envelope.api_response;
  const rootSha256 = full.files[0].sha256;
  const options = defaultMappingOptions({ uiBaseUrl: 'https://al.example.org', bridgeVersion: 'bench' });
  const now = '2026-03-02T10:00:00.000Z';
  const bytes = Buffer.byteLength(JSON.stringify(full));

  let sink = 0; // keeps every result alive enough that no work can be skipped
  const baseline = (): void => {
    const copy = JSON.parse(JSON.stringify(full)) as { files: unknown[] };
    sink += copy.files.length;
  };
  const candidate = (): void => {
    const plan = mapSubmissionToReport({ full, cacheHit: false, rootSha256, now }, options);
    sink += plan.tags.length + plan.related.length;
  };
  const check = mapSubmissionToReport({ full, cacheHit: false, rootSha256, now }, options);

  const time = (fn: () => void, n: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t0) / n;
  };
  // Warm-up (JIT) for both.
  time(baseline, 200);
  time(candidate, 200);
  const per = Math.max(1, Math.floor(iterations / ROUNDS));
  const base: number[] = [];
  const cand: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    base.push(time(baseline, per));
    cand.push(time(candidate, per));
  }
  const b = median(base);
  const c = median(cand);
  const ratio = median(cand.map((x, r) => x / base[r]));
  const ok = check.sid === full.sid && check.related.length > 0 && check.tags.length > 0 && sink > 0;
  say(`mapping: fixture ${(bytes / 1024).toFixed(1)} KiB JSON, ${per * ROUNDS} ops each (${ROUNDS} alternating rounds; the ratio is the median of the rounds' ratios)`);
  say(`mapping: JSON.parse(JSON.stringify(doc)) ${fmtNum(b * 1000, 1)} µs/op; mapSubmissionToReport ${fmtNum(c * 1000, 1)} µs/op (${fmtNum(1000 / c, 0)} ops/s)`);
  say(`mapping: mapping one submission costs ${fmtRatio(ratio)} a deep copy of it; plan: ${check.tags.length} tags, ${check.related.length} related items, verdict ${check.verdict}`);
  say(`mapping: check: plan has the fixture's sid, tags and related items: ${ok ? 'OK' : 'FAILED'}`);
  return {
    ok,
    rows: [{ bench: `mapping: per op (${per * ROUNDS}×)`, baseline: `deep copy ${fmtNum(b * 1000)} µs`, measured: `map ${fmtNum(c * 1000)} µs`, ratio: fmtRatio(ratio), target: `≤ ${fmtRatio(MAX_RATIO)}`, met: ratio <= MAX_RATIO }],
  };
}
