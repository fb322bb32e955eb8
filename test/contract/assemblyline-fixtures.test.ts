import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createAssemblylineSimulator, decodeCart, encodeCart, type AssemblylineSimulator, type Scenario } from '../../src/simulators/assemblyline/index.js';
import { until } from '../helpers/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/assemblyline-fixtures/', import.meta.url));
const ROOT = '3f6492021893dd0b94e38a54824c48fa2824cbdcfb923d9e8382e6342f01804f';
const FIXTURE_SID = '4Hc0QBr3BzVoArs3KbVHIW';

interface Exchange {
  note: string;
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body_kind: 'empty' | 'json' | 'multipart';
    body: unknown;
    raw_body_latin1?: string;
  };
  response_from_stub: { status: number; content_type: string; body_fixture?: string; set_cookie?: string[]; headers?: [string, string][] };
}

function fixture(rel: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, rel), 'utf8')) as Record<string, unknown>;
}

/** The CAPE/Extract/ConfigExtractor scenario the constructed fixtures describe. */
const FIXTURE_SCENARIO: Scenario = {
  score: 1530,
  attack: ['T1055', 'T1071'],
  iocs: [
    { type: 'network.dynamic.domain', value: 'cdn-update.example.net' },
    { type: 'network.dynamic.ip', value: '203.0.113.45' },
    { type: 'network.dynamic.ip', value: '198.51.100.23' },
    { type: 'network.dynamic.uri', value: 'http://cdn-update.example.net/gate.php' },
    { type: 'network.dynamic.domain', value: 'settings-win.data.microsoft.com', safelisted: true },
    { type: 'network.static.domain', value: 'panel.example.org' },
    { type: 'network.static.uri', value: 'http://panel.example.org/admin/login.php' },
    { type: 'network.static.ip', value: '198.51.100.77' },
    { type: 'network.static.domain', value: 'schemas.microsoft.com', safelisted: true },
  ],
  extracted: [
    {
      name: 'stage2.dll', relation: 'EXTRACTED',
      scenario: { score: 2000, families: ['AgentTesla'], attack: ['T1555'], iocs: [{ type: 'network.static.uri', value: 'https://mail-sync.example.com/api/v2/collect' }] },
    },
    { name: 'wupdsvc.exe', relation: 'DYNAMIC', scenario: { service_errors: [{ service: 'MetaDefender', status: 'FAIL_NONRECOVERABLE', message: 'TASK PRE-EMPTED' }] } },
  ],
  supplementary: [{ name: '4711_cape_report.zip' }],
};

// --- shape comparison -------------------------------------------------------------------------

/** Objects keyed by hashes, keys, tag types or user data: compare the shapes of their values, not their keys. */
const MAP_LIKE = new Set(['results', 'errors', 'file_tree', 'file_infos', 'children', 'map', 'ioc', 'attribution', 'behavior', 'heuristics',
  'attack_matrix', 'heuristic_sections', 'heuristic_name_map', 'metadata', 'tree']);
