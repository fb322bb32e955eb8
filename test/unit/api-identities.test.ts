import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApi } from '../../src/api/app.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeLedger } from '../helpers/fake-ledger.js';
import { createFakeControl } from '../helpers/fake-control.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

test('/ready names each identity whose poll is overdue; /status and /metrics show every identity', async (t) => {
  const ledger = createFakeLedger();
  const control = createFakeControl(ledger, { now: () => NOW, startedAt: NOW - 3_600_000 });
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }), now: () => NOW });
  t.after(() => app.close());
  control.state.identities = [
    { name: 'default', uuid: control.state.instanceUuid, lastPollAt: NOW - 5_000, pendingOnMass: 101, inFlight: 99, online: true, lastPollError: null },
    { name: 'lab', uuid: '00000000-0000-4000-8000-000000000002', lastPollAt: NOW - 45_000, pendingOnMass: 12, inFlight: 12, online: true, lastPollError: 'MASS answered HTTP 404: Analysis instance not found' },
    { name: 'new', uuid: '00000000-0000-4000-8000-000000000003', lastPollAt: null, pendingOnMass: null, inFlight: 0, online: false, lastPollError: null },
  ];
  // The status of a bridge with identities gives the least recent of their last polls.
  control.state.lastPollAt = null;

  const ready = (await app.inject('/ready')).json<{ ready: boolean; reasons: string[] }>();
  assert.equal(ready.ready, false);
  assert.deepEqual(
    ready.reasons.filter((r) => r.startsWith('identity ')),
    [
      'identity lab: last successful MASS poll 45s ago, more than 2 × PollTime (20s) (last error: MASS answered HTTP 404: Analysis instance not found)',
      'identity new: no successful MASS poll yet, more than 2 × PollTime (20s)',
    ],
  );

  const status = (await app.inject('/api/v1/status')).json<{ identities: Array<Record<string, unknown>> }>();
  assert.deepEqual(status.identities[1], {
    name: 'lab', uuid: '00000000-0000-4000-8000-000000000002', lastPollAt: new Date(NOW - 45_000).toISOString(), pendingOnMass: 12, inFlight: 12, online: true,
    lastPollError: 'MASS answered HTTP 404: Analysis instance not found',
  });
  assert.equal(status.identities[2].lastPollAt, null);

  const metrics = (await app.inject('/metrics')).body;
  assert.match(metrics, /^massal_identity_pending_on_mass\{identity="default"\} 101$/m);
  assert.match(metrics, /^massal_identity_jobs_in_flight\{identity="lab"\} 12$/m);
  assert.match(metrics, /^massal_identity_online\{identity="new"\} 0$/m);
  assert.match(metrics, new RegExp(`^massal_identity_last_poll_timestamp_seconds\\{identity="lab"\\} ${(NOW - 45_000) / 1000}$`, 'm'));
  assert.doesNotMatch(metrics, /massal_identity_pending_on_mass\{identity="new"\}/, 'no pending count before the first poll');
});
