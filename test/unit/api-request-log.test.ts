/** Request logs: the status page's refresh, probes and scrapes are debug lines; actions and errors stay at info. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { buildApi } from '../../src/api/app.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { createFakeLedger, seedTypicalJobs } from '../helpers/fake-ledger.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const TOKEN = 'test-operator-token-77c2';

/** What the status page, probes and scrapers ask for, over and over. */
const POLLED = ['/', '/health', '/ready', '/metrics', '/api/v1/status', '/api/v1/throughput?minutes=60&bucket=60', '/api/v1/jobs?state=failed,held&limit=10', '/favicon.ico'];

async function apiWithLog(t: { after: (fn: () => unknown) => void }, level: string) {
  const lines: Array<{ level: number; msg: string; req?: { url: string }; res?: { statusCode: number } }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  const ledger = createFakeLedger();
  seedTypicalJobs(ledger, NOW);
  const control = createFakeControl(ledger, { now: () => NOW, startedAt: NOW - 3_600_000 });
  const app = await buildApi({ ledger, control, metrics: createMetrics(), token: TOKEN, now: () => NOW, logger: createLogger({ level, destination }) });
  t.after(() => app.close());
  return { app, lines, control };
}

test('at info, reading the status page, probes and metrics logs nothing; /favicon.ico is no 404', async (t) => {
  const { app, lines, control } = await apiWithLog(t, 'info');
  for (const url of POLLED) {
    const res = await app.inject(url);
    assert.ok(res.statusCode < 400 || url === '/ready', `${url} answered ${res.statusCode}`);
  }
  // Before the first poll /ready answers 503: a probe's answer, not a failure worth an info line.
  control.state.lastPollAt = null;
  assert.equal((await app.inject('/ready')).statusCode, 503);
  const favicon = await app.inject('/favicon.ico');
  assert.equal(favicon.statusCode, 204);
  assert.deepEqual(lines.map((l) => l.msg), [], 'no log line for reads');
});

test('at debug, the same reads are logged; operator actions and client errors log at info', async (t) => {
  const { app, lines } = await apiWithLog(t, 'debug');
  await app.inject('/health');
  const health = lines.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed');
  assert.deepEqual(health.map((l) => l.level), [20, 20], 'two debug lines for one read');

  lines.length = 0;
  const action = await app.inject({ method: 'POST', url: '/api/v1/jobs/no-such-job/retry', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.ok(action.statusCode >= 400);
  const completed = lines.find((l) => l.msg === 'request completed');
  assert.ok(completed, 'the action is logged');
  assert.equal(completed.level, 30, 'an operator action logs at info');

  lines.length = 0;
  const missing = await app.inject('/api/v1/jobs/no-such-job');
  assert.equal(missing.statusCode, 404);
  assert.equal(lines.find((l) => l.msg === 'request completed')?.level, 30, 'a failed read logs at info');
});
