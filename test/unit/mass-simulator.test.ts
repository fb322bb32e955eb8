import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createMassSimulator, type MassSimulator, type MassSimulatorOptions } from '../../src/simulators/mass/index.js';
import { silentLogger } from '../../src/log.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOST = 'mass.test:8080';
const API = `http://${HOST}/api/`;

interface Harness {
  sim: MassSimulator;
  clock: { ms: number };
  call(method: string, path: string, opts?: { key?: string | null; json?: unknown; multipart?: Part[]; headers?: Record<string, string> }): Promise<{ status: number; type: string; body: any; raw: Buffer }>;
}

interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  body: string | Buffer;
}

function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = 'unit-boundary-1234';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.contentType) head += `Content-Type: ${p.contentType}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`), Buffer.from(p.body), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

async function harness(t: TestContext, opts: MassSimulatorOptions = {}): Promise<Harness> {
  const clock = { ms: T0 };
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, now: () => clock.ms, logger: silentLogger(), ...opts });
  t.after(() => sim.close());
  return {
    sim,
    clock,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { host: HOST, ...o.headers };
      const key = o.key === undefined ? sim.instance.key : o.key;
      if (key !== null) headers.authorization = `APIKEY ${key}`;
      let payload: Buffer | string | undefined;
      if (o.json !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(o.json);
      } else if (o.multipart) {
        const m = multipart(o.multipart);
        headers['content-type'] = m.contentType;
        payload = m.body;
      }
      const res = await sim.app.inject({ method: method as 'GET', url: path, headers, payload });
      const type = String(res.headers['content-type'] ?? '');
      const raw = res.rawPayload;
      const body = type.startsWith('application/json') && raw.length > 0 ? (() => { try { return JSON.parse(raw.toString()); } catch { return raw.toString(); } })() : raw.toString();
      return { status: res.statusCode, type, body, raw };
    },
  };
}

async function uploadFile(h: Harness, key: string, name: string, content: string | Buffer, meta: Record<string, unknown> = { tlp_level: 0, tags: [] }) {
  return h.call('POST', '/api/sample/submit_file/', {
    key,
    multipart: [
      { name: 'metadata', body: JSON.stringify(meta) },
      { name: 'file', filename: name, contentType: 'binary/octet-stream', body: content },
    ],
  });
}

const poll = (h: Harness, uuid = h.sim.instance.uuid, key = h.sim.instance.key) =>
  h.call('GET', `/api/analysis_system_instance/${uuid}/scheduled_analyses/`, { key });

test('auth: every failure is a 403 JSON, never 401', async (t) => {
  const h = await harness(t);
  const path = `/api/analysis_system_instance/${h.sim.instance.uuid}/scheduled_analyses/`;
  const variants: Record<string, string>[] = [{}, { authorization: 'APIKEY nope' }, { authorization: `Bearer ${h.sim.instance.key}` }, { authorization: `apikey ${h.sim.instance.key}` }];
  for (const headers of variants) {
    const res = await h.call('GET', path, { key: null, headers });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, { error: 'You do not have access to this resource.' });
  }
  assert.equal((await h.call('GET', path, { key: h.sim.userKey })).status, 403, 'a normal user may not poll');
  assert.equal((await h.call('POST', '/api/analysis_system/', { json: { identifier_name: 'x1x', verbose_name: 'x' } })).status, 403, 'an instance may not create systems');
});

test('first poll catch-22: work waits until the instance has polled and the scheduler ran again', async (t) => {
  const h = await harness(t);
  const up = await uploadFile(h, h.sim.userKey, 'doc.pdf', '%PDF-1.7\nhello');
  assert.equal(up.status, 201);
  assert.deepEqual(up.body.dispatched_to, [`${API}analysis_system/assemblyline/`]);
  assert.equal(h.sim.runScheduler(), 0, 'the instance never polled, so it is offline');
  assert.deepEqual((await poll(h)).body, { results: [] });
  const instance = await h.call('GET', `/api/analysis_system_instance/${h.sim.instance.uuid}/`);
  assert.equal(instance.body.is_online, true);
  assert.equal(instance.body.last_seen, '2030-01-01T00:00:00+00:00');
  assert.equal(h.sim.runScheduler(), 1);
  const second = await poll(h);
  assert.equal(second.body.results.length, 1);
  assert.equal(second.body.results[0].sample, up.body.url);
  assert.equal(second.body.results[0].priority, 0);
  assert.deepEqual((await poll(h)).body, second.body, 'no lease: the item comes back on every poll');
});

