import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../src/api/app.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeLedger, seedTypicalJobs, type FakeLedger } from '../helpers/fake-ledger.js';
import { createFakeControl, type FakeControl } from '../helpers/fake-control.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const TOKEN = 'test-operator-token-5b1f';

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, opts: { token?: string; seed?: boolean } = {}) {
  let clock = NOW;
  const now = () => clock;
  const ledger: FakeLedger = createFakeLedger();
  const ids = opts.seed === false ? null : seedTypicalJobs(ledger, NOW);
  const control: FakeControl = createFakeControl(ledger, { now, startedAt: NOW - 3_600_000 });
  const metrics = createMetrics();
  const app = await buildApi({ ledger, control, metrics, token: opts.token, now, version: '9.9.9' });
  t.after(() => app.close());
  return { app, ledger, control, metrics, ids, setNow: (ms: number) => (clock = ms) };
}

const auth = { authorization: `Bearer ${TOKEN}` };

test('GET /health answers ok without looking at upstreams', async (t) => {
  const { app, control } = await setup(t);
  control.state.upstreams.mass.consecutiveFailures = 9;
  control.state.lastPollAt = null;
  const res = await app.inject('/health');
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('GET /ready is 200 when the ledger is writable and both upstreams answered recently', async (t) => {
  const { app, control } = await setup(t);
  control.state.lastPollAt = NOW - 19_000; // PollTime 10 s: within 2 × PollTime
  control.state.upstreams.assemblyline.lastSuccessAt = NOW - 4 * 60_000;
  const res = await app.inject('/ready');
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { ready: true, checks: { ledger: true, mass: true, assemblyline: true }, reasons: [] });
});

test('GET /ready is 503 with one reason per failed check', async (t) => {
  const { app, control, ledger } = await setup(t);
  ledger.writable = false;
  control.state.lastPollAt = NOW - 21_000;
  control.state.upstreams.mass = { lastSuccessAt: NOW - 21_000, lastErrorAt: NOW - 1000, lastError: 'connect ECONNREFUSED 127.0.0.1:8000', lastErrorCode: 'NETWORK', consecutiveFailures: 2 };
  control.state.upstreams.assemblyline.lastSuccessAt = NOW - 6 * 60_000;
  const res = await app.inject('/ready');
  assert.equal(res.statusCode, 503);
  const body = res.json();
  assert.equal(body.ready, false);
  assert.deepEqual(body.checks, { ledger: false, mass: false, assemblyline: false });
  assert.equal(body.reasons.length, 3);
  assert.match(body.reasons[0], /ledger/);
  assert.match(body.reasons[1], /MASS poll 21s ago.*2 × PollTime \(20s\).*ECONNREFUSED/);
  assert.match(body.reasons[2], /last successful Assemblyline call 360s ago/);
});

test('GET /ready names a refused Assemblyline key as a refusal, not as a server that never answered', async (t) => {
  const { app, control } = await setup(t);
  control.state.upstreams.assemblyline = { lastSuccessAt: null, lastErrorAt: NOW - 1000, lastError: 'Assemblyline answered 401 on user/whoami', lastErrorCode: 'AUTH', consecutiveFailures: 3 };
  const res = await app.inject('/ready');
  assert.equal(res.statusCode, 503);
  const reason = res.json().reasons.find((r: string) => /Assemblyline/.test(r));
  assert.match(reason, /no successful Assemblyline call yet.*last error: Assemblyline answered 401/);
  assert.doesNotMatch(reason, /not answered/);
});

test('GET /ready is 503 before the first poll', async (t) => {
  const { app, control } = await setup(t);
  control.state.lastPollAt = null;
  const res = await app.inject('/ready');
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json().checks, { ledger: true, mass: false, assemblyline: true });
  assert.match(res.json().reasons[0], /no successful MASS poll yet/);
});

