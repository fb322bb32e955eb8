import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeError } from '../../src/errors.js';
import { classifyIngestRefusal, IngestGate } from '../../src/bridge/ingest-gate.js';
import { ingestMetadata, ingestParams, reconcileQuery, ReplacementSids } from '../../src/bridge/ingest-request.js';
import type { BridgeConfig } from '../../src/config/types.js';

const alError = (status: number, body: string, code: 'UPSTREAM_HTTP' | 'QUOTA_DAILY' | 'AUTH' = 'UPSTREAM_HTTP') =>
  new BridgeError(code, `Assemblyline POST /api/v4/ingest/ answered ${status}: ${body}`, { status, upstream: 'assemblyline', body, transient: status === 503 && code === 'UPSTREAM_HTTP' });

test('the refusals every ingest would get are recognised with a fix; sample problems are not', () => {
  const kinds = [
    [400, 'User isn\'t allowed to modify the "priority" parameters of Static Analysis profile', 'parameters', /Priority/],
    [400, "You must specify a submission profile. One of: ['static']", 'profile', /SubmissionProfile/],
    [400, "Required metadata is missing from submission: ['sensor']", 'metadata', /\[Assemblyline\] Metadata/],
    [400, "Extra metadata found from submission: ['bridge_job']", 'metadata', /BridgeMetadata = false/],
    [400, "You cannot start a submission with higher classification then you're allowed to see", 'classification', /Classification/],
    [403, 'Access Denied (/api/v4/ingest/) [API /api/v4/ingest/ requires one of the following roles: submission_create]', 'role', /submission_create/],
    [503, "You've exceeded your maximum async concurrent submission quota of 5", 'async-quota', /async_quota/],
  ] as const;
  for (const [status, body, kind, fix] of kinds) {
    const r = classifyIngestRefusal(alError(status, body, status === 403 ? 'AUTH' : 'UPSTREAM_HTTP'), 1);
    assert.equal(r?.kind, kind, body);
    assert.match(r.fix, fix);
    assert.ok(r.reason.includes(body));
  }
  assert.equal(classifyIngestRefusal(alError(503, "You've reached your daily maximum submission quota of 10", 'QUOTA_DAILY'), 1)?.kind, 'daily-quota');
  assert.equal(classifyIngestRefusal(alError(400, 'File empty.'), 1), null);
  assert.equal(classifyIngestRefusal(alError(413, 'File too big to be scanned (9 > 8).'), 1), null);
  assert.equal(classifyIngestRefusal(new BridgeError('NETWORK', 'reset', { upstream: 'mass' }), 1), null);
});

test('a configuration refusal stops claiming and holds ingests; one probe per interval; an accepted ingest reopens the gate', () => {
  const gate = new IngestGate({ probeIntervalMs: 1000 });
  assert.equal(gate.canClaim(), true);
  assert.equal(gate.holdUntil(0), null);
  assert.ok(gate.onIngestError(alError(400, "Required metadata is missing from submission: ['sensor']"), 100));
  assert.equal(gate.canClaim(), false);
  assert.match(gate.reason ?? '', /sensor/);
  assert.equal(gate.holdUntil(500), 1100, 'everyone waits for the next probe');
  assert.equal(gate.holdUntil(1100), null, 'the probe');
  assert.equal(gate.holdUntil(1101), 2100, 'only one probe per interval');
  gate.onIngestOk();
  assert.equal(gate.canClaim(), true);
  assert.equal(gate.reason, null);
  assert.equal(gate.holdUntil(1200), null);
});

test('the async quota holds ingests briefly, learns the quota, and keeps claiming', () => {
  const gate = new IngestGate({ asyncQuotaWaitMs: 50 });
  assert.ok(gate.onIngestError(alError(503, "You've exceeded your maximum async concurrent submission quota of 5"), 0));
  assert.equal(gate.canClaim(), true);
  assert.equal(gate.asyncLimit, 5);
  assert.equal(gate.holdUntil(10, 0), 50);
  assert.equal(gate.holdUntil(60, 5), 110, 'five submissions of the bridge still running: wait');
  assert.equal(gate.holdUntil(60, 4), null);
  assert.equal(gate.blocksIngest(60, 5), true);
  assert.equal(gate.blocksIngest(60, 4), false);
  // Parallel workers: the ones let through count until they end, so only the free slots are taken.
  assert.equal(gate.tryStart(60, 3), null);
  assert.equal(gate.tryStart(60, 3), null);
  assert.equal(gate.tryStart(60, 3), 110, 'three running + two starting = the quota');
  gate.release();
  assert.equal(gate.tryStart(60, 3), null);
  gate.onIngestOk();
  gate.onIngestOk();
  assert.equal(gate.tryStart(60, 3), null);
});

const al = (over: Partial<BridgeConfig['assemblyline']> = {}) => ({
  priority: 0, deepScan: false, neverDrop: false, classification: '', ttl: 0, services: [], metadata: {}, bridgeMetadata: true, ...over,
}) as BridgeConfig['assemblyline'];

