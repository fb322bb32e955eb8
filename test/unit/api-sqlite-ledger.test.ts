/** The API on the real SQLite ledger: jobs created the way the bridge creates them (claim, then update). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../src/api/app.js';
import { openLedger } from '../../src/ledger/index.js';
import type { Ledger } from '../../src/ledger/types.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { walkTo } from '../helpers/ledger-walk.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const MIN = 60_000;
const TOKEN = 'sqlite-test-token';

function populate(ledger: Ledger): void {
  const claim = (id: string, at: number) => ledger.claim({ id, scheduledAnalysisUrl: `http://mass.test/api/scheduled_analysis/${id}/`, sampleUrl: `http://mass.test/api/sample/s${id}/` }, at);
  for (let i = 0; i < 12; i++) {
    const id = `d${i}`;
    claim(id, NOW - (50 - i) * MIN);
    walkTo(ledger, id, 'waiting', NOW - (49 - i) * MIN);
    ledger.update(id, { state: 'waiting', sha256: String(i).padStart(64, 'a'), ingestId: `ing-${i}` }, { type: 'ingested' }, NOW - (49 - i) * MIN);
    walkTo(ledger, id, 'done', NOW - (48 - i * 4) * MIN);
    ledger.update(id, { state: 'done', sid: `sid-${i}`, massReportUrl: `http://mass.test/api/report/${i}/` }, { type: 'report-sent' }, NOW - (48 - i * 4) * MIN);
  }
  claim('f1', NOW - 10 * MIN);
  walkTo(ledger, 'f1', 'failed', NOW - 2 * MIN);
  ledger.update('f1', { state: 'failed', errorCode: 'AL_FAILURE', errorMessage: 'all services failed', sid: 'sid-f1' }, { type: 'report-sent', code: 'AL_FAILURE' }, NOW - 2 * MIN);
  claim('h1', NOW - 9 * MIN);
  walkTo(ledger, 'h1', 'held', NOW - 8 * MIN);
  ledger.update('h1', { state: 'held', lastError: 'MASS refused the report', lastErrorCode: 'UPSTREAM_HTTP' }, { type: 'error', code: 'UPSTREAM_HTTP', message: 'MASS refused the report' }, NOW - 8 * MIN);
  claim('w1', NOW - 7 * MIN);
  walkTo(ledger, 'w1', 'waiting', NOW - 6 * MIN);
  ledger.update('w1', { state: 'waiting', ingestId: 'ing-w1' }, { type: 'ingested' }, NOW - 6 * MIN);
  claim('c1', NOW - 1 * MIN);
  ledger.recordRelatedSample({ jobId: 'd0', key: 'domain:evil.test', kind: 'domain', value: 'evil.test', massSampleUrl: 'http://mass.test/api/sample/dom1/' }, NOW - 40 * MIN);
}

async function setup(t: { after: (fn: () => unknown) => void }) {
  const ledger = openLedger(':memory:');
  t.after(() => ledger.close());
  populate(ledger);
  const control = createFakeControl(ledger, { now: () => NOW, startedAt: NOW - 60 * MIN });
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }), token: TOKEN, now: () => NOW });
  t.after(() => app.close());
  return { app, ledger, control };
}

test('status, readiness and metrics read the SQLite ledger', async (t) => {
  const { app } = await setup(t);
  const s = (await app.inject('/api/v1/status')).json();
  assert.deepEqual(s.counts, { claimed: 1, fetching: 0, ingesting: 0, waiting: 1, collecting: 0, relating: 0, reporting: 0, done: 12, failed: 1, held: 1 });
  assert.equal(s.inFlight, 2);
  assert.equal(s.oldestInFlightAgeSeconds, 7 * 60);
  // done jobs finished at 48, 44, ... 4 min ago; the failure 2 min ago
  assert.deepEqual(s.throughput.last5m, { done: 1, failed: 1, perMinute: 2 / 5 });
  assert.deepEqual(s.throughput.last60m, { done: 12, failed: 1, perMinute: 13 / 60 });
  const ready = await app.inject('/ready');
  assert.equal(ready.statusCode, 200, ready.body);
  const metrics = (await app.inject('/metrics')).body;
  assert.match(metrics, /^massal_jobs\{state="done"\} 12$/m);
  const size = Number(/^massal_ledger_size_bytes (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(size >= 0);
});

test('job listing pages newest first through the SQLite ledger and rejects a forged cursor', async (t) => {
  const { app } = await setup(t);
  const ids: string[] = [];
  let url = '/api/v1/jobs?limit=4';
  for (let i = 0; i < 10; i++) {
    const page = (await app.inject(url)).json();
    ids.push(...page.jobs.map((j: { id: string }) => j.id));
    if (!page.nextCursor) break;
    url = `/api/v1/jobs?limit=4&cursor=${encodeURIComponent(page.nextCursor)}`;
  }
  assert.equal(ids.length, 16);
  assert.deepEqual(ids.slice(0, 4), ['c1', 'w1', 'h1', 'f1']);
  const filtered = (await app.inject('/api/v1/jobs?state=held,failed')).json();
  assert.deepEqual(filtered.jobs.map((j: { id: string }) => j.id), ['h1', 'f1']);
  const forged = await app.inject(`/api/v1/jobs?cursor=${Buffer.from('["x"]').toString('base64url')}`);
  assert.equal(forged.statusCode, 400);
  assert.equal(forged.json().error.code, 'INVALID_CURSOR');
});

test('job detail and retry work on the SQLite ledger', async (t) => {
  const { app } = await setup(t);
  const d = (await app.inject('/api/v1/jobs/d0')).json();
  assert.deepEqual(d.events.map((e: { type: string }) => e.type).filter((type: string) => type !== 'test-walk'), ['claimed', 'ingested', 'report-sent']);
  assert.equal(d.assemblyline.uiUrl, 'https://al.test/submission/sid-0');
  assert.equal(d.relatedSamples[0].value, 'evil.test');
  const res = await app.inject({ method: 'POST', url: '/api/v1/jobs/h1/retry', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().job.state, 'claimed');
  assert.equal((await app.inject('/api/v1/status')).json().counts.held, 0);
});
