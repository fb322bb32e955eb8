import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { silentLogger } from '../../src/log.js';
import {
  buildMultipart,
  diffJson,
  LiveMapping,
  loadRecordings,
  mediaType,
  send,
  type RecordedExchange,
  type RecordedPart,
} from '../helpers/mass-replay.js';

// Every server timestamp in the recordings is this second; a fixed clock makes them comparable exactly.
const RECORDING_TIME = Date.parse('2026-11-23T00:27:25Z');
// The recordings hand out instance keys through `/_test/instance_key/<uuid>` in this order.
const INSTANCE_PRINCIPALS = ['instance', 'instance-2', 'instance-j'];

test('replays every recorded MASS exchange (a…j) against the simulator', async (t) => {
  const sim = await createMassSimulator({
    seed: false,
    objectsPerPage: 2,
    schedulerIntervalMs: 0,
    now: () => RECORDING_TIME,
    logger: silentLogger(),
  });
  t.after(() => sim.close());
  const origin = await sim.listen();
  const port = Number(new URL(origin).port);
  const mapping = new LiveMapping(port);
  const keys = new Map<string, string>([
    ['admin-user', sim.adminKey],
    ['normal-user', sim.userKey],
  ]);
  let instanceKeysHandedOut = 0;

  const authorization = (auth: string): string | undefined => {
    switch (auth) {
      case 'none':
        return undefined;
      case 'invalid-key':
        return 'APIKEY IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCI.not-a-valid-signature';
      case 'malformed-scheme':
        return `Bearer ${keys.get('instance')}`;
      default: {
        const key = keys.get(auth);
        assert.ok(key, `no key known for principal ${auth}`);
        return `APIKEY ${key}`;
      }
    }
  };

  const recordings = loadRecordings();
  assert.deepEqual(
    recordings.map((r) => r.file[0]),
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
  );
  let replayed = 0;

  for (const { file, exchanges } of recordings) {
    for (const [index, ex] of exchanges.entries()) {
      const name = `${file} #${index} ${ex.request.method} ${ex.request.path}: ${ex.note.slice(0, 70)}`;
      await t.test(name, async () => {
        if (ex.test_only_route) {
          replayTestOnlyRoute(ex);
          return;
        }
        await replay(ex);
      });
      replayed++;
    }
  }
  assert.equal(replayed, 108, 'the README promises 108 exchanges');

  /** The recording harness's own routes map to the simulator's programmatic hooks. */
  function replayTestOnlyRoute(ex: RecordedExchange): void {
    const path = ex.request.path;
    if (path === '/_test/schedule') {
      const scheduled = sim.runScheduler();
      assert.ok(Number.isInteger(scheduled) && scheduled >= 0);
      return;
    }
    const m = /^\/_test\/instance_key\/(.+)$/.exec(path);
    assert.ok(m, `unknown test-only route ${path}`);
    const liveUuid = mapping.liveId(m[1]) ?? m[1];
    const key = sim.instanceKeyFor(liveUuid);
    assert.ok(key, `the simulator knows no instance ${liveUuid}`);
    const principal = INSTANCE_PRINCIPALS[instanceKeysHandedOut++];
    assert.ok(principal, 'more instance keys handed out than principals named in the README');
    keys.set(principal, key);
  }

  async function replay(ex: RecordedExchange): Promise<void> {
    const req = ex.request;
    const headers: Record<string, string> = { host: mapping.rewriteOrigin(req.headers.Host) };
    const auth = authorization(ex.auth);
    if (auth !== undefined) headers.authorization = auth;
    if (req.headers['Content-Type']) headers['content-type'] = req.headers['Content-Type'];
    let body: Buffer | undefined;
    switch (req.body_kind) {
      case 'empty':
        break;
      case 'json':
        body = Buffer.from(JSON.stringify(mapping.mapJson(req.body)));
        break;
      case 'text':
        body = Buffer.from(mapping.map(req.body as string));
        break;
      case 'base64':
        body = Buffer.from(req.body as string, 'base64');
        break;
      case 'multipart': {
        const boundary = /boundary=([^;]+)/.exec(req.headers['Content-Type'])?.[1];
        assert.ok(boundary, 'multipart exchange without a boundary');
        body = buildMultipart(boundary, req.body as RecordedPart[], (s) => mapping.map(s));
        break;
      }
    }
    const live = await send(Number(new URL(`http://${headers.host}`).port), req.method, mapping.map(req.path), headers, body);
    const res = ex.response;
    const context = `live body: ${live.body.toString('utf8').slice(0, 400)}`;
    assert.equal(live.status, res.status, `status; ${context}`);
    assert.equal(mediaType(live.contentType), mediaType(res.content_type), `content type; ${context}`);
    switch (res.body_kind) {
      case 'json': {
        const liveJson: unknown = JSON.parse(live.body.toString('utf8'));
        mapping.learn(res.body, liveJson);
        const unordered = /\/relation_graph\//.test(req.path);
        const problems = diffJson(mapping.mapJson(res.body), liveJson, '$', unordered);
        assert.deepEqual(problems, [], `JSON differs from the recording; ${context}`);
        break;
      }
      case 'text':
        if (mediaType(res.content_type) === 'text/html') {
          assert.match(live.body.toString('utf8'), new RegExp(`<title>${res.status} `), 'an HTML error page for the same status');
        } else {
          assert.equal(live.body.toString('utf8'), res.body, 'the stored bytes, verbatim');
        }
        break;
      case 'base64':
        assert.deepEqual(live.body, Buffer.from(res.body as string, 'base64'), 'the same bytes');
        break;
      case 'empty':
        assert.equal(live.body.length, 0);
        break;
    }
  }
});
