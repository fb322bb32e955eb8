import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { buildApi } from '../../src/api/app.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeLedger, seedTypicalJobs } from '../helpers/fake-ledger.js';
import { createFakeControl } from '../helpers/fake-control.js';

const SECRETS = {
  token: 'op-token-3c9a1e7f44',
  wrongToken: 'wrong-token-d81b2a90ee',
  apiKey: 'admin:al-apikey-77f0c2b5e1',
  cookie: 'session-cookie-a5e6b1d4c3',
};

test('request logs never contain Authorization, X-APIKEY or Cookie values', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: 'trace', destination });
  const ledger = createFakeLedger();
  const ids = seedTypicalJobs(ledger, Date.now());
  const control = createFakeControl(ledger);
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }), token: SECRETS.token, logger });
  t.after(() => app.close());

  const headers = (token: string) => ({
    authorization: `Bearer ${token}`,
    'x-apikey': SECRETS.apiKey,
    cookie: `session=${SECRETS.cookie}`,
  });
  const requests = [
    { method: 'GET' as const, url: '/api/v1/status', headers: headers(SECRETS.token) },
    { method: 'GET' as const, url: '/api/v1/jobs?state=failed', headers: headers(SECRETS.token) },
    { method: 'GET' as const, url: '/nowhere', headers: headers(SECRETS.token) },
    { method: 'POST' as const, url: '/api/v1/pause', headers: headers(SECRETS.wrongToken) },
    { method: 'POST' as const, url: '/api/v1/pause', headers: headers(SECRETS.token) },
    { method: 'POST' as const, url: `/api/v1/jobs/${ids.held[0]}/retry`, headers: headers(SECRETS.token) },
    { method: 'POST' as const, url: `/api/v1/jobs/${ids.inFlight[0]}/abandon`, headers: headers(SECRETS.token), payload: { reason: 'operator says so' } },
    { method: 'POST' as const, url: `/api/v1/jobs/${ids.inFlight[0]}/abandon`, headers: { ...headers(SECRETS.token), 'content-type': 'application/json' }, payload: '{bad json' },
  ];
  const statuses: number[] = [];
  for (const r of requests) statuses.push((await app.inject(r)).statusCode);
  // The requests did reach auth, routing and validation, so the log has something to say about each.
  assert.deepEqual(statuses, [200, 200, 404, 401, 200, 200, 200, 400]);
  control.status = () => {
    throw Object.assign(new Error('boom'), { headers: headers(SECRETS.token) });
  };
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/status', headers: headers(SECRETS.token) })).statusCode, 500);

  const output = lines.join('');
  assert.ok(lines.length >= 10, `expected request and response log lines, got ${lines.length}`);
  assert.match(output, /"statusCode":401/);
  assert.match(output, /"level":50.*"msg":"request failed"/);
  assert.match(output, /"url":"\/api\/v1\/pause"/);
  for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!output.includes(secret), `${name} leaked into the logs`);
});

test('polled routes (probes, scrapes, the status page) log no info line per request', async (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const ledger = createFakeLedger();
  const app = await buildApi({ ledger, control: createFakeControl(ledger), metrics: createMetrics({ collectProcessMetrics: false }), logger: createLogger({ level: 'info', destination }) });
  t.after(() => app.close());
  for (const url of ['/', '/health', '/ready', '/metrics', '/api/v1/status', '/api/v1/throughput']) assert.equal((await app.inject(url)).statusCode, 200, url);
  assert.equal(lines.length, 0, lines.join(''));
  // The status page also reads the job list; an operator action is logged.
  assert.equal((await app.inject('/api/v1/jobs')).statusCode, 200);
  assert.equal(lines.length, 0, lines.join(''));
  await app.inject({ method: 'POST', url: '/api/v1/pause' });
  assert.ok(lines.some((l) => l.includes('"url":"/api/v1/pause"')));
});
