import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { createAssemblylineSimulator, decodeCart, type AssemblylineSimulatorOptions } from '../../src/simulators/assemblyline/index.js';
import { until } from '../helpers/wait.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  json: { api_response: unknown; api_error_message: string; api_status_code: number } & Record<string, unknown>;
}
interface Ctx {
  origin: string;
  key: Record<string, string>;
  sim: Awaited<ReturnType<typeof createAssemblylineSimulator>>;
}

async function call(origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Answer> {
  const res = await request(origin + path, { method: method as 'GET', headers, body });
  const raw = Buffer.from(await res.body.arrayBuffer());
  const isJson = String(res.headers['content-type'] ?? '').includes('application/json');
  return { status: res.statusCode, headers: res.headers, raw, json: isJson ? JSON.parse(raw.toString('utf8')) : ({} as Answer['json']) };
}

async function start(t: { after: (fn: () => Promise<void>) => void }, opts: AssemblylineSimulatorOptions = {}): Promise<Ctx> {
  const sim = await createAssemblylineSimulator({ analysisDelayMs: 10, ...opts });
  t.after(() => sim.close());
  const origin = await sim.listen();
  return { sim, origin, key: { 'X-USER': sim.user, 'X-APIKEY': sim.apiKey } };
}

async function ingestJson(c: Ctx, body: Record<string, unknown>, headers = c.key): Promise<Answer> {
  return call(c.origin, 'POST', '/api/v4/ingest/', { ...headers, 'content-type': 'application/json' }, JSON.stringify(body));
}

function ingestIdOf(a: Answer): string {
  assert.equal(a.status, 200, a.raw.toString('utf8'));
  return String((a.json.api_response as Record<string, unknown>).ingest_id);
}

async function queueLength(c: Ctx, user: string, queue: string): Promise<number> {
  const state = (await call(c.origin, 'GET', '/_sim/state')).json as unknown as { queues: Record<string, number> };
  return state.queues[`nq-${Buffer.from(user).toString('hex').toUpperCase()}-${queue}`] ?? 0;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

// --- queues ---------------------------------------------------------------------------------

test('queue reads are destructive and FIFO; page_size absent/<0 drains, 0 gives [], non-int is a 500 envelope', async (t) => {
  const c = await start(t);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(ingestIdOf(await ingestJson(c, { plaintext: `file ${i}`, notification_queue: 'fifo', params: { priority: 200 } })));
  await until('five messages', async () => (await queueLength(c, c.sim.user, 'fifo')) === 5);

  const one = await call(c.origin, 'GET', '/api/v4/ingest/get_message/fifo/', c.key);
  assert.equal((one.json.api_response as Record<string, unknown>).ingest_id, ids[0]);
  const zero = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/fifo/?page_size=0', c.key);
  assert.deepEqual(zero.json.api_response, []);
  const two = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/fifo/?page_size=2&unknown=1', c.key);
  assert.deepEqual((two.json.api_response as Record<string, unknown>[]).map((m) => m.ingest_id), ids.slice(1, 3));
  const bad = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/fifo/?page_size=abc', c.key);
  assert.equal(bad.status, 500);
  assert.deepEqual([bad.json.api_error_message, bad.json.api_response, bad.json.api_status_code], ['Internal Server Error', '', 500]);
  const rest = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/fifo/?page_size=-1', c.key);
  assert.deepEqual((rest.json.api_response as Record<string, unknown>[]).map((m) => m.ingest_id), ids.slice(3));
  const empty = await call(c.origin, 'GET', '/api/v4/ingest/get_message/fifo/', c.key);
  assert.equal(empty.json.api_response, null);
  const emptyList = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/fifo/', c.key);
  assert.deepEqual(emptyList.json.api_response, []);
});

test('without page_size the whole queue is drained in one answer', async (t) => {
  const c = await start(t);
  for (let i = 0; i < 3; i++) ingestIdOf(await ingestJson(c, { plaintext: `drain ${i}`, notification_queue: 'drain' }));
  await until('three messages', async () => (await queueLength(c, c.sim.user, 'drain')) === 3);
  const all = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/drain/', c.key);
  assert.equal((all.json.api_response as unknown[]).length, 3);
  assert.equal(await queueLength(c, c.sim.user, 'drain'), 0);
});

test('queues are per user: the queue of user A is invisible to user B', async (t) => {
  const c = await start(t, { extraUsers: [{ user: 'other-user', apiKey: 'k:other' }] });
  const other = { 'X-USER': 'other-user', 'X-APIKEY': 'k:other' };
  ingestIdOf(await ingestJson(c, { plaintext: 'mine', notification_queue: 'shared-name' }));
  await until('a message', async () => (await queueLength(c, c.sim.user, 'shared-name')) === 1);
  const theirs = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/shared-name/', other);
  assert.deepEqual(theirs.json.api_response, []);
  const mine = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/shared-name/', c.key);
  assert.equal((mine.json.api_response as unknown[]).length, 1);
});

test('the 24 h cleanup deletes a whole queue whose oldest message is too old, newer messages included', async (t) => {
  let now = Date.parse('2026-03-02T09:00:00Z');
  const c = await start(t, { now: () => now });
  ingestIdOf(await ingestJson(c, { plaintext: 'old', notification_queue: 'stale' }));
  ingestIdOf(await ingestJson(c, { plaintext: 'keep me', notification_queue: 'fresh' }));
  await until('two messages', () => c.sim.stats().messagesQueued === 2);
  now += 23 * 3_600_000;
  ingestIdOf(await ingestJson(c, { plaintext: 'newer', notification_queue: 'stale' }));
  await until('three messages', () => c.sim.stats().messagesQueued === 3);
  assert.equal(c.sim.runQueueCleanup(), 0, 'nothing is 24 h old yet');
  now += 1 * 3_600_000 + 1000;
  // "fresh" holds a 24 h old message too: both queues go
  const cleaned = await call(c.origin, 'POST', '/_sim/cleanup');
  assert.deepEqual(cleaned.json, { deleted: 2 });
  const stale = await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/stale/', c.key);
  assert.deepEqual(stale.json.api_response, [], 'the 1 h old message went with its queue');
});

// --- analysis outcomes ----------------------------------------------------------------------

test('cache hit: same file and params give the earlier sid and score, a new ingest_id, no new submission; ignore_cache bypasses', async (t) => {
  const c = await start(t);
  const content = 'MZ cached\nAL-SIM: {"score": 700}\n';
  const first = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'cq', metadata: { n: 1 } }));
  const m1 = await until('first message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/cq/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(m1.score, 700);
  const second = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'cq', metadata: { n: 2 } }));
  const m2 = await until('cache-hit message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/cq/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(m2.ingest_id, second);
  const sub = m2.submission as Record<string, Record<string, unknown>>;
  assert.equal(sub.sid as unknown, first);
  assert.equal(sub.metadata.n, '2');
  assert.equal(sub.metadata.ingest_id, second);
  assert.equal(m2.score, 700);
  assert.equal(c.sim.stats().submissions, 1);
  assert.equal((await call(c.origin, 'GET', `/api/v4/submission/${second}/`, c.key)).status, 404);

  const third = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'cq', params: { ignore_cache: true } }));
  const m3 = await until('fresh message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/cq/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal((m3.submission as Record<string, unknown>).sid, third);
  assert.equal(c.sim.stats().submissions, 2);
});

