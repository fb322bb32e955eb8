/**
 * Hash-first ingest: the simulator answers sha256 ingests as Assemblyline does, the client ingests by sha256,
 * and the bridge moves no sample bytes for a file Assemblyline already holds (no MASS download, no multipart
 * upload), falls back to download + upload for a file it does not hold, and says in the report which way it went.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import type { AssemblylineClient, IngestRequest } from '../../src/assemblyline/types.js';
import { ingestHashFirst, ingestWayOf } from '../../src/bridge/hash-first.js';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { nextMessage } from '../helpers/al-queue.js';
import { overrideMethods, reportsBySample, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const NOT_STORED = JSON.parse(readFileSync(new URL('../fixtures/hash-first/404-ingest-sha256.json', import.meta.url), 'utf8')) as {
  api_error_message: string;
  api_status_code: number;
};
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const OPTIONS = { name: 'stored.bin', metadata: { bridge_job: 'hash-test' }, params: { priority: 200, generate_alert: false }, notificationQueue: 'hash-q' };

test('simulator and client: a stored file is ingested by sha256; an unknown one answers 404 with Assemblyline\'s text', async (t) => {
  const sim = await createAssemblylineSimulator({ analysisDelayMs: 20, logger: silentLogger() });
  t.after(() => sim.close());
  const url = await sim.listen({ host: '127.0.0.1', port: 0 });
  const al = createAssemblylineClient({ url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, timeoutMs: 10_000 });
  t.after(() => al.close());

  const unknown = sha256('never uploaded\n');
  const raw = await fetch(`${url}/api/v4/ingest/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user': sim.user, 'x-apikey': sim.apiKey },
    body: JSON.stringify({ sha256: unknown, notification_queue: 'hash-q' }),
  });
  const body = (await raw.json()) as { api_error_message: string; api_status_code: number };
  assert.equal(raw.status, NOT_STORED.api_status_code);
  assert.equal(body.api_error_message, NOT_STORED.api_error_message);
  assert.equal(await al.ingestBySha256!({ ...OPTIONS, sha256: unknown }), null, 'the client reads that 404 as "not stored"');

  const content = Buffer.from('stored in Assemblyline once\n');
  const upload: IngestRequest = { ...OPTIONS, body: content };
  const first = await al.ingest(upload);
  assert.equal((await nextMessage(al, 'hash-q')).ingest_id, first.ingestId);
  const before = sim.stats().ingests;
  const byHash = await al.ingestBySha256!({ ...OPTIONS, metadata: { bridge_job: 'second' }, sha256: sha256(content).toUpperCase() });
  assert.ok(byHash && byHash.ingestId !== first.ingestId);
  const message = await nextMessage(al, 'hash-q');
  assert.equal(message.ingest_id, byHash.ingestId);
  assert.equal(message.submission.files[0].sha256, sha256(content));
  assert.equal(message.submission.metadata.bridge_job, 'second', 'metadata goes with the sha256 ingest');
  assert.equal(sim.stats().ingests, before + 1);
});

test('ingestHashFirst asks nothing when off, without a sha256, or with a malformed one', async () => {
  let calls = 0;
  const al = { ingestBySha256: () => (calls++, Promise.resolve({ ingestId: 'X' })) };
  const request = OPTIONS;
  assert.equal(await ingestHashFirst(al, { enabled: false, sha256: 'a'.repeat(64), request }), null);
  assert.equal(await ingestHashFirst(al, { enabled: true, sha256: null, request }), null);
  assert.equal(await ingestHashFirst(al, { enabled: true, sha256: 'not-a-hash', request }), null);
  assert.equal(await ingestHashFirst({}, { enabled: true, sha256: 'a'.repeat(64), request }), null);
  assert.equal(calls, 0);
  assert.deepEqual(await ingestHashFirst(al, { enabled: true, sha256: 'A'.repeat(64), request }), { ingestId: 'X' });
  assert.equal(ingestWayOf([{ type: 'ingested', data: { via: 'upload' } }, { type: 'ingested', data: { via: 'sha256' } }, { type: 'notified' }]), 'sha256');
  assert.equal(ingestWayOf([{ type: 'claimed' }]), undefined);
});

interface Seen {
  downloads: number;
  uploads: number;
  byHash: number;
}

async function runOne(t: { after: (fn: () => unknown) => void }, opts: { hashFirst: boolean; preload: boolean }) {
  const seen: Seen = { downloads: 0, uploads: 0, byHash: 0 };
  const h: Harness = await startHarness(t, {
    config: { assemblyline: { hashFirst: opts.hashFirst } },
    wrapMass: (c) => overrideMethods(c, { downloadSample: (original, ...a) => (seen.downloads++, original(...a)) }),
    wrapAl: (c) =>
      overrideMethods(c as Required<AssemblylineClient>, {
        ingest: (original, ...a) => (seen.uploads++, original(...a)),
        ingestBySha256: (original, ...a) => (seen.byHash++, original(...a)),
      }),
  });
  const content = `a sample ${opts.preload ? 'Assemblyline already holds' : 'new to Assemblyline'}\n`;
  if (opts.preload) {
    // Someone uploaded the same file to Assemblyline before (another tool, an analyst).
    await h.alClient.ingest({ ...OPTIONS, name: 'earlier.bin', body: Buffer.from(content), notificationQueue: 'someone-else' });
  }
  const sample = await h.seedFile('sample.bin', content);
  h.bridge.start();
  const state = await waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= 1 && s.scheduled_pending === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs: 30_000, what: 'the report on MASS' },
  );
  const [report] = reportsBySample(state).get(sample.url) ?? [];
  assert.ok(report, 'one report');
  assert.equal(report.error_message, null);
  return { seen, via: (report.additional_metadata.assemblyline as Record<string, unknown>).ingest_via };
}

test('bridge: a file Assemblyline holds goes in by sha256: no MASS download, no upload', { timeout: 60_000 }, async (t) => {
  const { seen, via } = await runOne(t, { hashFirst: true, preload: true });
  assert.deepEqual(seen, { downloads: 0, uploads: 0, byHash: 1 });
  assert.equal(via, 'sha256', 'the report says the file went in by its sha256');
});

test('bridge: a file Assemblyline does not hold falls back to download + upload and completes', { timeout: 60_000 }, async (t) => {
  const { seen, via } = await runOne(t, { hashFirst: true, preload: false });
  assert.deepEqual(seen, { downloads: 1, uploads: 1, byHash: 1 });
  assert.equal(via, 'upload');
});

test('bridge: HashFirst = false always downloads and uploads', { timeout: 60_000 }, async (t) => {
  const { seen, via } = await runOne(t, { hashFirst: false, preload: true });
  assert.deepEqual(seen, { downloads: 1, uploads: 1, byHash: 0 });
  assert.equal(via, 'upload');
});
