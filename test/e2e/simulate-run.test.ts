/**
 * The README's two-terminal flow: `simulate --write-config sim.ini` in one process, `run --config sim.ini`
 * in another; a sample seeded into the MASS simulator ends with a report, and both stop on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait.js';
import { startCli } from '../helpers/cli-process.js';


test('simulate --write-config, then run --config: a seeded sample gets its report', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-simrun-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ini = join(dir, 'sim.ini');
  const sim = startCli(['simulate', '--mass-port', '0', '--al-port', '0', '--write-config', ini, '--state-dir', join(dir, 'state')]);
  t.after(() => {
    if (sim.child.exitCode === null) sim.child.kill('SIGKILL');
  });
  await waitFor(() => sim.output().includes('Bridge configuration written'), { timeoutMs: 30_000, what: 'the simulators to start' });
  const out = sim.output();
  const massRoot = /API root\s+(http:\S+)/.exec(out)?.[1];
  assert.ok(massRoot, 'simulate prints the MASS API root');
  assert.match(out, /instance UUID\s+[0-9a-f-]{36}/);
  assert.match(out, /API key\s+\S+:\S+/, 'simulate prints the Assemblyline key to use');
  const config = await readFile(ini, 'utf8');
  assert.match(config, /\[AssemblylineAnalysis\][^[]*mass api key = \S+/);

  // The status API of the bridge must not collide with anything: any free port.
  const bridge = startCli(['run', '--config', ini, '--set', 'API.Listen=127.0.0.1:0', '--set', 'AssemblylineAnalysis.PollTime=0.3']);
  t.after(() => {
    if (bridge.child.exitCode === null) bridge.child.kill('SIGKILL');
  });
  await waitFor(() => /bridge running/.test(bridge.output()), { timeoutMs: 30_000, what: 'the bridge to start' });

  const origin = new URL(massRoot).origin;
  const seeded = await fetch(`${origin}/_sim/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ file_name: 'hello.txt', content_text: 'hello from the README flow\n' }),
  });
  assert.equal(seeded.status, 201);
  const sample = (await seeded.json()) as { url: string };
  // The generated config keeps the simulator's 5 s scheduler; the report follows within a few ticks.
  const report = await waitFor(
    async () => {
      const st = (await (await fetch(`${origin}/_sim/state`)).json()) as { reports: Array<{ sample: string; error_message: string | null; additional_metadata: Record<string, unknown> }> };
      return st.reports.find((r) => r.sample === sample.url);
    },
    { timeoutMs: 60_000, intervalMs: 200, what: 'the report on MASS' },
  );
  assert.equal(report.error_message, null);
  assert.ok(report.additional_metadata.assemblyline, 'the report carries the Assemblyline metadata');

  bridge.child.kill('SIGTERM');
  sim.child.kill('SIGTERM');
  assert.equal(await bridge.exited, 0);
  assert.equal(await sim.exited, 0);
});
