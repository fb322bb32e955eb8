/** `npm run demo` as a user runs it, with --exit-when-done: it must settle and print an honest summary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

test('demo --exit-when-done reports every seeded sample exactly once and exits 0', { timeout: 240_000 }, async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'demo', '--exit-when-done', '--api-port', '0'], {
    env: { ...process.env, NO_PRETTY_LOGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(code, 0, out);

  const row = (label: string) => out.split('\n').find((l) => l.startsWith(label)) ?? '';
  assert.match(row('dropper (invoice_2026-03.exe)'), /\breport\s+2000\s+5\b/, 'the dropper: a report, max score 2000, 5 related samples');
  assert.match(row('oversize'), /\berror\b.*too large/);
  assert.match(row('TLP:AMBER'), /\berror\b.*not visible/);
  assert.match(row('IP sample'), /\berror\b.*not a file sample/);
  assert.match(row('skipped once'), /\breport\b.*never_drop; 2 ingests/);
  assert.match(row('lost notification'), /\breport\b.*found by the reconciler/);
  assert.match(row('stage2.dll (extracted'), /\breport\b.*answered from parent submission/);
  assert.match(out, /pending scheduled analyses: 0\./);
  // The two analyses of the dropper run concurrently: whichever reaches Assemblyline second is the cache hit.
  const dropperRows = out.split('\n').filter((l) => l.startsWith('dropper'));
  assert.equal(dropperRows.length, 2, 'the dropper was analysed twice');
  assert.equal(dropperRows.filter((l) => /cache hit/.test(l)).length, 1, 'exactly one of the two analyses is an Assemblyline cache hit');
  // The dropper analysed twice must not double its relations: 3 files dropped-by, 2 IPs, 2 domains, 2 URIs.
  const relations = /(\d+) relations: (.*);/.exec(out);
  assert.ok(relations, 'the relation totals are printed');
  const byKind = Object.fromEntries(relations[2].split(', ').map((p) => { const [k, n] = p.split(' '); return [k, Number(n)]; }));
  assert.deepEqual(byKind, { DroppedBySampleRelation: 3, ContactedBySampleRelation: 2, ResolvedBySampleRelation: 2, RetrievedBySampleRelation: 2 });
  const reports = /MASS now holds (\d+) reports \((\d+) error reports\)/.exec(out);
  assert.ok(reports, 'the final MASS totals are printed');
  const progress = [...out.matchAll(/(\d+)\/(\d+) reported/g)].at(-1);
  assert.ok(progress, 'the progress line is printed');
  assert.equal(progress[1], progress[2], 'every job is reported');
  assert.equal(Number(reports[1]), Number(progress[2]), 'one MASS report per scheduled analysis');
});