test('GET /api/v1/status reports counts, throughput windows, upstream health and the oldest in-flight job', async (t) => {
  const { app, control } = await setup(t);
  control.state.upstreams.assemblyline = { lastSuccessAt: NOW - 60_000, lastErrorAt: NOW - 5000, lastError: 'Assemblyline answered 503', lastErrorCode: 'UPSTREAM_HTTP', consecutiveFailures: 3 };
  control.state.stateBudgetsMs = { waiting: 24 * 3_600_000, held: null };
  const res = await app.inject('/api/v1/status');
  assert.equal(res.statusCode, 200);
  const s = res.json();
  assert.equal(s.version, '9.9.9');
  assert.equal(s.uptimeSeconds, 3600);
  assert.equal(s.paused, false);
  assert.deepEqual(s.counts, { claimed: 1, fetching: 0, ingesting: 1, waiting: 2, collecting: 1, relating: 0, reporting: 1, done: 24, failed: 3, held: 1 });
  assert.equal(s.inFlight, 6);
  // done jobs finished at 0.5, 3, 5.5 ... min ago; failures at 3, 10, 17 min ago
  assert.deepEqual(s.throughput.last5m, { done: 2, failed: 1, perMinute: 3 / 5 });
  assert.deepEqual(s.throughput.last60m, { done: 24, failed: 3, perMinute: 27 / 60 });
  assert.equal(s.oldestInFlightAgeSeconds, 540);
  // The oldest job per unfinished state, with how long it has been in that state and the state's budget.
  const byState = Object.fromEntries((s.oldestPerState as Array<{ state: string }>).map((o) => [o.state, o]));
  assert.deepEqual(Object.keys(byState).sort(), ['claimed', 'collecting', 'held', 'ingesting', 'reporting', 'waiting']);
  assert.deepEqual(byState.held, { state: 'held', jobId: 'sa-held-28', ageSeconds: 900, budgetSeconds: null });
  assert.equal((byState.waiting as unknown as { budgetSeconds: number }).budgetSeconds, 86_400);
  assert.equal((byState.waiting as unknown as { ageSeconds: number }).ageSeconds, 10);
  assert.equal(s.upstreams.mass.ok, true);
  assert.equal(s.upstreams.assemblyline.ok, false);
  assert.equal(s.upstreams.assemblyline.lastError, 'Assemblyline answered 503');
  assert.equal(s.upstreams.assemblyline.lastErrorAt, new Date(NOW - 5000).toISOString());
});

test('GET /api/v1/throughput buckets finished jobs per minute, oldest first', async (t) => {
  const { app } = await setup(t);
  const res = await app.inject('/api/v1/throughput?minutes=60&bucket=60');
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.buckets.length, 60);
  assert.equal(body.to, new Date(NOW).toISOString());
  const totals = body.buckets.reduce((a: { done: number; failed: number }, b: { done: number; failed: number }) => ({ done: a.done + b.done, failed: a.failed + b.failed }), { done: 0, failed: 0 });
  assert.deepEqual(totals, { done: 24, failed: 3 });
  assert.deepEqual(body.buckets[59], { start: new Date(NOW - 60_000).toISOString(), done: 1, failed: 0 });
  assert.equal((await app.inject('/api/v1/throughput?bucket=5')).json().error.code, 'VALIDATION');
});

test('GET /api/v1/jobs filters by a comma list of states, sha256 and time range', async (t) => {
  const { app, ids } = await setup(t);
  const res = await app.inject('/api/v1/jobs?state=failed,held');
  assert.equal(res.statusCode, 200);
  const got = res.json().jobs.map((j: { id: string }) => j.id).sort();
  assert.deepEqual(got, [...ids!.failed, ...ids!.held].sort());
  assert.equal(res.json().nextCursor, null);

  const done = (await app.inject('/api/v1/jobs?state=done&limit=1')).json().jobs[0];
  const bySha = (await app.inject(`/api/v1/jobs?sha256=${done.sha256.toUpperCase()}`)).json();
  assert.deepEqual(bySha.jobs.map((j: { id: string }) => j.id), [done.id]);

  const from = new Date(NOW - 5 * 60_000).toISOString();
  const recent = (await app.inject(`/api/v1/jobs?from=${from}&to=${new Date(NOW).toISOString()}&limit=500`)).json();
  assert.ok(recent.jobs.length > 0);
  for (const j of recent.jobs) assert.ok(Date.parse(j.createdAt) >= NOW - 5 * 60_000, `${j.id} created ${j.createdAt}`);
});