test('Skipped (scenario or priority 1) has score null and no submission; params.never_drop overrides it', async (t) => {
  const c = await start(t);
  const content = 'skip me';
  const reg = await call(c.origin, 'POST', '/_sim/scenarios', { 'content-type': 'application/json' }, JSON.stringify({ sha256: sha(content), scenario: { failure: 'Skipped' } }));
  assert.equal(reg.status, 201);
  const skippedId = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'sk' }));
  const skipped = await until('skip message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/sk/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.deepEqual([skipped.failure, skipped.score, (skipped.submission as Record<string, unknown>).sid], ['Skipped', null, skippedId]);
  assert.equal((await call(c.origin, 'GET', `/api/v4/submission/${skippedId}/`, c.key)).status, 404);

  const kept = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'sk', params: { never_drop: true } }));
  const analysed = await until('analysed message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/sk/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(analysed.failure, '');
  assert.equal((analysed.submission as Record<string, unknown>).sid, kept);

  ingestIdOf(await ingestJson(c, { plaintext: 'low priority', notification_queue: 'sk', params: { priority: 1 } }));
  const low = await until('priority-1 message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/sk/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(low.failure, 'Skipped');
});

test('failure_times limits a scripted failure to the first N ingests', async (t) => {
  const c = await start(t);
  const content = 'flaky\nAL-SIM: {"failure": "Skipped", "failure_times": 1}\n';
  ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'ft' }));
  ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'ft' }));
  await until('two messages', async () => (await queueLength(c, c.sim.user, 'ft')) === 2);
  const list = (await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/ft/', c.key)).json.api_response as Record<string, unknown>[];
  assert.deepEqual(list.map((m) => m.failure), ['Skipped', '']);
});

