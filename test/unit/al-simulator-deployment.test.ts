/**
 * The deployment rules of a real Assemblyline 4.7.4 as the simulator enforces them. No recording of a real
 * server exists for these answers: each test names the upstream source file and version whose status code
 * and message text it compares with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createAssemblylineSimulator, type AssemblylineSimulatorOptions } from '../../src/simulators/assemblyline/index.js';
import { until } from '../helpers/wait.js';

interface Answer {
  status: number;
  body: { api_response: unknown; api_error_message: string; api_status_code: number };
}
interface Ctx {
  origin: string;
  key: Record<string, string>;
  sim: Awaited<ReturnType<typeof createAssemblylineSimulator>>;
}

const LIMITED = ['submission_view', 'submission_create', 'file_download'];
const STATIC_LOCKED = {
  name: 'static', displayName: 'Static Analysis', params: { priority: 500, services: { selected: ['Static Analysis'] } },
  restrictedParams: { submission: ['priority', 'ignore_cache', 'ttl'] }, excludedServices: ['Dynamic Analysis'],
};

async function call(c: Ctx, method: string, path: string, body?: Record<string, unknown>): Promise<Answer> {
  const headers: Record<string, string> = { ...c.key };
  if (body) headers['content-type'] = 'application/json';
  const res = await request(c.origin + path, { method: method as 'GET', headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.statusCode, body: (await res.body.json()) as Answer['body'] };
}

async function start(t: { after: (fn: () => Promise<void>) => void }, opts: AssemblylineSimulatorOptions = {}): Promise<Ctx> {
  const sim = await createAssemblylineSimulator({ analysisDelayMs: 10, ...opts });
  t.after(() => sim.close());
  const origin = await sim.listen();
  return { sim, origin, key: { 'X-USER': sim.user, 'X-APIKEY': sim.apiKey } };
}

const ingest = (c: Ctx, body: Record<string, unknown>): Promise<Answer> => call(c, 'POST', '/api/v4/ingest/', body);
const refusal = (a: Answer): [number, string] => [a.status, a.body.api_error_message];

async function message(c: Ctx, queue: string): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> | undefined;
  await until(`a message on ${queue}`, async () => {
    const a = await call(c, 'GET', `/api/v4/ingest/get_message_list/${queue}/?page_size=1`);
    got = (a.body.api_response as Record<string, unknown>[])[0];
    return got !== undefined;
  });
  return got as Record<string, unknown>;
}

test('a profile restricting priority refuses a limited user who changes it, accepts the default and no value (assemblyline-ui v4.7.4.stable6 helper/submission.py apply_changes_to_profile)', async (t) => {
  const c = await start(t, { roles: LIMITED, profiles: [STATIC_LOCKED] });
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', submission_profile: 'static', params: { priority: 150 } })),
    [400, 'User isn\'t allowed to modify the "priority" parameters of Static Analysis profile']);
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', submission_profile: 'static', params: { services: { selected: ['Dynamic Analysis'] } } })),
    [400, 'User isn\'t allowed to select the Dynamic Analysis service of "Dynamic Analysis" in "Static Analysis" profile']);
  // A value equal to the server default is no change (get_recursive_delta), nor is leaving the parameter out.
  assert.equal((await ingest(c, { plaintext: 'a', submission_profile: 'static', params: { priority: 1000 } })).status, 200);
  const ok = await ingest(c, { plaintext: 'b', submission_profile: 'static', notification_queue: 'p', params: { deep_scan: true } });
  assert.equal(ok.status, 200);
  const m = await message(c, 'p');
  const params = (m.submission as Record<string, Record<string, unknown>>).params;
  assert.equal(params.priority, 250, 'the profile priority (500), capped by ingest_max_priority');
  // Without a profile a limited user is refused; an unknown profile too.
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a' })), [400, "You must specify a submission profile. One of: ['static']"]);
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', submission_profile: 'nope' })), [400, "Submission profile 'nope' does not exist"]);
});

test('an unknown profile is ignored for a user with submission_customize (helper/submission.py update_submission_parameters)', async (t) => {
  const c = await start(t, { profiles: [STATIC_LOCKED] });
  assert.equal((await ingest(c, { plaintext: 'a', submission_profile: 'nope', params: { priority: 150 } })).status, 200);
});

test('metadata schemes: required fields and strict schemes (assemblyline-base v4.7.4.stable9 datastore/helper.py check_metadata)', async (t) => {
  const c = await start(t, {
    metadataScheme: { ingest: { _default: { sensor: { required: true } }, STRICT: { case: { required: false } } }, strictSchemes: ['STRICT'] },
  });
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', metadata: { other: 'x' } })), [400, "Required metadata is missing from submission: ['sensor']"]);
  assert.equal((await ingest(c, { plaintext: 'a', metadata: { sensor: 'mass', other: 'x' } })).status, 200, 'a scheme that is not strict allows extra fields');
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', type: 'STRICT', params: { type: 'STRICT' }, metadata: { sensor: 'mass', bridge_job: '1' } })),
    [400, "Extra metadata found from submission: ['bridge_job']"]);
  assert.equal((await ingest(c, { plaintext: 'a', params: { type: 'STRICT' }, metadata: { sensor: 'mass', case: '7' } })).status, 200);
});

test('classification: above the user clearance and unknown strings are refused; results are visible by classification only (helper/submission.py init_submission; assemblyline-base common/classification.py)', async (t) => {
  const c = await start(t, {
    userClassification: 'TLP:AMBER',
    extraUsers: [{ user: 'other-group', apiKey: 'other:key', groups: ['ELSEWHERE'], classification: 'TLP:AMBER' }, { user: 'green', apiKey: 'green:key', classification: 'TLP:GREEN' }],
  });
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', params: { classification: 'TLP:RED' } })),
    [400, "You cannot start a submission with higher classification then you're allowed to see"]);
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'a', params: { classification: 'TLP:BANANA' } })),
    [400, "Classification level 'TLP:BANANA' was not found in your classification definition."]);
  assert.equal((await ingest(c, { plaintext: 'amber', notification_queue: 'cl', params: { classification: 'TLP:AMBER' } })).status, 200);
  const sid = ((await message(c, 'cl')).submission as { sid: string }).sid;
  assert.ok(sid);
  const asOther = await request(`${c.origin}/api/v4/submission/${sid}/`, { headers: { 'X-USER': 'other-group', 'X-APIKEY': 'other:key' } });
  assert.equal(asOther.statusCode, 200, 'another group with enough clearance sees it');
  await asOther.body.dump();
  const asGreen = await request(`${c.origin}/api/v4/submission/${sid}/`, { headers: { 'X-USER': 'green', 'X-APIKEY': 'green:key' } });
  assert.equal(asGreen.statusCode, 403);
  await asGreen.body.dump();
});

test('quotas: async concurrent submissions until a submission finishes, daily submissions, daily API calls with queue reads counted and ingest exempt (helper/user.py, api/base.py, api/v4/ingest.py)', async (t) => {
  const c = await start(t, { analysisDelayMs: 300, quotas: { asyncSubmissions: 1 } });
  assert.equal((await ingest(c, { plaintext: 'one', notification_queue: 'q' })).status, 200);
  assert.deepEqual(refusal(await ingest(c, { plaintext: 'two', notification_queue: 'q' })), [503, "You've exceeded your maximum async concurrent submission quota of 1"]);
  await message(c, 'q');
  assert.equal((await ingest(c, { plaintext: 'two', notification_queue: 'q' })).status, 200, 'the slot is free once the submission finished');

  const d = await start(t, { quotas: { dailySubmissions: 1 } });
  assert.equal((await ingest(d, { plaintext: 'one' })).status, 200);
  assert.deepEqual(refusal(await ingest(d, { plaintext: 'two' })), [503, "You've reached your daily maximum submission quota of 1"]);

  const a = await start(t, { quotas: { dailyApiCalls: 2 } });
  assert.equal((await call(a, 'GET', '/api/v4/ingest/get_message_list/q/?page_size=1')).status, 200);
  assert.equal((await ingest(a, { plaintext: 'exempt' })).status, 200);
  assert.equal((await call(a, 'GET', '/api/v4/ingest/get_message_list/q/?page_size=1')).status, 200);
  assert.deepEqual(refusal(await call(a, 'GET', '/api/v4/ingest/get_message_list/q/?page_size=1')), [503, "You've exceeded your daily maximum API calls quota of 2"]);
  assert.equal((await ingest(a, { plaintext: 'still exempt' })).status, 200);
  assert.equal(a.sim.usage().api, 3);
});

test('the cache key includes ignore_cache: an ordinary ingest after an ignore_cache re-ingest still gets the old sid (assemblyline-rust v4.7.4.stable9 models/datastore/submission.rs get_hashing_keys)', async (t) => {
  const c = await start(t);
  await ingest(c, { plaintext: 'cached', notification_queue: 'k' });
  const first = (await message(c, 'k')).submission as { sid: string };
  await ingest(c, { plaintext: 'cached', notification_queue: 'k', params: { ignore_cache: true } });
  const fresh = (await message(c, 'k')).submission as { sid: string };
  assert.notEqual(fresh.sid, first.sid);
  await ingest(c, { plaintext: 'cached', notification_queue: 'k' });
  assert.equal(((await message(c, 'k')).submission as { sid: string }).sid, first.sid);
  await ingest(c, { plaintext: 'cached', notification_queue: 'k', params: { ignore_cache: true } });
  assert.notEqual(((await message(c, 'k')).submission as { sid: string }).sid, first.sid);
});

test('ttl is capped by max_dtl; never_drop suppresses the "File too large" drop (helper/submission.py init_submission; rust ingester/mod.rs)', async (t) => {
  const c = await start(t, { maxDtl: 10 });
  await ingest(c, { plaintext: 'ttl', notification_queue: 't', params: { ttl: 90 } });
  assert.equal(((await message(c, 't')).submission as { params: { ttl: number } }).params.ttl, 10);
  const big = 'AL-SIM: {"failure":"File too large"}\n';
  await ingest(c, { plaintext: big, notification_queue: 'big' });
  assert.match(String((await message(c, 'big')).failure), /^File too large/);
  await ingest(c, { plaintext: big, notification_queue: 'big', params: { never_drop: true } });
  assert.equal((await message(c, 'big')).failure, '');
});

test('whoami tells the user roles, clearance, quotas and the profiles with their restricted parameters (api/v4/user.py who_am_i)', async (t) => {
  const c = await start(t, { roles: LIMITED, profiles: [STATIC_LOCKED], userClassification: 'TLP:GREEN', quotas: { dailyApiCalls: 3000 } });
  const me = (await call(c, 'GET', '/api/v4/user/whoami/')).body.api_response as Record<string, unknown>;
  assert.deepEqual(me.roles, LIMITED);
  assert.equal(me.classification, 'TLP:GREEN');
  assert.equal(me.api_daily_quota, 3000);
  const profiles = (me.configuration as { submission: { profiles: Record<string, { restricted_params: Record<string, string[]> }> } }).submission.profiles;
  assert.deepEqual(profiles.static.restricted_params, { submission: ['priority', 'ignore_cache', 'ttl'] });
});

test('the file tree drops children past the maximum depth without marking truncated (assemblyline-base v4.7.4.stable9 datastore/helper.py get_or_create_file_tree)', async (t) => {
  const c = await start(t);
  let scenario: Record<string, unknown> = {};
  for (let level = 8; level >= 1; level--) scenario = { extracted: [{ name: `level-${level}.bin`, content: `nested file at level ${level}\n`, scenario }] };
  await ingest(c, { plaintext: `root\nAL-SIM: ${JSON.stringify(scenario)}\n`, notification_queue: 'deep' });
  const sid = ((await message(c, 'deep')).submission as { sid: string }).sid;
  type Node = { name: string[]; truncated: boolean; children: Record<string, Node> };
  const tree = (await call(c, 'GET', `/api/v4/submission/tree/${sid}/`)).body.api_response as { tree: Record<string, Node> };
  let node = Object.values(tree.tree)[0];
  let depth = 0;
  while (Object.keys(node.children).length > 0) {
    node = Object.values(node.children)[0];
    depth++;
  }
  assert.equal(depth, 6, 'six levels below the root');
  assert.deepEqual(node.name, ['level-6.bin']);
  assert.equal(node.truncated, false, 'its dropped child does not mark it truncated');
});

test('queue readers pop the legacy shared key nq-<name> first, only for names that cannot be a per-user key (assemblyline-ui v4.7.4.stable6 api/v4/ingest.py is_safe_queue_name)', async (t) => {
  const c = await start(t);
  const legacy = async (name: string, id: string): Promise<void> => {
    const res = await request(`${c.origin}/_sim/legacy-queue/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ingest_id: id }) });
    assert.equal(res.statusCode, 201);
    await res.body.dump();
  };
  await legacy('mass-bridge', 'old-1');
  await legacy('AB12-bridge', 'old-2');
  await ingest(c, { plaintext: 'new', notification_queue: 'mass-bridge' });
  await until('the new message', async () => c.sim.stats().messagesQueued === 1);
  const both = (await call(c, 'GET', '/api/v4/ingest/get_message_list/mass-bridge/?page_size=5')).body.api_response as { ingest_id: string }[];
  assert.equal(both.length, 2);
  assert.equal(both[0].ingest_id, 'old-1', 'the legacy message first');
  assert.deepEqual((await call(c, 'GET', '/api/v4/ingest/get_message_list/AB12-bridge/?page_size=5')).body.api_response, [], 'a name shaped like a per-user key never reads the legacy key');
});
