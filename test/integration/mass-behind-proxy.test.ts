/**
 * MASS behind a reverse proxy that rewrites the Host header: MASS then names every object under an
 * internal origin. Without [GLOBAL] ServerAliases the bridge refuses to send its key there (every job
 * ends held, with the fix in its last error); with the alias the same URLs are requested through
 * ServerURL and jobs end with reports. Nothing, and no key, ever reaches the internal origin.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { openBridgeRuntime } from '../../src/bridge/commands.js';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassClient, ScheduledAnalysis } from '../../src/mass/types.js';
import { makeConfig, startSimulators, type Simulators } from '../helpers/bridge-harness.js';
import { startHostRewritingProxy, startTrap, type Recorder } from '../helpers/host-proxy.js';
import { waitFor } from '../helpers/wait.js';

interface Setup {
  sims: Simulators;
  proxy: Recorder;
  /** The origin MASS names its objects under: a server that records whatever reaches it. */
  internal: Recorder;
}

async function setup(t: TestContext): Promise<Setup> {
  const sims = await startSimulators(t);
  const internal = await startTrap();
  sims.defer(() => internal.close());
  const proxy = await startHostRewritingProxy(sims.massOrigin, new URL(internal.origin).host);
  sims.defer(() => proxy.close());
  return { sims, proxy, internal };
}

function client(s: Setup, aliases?: string[]): MassClient {
  const c = createMassClient({ apiRoot: `${s.proxy.origin}/api/`, apiKey: s.sims.endpoints.massKey, timeoutMs: 5000, aliases });
  s.sims.defer(() => c.close());
  return c;
}

async function scheduled(s: Setup, mass: MassClient): Promise<ScheduledAnalysis> {
  return waitFor(async () => (await mass.poll(s.sims.endpoints.uuid))[0], { what: 'a scheduled analysis in the poll' });
}

test('MASS behind the proxy names its objects under the internal origin; without an alias the client refuses them', async (t) => {
  const s = await setup(t);
  const mass = client(s);
  await s.sims.seedFile('through-proxy.txt', 'hello through a proxy\n');
  const sa = await scheduled(s, mass);
  assert.ok(sa.url.startsWith(`${s.internal.origin}/api/scheduled_analysis/`), sa.url);
  await assert.rejects(mass.getScheduledAnalysis(sa.url), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.transient, false);
    assert.match(err.message, new RegExp(`add ${s.internal.origin} to \\[GLOBAL\\] ServerAliases`));
    assert.ok(!err.message.includes(s.sims.endpoints.massKey));
    return true;
  });
  // An alias for some other origin does not let this one through either.
  await assert.rejects(client(s, ['http://mass-internal.example:8000']).getScheduledAnalysis(sa.url), /ServerAliases/);
  assert.deepEqual(s.internal.requests, [], 'nothing was sent to the internal origin');
});

test('with the internal origin as an alias, the whole exchange goes through ServerURL', async (t) => {
  const s = await setup(t);
  const mass = client(s, [s.internal.origin]);
  await s.sims.seedFile('aliased.txt', 'hello with an alias\n');
  const sa = await scheduled(s, mass);
  const again = await mass.getScheduledAnalysis(sa.url);
  assert.equal(again.url, sa.url, 'URLs are kept as MASS named them');
  const sample = await mass.getSample(again.sample);
  const download = await mass.downloadSample(sample);
  const chunks: Buffer[] = [];
  for await (const chunk of download.body) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString('utf8'), 'hello with an alias\n');
  const dropped = await mass.submitFileSample({ filename: 'dropped.bin', body: Buffer.from('dropped by the sample\n') });
  // MASS accepts a relation only with URLs on the origin it sees in Host: the alias, as it named them.
  const relation = await mass.addRelation('dropped-by', dropped.url, sample.url);
  assert.ok(relation.sample.startsWith(s.internal.origin));
  const report = await mass.submitReport(sa, { tags: ['al:verdict:info'], jsonReportObjects: { summary: { ok: true } } });
  assert.ok(report.url.startsWith(`${s.internal.origin}/api/report/`), report.url);

  assert.deepEqual(s.internal.requests, [], 'nothing was sent to the internal origin');
  const paths = s.proxy.requests.map((r) => `${r.method} ${r.url.split('?')[0]}`);
  assert.ok(paths.includes(`GET ${new URL(sa.url).pathname}`), 'the aliased URL was requested through ServerURL');
  assert.ok(paths.some((p) => p.startsWith('POST /api/sample_relation/submit_dropped_by/')));
  assert.ok(paths.some((p) => p.endsWith('/submit_report/')));
});

test('the bridge: without ServerAliases every job ends held with the fix; with it, jobs end with reports', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  const endpoints = { ...s.sims.endpoints, massApiRoot: `${s.proxy.origin}/api/` };

  const sample = await s.sims.seedFile('held.txt', 'held without an alias\n');
  const blind = makeConfig(endpoints, { bridge: { stateDir: `${endpoints.stateDir}/blind` } });
  const first = await openBridgeRuntime(blind, silentLogger());
  s.sims.defer(async () => {
    await first.bridge.stop({ graceMs: 500 });
    await first.close();
  });
  first.bridge.start();
  const held = await waitFor(() => first.ledger.list({ states: ['held'] }).jobs[0], { timeoutMs: 20_000, what: 'a held job' });
  assert.match(held.lastError ?? '', /\[GLOBAL\] ServerAliases/);
  await first.bridge.stop({ graceMs: 500 });
  await first.close();
  assert.equal((await s.sims.massState()).reports.length, 0);

  const aliased = makeConfig(endpoints, { global: { serverAliases: [s.internal.origin] }, bridge: { stateDir: `${endpoints.stateDir}/aliased` } });
  const second = await openBridgeRuntime(aliased, silentLogger());
  s.sims.defer(async () => {
    await second.bridge.stop({ graceMs: 500 });
    await second.close();
  });
  second.bridge.start();
  const reports = await waitFor(
    async () => {
      const state = await s.sims.massState();
      return state.reports.length > 0 ? state.reports : undefined;
    },
    { timeoutMs: 30_000, what: 'a report on MASS' },
  );
  assert.equal(reports[0].error_message, null, `an analysis report, not an error report: ${reports[0].error_message}`);
  assert.ok(reports[0].sample.endsWith(`/sample/${sample.id}/`), reports[0].sample);
  assert.deepEqual(s.internal.requests, [], 'nothing was sent to the internal origin');
});