test('lose_notification_times: the completion pushes no message but the submission exists', async (t) => {
  const c = await start(t);
  const content = 'quiet\nAL-SIM: {"score": 10, "lose_notification_times": 1}\n';
  const lostId = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'lost', params: { ignore_cache: true } }));
  await until('the lost completion', () => c.sim.stats().messagesLost === 1);
  const sub = await call(c.origin, 'GET', `/api/v4/submission/${lostId}/`, c.key);
  assert.equal((sub.json.api_response as Record<string, unknown>).state, 'completed');
  assert.equal(await queueLength(c, c.sim.user, 'lost'), 0);
  const search = await call(c.origin, 'GET', `/api/v4/search/submission/?query=${encodeURIComponent(`metadata.ingest_id:"${lostId}"`)}&fl=sid`, c.key);
  assert.deepEqual((search.json.api_response as Record<string, unknown>).items, [{ sid: lostId }]);
  const again = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'lost', params: { ignore_cache: true } }));
  const m = await until('the second message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/lost/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(m.ingest_id, again);
});

test('submission is 404 before dispatch, then submitted: is_completed false, summary and tree partial', async (t) => {
  const c = await start(t);
  const content = 'slow\nAL-SIM: {"delay_ms": 60000, "score": 300}\n';
  const id = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'slow' }));
  assert.equal((await call(c.origin, 'GET', `/api/v4/submission/${id}/`, c.key)).status, 404);
  const running = await until('the dispatcher', async () => {
    const r = await call(c.origin, 'GET', `/api/v4/submission/${id}/`, c.key);
    return r.status === 200 ? (r.json.api_response as Record<string, unknown>) : null;
  });
  assert.equal(running.state, 'submitted');
  assert.equal(running.sid, id);
  assert.equal((await call(c.origin, 'GET', `/api/v4/submission/is_completed/${id}/`, c.key)).json.api_response, false);
  assert.equal(((await call(c.origin, 'GET', `/api/v4/submission/summary/${id}/`, c.key)).json.api_response as Record<string, unknown>).partial, true);
  assert.equal(((await call(c.origin, 'GET', `/api/v4/submission/tree/${id}/`, c.key)).json.api_response as Record<string, unknown>).partial, true);
  assert.equal(c.sim.stats().messagesQueued, 0);
});

