/**
 * Group commit (docs/design.md §9): the ledger keeps writes in an open transaction and the bridge commits them
 * before every upstream call that changes something upstream. Proof over a full pipeline run against the
 * simulators: every such call of the MASS and Assemblyline clients starts while nothing written to the ledger is
 * uncommitted, so a SIGKILL can only lose transitions that no upstream has seen a consequence of.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Ledger } from '../../src/ledger/types.js';
import { WORKLOAD_TAG_FILTER, reportsBySample, startHarness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';
import { walkTo } from '../helpers/ledger-walk.js';

const DROPPER = {
  score: 1000,
  families: ['AGENTTESLA'],
  extracted: [{ name: 'stage2.dll', relation: 'EXTRACTED' }],
  iocs: [
    { type: 'network.dynamic.ip', value: '203.0.113.9', safelisted: false },
    { type: 'network.dynamic.domain', value: 'drop.example.com', safelisted: false },
  ],
};

/** Each request method of `client` records, at the moment it is called, how many ledger writes are uncommitted. */
function guard<T extends object>(client: T, name: string, ledger: () => Ledger | undefined, seen: Array<{ call: string; pending: number }>): T {
  return new Proxy(client, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'close') return value;
      return (...args: unknown[]) => {
        const l = ledger();
        if (l) seen.push({ call: `${name}.${prop}`, pending: l.pending() });
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}

/**
 * The calls that change something upstream (the test's own list, not the bridge's): MASS reports, samples and
 * relations; Assemblyline ingests (by sha256 too: a hit creates a submission) and the notification-queue read
 * (it removes what it returns).
 */
const STATE_CHANGING = new Set([
  'mass.submitReport', 'mass.submitFileSample', 'mass.submitIPSample', 'mass.submitDomainSample', 'mass.submitURISample', 'mass.addRelation',
  'assemblyline.ingest', 'assemblyline.ingestBySha256', 'assemblyline.getMessages',
]);

test('no call that changes something on MASS or Assemblyline starts while a ledger write is uncommitted, and a job costs fewer commits than writes', { timeout: 90_000 }, async (t) => {
  const seen: Array<{ call: string; pending: number }> = [];
  // The clients are wrapped before the ledger is handed out; the guard reads it once the bridge runs.
  const ref: { ledger?: Ledger } = {};
  const h = await startHarness(t, {
    config: { bridge: { concurrency: 4 } },
    mass: { tagFilter: WORKLOAD_TAG_FILTER },
    wrapMass: (c) => guard(c, 'mass', () => ref.ledger, seen),
    wrapAl: (c) => guard(c, 'assemblyline', () => ref.ledger, seen),
  });
  const ledger = h.ledger;
  ref.ledger = ledger;
  const roots = [await h.seedFile('dropper.exe', `MZ dropper\nAL-SIM: ${JSON.stringify(DROPPER)}\n`)];
  for (let i = 0; i < 6; i++) roots.push(await h.seedFile(`plain-${i}.bin`, `plain file ${i}\n`));
  const notAFile = await h.seedNonFile('domain', 'not-a-file.example.net');

  // While jobs move, writes do wait for a commit (otherwise this test would prove nothing).
  let maxPending = 0;
  h.bridge.on('job', () => {
    maxPending = Math.max(maxPending, ledger.pending());
  });
  const commitsBefore = ledger.commits();
  h.bridge.start();
  await waitFor(
    async () => {
      const s = await h.massState();
      return s.scheduled_pending === 0 && s.analysis_requests === 0 && ledger.inFlight() === 0 && s.reports.length >= roots.length + 2 ? s : null;
    },
    { timeoutMs: 60_000, what: 'every scheduled analysis reported' },
  );
  await h.bridge.stop({ graceMs: 2000 });

  const state = await h.massState();
  for (const r of roots) assert.equal(reportsBySample(state).get(r.url)?.length, 1, `one report for ${r.url}`);
  assert.equal(reportsBySample(state).get(notAFile.url)?.[0]?.error_message != null, true, 'the domain sample got an error report');
  assert.ok(state.relations.length >= 3, 'the dropper step related its file and IOCs');

  const calls = new Set(seen.map((s) => s.call));
  for (const op of ['mass.poll', 'mass.getSample', 'mass.submitReport', 'mass.addRelation', 'assemblyline.getMessages', 'assemblyline.getSubmissionFull']) {
    assert.ok(calls.has(op), `the run made ${op} calls (seen: ${[...calls].join(', ')})`);
  }
  for (const op of STATE_CHANGING) {
    if (op === 'mass.submitURISample') continue; // the dropper has no URI
    assert.ok(calls.has(op), `the run made ${op} calls`);
  }
  const unflushed = seen.filter((s) => STATE_CHANGING.has(s.call) && s.pending !== 0);
  assert.deepEqual(unflushed, [], 'every state-changing upstream request started with the ledger fully committed');
  const early = seen.filter((s) => !STATE_CHANGING.has(s.call) && s.pending !== 0);
  t.diagnostic(`${early.length} of ${seen.length - seen.filter((s) => STATE_CHANGING.has(s.call)).length} reads started while writes were pending`);
  assert.ok(maxPending > 0, 'ledger writes were grouped (some waited for a commit)');

  const jobs = ledger.list({ limit: 1000 }).jobs;
  const writes = jobs.reduce((n, j) => n + ledger.events(j.id).length, 0);
  const commits = ledger.commits() - commitsBefore;
  assert.equal(ledger.pending(), 0, 'stop() committed the last writes');
  t.diagnostic(`${jobs.length} jobs: ${writes} job events, ${commits} commits`);
  assert.ok(commits < writes, `fewer commits (${commits}) than job events written (${writes}) for ${jobs.length} jobs`);
});

test('an operator retry returns only once its transition is committed', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t);
  const { ledger } = h;
  ledger.claim({ id: 'sa-held', scheduledAnalysisUrl: `${h.endpoints.massApiRoot}scheduled_analysis/sa-held/`, sampleUrl: `${h.endpoints.massApiRoot}sample/1/` }, Date.now());
  walkTo(ledger, 'sa-held', 'held', Date.now());
  ledger.update('sa-held', { state: 'held', lastError: 'MASS refused the error report' }, { type: 'held', data: { from: 'reporting' } }, Date.now());
  await ledger.flush();
  const job = await h.bridge.control.retryJob('sa-held');
  assert.equal(job.state, 'reporting');
  assert.equal(ledger.pending(), 0, 'the retry is on disk when the operator is told');
});