test('GET /api/v1/jobs pages through every job exactly once with the cursor', async (t) => {
  const { app } = await setup(t);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/api/v1/jobs?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const body = (await app.inject(url)).json();
    assert.ok(body.jobs.length <= 7);
    seen.push(...body.jobs.map((j: { id: string }) => j.id));
    cursor = body.nextCursor;
    pages++;
  } while (cursor && pages < 20);
  assert.equal(seen.length, 34);
  assert.equal(new Set(seen).size, 34);
  assert.equal(pages, 5);
});

test('GET /api/v1/jobs rejects bad parameters with 400 VALIDATION or INVALID_CURSOR', async (t) => {
  const { app } = await setup(t);
  for (const qs of ['state=done,bogus', 'limit=501', 'limit=0', 'sha256=xyz', 'from=yesterday', `from=${new Date(NOW).toISOString()}&to=${new Date(NOW - 1).toISOString()}`]) {
    const res = await app.inject(`/api/v1/jobs?${qs}`);
    assert.equal(res.statusCode, 400, qs);
    assert.equal(res.json().error.code, 'VALIDATION', qs);
    assert.equal(typeof res.json().error.message, 'string');
  }
  const res = await app.inject('/api/v1/jobs?cursor=not-a-cursor');
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().error.code, 'INVALID_CURSOR');
});

test('GET /api/v1/jobs/{id} returns the job, its full history, links, related samples and relations', async (t) => {
  const { app, ledger, ids } = await setup(t);
  const id = ids!.done[0];
  ledger.recordRelatedSample({ jobId: id, key: 'ip:10.0.0.1', kind: 'ip', value: '10.0.0.1', massSampleUrl: 'http://mass.test/api/sample/ip1/' }, NOW);
  ledger.recordRelation({ jobId: id, key: 'contacted:ip1', kind: 'contacted', sampleUrl: 'http://mass.test/api/sample/x/', otherUrl: 'http://mass.test/api/sample/ip1/', massRelationUrl: 'http://mass.test/api/sample_relation/7/' }, NOW);
  const res = await app.inject(`/api/v1/jobs/${id}`);
  assert.equal(res.statusCode, 200);
  const d = res.json();
  assert.equal(d.job.id, id);
  assert.equal(d.job.state, 'done');
  assert.deepEqual(d.events.map((e: { type: string }) => e.type), ['claimed', 'ingested', 'notified', 'report-sent']);
  assert.deepEqual(d.assemblyline, { sid: 'sid-1', ingestId: 'ing-1', uiUrl: 'https://al.test/submission/sid-1' });
  assert.equal(d.job.assemblylineUrl, 'https://al.test/submission/sid-1');
  assert.deepEqual(d.mass, { scheduledAnalysisUrl: `http://mass.test/api/scheduled_analysis/${id}/`, sampleUrl: `http://mass.test/api/sample/${id}/`, reportUrl: 'http://mass.test/api/report/1/' });
  assert.deepEqual(d.relatedSamples, [{ key: 'ip:10.0.0.1', kind: 'ip', value: '10.0.0.1', massSampleUrl: 'http://mass.test/api/sample/ip1/', createdAt: new Date(NOW).toISOString() }]);
  assert.equal(d.relations[0].massRelationUrl, 'http://mass.test/api/sample_relation/7/');
  assert.equal(d.lastError, null);

  const failed = (await app.inject(`/api/v1/jobs/${ids!.failed[0]}`)).json();
  assert.deepEqual(failed.lastError, { code: 'AL_FAILURE', message: 'Assemblyline reported the submission as failed: all services errored' });
  assert.equal(failed.events[1].code, 'AL_FAILURE');
});

test('unknown jobs and routes answer 404 in the one error shape', async (t) => {
  const { app } = await setup(t);
  const job = await app.inject('/api/v1/jobs/nope');
  assert.equal(job.statusCode, 404);
  assert.deepEqual(job.json(), { error: { code: 'JOB_NOT_FOUND', message: 'job nope not found' } });
  const route = await app.inject('/api/v2/whatever?x=1');
  assert.equal(route.statusCode, 404);
  assert.deepEqual(route.json(), { error: { code: 'NOT_FOUND', message: 'no route GET /api/v2/whatever' } });
});