test('ingest overrides: priority cap 250, forced max_extracted, description prefix, flattened metadata, top-level generate_alert ignored', async (t) => {
  const c = await start(t);
  const id = ingestIdOf(await ingestJson(c, {
    plaintext: 'params', name: 'p.txt', type: 'MASS', generate_alert: true, notification_queue: 'pq',
    metadata: { outer: { inner: 'v' }, n: 5 }, params: { priority: 900, max_extracted: 5, max_supplementary: 1 },
  }));
  const m = await until('message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/pq/', c.key)).json.api_response as Record<string, unknown> | null);
  const s = m.submission as Record<string, Record<string, unknown>>;
  assert.equal(s.params.priority, 250);
  assert.equal(s.params.max_extracted, 100);
  assert.equal(s.params.max_supplementary, 100);
  assert.equal(s.params.generate_alert, false);
  assert.equal(s.params.description, '[MASS] Inspection of file: p.txt');
  assert.equal(s.params.submitter, c.sim.user);
  assert.equal(s.params.type, 'MASS');
  assert.deepEqual(Object.keys(s.metadata).sort(), ['ingest_id', 'n', 'outer.inner', 'ts', 'type']);
  assert.deepEqual([s.metadata.ingest_id, s.metadata['outer.inner'], s.metadata.n, s.metadata.type], [id, 'v', '5', 'MASS']);
  assert.equal(s.sid as unknown, id);
  const unsent = ingestIdOf(await ingestJson(c, { plaintext: 'no priority', notification_queue: 'pq' }));
  const m2 = await until('message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/pq/', c.key)).json.api_response as Record<string, unknown> | null);
  assert.equal(m2.ingest_id, unsent);
  assert.equal((m2.submission as Record<string, Record<string, unknown>>).params.priority, 250, 'the default 1000 is capped too');
});

test('a CaRT upload is analysed as its inner file, named from the CaRT header; downloads default to CaRT', async (t) => {
  const c = await start(t, { rawDownloadAllowed: false });
  const { encodeCart } = await import('../../src/simulators/assemblyline/cart.js');
  const inner = Buffer.from('inner payload');
  const cart = encodeCart(inner, { name: 'inner.txt' });
  const boundary = 'b0undary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n{"notification_queue": "cart"}\r\n--${boundary}\r\nContent-Disposition: form-data; name="bin"; filename="x.cart"\r\n\r\n`),
    cart, Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  ingestIdOf(await call(c.origin, 'POST', '/api/v4/ingest/', { ...c.key, 'content-type': `multipart/form-data; boundary=${boundary}` }, body));
  const m = await until('message', async () => (await call(c.origin, 'GET', '/api/v4/ingest/get_message/cart/', c.key)).json.api_response as Record<string, unknown> | null);
  const file = ((m.submission as Record<string, unknown>).files as Record<string, unknown>[])[0];
  assert.deepEqual(file, { name: 'inner.txt', sha256: sha('inner payload'), size: inner.length });
  const dl = await call(c.origin, 'GET', `/api/v4/file/download/${sha('inner payload')}/`, c.key);
  assert.equal(dl.status, 200);
  assert.deepEqual(decodeCart(dl.raw).content, inner);
  const raw = await call(c.origin, 'GET', `/api/v4/file/download/${sha('inner payload')}/?encoding=raw`, c.key);
  assert.equal(raw.status, 403);
  assert.equal(raw.json.api_error_message, 'RAW file download has been disabled by administrators.');
});

