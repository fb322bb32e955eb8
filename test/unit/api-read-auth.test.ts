import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../src/api/app.js';
import { findKey } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { createFakeLedger, seedTypicalJobs } from '../helpers/fake-ledger.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const WRITE = 'write-token-7d1c0a';
const READ = 'read-token-93be21';

async function api(t: { after: (fn: () => unknown) => void }, opts: { token?: string; readToken?: string; readAuth?: 'none' | 'token' }) {
  const ledger = createFakeLedger();
  seedTypicalJobs(ledger, NOW);
  const control = createFakeControl(ledger, { now: () => NOW, startedAt: NOW - 3_600_000 });
  control.state.lastPollAt = NOW - 1000;
  control.state.upstreams.assemblyline.lastSuccessAt = NOW - 1000;
  const app = await buildApi({ ledger, control, metrics: createMetrics(), now: () => NOW, ...opts });
  t.after(() => app.close());
  return app;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const READ_ROUTES = ['/api/v1/status', '/api/v1/jobs', '/metrics', '/', '/docs/json', '/no-such-route'];

test('the status API listens on loopback by default and read routes are open by default', async (t) => {
  assert.equal(findKey('API', 'Listen')?.default, '127.0.0.1:8080');
  assert.equal(findKey('API', 'ReadAuth')?.default, 'none');
  assert.equal(findKey('API', 'ReadToken')?.secret, true);
  const app = await api(t, { token: WRITE });
  assert.equal((await app.inject('/api/v1/status')).statusCode, 200);
  assert.equal((await app.inject('/metrics')).statusCode, 200);
});

test('ReadToken set: every route but /health and /ready needs ReadToken or Token', async (t) => {
  const app = await api(t, { token: WRITE, readToken: READ });
  for (const url of READ_ROUTES) {
    const res = await app.inject(url);
    assert.equal(res.statusCode, 401, `${url} without a token`);
    assert.equal(res.json().error.code, 'UNAUTHORIZED');
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    assert.equal((await app.inject({ url, headers: bearer('wrong-token') })).statusCode, 401, `${url} with a wrong token`);
  }
  assert.equal((await app.inject({ url: '/api/v1/status', headers: bearer(READ) })).statusCode, 200);
  assert.equal((await app.inject({ url: '/metrics', headers: bearer(READ) })).statusCode, 200);
  assert.equal((await app.inject({ url: '/api/v1/jobs', headers: bearer(WRITE) })).statusCode, 200, 'the write token grants reads');
  // Probes stay open.
  assert.equal((await app.inject('/health')).statusCode, 200);
  assert.equal((await app.inject('/ready')).statusCode, 200);
  // The read token grants no write.
  const write = await app.inject({ method: 'POST', url: '/api/v1/pause', headers: bearer(READ) });
  assert.equal(write.statusCode, 401);
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/pause', headers: bearer(WRITE) })).statusCode, 200);
});

test('ReadAuth = token without ReadToken: the write token is required for reads', async (t) => {
  const app = await api(t, { token: WRITE, readAuth: 'token' });
  assert.equal((await app.inject('/api/v1/status')).statusCode, 401);
  assert.equal((await app.inject({ url: '/api/v1/status', headers: bearer(WRITE) })).statusCode, 200);
  assert.equal((await app.inject('/ready')).statusCode, 200);
});

test('ReadAuth = token with no token configured is a configuration error, not an API that refuses everything', async () => {
  const ledger = createFakeLedger();
  const control = createFakeControl(ledger, { now: () => NOW, startedAt: NOW });
  await assert.rejects(buildApi({ ledger, control, metrics: createMetrics(), readAuth: 'token' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /ReadToken or \[API\] Token/);
    return true;
  });
});