/** Free-form content (section bodies differ per section). */
const FREE = new Set(['body', 'body_config', 'service_spec']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function shapeProblems(actual: unknown, expected: unknown, path: string, key = '', subset = false): string[] {
  if (actual === null || expected === null) return [];
  if (kind(actual) !== kind(expected)) return [`${path}: ${kind(actual)} where the fixture has ${kind(expected)}`];
  if (FREE.has(key)) return [];
  if (Array.isArray(actual)) {
    const exp = expected as unknown[];
    if (actual.length === 0 || exp.length === 0) return [];
    const problems: string[] = [];
    actual.forEach((a, i) => {
      let best: string[] | null = null;
      for (const e of exp) {
        const p = shapeProblems(a, e, `${path}[${i}]`, key, subset || key === 'items');
        if (best === null || p.length < best.length) best = p;
        if (p.length === 0) break;
      }
      problems.push(...(best ?? []));
    });
    return problems;
  }
  if (typeof actual === 'object') {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    if (MAP_LIKE.has(key)) {
      const values = Object.values(e);
      if (values.length === 0) return [];
      return Object.entries(a).flatMap(([k, v]) => {
        let best: string[] | null = null;
        for (const ev of values) {
          const p = shapeProblems(v, ev, `${path}.${k}`, '');
          if (best === null || p.length < best.length) best = p;
          if (p.length === 0) break;
        }
        return best ?? [];
      });
    }
    const problems: string[] = [];
    for (const k of Object.keys(a)) if (!(k in e)) problems.push(`${path}.${k}: not in the fixture`);
    if (!subset) for (const k of Object.keys(e)) if (!(k in a)) problems.push(`${path}.${k}: missing`);
    for (const k of Object.keys(a)) if (k in e) problems.push(...shapeProblems(a[k], e[k], `${path}.${k}`, k));
    return problems;
  }
  return [];
}

function assertSameShape(actual: unknown, expected: unknown, label: string): void {
  const problems = shapeProblems(actual, expected, label);
  assert.deepEqual(problems, [], `${label} differs in shape from the fixture:\n${problems.slice(0, 20).join('\n')}`);
}

function assertEnvelope(body: Record<string, unknown>, status: number): void {
  assert.deepEqual(Object.keys(body), ['api_error_message', 'api_response', 'api_server_version', 'api_status_code']);
  assert.equal(body.api_status_code, status);
  assert.equal(body.api_server_version, '4.7.4.stable6');
}

// --- HTTP helpers ---------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  json: Record<string, unknown>;
}