test('scheduler online window: an instance silent for 10 minutes gets nothing until it polls again', async (t) => {
  const h = await harness(t);
  await poll(h);
  h.clock.ms += 9 * 60_000 + 59_000;
  await uploadFile(h, h.sim.userKey, 'a.bin', 'first file');
  assert.equal(h.sim.runScheduler(), 1, '9:59 after the poll the instance is still online');
  h.clock.ms += 1_000; // now exactly 10 minutes since the poll
  await uploadFile(h, h.sim.userKey, 'b.bin', 'second file');
  assert.equal(h.sim.runScheduler(), 0, '10 minutes of silence: offline');
  assert.equal((await h.call('GET', `/api/analysis_system_instance/${h.sim.instance.uuid}/`)).body.is_online, false);
  assert.equal((await poll(h)).body.results.length, 1, 'the poll brings it back online');
  assert.equal(h.sim.runScheduler(), 1, 'the waiting request was not lost');
});

test('scheduler skips instances with more than 100 pending and prefers the least loaded', async (t) => {
  const h = await harness(t);
  const admin = h.sim.adminKey;
  const second = await h.call('POST', '/api/analysis_system_instance/', { key: admin, json: { analysis_system: `${API}analysis_system/assemblyline/` } });
  assert.equal(second.status, 201);
  const secondKey = h.sim.instanceKeyFor(second.body.uuid)!;
  await poll(h);
  await poll(h, second.body.uuid, secondKey);
  // 101 items straight onto instance 1: it is then above the threshold
  const seed = await uploadFile(h, admin, 'seed.bin', 'seed');
  h.sim.runScheduler();
  const firstCount = async () => (await h.call('GET', `/api/analysis_system_instance/${h.sim.instance.uuid}/`)).body.scheduled_analyses_count as number;
  const secondCount = async () => (await h.call('GET', `/api/analysis_system_instance/${second.body.uuid}/`)).body.scheduled_analyses_count as number;
  while ((await firstCount()) < 101) {
    const res = await h.call('POST', '/api/scheduled_analysis/', { key: admin, json: { analysis_system_instance: `${API}analysis_system_instance/${h.sim.instance.uuid}/`, sample: seed.body.url } });
    assert.equal(res.status, 201);
  }
  const before = await secondCount();
  for (let i = 0; i < 3; i++) await uploadFile(h, admin, `f${i}.bin`, `file number ${i}`);
  assert.equal(h.sim.runScheduler(), 3);
  assert.equal(await firstCount(), 101, 'more than 100 pending: skipped');
  assert.equal(await secondCount(), before + 3);
  // take instance 2 offline: now nothing can be placed and the requests wait
  h.clock.ms += 10 * 60_000;
  await poll(h);
  await uploadFile(h, admin, 'late.bin', 'late');
  assert.equal(h.sim.runScheduler(), 0, 'the only online instance is above the threshold');
  const requests = await h.call('GET', '/api/analysis_request/', { key: admin });
  assert.equal(requests.body.results.length, 1);
});

test('scheduler picks the online instance with the fewest pending items', async (t) => {
  const h = await harness(t);
  const admin = h.sim.adminKey;
  const second = await h.call('POST', '/api/analysis_system_instance/', { key: admin, json: { analysis_system: `${API}analysis_system/assemblyline/` } });
  const secondKey = h.sim.instanceKeyFor(second.body.uuid)!;
  await poll(h);
  await poll(h, second.body.uuid, secondKey);
  const seed = await uploadFile(h, admin, 'seed.bin', 'seed');
  assert.equal(h.sim.runScheduler(), 1);
  // whichever got the seed now has 1; give it a second one directly
  const loaded = (await poll(h)).body.results.length === 1 ? h.sim.instance.uuid : second.body.uuid;
  await h.call('POST', '/api/scheduled_analysis/', { key: admin, json: { analysis_system_instance: `${API}analysis_system_instance/${loaded}/`, sample: seed.body.url } });
  const other = loaded === h.sim.instance.uuid ? { uuid: second.body.uuid, key: secondKey } : h.sim.instance;
  await uploadFile(h, admin, 'n1.bin', 'n1');
  await uploadFile(h, admin, 'n2.bin', 'n2');
  assert.equal(h.sim.runScheduler(), 2);
  assert.equal((await poll(h, other.uuid, other.key)).body.results.length, 2, 'both went to the idle instance');
});