test('an unexpected failure answers 500 INTERNAL without stack or original message', async (t) => {
  const { app, control } = await setup(t);
  control.status = () => {
    throw new Error('db password=hunter2 at /secret/path');
  };
  const res = await app.inject('/api/v1/status');
  assert.equal(res.statusCode, 500);
  assert.deepEqual(res.json(), { error: { code: 'INTERNAL', message: 'internal error' } });
  assert.doesNotMatch(res.body, /hunter2|secret|at /);
});

test('write routes answer 403 WRITE_DISABLED when no token is configured', async (t) => {
  const { app, control } = await setup(t);
  for (const [url, payload] of [['/api/v1/pause'], ['/api/v1/resume'], ['/api/v1/jobs/sa-held-28/retry'], ['/api/v1/jobs/sa-held-28/abandon', { reason: 'x' }]] as const) {
    const res = await app.inject({ method: 'POST', url, payload, headers: auth });
    assert.equal(res.statusCode, 403, url);
    assert.equal(res.json().error.code, 'WRITE_DISABLED', url);
  }
  assert.deepEqual(control.calls, []);
});

test('write routes answer 401 without, with a wrong, or with a differently sized token', async (t) => {
  const { app, control } = await setup(t, { token: TOKEN });
  for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}X`, 'Bearer a', TOKEN, `Basic ${TOKEN}`]) {
    const headers = authorization === undefined ? {} : { authorization };
    const res = await app.inject({ method: 'POST', url: '/api/v1/pause', headers });
    assert.equal(res.statusCode, 401, String(authorization));
    assert.deepEqual(res.json(), { error: { code: 'UNAUTHORIZED', message: 'a valid bearer token is required' } });
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
  }
  assert.deepEqual(control.calls, []);
});

test('pause and resume change the paused state seen in /api/v1/status', async (t) => {
  const { app, control } = await setup(t, { token: TOKEN });
  const paused = await app.inject({ method: 'POST', url: '/api/v1/pause', headers: auth });
  assert.equal(paused.statusCode, 200);
  assert.deepEqual(paused.json(), { paused: true });
  assert.equal((await app.inject('/api/v1/status')).json().paused, true);
  const resumed = await app.inject({ method: 'POST', url: '/api/v1/resume', headers: auth });
  assert.deepEqual(resumed.json(), { paused: false });
  assert.deepEqual(control.calls.map((c) => c.action), ['pause', 'resume']);
});

test('retry puts a held job back to work; a finished job answers 409, an unknown one 404', async (t) => {
  const { app, ids } = await setup(t, { token: TOKEN });
  const res = await app.inject({ method: 'POST', url: `/api/v1/jobs/${ids!.held[0]}/retry`, headers: auth });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().job.state, 'claimed');
  const detail = (await app.inject(`/api/v1/jobs/${ids!.held[0]}`)).json();
  assert.equal(detail.events.at(-1).type, 'retry');

  const done = await app.inject({ method: 'POST', url: `/api/v1/jobs/${ids!.done[0]}/retry`, headers: auth });
  assert.equal(done.statusCode, 409);
  assert.equal(done.json().error.code, 'CONFLICT');
  const missing = await app.inject({ method: 'POST', url: '/api/v1/jobs/nope/retry', headers: auth });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'JOB_NOT_FOUND');
});

test('abandon passes the reason to the bridge and needs one', async (t) => {
  const { app, control, ids } = await setup(t, { token: TOKEN });
  const id = ids!.inFlight[2];
  const noBody = await app.inject({ method: 'POST', url: `/api/v1/jobs/${id}/abandon`, headers: auth, payload: {} });
  assert.equal(noBody.statusCode, 400);
  assert.equal(noBody.json().error.code, 'VALIDATION');
  const res = await app.inject({ method: 'POST', url: `/api/v1/jobs/${id}/abandon`, headers: auth, payload: { reason: 'sample is a known test file' } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().job.state, 'failed');
  assert.equal(res.json().job.errorMessage, 'sample is a known test file');
  assert.deepEqual(control.calls, [{ action: 'abandon', id, reason: 'sample is a known test file' }]);
  const again = await app.inject({ method: 'POST', url: `/api/v1/jobs/${id}/abandon`, headers: auth, payload: { reason: 'again' } });
  assert.equal(again.statusCode, 409);
});

test('an abandon whose error report cannot reach MASS answers 502 UPSTREAM_UNAVAILABLE', async (t) => {
  const { app, control, ids } = await setup(t, { token: TOKEN });
  const { BridgeError } = await import('../../src/errors.js');
  control.abandonJob = async () => {
    throw new BridgeError('NETWORK', 'MASS unreachable: connect ECONNREFUSED', { upstream: 'mass' });
  };
  const res = await app.inject({ method: 'POST', url: `/api/v1/jobs/${ids!.held[0]}/abandon`, headers: auth, payload: { reason: 'r' } });
  assert.equal(res.statusCode, 502);
  assert.deepEqual(res.json(), { error: { code: 'UPSTREAM_UNAVAILABLE', message: 'MASS unreachable: connect ECONNREFUSED' } });
});

test('malformed JSON bodies answer 400 in the error shape', async (t) => {
  const { app, ids } = await setup(t, { token: TOKEN });
  const res = await app.inject({ method: 'POST', url: `/api/v1/jobs/${ids!.held[0]}/abandon`, headers: { ...auth, 'content-type': 'application/json' }, payload: '{"reason":' });
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().error.code, 'BAD_REQUEST');
});

test('GET /metrics serves Prometheus text with ledger gauges refreshed at scrape time', async (t) => {
  const { app, ledger, metrics, control } = await setup(t);
  metrics.upstreamRequest('mass', 'poll', 'ok', 0.03);
  metrics.upstreamRequest('assemblyline', 'ingest', 'error', 1.2);
  metrics.jobFinished('done', 42);
  metrics.notificationLag(2);
  control.state.paused = true;
  let res = await app.inject('/metrics');
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  assert.match(text, /^massal_jobs\{state="done"\} 24$/m);
  assert.match(text, /^massal_jobs\{state="held"\} 1$/m);
  assert.match(text, /^massal_jobs_in_flight 6$/m);
  assert.match(text, /^massal_ledger_size_bytes \d+$/m);
  assert.match(text, /^massal_upstream_requests_total\{target="assemblyline",operation="ingest",outcome="error"\} 1$/m);
  assert.match(text, /^massal_upstream_request_duration_seconds_bucket\{le="0.05",target="mass",operation="poll"\} 1$/m);
  assert.match(text, /^massal_jobs_finished_total\{outcome="done"\} 1$/m);
  assert.match(text, /^massal_job_duration_seconds_count 1$/m);
  assert.match(text, /^massal_notification_lag_seconds_count 1$/m);
  assert.match(text, new RegExp(`^massal_last_successful_poll_timestamp_seconds ${NOW / 1000}$`, 'm'));
  assert.match(text, /^massal_paused 1$/m);
  assert.match(text, /^massal_oldest_in_flight_age_seconds 540$/m);
  assert.match(text, /^massal_upstream_up\{target="mass"\} 1$/m);
  assert.match(text, /^massal_process_cpu_seconds_total /m);
  assert.match(text, /^massal_build_info\{version="/m);
  for (const line of text.split('\n')) if (line && !line.startsWith('#')) assert.match(line, /^massal_/);

  ledger.seed({ id: 'late', state: 'done', createdAt: NOW, finishedAt: NOW });
  res = await app.inject('/metrics');
  assert.match(res.body, /^massal_jobs\{state="done"\} 25$/m);
});

test('the status page and Swagger UI are served without external resources', async (t) => {
  const { app } = await setup(t);
  const page = await app.inject('/');
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
  assert.doesNotMatch(page.body, /(src|href)="(https?:)?\/\//);
  const ui = await app.inject('/documentation/');
  assert.equal(ui.statusCode, 200);
  assert.doesNotMatch(ui.body, /(src|href)="https?:\/\//);
  const doc = await app.inject('/documentation/json');
  assert.equal(doc.json().openapi, '3.1.0');
});
