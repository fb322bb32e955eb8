/**
 * The Assemblyline client against the Assemblyline simulator over plain HTTP: streamed ingest,
 * CaRT fallback, size refusal, the per-user concurrent-call quota.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BridgeError } from '../../src/errors.js';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import type { AssemblylineClient, AssemblylineClientOptions, IngestRequest } from '../../src/assemblyline/types.js';
import { createAssemblylineSimulator, type AssemblylineSimulator, type AssemblylineSimulatorOptions } from '../../src/simulators/assemblyline/index.js';
import { silentLogger } from '../../src/log.js';
import { nextMessage } from '../helpers/al-queue.js';

async function setup(
  t: TestContext,
  simOpts: AssemblylineSimulatorOptions = {},
  clientOpts: Partial<AssemblylineClientOptions> = {},
): Promise<{ sim: AssemblylineSimulator; al: AssemblylineClient; url: string }> {
  const sim = await createAssemblylineSimulator({ analysisDelayMs: 20, logger: silentLogger(), ...simOpts });
  t.after(() => sim.close());
  const url = await sim.listen({ host: '127.0.0.1', port: 0 });
  const al = createAssemblylineClient({ url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, timeoutMs: 10_000, ...clientOpts });
  t.after(() => al.close());
  return { sim, al, url };
}

function request(name: string, body: IngestRequest['body'], queue: string): IngestRequest {
  return { name, body, metadata: { bridge_job: name }, params: { priority: 200, generate_alert: false, never_drop: true }, notificationQueue: queue };
}

test('a streamed ingest arrives intact: the analysed file has the source sha256 and bytes', async (t) => {
  const { sim, al } = await setup(t, { rawDownloadAllowed: false });
  const content = randomBytes(1024 * 1024 + 17);
  const chunks = Array.from({ length: Math.ceil(content.length / 65_536) }, (_, i) => content.subarray(i * 65_536, (i + 1) * 65_536));
  const { ingestId } = await al.ingest(request('blob.bin', Readable.from(chunks), 'sim-stream'));
  const message = await nextMessage(al, 'sim-stream');
  assert.equal(message.ingest_id, ingestId);
  const sha256 = createHash('sha256').update(content).digest('hex');
  assert.equal(message.submission.files[0].sha256, sha256);
  assert.equal(message.submission.metadata.bridge_job, 'blob.bin');
  assert.equal(sim.stats().ingestsBySha256[sha256], 1);
  // Raw downloads are disabled on this server: the client falls back to CaRT and decodes it.
  assert.deepEqual(await al.downloadFileBytes(sha256, { sid: message.submission.sid }), content);
  await assert.rejects(al.downloadFileBytes(sha256, { maxBytes: 1000 }), (e: unknown) => e instanceof BridgeError && e.code === 'SAMPLE_TOO_LARGE');
  assert.equal(await al.isCompleted(message.submission.sid), true);
  const summary = await al.getSubmissionSummary(message.submission.sid);
  assert.ok(summary);
  assert.equal(await al.getSubmission('doesNotExist00000000'), null);
});

test('a file over the server limit is refused with a permanent 413', async (t) => {
  const { al } = await setup(t, { maxFileSize: 1000 });
  await assert.rejects(al.ingest(request('big.bin', Buffer.alloc(5000, 1), 'sim-big')), (e: unknown) => {
    assert.ok(e instanceof BridgeError);
    assert.equal(e.code, 'UPSTREAM_HTTP');
    assert.equal(e.status, 413);
    assert.equal(e.transient, false);
    assert.match(e.message, /File too big to be scanned/);
    return true;
  });
});

test('the client limit keeps a burst of calls under the server quota', async (t) => {
  const { sim, al, url } = await setup(t, { concurrentQuota: 3 }, { maxConcurrentCalls: 3 });
  // Slow answers make the calls overlap for certain.
  const fault = await sim.app.inject({ method: 'POST', url: '/_sim/faults', payload: { path_prefix: '/api/v4/ingest/get_message_list/', delay_ms: 30, times: 40 } });
  assert.ok(fault.statusCode < 300);
  const answers = await Promise.all(Array.from({ length: 20 }, () => al.getMessages('sim-burst', 5)));
  assert.equal(answers.length, 20);

  // Control: a client allowed more calls than the quota gets AL's transient 503.
  const greedy = createAssemblylineClient({ url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, maxConcurrentCalls: 10 });
  t.after(() => greedy.close());
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => greedy.getMessages('sim-burst', 5)));
  const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as BridgeError);
  assert.ok(refused.length > 0, 'the simulator enforces the quota');
  for (const e of refused) {
    assert.equal(e.code, 'UPSTREAM_HTTP');
    assert.equal(e.status, 503);
    assert.equal(e.transient, true);
    assert.match(e.message, /concurrent API calls quota/);
  }
});