test('echo-back: a file the instance submits is dispatched to its own system; duplicates are not', async (t) => {
  const h = await harness(t);
  await poll(h);
  const mz = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)]);
  const dropped = await uploadFile(h, h.sim.instance.key, 'dropped.exe', mz, { tlp_level: 0, tags: ['al:extracted'] });
  assert.equal(dropped.status, 201);
  assert.equal(dropped.body._cls, 'Sample.FileSample.ExecutableBinarySample');
  assert.match(dropped.body.magic_string, /^PE32 executable/);
  for (const tag of ['al:extracted', 'extension:exe', 'sample-type:filesample', 'sample-type:executablebinarysample', 'filetype:pe-32', 'filetype:windows-binary']) {
    assert.ok(dropped.body.tags.includes(tag), tag);
  }
  assert.deepEqual(dropped.body.strings, []);
  assert.equal(h.sim.runScheduler(), 1);
  const items = (await poll(h)).body.results;
  assert.equal(items.length, 1);
  assert.equal(items[0].sample, dropped.body.url);
  const again = await uploadFile(h, h.sim.instance.key, 'copy.exe', mz, { tlp_level: 0, tags: ['al:again'] });
  assert.equal(again.status, 201);
  assert.equal(again.body.id, dropped.body.id, 'dedup returns the existing sample');
  assert.deepEqual(again.body.file_names, ['dropped.exe']);
  assert.ok(again.body.tags.includes('al:again') && again.body.tags.includes('al:extracted'));
  assert.equal(h.sim.runScheduler(), 0, 'a duplicate is not dispatched again');
});

test('samples: hashes, entropy, ssdeep shape, magic per type and server tags', async (t) => {
  const h = await harness(t);
  const pdf = await uploadFile(h, h.sim.userKey, 'Invoice.PDF', '%PDF-1.4\n%%EOF\n', { tlp_level: 0, tags: ['origin:upload'] });
  assert.equal(pdf.body._cls, 'Sample.FileSample');
  assert.equal(pdf.body.magic_string, 'PDF document, version 1.4');
  assert.equal(pdf.body.mime_type, 'application/pdf');
  assert.match(pdf.body.md5sum, /^[0-9a-f]{32}$/);
  assert.match(pdf.body.sha1sum, /^[0-9a-f]{40}$/);
  assert.match(pdf.body.sha256sum, /^[0-9a-f]{64}$/);
  assert.match(pdf.body.sha512sum, /^[0-9a-f]{128}$/);
  assert.match(pdf.body.ssdeep_hash, /^\d+:[A-Za-z0-9+/]*:[A-Za-z0-9+/]*$/);
  assert.ok(pdf.body.shannon_entropy > 0 && pdf.body.shannon_entropy <= 8);
  assert.match(pdf.body.id, /^[0-9a-f]{24}$/);
  assert.deepEqual(new Set(pdf.body.tags), new Set(['extension:pdf', 'mime:application/pdf', 'filetype:pdf', 'sample-type:filesample', 'origin:upload']));
  const text = await uploadFile(h, h.sim.userKey, 'notes', 'just some text\n');
  assert.equal(text.body.mime_type, 'text/plain');
  assert.deepEqual(new Set(text.body.tags), new Set(['mime:text/plain', 'sample-type:filesample']));
  const data = await uploadFile(h, h.sim.userKey, 'x.bin', Buffer.from([0, 1, 2, 3, 250]));
  assert.equal(data.body.magic_string, 'data');
  const ip = await h.call('POST', '/api/sample/submit_ip/', { json: { ip_address: '203.0.113.7', tlp_level: 0, tags: [] } });
  assert.equal(ip.body._cls, 'Sample.IPSample');
  assert.deepEqual(ip.body.tags, ['sample-type:ipsample']);
  assert.deepEqual(ip.body.dispatched_to, [], 'the default filter only takes file samples');
  const download = await h.call('GET', `/api/sample/${ip.body.id}/download/`);
  assert.equal(download.status, 400);
  const bytes = await h.call('GET', `/api/sample/${pdf.body.id}/download/`);
  assert.equal(bytes.type, 'application/octet-stream');
  assert.equal(bytes.raw.toString(), '%PDF-1.4\n%%EOF\n');
  assert.equal((await h.call('POST', '/api/sample/submit_ip/', { json: { ip_address: '198.51.100.1', tags: [] } })).status, 500, 'tlp_level is required');
  const badTag = await uploadFile(h, h.sim.userKey, 'y.bin', 'y', { tlp_level: 0, tags: ['bad tag'] });
  assert.equal(badTag.status, 500);
  assert.match(badTag.type, /^text\/html/);
});