test('an ingest sends only what the operator configured, plus never_drop / ignore_cache on the re-ingests that need them', () => {
  assert.deepEqual(ingestParams(al(), { id: 'j', sampleUrl: 's' }), {});
  assert.deepEqual(ingestParams(al({ priority: 150, services: ['Antivirus'], classification: 'TLP:AMBER', ttl: 3 }), { id: 'j', sampleUrl: 's', neverDrop: true, ignoreCache: true }), {
    priority: 150, services: { selected: ['Antivirus'] }, classification: 'TLP:AMBER', ttl: 3, never_drop: true, ignore_cache: true,
  });
});

test('metadata: the configured pairs always, the bridge keys only when on; the reconciler searches by ingest_id', () => {
  const job = { id: 'job-1', sampleUrl: 'http://mass/s/1/', ingestId: 'abc' };
  assert.deepEqual(ingestMetadata(al({ metadata: { sensor: 'mass' }, bridgeMetadata: false }), 'b1', job, 1), { sensor: 'mass' });
  const all = ingestMetadata(al({ metadata: { sensor: 'mass' } }), 'b1', job, 2);
  assert.equal(all.sensor, 'mass');
  assert.equal(all.bridge_job, 'job-1');
  assert.equal(all.bridge_attempt, '2');
  assert.equal(reconcileQuery(al({ bridgeMetadata: false }), job), 'metadata.ingest_id:"abc"');
  assert.equal(reconcileQuery(al(), { ...job, ingestId: null }), 'metadata.bridge_job:"job-1"');
  assert.equal(reconcileQuery(al({ bridgeMetadata: false }), { ...job, ingestId: null }), null);
});

test('a dead cached sid is replaced by the sid its re-ingest produced, for one day', () => {
  const r = new ReplacementSids(1000);
  r.noteGone('job-a', 'dead');
  assert.equal(r.replacementFor('dead', 0), null);
  r.noteCollected('job-a', 'fresh', 10);
  r.noteCollected('job-b', 'other', 10);
  assert.equal(r.replacementFor('dead', 500), 'fresh');
  assert.equal(r.replacementFor('other', 500), null);
  assert.equal(r.replacementFor('dead', 2000), null, 'expired with the cache entry');
});

test('the daily API quota seen on a queue read stops claiming and ingesting until a read succeeds; an ingest does not clear it', () => {
  const gate = new IngestGate({ probeIntervalMs: 1000 });
  gate.onApiError(alError(503, "You've exceeded your daily maximum API calls quota of 3000", 'QUOTA_DAILY'), 0);
  assert.equal(gate.canClaim(), false);
  assert.match(gate.reason ?? '', /daily maximum API calls quota of 3000/);
  assert.match(gate.fix ?? '', /QueuePollTime/);
  assert.equal(gate.holdUntil(5000), 6000, 'no probe ingest: results could not be read anyway');
  gate.onIngestOk();
  assert.equal(gate.canClaim(), false, 'ingest is exempt from the API quota: its success proves nothing');
  gate.onApiError(new BridgeError('NETWORK', 'reset', { upstream: 'assemblyline', transient: true }), 1);
  gate.onApiOk();
  assert.equal(gate.canClaim(), true);
});

test('a refusal of only the parameters the bridge added for a re-ingest is no configuration error: they are withheld', () => {
  const gate = new IngestGate();
  const refused = alError(400, 'User isn\'t allowed to modify the "never_drop" parameters of Static Analysis profile');
  assert.deepEqual(classifyIngestRefusal(refused, 0)?.params, ['never_drop']);
  assert.ok(gate.onIngestError(refused, 0, ['never_drop']));
  assert.equal(gate.canClaim(), true);
  assert.equal(gate.holdUntil(1), null);
  assert.deepEqual([...gate.withheld], ['never_drop']);
  const cfg = al({ priority: 150 });
  assert.deepEqual(ingestParams(cfg, { id: 'j', sampleUrl: 's', neverDrop: true }, gate.withheld), { priority: 150 });
  // The same refusal for a configured parameter blocks.
  assert.ok(gate.onIngestError(alError(400, 'User isn\'t allowed to modify the "priority" parameters of Static Analysis profile'), 2, ['never_drop']));
  assert.equal(gate.canClaim(), false);
});

test('a job refused again after other ingests were accepted is a sample problem, not the configuration', () => {
  const gate = new IngestGate({ probeIntervalMs: 10 });
  const refused = alError(400, "You cannot start a submission with higher classification then you're allowed to see");
  assert.ok(gate.onIngestError(refused, 0, [], 'cart-job'), 'first seen: could be the configuration');
  assert.equal(gate.canClaim(), false);
  assert.equal(gate.holdUntil(10), null, 'the probe');
  gate.onIngestOk('other-job');
  assert.equal(gate.canClaim(), true);
  assert.equal(gate.onIngestError(refused, 20, [], 'cart-job'), null, 'refused again while others pass: this sample');
  assert.equal(gate.canClaim(), true);
  // While every job waiting to ingest has been refused, one more may be claimed to serve as the probe.
  assert.ok(gate.onIngestError(refused, 25, [], 'lonely-job'));
  assert.equal(gate.canClaim(1), true, 'the only waiting job was refused: claim one more');
  assert.equal(gate.canClaim(2), false, 'an unrefused job is already waiting');
  // Without an accepted ingest in between, the same job keeps the gate closed.
  assert.ok(gate.onIngestError(refused, 30, [], 'job-x'));
  assert.ok(gate.onIngestError(refused, 40, [], 'job-x'));
  assert.equal(gate.canClaim(), false);
});