async function call(origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Answer> {
  const res = await request(origin + path, { method: method as 'GET', headers, body });
  const raw = Buffer.from(await res.body.arrayBuffer());
  let json: Record<string, unknown> = {};
  if (String(res.headers['content-type'] ?? '').includes('application/json')) json = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  return { status: res.statusCode, headers: res.headers, raw, json };
}

function cookieValue(setCookie: string | string[] | undefined, name: string): string | undefined {
  const list = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  for (const c of list) if (c.startsWith(`${name}=`)) return c.slice(name.length + 1).split(';')[0];
  return undefined;
}

async function newSim(t: { after: (fn: () => Promise<void>) => void }, extra: Parameters<typeof createAssemblylineSimulator>[0] = {}): Promise<{ sim: AssemblylineSimulator; origin: string; key: Record<string, string> }> {
  const sim = await createAssemblylineSimulator({ apiKey: 'bridgekey:NOT-A-REAL-SECRET', password: 'NOT-A-REAL-PASSWORD', analysisDelayMs: 30, ...extra });
  t.after(() => sim.close());
  const origin = await sim.listen();
  return { sim, origin, key: { 'X-USER': sim.user, 'X-APIKEY': sim.apiKey } };
}

// --- (1) replay of the real client's requests -------------------------------------------------

test('replays every request the real Python client sent, with the recorded statuses and document shapes', async (t) => {
  const exchanges = JSON.parse(readFileSync(join(FIXTURES, 'client-requests.json'), 'utf8')) as Exchange[];
  const user = String((exchanges[1].request.body as Record<string, unknown>).user);
  assert.equal(user, 'mass-bridge');
  const { sim, origin } = await newSim(t, { user });
  assert.equal(sim.user, user);

  // The uploaded bytes of exchange 3 stand for the fixture's root file.
  const upload = (exchanges[3].request.body as { name: string; body: string; body_encoding: string }[]).find((p) => p.name === 'bin');
  assert.ok(upload);
  const rootContent = Buffer.from(upload.body, 'base64');
  const rootSha = createHash('sha256').update(rootContent).digest('hex');
  const reg = await call(origin, 'POST', '/_sim/scenarios', { 'content-type': 'application/json' }, JSON.stringify({ sha256: rootSha, scenario: FIXTURE_SCENARIO }));
  assert.equal(reg.status, 201);

  const substitutions = new Map<string, string>([[ROOT, rootSha]]);
  const substitute = (s: string): string => {
    let out = s;
    for (const [from, to] of substitutions) out = out.split(from).join(to);
    return out;
  };
  let rootIngestId = '';

  for (const [i, ex] of exchanges.entries()) {
    const label = `exchange ${i} (${ex.request.method} ${ex.request.path.split('?')[0]})`;
    if (i === 7) {
      // let the ingester finish before the queue is read: messages of exchanges 3, 5 and 6
      await until('three notification messages', () => sim.stats().messagesQueued >= 3);
    }
    if (i === 21) {
      // the session outlives its 3600 s lifetime: Flask can no longer read the cookie
      const adv = await call(origin, 'POST', '/_sim/clock', { 'content-type': 'application/json' }, JSON.stringify({ advance_ms: 3_601_000 }));
      assert.equal(adv.status, 200);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(ex.request.headers)) {
      if (k === 'Host' || k === 'Accept-Encoding') continue;
      headers[k] = substitute(v);
    }
    let body: Buffer | string | undefined;
    if (ex.request.body_kind === 'json') body = substitute(JSON.stringify(ex.request.body));
    if (ex.request.body_kind === 'multipart') body = Buffer.from(ex.request.raw_body_latin1 ?? '', 'latin1');
    const res = await call(origin, ex.request.method, substitute(ex.request.path), headers, body);
    const stub = ex.response_from_stub;
    assert.equal(res.status, stub.status, `${label}: status (${res.raw.toString('utf8').slice(0, 300)})`);

    for (const c of stub.set_cookie ?? []) {
      const [name, value] = c.split(';')[0].split('=');
      if (!value) {
        assert.equal(cookieValue(res.headers['set-cookie'], name), '', `${label}: clears ${name}`);
        continue;
      }
      const ours = cookieValue(res.headers['set-cookie'], name);
      assert.ok(ours, `${label}: sets cookie ${name}`);
      substitutions.set(value, ours);
    }

    if (stub.content_type === 'application/json') {
      assertEnvelope(res.json, stub.status);
      if (stub.body_fixture) {
        const expected = fixture(stub.body_fixture);
        assert.equal(res.json.api_error_message, expected.api_error_message, `${label}: api_error_message`);
        assertSameShape(res.json.api_response, expected.api_response, `${label} api_response`);
      } else {
        assert.equal(res.json.api_response, '');
        assert.equal(res.json.api_error_message, `Api does not exist (${ex.request.path.split('?')[0]})`);
      }
    } else {
      assert.equal(res.headers['content-type'], 'application/octet-stream', label);
      const encoding = new URLSearchParams(ex.request.path.split('?')[1]).get('encoding');
      const suffix = encoding === 'raw' ? '' : `.${encoding}`;
      assert.equal(res.headers['content-disposition'], `attachment; filename=file.bin; filename*=UTF-8''${rootSha}${suffix}`, label);
      if (encoding === 'cart') assert.deepEqual(decodeCart(res.raw).content, rootContent);
      if (encoding === 'raw') assert.deepEqual(res.raw, rootContent);
      if (encoding === 'zip') assert.equal(res.raw.subarray(0, 4).toString('latin1'), 'PK\x03\x04');
    }

    if (i === 3) {
      rootIngestId = String((res.json.api_response as Record<string, unknown>).ingest_id);
      substitutions.set(FIXTURE_SID, rootIngestId);
    }
    if (i === 7) {
      const msg = res.json.api_response as Record<string, unknown>;
      assert.equal(msg.ingest_id, rootIngestId, 'the first message is the first ingest (FIFO)');
      assert.equal((msg.submission as Record<string, unknown>).sid, rootIngestId, 'sid == ingest_id on a fresh analysis');
    }
    if (i === 11) {
      const full = res.json.api_response as Record<string, unknown>;
      assert.equal(full.max_score, 2000);
      assert.equal(Object.keys(full.file_infos as object).length, 3);
    }
    if (i === 15) {
      assert.deepEqual((res.json.api_response as { name: string }[]).map((c) => c.name), ['stage2.dll', 'wupdsvc.exe']);
    }
    if (i === 19) {
      const r = res.json.api_response as { total: number; items: Record<string, unknown>[] };
      assert.equal(r.total, 1);
      assert.deepEqual(r.items[0].metadata, { ingest_id: rootIngestId });
    }
  }
});

// --- (2) every constructed document, reproduced -----------------------------------------------

interface Driven {
  sim: AssemblylineSimulator;
  origin: string;
  key: Record<string, string>;
}

async function ingest(d: Driven, content: string | Buffer, options: Record<string, unknown> = {}, headers = d.key): Promise<Answer> {
  const boundary = 'al-sim-boundary-7f3c';
  const bin = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  const name = typeof options.name === 'string' ? options.name : 'sample.bin';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="json"\r\n\r\n${JSON.stringify({ name, ...options })}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="bin"; filename="${name}"\r\n\r\n`), bin,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return call(d.origin, 'POST', '/api/v4/ingest/', { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` }, body);
}