test('TLP: an instance gets 404 for a TLP 2 sample in its own queue but can close the item', async (t) => {
  const h = await harness(t);
  await poll(h);
  const amber = await uploadFile(h, h.sim.adminKey, 'amber.bin', 'amber secret', { tlp_level: 2, tags: [] });
  assert.equal(h.sim.runScheduler(), 1, 'the scheduler ignores TLP');
  const [item] = (await poll(h)).body.results;
  assert.equal(item.sample, amber.body.url);
  assert.deepEqual((await h.call('GET', `/api/sample/${amber.body.id}/`)).body, { error: `No object with key '${amber.body.id}' found` });
  assert.equal((await h.call('GET', `/api/sample/${amber.body.id}/download/`)).status, 404);
  assert.equal((await h.call('GET', '/api/sample/')).body.results.length, 0, 'left out of lists');
  assert.equal((await h.call('GET', `/api/sample/${amber.body.id}/`, { key: h.sim.adminKey })).status, 200);
  const closed = await h.call('POST', `/api/scheduled_analysis/${item.id}/submit_report/`, {
    multipart: [{ name: 'metadata', body: JSON.stringify({ error_message: 'TLP above 0', status: 1 }) }],
  });
  assert.equal(closed.status, 201);
  assert.equal(closed.body.status, 0, 'status is ignored');
  assert.equal(closed.body.error_message, 'TLP above 0');
  // own samples stay visible whatever their TLP, and a duplicate raises TLP 0 for good
  const own = await uploadFile(h, h.sim.instance.key, 'own.bin', 'own', { tlp_level: 3, tags: [] });
  assert.equal((await h.call('GET', `/api/sample/${own.body.id}/`)).status, 200);
  const white = await uploadFile(h, h.sim.userKey, 'w.bin', 'white', { tlp_level: 0, tags: [] });
  const raised = await uploadFile(h, h.sim.userKey, 'w2.bin', 'white', { tlp_level: 2, tags: [] });
  assert.equal(raised.body.id, white.body.id);
  assert.equal(raised.body.tlp_level, 2);
  assert.equal((await h.call('GET', `/api/sample/${white.body.id}/`)).status, 404);
});

