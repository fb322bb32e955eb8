import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeError } from '../../src/errors.js';
import type { MassClient, MassRelation } from '../../src/mass/types.js';
import { reportsBySample, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const DROPPER = JSON.stringify({ score: 800, extracted: [{ name: 'payload.dll', relation: 'DYNAMIC' }], iocs: [{ type: 'network.dynamic.ip', value: '203.0.113.99', safelisted: false }] });

async function allReported(h: Harness, reports: number) {
  return waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= reports && s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs: 30_000, what: `${reports} reports` },
  );
}

/** The request reaches MASS and MASS acts on it, but the answer is lost (a reset after the server saved). */
function loseFirstAnswer<K extends 'submitReport' | 'addRelation'>(client: MassClient, method: K, lost: { count: number }): MassClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== method || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (lost.count > 0) {
          lost.count--;
          throw new BridgeError('NETWORK', 'socket hang up (simulated: answer lost after MASS saved)', { upstream: 'mass' });
        }
        return result;
      };
    },
  });
}

test('a report whose answer was lost after MASS saved it is found by its marker, not sent twice', { timeout: 60_000 }, async (t) => {
  const lost = { count: 1 };
  const h = await startHarness(t, { wrapMass: (c) => loseFirstAnswer(c, 'submitReport', lost) });
  const sample = await h.seedFile('one.bin', 'a single ordinary file\n');
  h.bridge.start();
  const state = await allReported(h, 1);
  assert.equal(lost.count, 0, 'the fault was injected');
  assert.equal(reportsBySample(state).get(sample.url)?.length, 1);
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.state, 'done');
  assert.ok(h.ledger.events(job.id).some((e) => e.type === 'report-sent' && e.data?.outcome === 'found'));
});

test('a relation whose answer was lost is looked up in relation_graph before posting again', { timeout: 60_000 }, async (t) => {
  const lost = { count: 1 };
  const withGraph = (c: MassClient): MassClient => {
    const wrapped = loseFirstAnswer(c, 'addRelation', lost);
    // The MASS client may not offer relation_graph yet; the test provides it over the real API.
    wrapped.getRelationGraph ??= async (sampleUrl: string) => {
      const res = await fetch(`${sampleUrl.replace(/\/?$/, '/')}relation_graph/?depth=1`, { headers: { authorization: `APIKEY ${h.endpoints.massKey}` } });
      return ((await res.json()) as { results: MassRelation[] }).results;
    };
    return wrapped;
  };
  const h: Harness = await startHarness(t, { wrapMass: withGraph });
  const root = await h.seedFile('dropper.exe', `dropper\nAL-SIM: ${DROPPER}\n`);
  h.bridge.start();
  // root + the echoed payload.dll
  const state = await allReported(h, 2);
  assert.equal(lost.count, 0, 'the fault was injected');
  const dropped = state.relations.filter((r) => r._cls.includes('DroppedBy') && r.other === root.url);
  const contacted = state.relations.filter((r) => r._cls.includes('ContactedBy') && r.other === root.url);
  assert.equal(dropped.length, 1, 'exactly one dropped-by relation');
  assert.equal(contacted.length, 1, 'exactly one contacted-by relation');
});

test('MASS failing for longer than the step retries: the job waits with backoff, keeps the error, then completes', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t, { config: { bridge: { stepRetries: 2, retryBaseDelay: 0.01, retryMaxDelay: 0.05 } } });
  const sample = await h.seedFile('flaky.bin', 'download fails a few times\n');
  await h.massControl('/_sim/faults', { method: 'GET', path_prefix: `/api/sample/${sample.id}/download/`, status: 503, times: 5 });
  h.bridge.start();
  const state = await allReported(h, 1);
  assert.equal(reportsBySample(state).get(sample.url)?.length, 1);
  assert.equal(reportsBySample(state).get(sample.url)?.[0].error_message, null);
  const job = h.ledger.list({}).jobs[0];
  const retries = h.ledger.events(job.id).filter((e) => e.type === 'retry-later');
  assert.ok(retries.length >= 1, 'the exhausted step was recorded and retried later');
  assert.equal(retries[0].state, 'ingesting');
  assert.equal(job.lastErrorCode, 'UPSTREAM_HTTP');
  assert.equal(h.al.stats().ingests, 1);
});

test('an operator abandons a job stuck in Assemblyline: one error report, state failed', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const sample = await h.seedFile('stuck.bin', 'the analysis never finishes\nAL-SIM: {"delay_ms": 600000}\n');
  h.bridge.start();
  const job = await waitFor(() => h.ledger.list({ states: ['waiting'] }).jobs[0], { timeoutMs: 20_000, what: 'job waiting for AL' });
  const done = await h.bridge.control.abandonJob(job.id, 'operator gave up');
  assert.equal(done.state, 'failed');
  const state = await h.massState();
  const reports = reportsBySample(state).get(sample.url) ?? [];
  assert.equal(reports.length, 1);
  assert.match(reports[0].error_message ?? '', /operator gave up/);
  await assert.rejects(h.bridge.control.abandonJob(job.id, 'again'), /already reported/);
});