async function popMessage(d: Driven, queue: string): Promise<Record<string, unknown>> {
  return until(`a message on ${queue}`, async () => {
    const r = await call(d.origin, 'GET', `/api/v4/ingest/get_message/${queue}/`, d.key);
    return r.json.api_response as Record<string, unknown> | null;
  });
}

const MASS_OPTIONS = {
  name: 'invoice_2026-03.exe', type: 'MASS', notification_queue: 'mass-bridge-results',
  metadata: { mass_sample_id: '65f1c0a2e4b0a1d2c3e4f501', mass_analysis_request: '65f1c0a2e4b0a1d2c3e4f6aa' },
  params: { priority: 200, generate_alert: false, never_drop: false },
};

test('responses/*, messages/*: the simulator produces each constructed document with the fixture shape', async (t) => {
  const d: Driven = await newSim(t);
  const content = `MZ fixture root\nAL-SIM: ${JSON.stringify(FIXTURE_SCENARIO)}\n`;
  const seen = new Set<string>();
  const check = (file: string, actual: Record<string, unknown>, status = 200): void => {
    const expected = fixture(file);
    assertEnvelope(actual, status);
    assert.equal(actual.api_error_message, expected.api_error_message, file);
    assertSameShape(actual.api_response, expected.api_response, file);
    seen.add(file);
  };

  check('responses/api-versions.json', (await call(d.origin, 'GET', '/api/', d.key)).json);
  const login = await call(d.origin, 'POST', '/api/v4/auth/login/', { 'content-type': 'application/json' }, JSON.stringify({ user: d.sim.user, apikey: d.sim.apiKey }));
  check('responses/login.json', login.json);
  assert.deepEqual(login.json.api_response, fixture('responses/login.json').api_response);

  const first = await ingest(d, content, MASS_OPTIONS);
  check('responses/ingest.json', first.json);
  const sid = String((first.json.api_response as Record<string, unknown>).ingest_id);
  assert.match(sid, /^[0-9A-Za-z]{1,22}$/);

  const fresh = await popMessage(d, 'mass-bridge-results');
  assertSameShape(fresh, fixture('messages/fresh-analysis.json'), 'messages/fresh-analysis.json');
  seen.add('messages/fresh-analysis.json');
  assert.equal((fresh.submission as Record<string, unknown>).sid, sid);
  assert.equal(fresh.score, 2000);
  assert.deepEqual((fresh.submission as Record<string, unknown>).params, (fixture('messages/fresh-analysis.json').submission as Record<string, unknown>).params);

  const empty = await call(d.origin, 'GET', '/api/v4/ingest/get_message/mass-bridge-results/', d.key);
  check('responses/get-message-empty.json', empty.json);
  assert.equal(empty.json.api_response, null);
  const emptyList = await call(d.origin, 'GET', '/api/v4/ingest/get_message_list/mass-bridge-results/', d.key);
  check('responses/get-message-list-empty.json', emptyList.json);
  assert.deepEqual(emptyList.json.api_response, []);

  check('responses/submission.json', (await call(d.origin, 'GET', `/api/v4/submission/${sid}/`, d.key)).json);
  const full = await call(d.origin, 'GET', `/api/v4/submission/full/${sid}/`, d.key);
  check('responses/submission-full.json', full.json);
  const fullDoc = full.json.api_response as Record<string, Record<string, unknown>>;
  assert.ok(Object.keys(fullDoc.results).some((k) => k.endsWith('.e')), 'an empty YARA result');
  assert.equal(Object.keys(fullDoc.errors).length, 1);
  check('responses/submission-summary.json', (await call(d.origin, 'GET', `/api/v4/submission/summary/${sid}/`, d.key)).json);
  const summary = (await call(d.origin, 'GET', `/api/v4/submission/summary/${sid}/`, d.key)).json.api_response as Record<string, Record<string, unknown>>;
  assert.deepEqual(summary.tags.attribution, fixture('responses/submission-summary.json').api_response && (fixture('responses/submission-summary.json').api_response as Record<string, Record<string, unknown>>).tags.attribution);
  check('responses/submission-tree.json', (await call(d.origin, 'GET', `/api/v4/submission/tree/${sid}/`, d.key)).json);
  check('responses/submission-is-completed.json', (await call(d.origin, 'GET', `/api/v4/submission/is_completed/${sid}/`, d.key)).json);
  const rootSha = createHash('sha256').update(content).digest('hex');
  check('responses/file-children.json', (await call(d.origin, 'GET', `/api/v4/file/children/${rootSha}/`, d.key)).json);
  const search = await call(d.origin, 'POST', '/api/v4/search/submission/', { ...d.key, 'content-type': 'application/json' },
    JSON.stringify({ query: `metadata.ingest_id:"${sid}"`, fl: 'sid,state,max_score,times.completed,metadata.ingest_id', rows: 1, offset: 0 }));
  check('responses/search-submission.json', search.json);
  assert.deepEqual(Object.keys((search.json.api_response as { items: object[] }).items[0]).sort(), ['max_score', 'metadata', 'sid', 'state', 'times']);

  // Cache hit: same file and params again; the message carries the earlier sid and score.
  const second = await ingest(d, content, { ...MASS_OPTIONS, metadata: { mass_sample_id: '65f1c0a2e4b0a1d2c3e4f501', mass_analysis_request: '65f2d1b3e4b0a1d2c3e4f7bb' } });
  const cacheIngestId = String((second.json.api_response as Record<string, unknown>).ingest_id);
  const cacheHit = await popMessage(d, 'mass-bridge-results');
  assertSameShape(cacheHit, fixture('messages/cache-hit.json'), 'messages/cache-hit.json');
  seen.add('messages/cache-hit.json');
  assert.equal(cacheHit.ingest_id, cacheIngestId);
  assert.equal((cacheHit.submission as Record<string, unknown>).sid, sid);
  assert.equal(cacheHit.score, 2000);
  assert.equal(((cacheHit.submission as Record<string, unknown>).metadata as Record<string, unknown>).mass_analysis_request, '65f2d1b3e4b0a1d2c3e4f7bb');

  // Skipped and File too large: failures with score null and no submission.
  await call(d.origin, 'POST', '/_sim/scenarios', { 'content-type': 'application/json' }, JSON.stringify({ sha256: createHash('sha256').update('docm').digest('hex'), scenario: { failure: 'Skipped' } }));
  await ingest(d, 'docm', { ...MASS_OPTIONS, name: 'report_q1.docm' });
  const skipped = await popMessage(d, 'mass-bridge-results');
  assertSameShape(skipped, fixture('messages/failure-skipped.json'), 'messages/failure-skipped.json');
  seen.add('messages/failure-skipped.json');
  assert.equal(skipped.failure, 'Skipped');
  assert.equal(skipped.score, null);
  await ingest(d, `vhd\nAL-SIM: {"failure": "File too large"}\n`, { ...MASS_OPTIONS, name: 'disk_image.vhd' });
  const tooLarge = await popMessage(d, 'mass-bridge-results');
  assertSameShape(tooLarge, fixture('messages/failure-file-too-large.json'), 'messages/failure-file-too-large.json');
  seen.add('messages/failure-file-too-large.json');
  assert.match(String(tooLarge.failure), /^File too large \(\d+ > 104857600\)$/);
  assert.equal((tooLarge.submission as Record<string, unknown>).scan_key, null);
  const notThere = await call(d.origin, 'GET', `/api/v4/submission/${String(tooLarge.ingest_id)}/`, d.key);
  assert.equal(notThere.status, 404);

  // All four kinds in one drained list.
  await ingest(d, content, MASS_OPTIONS);
  await ingest(d, 'docm', { ...MASS_OPTIONS, name: 'report_q1.docm' });
  await until('two messages', () => d.sim.stats().messagesQueued >= 6);
  const list = await call(d.origin, 'GET', '/api/v4/ingest/get_message_list/mass-bridge-results/?page_size=50', d.key);
  check('responses/get-message-list.json', list.json);
  assert.equal((list.json.api_response as unknown[]).length, 2);
  await ingest(d, content, MASS_OPTIONS);
  check('responses/get-message.json', { ...(await until('a message', async () => {
    const r = await call(d.origin, 'GET', '/api/v4/ingest/get_message/mass-bridge-results/', d.key);
    return r.json.api_response === null ? null : r.json;
  })) });

  // is_completed false while the submission is still `submitted`.
  await call(d.origin, 'POST', '/_sim/scenarios', { 'content-type': 'application/json' }, JSON.stringify({ sha256: createHash('sha256').update('slow').digest('hex'), scenario: { delay_ms: 60_000 } }));
  const slow = await ingest(d, 'slow', MASS_OPTIONS);
  const slowId = String((slow.json.api_response as Record<string, unknown>).ingest_id);
  const pending = await until('the dispatcher to create the submission', async () => {
    const r = await call(d.origin, 'GET', `/api/v4/submission/is_completed/${slowId}/`, d.key);
    return r.status === 200 ? r : null;
  });
  check('responses/submission-is-completed-false.json', pending.json);

  const expected = readdirSync(join(FIXTURES, 'responses')).map((f) => `responses/${f}`)
    .concat(readdirSync(join(FIXTURES, 'messages')).map((f) => `messages/${f}`));
  assert.deepEqual([...seen].sort(), expected.sort());
});

