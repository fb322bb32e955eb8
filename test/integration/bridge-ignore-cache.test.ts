/**
 * [Assemblyline] IgnoreCache: every ingest carries params.ignore_cache, so a sample Assemblyline has already
 * analysed is analysed again (a fresh submission) instead of being answered from the result cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AssemblylineClient, IngestParams } from '../../src/assemblyline/types.js';
import { overrideMethods, scheduleAgain, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

interface AlState {
  ingests: Array<{ ingest_id: string; sha256: string; outcome: string }>;
  submissions: Array<{ sid: string; sha256: string }>;
}

async function reportsDone(h: Harness, reports: number) {
  return waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= reports && s.scheduled_pending === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs: 30_000, what: `${reports} reports and nothing in flight` },
  );
}

/** Analyses one sample, then the same sample again once the first report is in; returns what AL saw. */
async function analyseTwice(t: { after: (fn: () => unknown) => void }, ignoreCache: boolean) {
  const sent: IngestParams[] = [];
  const h = await startHarness(t, {
    config: { assemblyline: { ignoreCache } },
    wrapAl: (c) =>
      overrideMethods(c as Required<AssemblylineClient>, {
        ingest: (original, req, ro) => (sent.push(req.params), original(req, ro)),
        // Hash-first: only a sha256 ingest Assemblyline accepted is an ingest (a 404 is followed by the upload).
        ingestBySha256: async (original, req, ro) => {
          const accepted = await original(req, ro);
          if (accepted) sent.push(req.params);
          return accepted;
        },
      }),
  });
  const sample = await h.seedFile('again.bin', 'analysed twice\n');
  h.bridge.start();
  await reportsDone(h, 1);
  await scheduleAgain(h, sample.url);
  const state = await reportsDone(h, 2);
  assert.equal(state.reports.length, 2);
  assert.ok(state.reports.every((r) => r.error_message === null), 'two analysis reports');
  const al = (await (await fetch(`${h.alOrigin}/_sim/state`)).json()) as AlState;
  return { sent, al };
}

test('IgnoreCache = true: every ingest bypasses the cache and a repeated sample gets a fresh submission', { timeout: 60_000 }, async (t) => {
  const { sent, al } = await analyseTwice(t, true);
  assert.equal(al.ingests.length, 2, 'two ingests reached Assemblyline');
  assert.equal(sent.length, 2);
  assert.ok(sent.every((p) => p.ignore_cache === true), 'every ingest carries params.ignore_cache');
  assert.deepEqual(al.ingests.map((i) => i.outcome).filter((o) => o === 'cache-hit'), [], 'no cache hit');
  assert.equal(al.submissions.length, 2, 'the second ingest got its own submission');
  assert.notEqual(al.submissions[0].sid, al.submissions[1].sid);
});

test('IgnoreCache = false (default): the repeated sample is answered from the cache', { timeout: 60_000 }, async (t) => {
  const { sent, al } = await analyseTwice(t, false);
  // Not configured, so not sent: Assemblyline's default (false) applies.
  assert.ok(sent.every((p) => p.ignore_cache !== true), 'no ingest carries params.ignore_cache');
  assert.deepEqual(al.ingests.map((i) => i.outcome), ['completed', 'cache-hit']);
  assert.equal(al.submissions.length, 1);
});