test('a large upload (hashed on the simulator\'s threads), with or without a Content-Length: file info has node:crypto\'s hashes and the entropy of a byte count, its AL-SIM directive applies, the raw download is the file', async (t) => {
  const c = await start(t);
  const { Readable } = await import('node:stream');
  const { randomBytes } = await import('node:crypto');
  const referenceEntropy = (data: Buffer): number => {
    const counts = new Array<number>(256).fill(0);
    for (const b of data) counts[b]++;
    let e = 0;
    for (const n of counts) if (n > 0) e -= (n / data.length) * Math.log2(n / data.length);
    return Math.round(e * 1000) / 1000;
  };
  const boundary = 'lArge-b0undary';
  for (const [i, announced] of [true, false].entries()) {
    // Half zeros, half random: an entropy well inside (0, 8) that a wrong count would miss.
    const file = Buffer.concat([Buffer.alloc(1_500_000, 0), randomBytes(700_001), Buffer.from(`\nAL-SIM: {"score": ${900 + i}}\n`), randomBytes(900_000)]);
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n{"notification_queue": "large${i}"}\r\n--${boundary}\r\nContent-Disposition: form-data; name="bin"; filename="large.bin"\r\n\r\n`),
      file, Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const headers = { ...c.key, 'content-type': `multipart/form-data; boundary=${boundary}` };
    // A Readable body goes out chunked (no Content-Length).
    const res = await request(`${c.origin}/api/v4/ingest/`, { method: 'POST', headers, body: announced ? body : Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]) });
    const answer = JSON.parse(Buffer.from(await res.body.arrayBuffer()).toString('utf8')) as { api_response: { ingest_id: string } };
    assert.equal(res.statusCode, 200);
    assert.ok(answer.api_response.ingest_id);
    const sha256 = createHash('sha256').update(file).digest('hex');
    const info = (await call(c.origin, 'GET', `/api/v4/file/info/${sha256}/`, c.key)).json.api_response as Record<string, unknown>;
    assert.equal(info.md5, createHash('md5').update(file).digest('hex'));
    assert.equal(info.sha1, createHash('sha1').update(file).digest('hex'));
    assert.equal(info.sha256, sha256);
    assert.equal(info.size, file.length);
    assert.equal(info.entropy, referenceEntropy(file));
    const m = await until('message', async () => (await call(c.origin, 'GET', `/api/v4/ingest/get_message/large${i}/`, c.key)).json.api_response as Record<string, unknown> | null);
    assert.equal(m.score, 900 + i);
    const raw = await call(c.origin, 'GET', `/api/v4/file/download/${sha256}/?encoding=raw`, c.key);
    assert.equal(raw.status, 200);
    assert.ok(raw.raw.equals(file));
  }
});

// --- auth and quota -------------------------------------------------------------------------

test('session login: user-agent change is refused, XSRF is enforced for password sessions only', async (t) => {
  const c = await start(t, { password: 'pw' });
  const ua = { 'user-agent': 'bridge-test/1' };
  const login = async (body: Record<string, unknown>): Promise<{ cookie: string; xsrf: string; answer: Answer }> => {
    const answer = await call(c.origin, 'POST', '/api/v4/auth/login/', { ...ua, 'content-type': 'application/json' }, JSON.stringify(body));
    const cookies = (answer.headers['set-cookie'] as string[]).map((x) => x.split(';')[0]);
    const xsrf = cookies.find((x) => x.startsWith('XSRF-TOKEN='))?.slice(11) ?? '';
    return { cookie: cookies.join('; '), xsrf, answer };
  };
  const pw = await login({ user: c.sim.user, password: 'pw' });
  assert.equal((pw.answer.json.api_response as Record<string, unknown>).roles_limit, null);
  assert.equal((await call(c.origin, 'GET', '/api/', { ...ua, cookie: pw.cookie, 'x-xsrf-token': pw.xsrf })).status, 200);
  const noXsrf = await call(c.origin, 'GET', '/api/', { ...ua, cookie: pw.cookie });
  assert.equal(noXsrf.status, 403);
  assert.match(noXsrf.json.api_error_message, /Invalid XSRF token/);
  const otherUa = await call(c.origin, 'GET', '/api/', { 'user-agent': 'someone-else', cookie: pw.cookie, 'x-xsrf-token': pw.xsrf });
  assert.equal(otherUa.status, 401);
  assert.equal(otherUa.json.api_error_message, 'Invalid user agent for this session');

  const key = await login({ user: c.sim.user, apikey: c.sim.apiKey });
  assert.ok(Array.isArray((key.answer.json.api_response as Record<string, unknown>).roles_limit));
  assert.equal((await call(c.origin, 'GET', '/api/', { ...ua, cookie: key.cookie })).status, 200, 'API-key sessions skip the XSRF check');

  await call(c.origin, 'POST', '/_sim/sessions/purge');
  const purged = await call(c.origin, 'GET', '/api/', { ...ua, cookie: key.cookie });
  assert.equal(purged.json.api_error_message, 'Session expired');
  const wrong = await call(c.origin, 'POST', '/api/v4/auth/login/', { 'content-type': 'application/json' }, JSON.stringify({ user: c.sim.user }));
  assert.deepEqual([wrong.status, wrong.json.api_response, wrong.json.api_error_message], [401, '', 'Not enough information to proceed with authentication']);
});

test('one API-key header alone falls back to cookie auth: 401 Session not found', async (t) => {
  const c = await start(t);
  for (const headers of [{ 'X-USER': c.sim.user }, { 'X-APIKEY': c.sim.apiKey }] as Record<string, string>[]) {
    const r = await call(c.origin, 'GET', '/api/', headers);
    assert.equal(r.status, 401);
    assert.equal(r.json.api_error_message, 'Session not found');
  }
  const v3 = await call(c.origin, 'GET', '/api/v3/auth/init/');
  assert.deepEqual([v3.status, v3.json.api_error_message], [404, 'Api does not exist (/api/v3/auth/init/)']);
});

test('more than N concurrent calls of one user get 503 (quota), other users are unaffected', async (t) => {
  const c = await start(t, { concurrentQuota: 2, extraUsers: [{ user: 'u2', apiKey: 'k:2' }] });
  await call(c.origin, 'POST', '/_sim/faults', { 'content-type': 'application/json' }, JSON.stringify({ path_prefix: '/api/v4/search/', delay_ms: 300, times: 2 }));
  const slow = [1, 2].map(() => call(c.origin, 'GET', '/api/v4/search/submission/?query=*', c.key));
  const refused = await until('a 503', async () => {
    const r = await call(c.origin, 'GET', '/api/', c.key);
    return r.status === 503 ? r : null;
  });
  assert.equal(refused.json.api_error_message, "You've exceeded your maximum concurrent API calls quota of 2");
  assert.equal(refused.json.api_response, '');
  const otherUser = await call(c.origin, 'GET', '/api/', { 'X-USER': 'u2', 'X-APIKEY': 'k:2' });
  assert.equal(otherUser.status, 200);
  for (const r of await Promise.all(slow)) assert.equal(r.status, 200);
  assert.equal((await call(c.origin, 'GET', '/api/', c.key)).status, 200, 'quota is released when calls finish');
});

test('routing: sorted-key envelopes, 308 to the slash form, 405 is not an envelope, 404 names the path', async (t) => {
  const c = await start(t);
  const r = await call(c.origin, 'GET', '/api/', c.key);
  assert.equal(r.raw.toString('utf8'), '{"api_error_message":"","api_response":["v4"],"api_server_version":"4.7.4.stable6","api_status_code":200}');
  const redirect = await call(c.origin, 'GET', '/api/v4/search/submission?query=*', c.key);
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.location, '/api/v4/search/submission/?query=*');
  const wrongMethod = await call(c.origin, 'GET', '/api/v4/ingest/', c.key);
  assert.equal(wrongMethod.status, 405);
  assert.match(String(wrongMethod.headers['content-type']), /text\/html/);
  const missing = await call(c.origin, 'GET', '/api/v4/nope/', c.key);
  assert.deepEqual([missing.status, missing.json.api_error_message, missing.json.api_response], [404, 'Api does not exist (/api/v4/nope/)', '']);
  const noQuery = await call(c.origin, 'GET', '/api/v4/search/submission/', c.key);
  assert.deepEqual([noQuery.status, noQuery.json.api_error_message], [400, 'There was no search query.']);
});

test('a duplicate ingested while the first is still in flight is parked and notified with the same sid', async (t) => {
  const c = await start(t, { analysisDelayMs: 300 });
  const content = 'MZ parked\nAL-SIM: {"score": 500}\n';
  const first = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'pq', metadata: { n: 1 } }));
  const second = ingestIdOf(await ingestJson(c, { plaintext: content, notification_queue: 'pq', metadata: { n: 2 } }));
  const messages = await until('both messages', async () => {
    const list = (await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/pq/', c.key)).json.api_response as Array<Record<string, unknown>>;
    return list.length ? list : null;
  });
  const all = [...messages];
  if (all.length < 2) {
    all.push(...(await until('second message', async () => {
      const list = (await call(c.origin, 'GET', '/api/v4/ingest/get_message_list/pq/', c.key)).json.api_response as Array<Record<string, unknown>>;
      return list.length ? list : null;
    })));
  }
  assert.deepEqual(all.map((m) => m.ingest_id).sort(), [first, second].sort());
  for (const m of all) {
    assert.equal((m.submission as Record<string, unknown>).sid, first);
    assert.equal(m.score, 500);
  }
  assert.equal(c.sim.stats().submissions, 1);
});