test('errors/*: the simulator answers each constructed error exactly', async (t) => {
  const d: Driven = await newSim(t, {
    maxFileSize: 64, concurrentQuota: 2,
    extraUsers: [
      { user: 'viewer', apiKey: 'viewkey:v', roles: ['submission_view'] },
      { user: 'plain', apiKey: 'plainkey:p', roles: ['submission_view', 'submission_create'] },
      // Access to a submission is by classification (assemblyline-ui v4.7.4.stable6): a clearance below its marking.
      { user: 'outsider', apiKey: 'outkey:o', classification: 'TLP:CLEAR' },
    ],
  });
  const seen = new Set<string>();
  const exact = (file: string, actual: Answer, subst: (msg: string) => string = (m) => m): void => {
    const expected = fixture(file);
    assert.equal(actual.status, expected.api_status_code, file);
    assertEnvelope(actual.json, actual.status);
    assert.equal(actual.json.api_error_message, subst(String(expected.api_error_message)), file);
    assert.deepEqual(actual.json.api_response, expected.api_response, file);
    seen.add(file);
  };
  const json = { ...d.key, 'content-type': 'application/json' };

  exact('errors/400-bad-json.json', await call(d.origin, 'POST', '/api/v4/search/submission/', json, '{not json'));
  exact('errors/400-ingest-validation.json', await ingest(d, 'x', {}, { 'X-USER': 'plain', 'X-APIKEY': 'plainkey:p' }));
  const badKey = await call(d.origin, 'GET', '/api/', { 'X-USER': d.sim.user, 'X-APIKEY': 'bridgekey:wrong' });
  exact('errors/401-invalid-apikey.json', badKey);
  const failedLogin = await call(d.origin, 'POST', '/api/v4/auth/login/', { 'content-type': 'application/json' }, JSON.stringify({ user: d.sim.user, apikey: 'bridgekey:wrong' }));
  exact('errors/401-login-failed.json', failedLogin);
  const noSession = await call(d.origin, 'GET', '/api/v4/ingest/get_message/q/', { 'X-USER': d.sim.user });
  exact('errors/401-session-not-found.json', noSession);
  assert.deepEqual(noSession.headers['set-cookie'], [
    'session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/; SameSite=None',
    'XSRF-TOKEN=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/',
  ]);
  exact('errors/403-missing-role.json', await ingest(d, 'x', {}, { 'X-USER': 'viewer', 'X-APIKEY': 'viewkey:v' }));

  const okIngest = await ingest(d, 'small', { notification_queue: 'q', params: { classification: 'TLP:GREEN' } });
  const sid = String((okIngest.json.api_response as Record<string, unknown>).ingest_id);
  await until('the submission', async () => (await call(d.origin, 'GET', `/api/v4/submission/is_completed/${sid}/`, d.key)).json.api_response === true);
  exact('errors/403-submission-not-allowed.json', await call(d.origin, 'GET', `/api/v4/submission/${sid}/`, { 'X-USER': 'outsider', 'X-APIKEY': 'outkey:o' }));
  exact('errors/404-file-download.json', await call(d.origin, 'GET', `/api/v4/file/download/${'0'.repeat(64)}/`, d.key));
  exact('errors/404-ingest-sha256.json', await call(d.origin, 'POST', '/api/v4/ingest/', json, JSON.stringify({ sha256: 'a'.repeat(64), name: 'x' })));
  // a cache-hit ingest_id never becomes a submission
  const again = await ingest(d, 'small', { notification_queue: 'q', params: { classification: 'TLP:GREEN' } });
  const cacheId = String((again.json.api_response as Record<string, unknown>).ingest_id);
  await until('the cache-hit message', () => d.sim.stats().messagesQueued >= 2);
  exact('errors/404-submission.json', await call(d.origin, 'GET', `/api/v4/submission/${cacheId}/`, d.key), (m) => m.replace('7SZCI5JMuWiBYpipAjxPhy', cacheId));
  exact('errors/404-unknown-api.json', await call(d.origin, 'GET', '/api/v4/ingest/get_messages/q/', d.key));
  exact('errors/413-ingest-too-big.json', await ingest(d, Buffer.alloc(100, 1)), (m) => m.replace('157286400', '100').replace('104857600', '64'));

  await call(d.origin, 'POST', '/_sim/faults', { 'content-type': 'application/json' }, JSON.stringify({ path_prefix: '/api/v4/submission/', delay_ms: 400, times: 2 }));
  const slow = [call(d.origin, 'GET', `/api/v4/submission/${sid}/`, d.key), call(d.origin, 'GET', `/api/v4/submission/${sid}/`, d.key)];
  const quota = await until('the quota answer', async () => {
    const r = await call(d.origin, 'GET', '/api/', d.key);
    return r.status === 503 ? r : null;
  });
  exact('errors/503-api-quota.json', quota, (m) => m.replace('10', '2'));
  for (const r of await Promise.all(slow)) assert.equal(r.status, 200);

  const expected = readdirSync(join(FIXTURES, 'errors')).map((f) => `errors/${f}`);
  assert.deepEqual([...seen].sort(), expected.sort());
});

// --- CaRT against the real recording ----------------------------------------------------------

test('CaRT: the encoder writes the real AL download byte for byte, and decodes it', () => {
  const real = readFileSync(join(FIXTURES, 'real/java-client-al4.0/al_test.txt.cart'));
  const content = readFileSync(join(FIXTURES, 'real/java-client-al4.0/al_test.txt'));
  const decoded = decodeCart(real);
  assert.deepEqual(decoded.content, content);
  assert.deepEqual(decoded.header, { classification: 'TLP:WHITE', name: createHash('sha256').update(content).digest('hex') });
  assert.equal(decoded.footer.sha256, createHash('sha256').update(content).digest('hex'));
  assert.equal(decoded.footer.length, '6');
  assert.deepEqual(encodeCart(content, decoded.header), real);
});