test('report: multipart rules, 500 after save for a bad tag, 404 once consumed', async (t) => {
  const h = await harness(t);
  await poll(h);
  const sample = await uploadFile(h, h.sim.userKey, 'r.bin', 'report me');
  h.sim.runScheduler();
  const [item] = (await poll(h)).body.results;
  const submit = (parts: Part[]) => h.call('POST', `/api/scheduled_analysis/${item.id}/submit_report/`, { multipart: parts });
  assert.deepEqual((await submit([{ name: 'metadata', filename: 'metadata', contentType: 'application/json', body: '{}' }])).body, { error: 'JSON metadata missing in POST request.' });
  assert.deepEqual((await submit([{ name: 'metadata', body: '{"analysis_date": "2030-01-01"}' }])).body, { analysis_date: ['Not a valid datetime.'] });
  assert.equal((await submit([{ name: 'metadata', body: '{"tags": [' }])).status, 500);
  // 500 after save: the report exists, the sample's tags are unchanged, the item is still pending
  const broken = await submit([{ name: 'metadata', body: JSON.stringify({ tags: ['has space'] }) }]);
  assert.equal(broken.status, 500);
  const reports = await h.call('GET', `/api/sample/${sample.body.id}/reports/`);
  assert.equal(reports.body.results.length, 1);
  assert.deepEqual(reports.body.results[0].tags, ['has space']);
  assert.ok(!(await h.call('GET', `/api/sample/${sample.body.id}/`)).body.tags.includes('has space'));
  assert.equal((await poll(h)).body.results.length, 1);
  const ok = await submit([
    { name: 'al_result', filename: 'r.json', contentType: 'application/json; charset=utf-8', body: '{"x": 1}' },
    { name: 'metadata', body: JSON.stringify({ analysis_date: '2030-01-01T01:02:03.456789+02:00', tags: ['al:score:5'], additional_metadata: { k: 1 } }) },
    { name: 'ignored', contentType: 'text/plain', body: 'form field' },
    { name: 'dup', filename: 'a.txt', contentType: 'text/plain', body: 'first' },
    { name: 'dup', filename: 'b.txt', contentType: 'text/plain', body: 'second' },
  ]);
  assert.equal(ok.status, 201);
  assert.equal(ok.body.analysis_date, '2029-12-31T23:02:03+00:00');
  assert.deepEqual(Object.keys(ok.body.json_report_objects), ['al_result']);
  assert.deepEqual(Object.keys(ok.body.raw_report_objects), ['dup']);
  const dup = await h.call('GET', new URL(ok.body.raw_report_objects.dup).pathname);
  assert.equal(dup.type, 'binary/octet-stream');
  assert.equal(dup.raw.toString(), 'first');
  assert.ok((await h.call('GET', `/api/sample/${sample.body.id}/`)).body.tags.includes('al:score:5'), 'report tags are merged into the sample');
  assert.equal((await submit([{ name: 'metadata', body: '{}' }])).status, 404, 'consumed');
  assert.deepEqual((await poll(h)).body, { results: [] });
});

test('pagination: filters dropped from next, generic lists lose a URL next, HTML 404 past the end, 500 for page=abc', async (t) => {
  const h = await harness(t, { objectsPerPage: 2 });
  for (let i = 0; i < 3; i++) await uploadFile(h, h.sim.userKey, `p${i}.txt`, `page item ${i}`);
  const first = await h.call('GET', '/api/sample/?_cls=Sample.FileSample');
  assert.equal(first.body.next, `${API}sample/?page=2`);
  assert.equal(first.body.previous, null);
  const last = await h.call('GET', '/api/sample/?page=2');
  assert.equal(last.body.next, null);
  assert.equal(last.body.previous, `${API}sample/?page=1`);
  const past = await h.call('GET', '/api/sample/?page=3');
  assert.equal(past.status, 404);
  assert.match(past.type, /^text\/html/);
  assert.equal((await h.call('GET', '/api/sample/?page=abc')).status, 500);
  assert.equal((await h.call('GET', '/api/sample/?first_seen__gte=2030-01-01T00:00:00 00:00')).status, 500, 'a raw + decodes to a space');
  assert.equal((await h.call('GET', '/api/sample/?first_seen__gte=2030-01-01T00:00:00%2B00:00')).body.results.length, 2);
  const requests = await h.call('GET', '/api/analysis_request/', { key: h.sim.adminKey });
  assert.equal(requests.status, 200);
  assert.ok(!('next' in requests.body), 'the generic list schema drops a URL-valued next');
  assert.equal(requests.body.previous, null);
  const page2 = await h.call('GET', '/api/analysis_request/?page=2', { key: h.sim.adminKey });
  assert.equal(page2.body.next, null);
  assert.ok(!('previous' in page2.body));
  assert.deepEqual(Object.keys((await h.call('GET', '/api/sample/')).body), ['next', 'previous', 'results'], 'sorted keys');
});

