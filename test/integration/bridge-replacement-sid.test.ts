/**
 * The cache key includes ignore_cache: after a re-ingest with ignore_cache (its cached submission was gone),
 * ordinary ingests of the same file still get the dead sid until the old cache entry expires. The bridge
 * remembers the replacement and does not re-ingest once per job in that window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AssemblylineClient, IngestParams } from '../../src/assemblyline/types.js';
import { overrideMethods, reportsBySample, scheduleAgain, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

async function reportsOf(h: Harness, url: string, n: number) {
  return waitFor(async () => {
    const s = await h.massState();
    const reports = reportsBySample(s).get(url) ?? [];
    return reports.length >= n && s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 ? reports : null;
  }, { timeoutMs: 30_000, what: `${n} reports` });
}

test('a dead cached sid is re-ingested once; later jobs of the same file use the replacement sid', { timeout: 60_000 }, async (t) => {
  const ingests: IngestParams[] = [];
  const h = await startHarness(t, {
    wrapAl: (c) =>
      overrideMethods(c as Required<AssemblylineClient>, {
        ingest: (original, req, ro) => (ingests.push(req.params), original(req, ro)),
        // Hash-first: the re-ingest of a file Assemblyline still stores goes by its sha256 (a 404 is followed by the upload).
        ingestBySha256: async (original, req, ro) => {
          const accepted = await original(req, ro);
          if (accepted) ingests.push(req.params);
          return accepted;
        },
      }),
  });
  const sample = await h.seedFile('stale.bin', 'analysed once, then its submission expires\n');
  h.bridge.start();
  const first = await reportsOf(h, sample.url, 1);
  const deadSid = String((first[0].additional_metadata.assemblyline as Record<string, unknown>).sid);
  await h.alControl(`/_sim/submissions/${deadSid}`, undefined, 'DELETE');

  await scheduleAgain(h, sample.url);
  const second = await reportsOf(h, sample.url, 2);
  const replacement = String((second[1].additional_metadata.assemblyline as Record<string, unknown>).sid);
  assert.notEqual(replacement, deadSid);
  await scheduleAgain(h, sample.url);
  const third = await reportsOf(h, sample.url, 3);
  assert.equal((third[2].additional_metadata.assemblyline as Record<string, unknown>).sid, replacement, 'the third job reports the replacement');
  assert.ok(third.every((r) => r.error_message === null));
  assert.equal(ingests.filter((p) => p.ignore_cache === true).length, 1, 'one re-ingest with ignore_cache, not one per job');
  const jobs = h.ledger.list({ limit: 10 }).jobs.filter((j) => j.sampleUrl === sample.url);
  assert.ok(jobs.some((j) => h.ledger.events(j.id).some((e) => e.type === 'replacement-sid')));
});
