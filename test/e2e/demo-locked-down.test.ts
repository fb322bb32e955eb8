/**
 * `demo --locked-down` and `simulate --locked-down` as a user runs them: the Assemblyline simulator's user is
 * locked down like a production service account (no submission_customize, a profile restricting priority and
 * services, a required metadata field, a classification engine, 5 async submissions, 3000 API calls a day) and
 * the bridge configuration the commands write is made for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSummary, DEMO_ARGS, runDemo } from '../helpers/demo-run.js';
import { waitFor } from '../helpers/wait.js';
import { startCli } from '../helpers/cli-process.js';


/** Words of an error caused by the Assemblyline configuration rather than by the sample. */
const CONFIGURATION_ERROR = /profile|metadata|classification|clearance|quota|submission_customize|allowed to|not allowed/i;

/** The demo's scripted error reports: each one is the sample's own failure. */
const SCRIPTED_ERRORS = [/^oversize \(disk-image\.iso\)/, /^TLP:AMBER \(partner-intel\.doc\)/, /^IP sample \(192\.0\.2\.99\)/];

test('demo --locked-down --exit-when-done: every analysis reported, no configuration error, few Assemblyline calls per analysis', { timeout: 240_000 }, async (t) => {
  const { code, out } = await runDemo(process.execPath, [...DEMO_ARGS, '--locked-down'], t);
  assert.equal(code, 0, out);
  assert.match(out, /demo, locked down\n/, 'the demo says it runs locked down');
  assert.match(out, /no submission_customize/);
  assert.match(out, /SubmissionProfile = static; Metadata = sensor=mass; Priority = \(empty\); Classification = TLP:GREEN/);

  // The same honest summary as the normal demo: every row, the same outcomes and relations.
  assertSummary(out);

  // Exactly the scripted error reports, and none of them (or any other row) is a configuration refusal.
  const table = out.slice(out.search(/^sample\s+outcome/m), out.indexOf('MASS now holds'));
  const rows = table.split('\n').slice(2).filter((l) => /^\S/.test(l));
  const errorRows = rows.filter((l) => /\serror\s+-\s/.test(l));
  assert.equal(errorRows.length, SCRIPTED_ERRORS.length, errorRows.join('\n'));
  for (const row of errorRows) assert.ok(SCRIPTED_ERRORS.some((re) => re.test(row)), `unexpected error report: ${row}`);
  assert.doesNotMatch(table, CONFIGURATION_ERROR, 'no row names a profile, metadata, classification or quota');
  const totals = /MASS now holds (\d+) reports \((\d+) error reports\)/.exec(out);
  assert.ok(totals);
  assert.equal(Number(totals[2]), SCRIPTED_ERRORS.length, 'MASS holds only the scripted error reports');

  // The Assemblyline calls the simulator counted (daily API quota plus the exempt ingests), per scheduled analysis.
  const usage = /Ran locked down: .*?\. (\d+) of its 3000 daily API calls used, (\d+) Assemblyline calls in all \(ingests included\) for (\d+) scheduled analyses: ([\d.]+) per scheduled analysis\./.exec(out.replace(/\s+/g, ' '));
  assert.ok(usage, 'the demo prints the Assemblyline calls it spent');
  const [api, calls, analyses] = [Number(usage[1]), Number(usage[2]), Number(usage[3])];
  assert.equal(analyses, Number(totals[1]), 'one scheduled analysis per MASS report');
  assert.ok(api > 0 && api <= calls, `${api} counted calls of ${calls}`);
  assert.ok(calls / analyses < 15, `${calls} Assemblyline calls for ${analyses} scheduled analyses`);
});

test('simulate --locked-down --write-config: the written configuration passes doctor against the locked-down user', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'massal-locked-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ini = join(dir, 'sim.ini');
  // No StateDir made here: simulate makes the one its configuration names, so doctor passes with the file as written.
  const sim = startCli(['simulate', '--locked-down', '--mass-port', '0', '--al-port', '0', '--write-config', ini, '--state-dir', join(dir, 'state')]);
  t.after(() => {
    if (sim.child.exitCode === null) sim.child.kill('SIGKILL');
  });
  await waitFor(() => sim.output().includes('Bridge configuration written'), { timeoutMs: 30_000, what: 'the simulators to start' });
  assert.match(sim.output(), /locked down\s+roles .*\(no submission_customize\)/);
  const config = await readFile(ini, 'utf8');
  const assemblyline = /\[Assemblyline\]\n([^[]*)/.exec(config)?.[1] ?? '';
  assert.match(assemblyline, /^SubmissionProfile = static$/m);
  assert.match(assemblyline, /^Metadata = sensor=mass$/m);
  assert.match(assemblyline, /^Priority = $/m, 'Priority left empty: the profile decides');
  assert.match(assemblyline, /^Classification = TLP:GREEN$/m);

  // doctor exercises what ingest will do (whoami, the dry parameter check) and names each misconfiguration.
  const doctor = startCli(['doctor', '--config', ini]);
  t.after(() => {
    if (doctor.child.exitCode === null) doctor.child.kill('SIGKILL');
  });
  const code = await doctor.exited;
  assert.equal(code, 0, doctor.output());
  assert.match(doctor.output(), /submission profile 'static'/);

  // The user really is locked down: a priority the profile restricts is named with its fix.
  const priority = startCli(['doctor', '--config', ini, '--set', 'Assemblyline.Priority=150']);
  t.after(() => {
    if (priority.child.exitCode === null) priority.child.kill('SIGKILL');
  });
  assert.equal(await priority.exited, 1, priority.output());
  assert.match(priority.output(), /restricts priority/);

  sim.child.kill('SIGTERM');
  assert.equal(await sim.exited, 0);
});

test('demo --help and simulate --help document --locked-down', { timeout: 30_000 }, async (t) => {
  for (const command of ['demo', 'simulate']) {
    const help = startCli([command, '--help']);
    t.after(() => {
      if (help.child.exitCode === null) help.child.kill('SIGKILL');
    });
    assert.equal(await help.exited, 0);
    assert.match(help.output(), /^ {2}--locked-down {2,}\S.*\n(?: {30}\S.*\n)*/m, `${command} --help`);
    assert.match(help.output(), /submission_customize/, `${command} --help says what is locked down`);
  }
});
