import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerCommand } from '../../src/bridge/commands.js';
import { makeConfig, reportsBySample, startHarness, startSimulators } from '../helpers/bridge-harness.js';
import { textSink } from '../helpers/text-sink.js';


test('register creates the analysis system and an instance once, and is idempotent', { timeout: 30_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { seed: false } });
  const config = makeConfig({ ...sims.endpoints, uuid: '' });
  config.mass.systemName = 'al-bridge-test';
  const first = textSink();
  assert.equal(await registerCommand({ config, adminKey: sims.mass.adminKey, stdout: first.stream }), 0);
  const uuid = /UUID = (\S+)/.exec(first.text())?.[1];
  assert.ok(uuid, first.text());
  assert.match(first.text(), /created/);
  assert.match(first.text(), /webui\/admin\/analysis_systems\//);
  assert.doesNotMatch(first.text(), new RegExp(sims.mass.adminKey));
  const system = await sims.admin.getAnalysisSystem('al-bridge-test');
  assert.equal(system.tag_filter_expression, 'sample-type:filesample');

  const second = textSink();
  assert.equal(await registerCommand({ config: { ...config, mass: { ...config.mass, uuid } }, adminKey: sims.mass.adminKey, stdout: second.stream }), 0);
  assert.match(second.text(), /analysis system 'al-bridge-test' exists/);
  assert.match(second.text(), new RegExp(`instance ${uuid} exists`));
});

test('runOnce claims what one poll returns and drives it to reports, then stops', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t, { mass: { schedulerIntervalMs: 0 } });
  const samples = [];
  for (let i = 0; i < 3; i++) samples.push(await h.seedFile(`once-${i}.bin`, `run once ${i}\n`));
  // MASS gives a new instance work only after its first poll (MASS.md §3, first-poll catch-22).
  await h.massClient.poll(h.endpoints.uuid);
  assert.equal(h.mass.runScheduler(), 3);
  const summary = await h.bridge.runOnce({ timeoutMs: 30_000 });
  assert.deepEqual({ claimed: summary.claimed, done: summary.done, remaining: summary.remaining, timedOut: summary.timedOut }, { claimed: 3, done: 3, remaining: 0, timedOut: false });
  const state = await h.massState();
  for (const s of samples) assert.equal(reportsBySample(state).get(s.url)?.length, 1);
});