test('relations: own-origin URL rule, trailing slash added, every POST a new relation', async (t) => {
  const h = await harness(t);
  const a = await uploadFile(h, h.sim.userKey, 'a.bin', 'aaa');
  const ip = await h.call('POST', '/api/sample/submit_ip/', { json: { ip_address: '203.0.113.9', tlp_level: 0 } });
  const post = (body: unknown, key?: string) => h.call('POST', '/api/sample_relation/submit_contacted_by/', { json: body, key });
  const r1 = await post({ sample: ip.body.url.replace(/\/$/, ''), other: a.body.url });
  assert.equal(r1.status, 201);
  assert.equal(r1.body._cls, 'SampleRelation.ContactedBySampleRelation');
  assert.equal(r1.body.sample, ip.body.url);
  const r2 = await post({ sample: ip.body.url, other: a.body.url });
  assert.notEqual(r2.body.id, r1.body.id);
  assert.equal((await post({ sample: ip.body.url.replace(HOST, 'other.test:8080'), other: a.body.url })).status, 500);
  assert.equal((await post({ sample: ip.body.url })).status, 500);
  assert.equal((await post({ sample: ip.body.url, other: a.body.url }, h.sim.userKey)).status, 403);
  const ssdeep = await h.call('POST', '/api/sample_relation/submit_ssdeep/', { json: { sample: a.body.url, other: a.body.url, match: 88.5 } });
  assert.equal(ssdeep.body.match, 88.5);
  const graph = await h.call('GET', `/api/sample/${a.body.id}/relation_graph/`);
  assert.equal(graph.body.results.length, 3);
});

test('/_sim/ control endpoints: samples, scheduler, state, faults, clock', async (t) => {
  const h = await harness(t, { now: undefined });
  const created = await h.sim.app.inject({ method: 'POST', url: '/_sim/samples', headers: { host: HOST }, payload: { file_name: 'x.txt', content_text: 'hello sim' } });
  assert.equal(created.statusCode, 201);
  assert.equal(created.json().file_names[0], 'x.txt');
  await poll(h);
  const run = await h.sim.app.inject({ method: 'POST', url: '/_sim/scheduler/run' });
  assert.deepEqual(run.json(), { scheduled: 1 });
  const state = await h.sim.app.inject({ method: 'GET', url: '/_sim/state' });
  assert.equal(state.json().samples, 1);
  assert.equal(state.json().scheduled_pending, 1);
  await h.sim.app.inject({ method: 'POST', url: '/_sim/faults', payload: { path_prefix: '/api/analysis_system_instance/', status: 503, times: 1 } });
  const failed = await poll(h);
  assert.equal(failed.status, 503);
  assert.equal((await poll(h)).status, 200, 'the fault applied once');
  await h.sim.app.inject({ method: 'POST', url: '/_sim/clock', payload: { advance_ms: 11 * 60_000 } });
  assert.equal((await h.call('GET', `/api/analysis_system_instance/${h.sim.instance.uuid}/`)).body.is_online, false);
});

test('listen binds 127.0.0.1 and close is safe twice', async () => {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger() });
  const origin = await sim.listen();
  assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${origin}/api/analysis_system/assemblyline/`, { headers: { authorization: `APIKEY ${sim.instance.key}` } });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { url: string }).url, `${origin}/api/analysis_system/assemblyline/`);
  await sim.close();
  await sim.close();
});

test('scheduleThreshold: an instance gets work only while it has at most that many pending; a consumed item makes room', async (t) => {
  const h = await harness(t, { scheduleThreshold: 3 });
  const admin = h.sim.adminKey;
  await poll(h);
  for (let i = 0; i < 10; i++) await uploadFile(h, admin, `t${i}.bin`, `threshold file ${i}`);
  // 0, 1, 2 and 3 pending are "at most 3": the fourth item takes the instance to 4, above the threshold.
  assert.equal(h.sim.runScheduler(), 4);
  assert.equal(h.sim.runScheduler(), 0, 'above the threshold: nothing more');
  const count = async () => (await h.call('GET', `/api/analysis_system_instance/${h.sim.instance.uuid}/`)).body.scheduled_analyses_count as number;
  assert.equal(await count(), 4);
  const items = (await poll(h)).body.results as Array<{ id: string }>;
  assert.equal(items.length, 4);
  for (const item of items.slice(0, 2)) assert.equal((await h.call('DELETE', `/api/scheduled_analysis/${item.id}/`, { key: admin })).status, 204);
  assert.equal(await count(), 2);
  assert.equal(h.sim.runScheduler(), 2, '2 pending: room for two more (3, then 4)');
  assert.equal((await poll(h)).body.results.length, 4);
});
