/** `npm run demo` as a user runs it, with --exit-when-done: it must settle and print an honest, deterministic summary. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireScript, scriptArgs, shQuote } from '../helpers/pty.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const ESC = String.fromCharCode(27);
/** Terminal control sequences (CSI), such as the erase-line that follows each redraw. */
const CSI = new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, 'g');
const DEMO_ARGS = ['--import', 'tsx', CLI, 'demo', '--exit-when-done', '--api-port', '0'];

/** The summary rows in the order every run prints them. */
const ROW_ORDER = [
  'dropper (invoice_2026-03.exe)',
  'dropper again (scheduled twice)',
  'macro document (quote.docm)',
  'beacon (beacon.exe)',
  'clean pdf (brochure.pdf)',
  'text note (notes.txt)',
  'service errors (broken.js)',
  'skipped once (busy-day.bin)',
  'lost notification (lost.bin)',
  'oversize (disk-image.iso)',
  'TLP:AMBER (partner-intel.doc)',
  'IP sample (192.0.2.99)',
  'macro.vbs (extracted, sent back by MASS)',
  'stage2.dll (extracted, sent back by MASS)',
  'wupdsvc.exe (extracted, sent back by MASS)',
];

function runDemo(command: string, args: string[], t: { after(fn: () => unknown): void }): Promise<{ code: number | null; out: string }> {
  const child = spawn(command, args, { env: { ...process.env, NO_PRETTY_LOGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((res) => child.on('exit', (code) => res({ code, out })));
}

/** The summary: each row's text with the lines of its notes (indented continuation lines) joined on. */
function summaryRows(out: string): Array<{ label: string; text: string }> {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => /^sample\s+outcome\s+score\s+related/.test(l));
  assert.ok(start >= 0, 'the summary table is printed');
  const rows: Array<{ label: string; text: string }> = [];
  for (const line of lines.slice(start + 2)) {
    if (line.trim() === '') break;
    if (/^\s/.test(line)) rows[rows.length - 1].text += ` ${line.trim()}`;
    else rows.push({ label: ROW_ORDER.find((l) => line.startsWith(l)) ?? line, text: line });
  }
  return rows;
}

function assertSummary(out: string): void {
  const rows = summaryRows(out);
  assert.deepEqual(rows.map((r) => r.label), ROW_ORDER, 'every analysis has one row, in a fixed order');
  const row = (label: string) => rows.find((r) => r.label === label)!.text;
  assert.match(row('dropper (invoice_2026-03.exe)'), /\breport\s+2000\s+5\b/, 'the dropper: a report, max score 2000, 5 related samples');
  assert.doesNotMatch(row('dropper (invoice_2026-03.exe)'), /cache hit/, 'the first scheduling of the dropper is analysed');
  assert.match(row('dropper again (scheduled twice)'), /\breport\s+2000\s+5\s+cache hit/, 'the second scheduling is the cache hit');
  assert.match(row('service errors (broken.js)'), /\breport\s+300\b.*report lists 1 service error: MetaDefender FAIL_RECOVERABLE \(TASK PRE-EMPTED\)/);
  assert.match(row('oversize (disk-image.iso)'), /\berror\b.*too large/);
  assert.match(row('TLP:AMBER (partner-intel.doc)'), /\berror\b.*not visible/);
  assert.match(row('IP sample (192.0.2.99)'), /\berror\b.*not a file sample/);
  assert.match(row('skipped once (busy-day.bin)'), /\breport\b.*never_drop; 2 ingests/);
  assert.match(row('lost notification (lost.bin)'), /\breport\b.*found by the reconciler/);
  assert.match(row('stage2.dll (extracted, sent back by MASS)'), /\breport\b.*answered from parent submission/);

  const totals = out.slice(out.indexOf('MASS now holds')).split('\n\n')[0].replace(/\s+/g, ' ');
  assert.equal(out.split('MASS now holds').length, 2, 'the final totals are printed once');
  assert.match(totals, /pending scheduled analyses: 0\./);
  // The dropper analysed twice must not double its relations: 3 files dropped-by, 2 IPs, 2 domains, 2 URIs.
  const relations = /(\d+) relations: (.*);/.exec(totals);
  assert.ok(relations, 'the relation totals are printed');
  assert.equal(relations[2], 'DroppedBySampleRelation 3, ContactedBySampleRelation 2, ResolvedBySampleRelation 2, RetrievedBySampleRelation 2');
  const reports = /MASS now holds (\d+) reports \((\d+) error reports\)/.exec(totals);
  assert.ok(reports, 'the final MASS totals are printed');
  const progress = [...out.matchAll(/(\d+)\/(\d+) reported/g)].at(-1);
  assert.ok(progress, 'the progress line is printed');
  assert.equal(progress[1], progress[2], 'every job is reported');
  assert.equal(Number(reports[1]), Number(progress[2]), 'one MASS report per scheduled analysis');
}

test('demo --exit-when-done, output to a pipe: plain progress lines, each once, and one deterministic summary', { timeout: 240_000 }, async (t) => {
  const { code, out } = await runDemo(process.execPath, DEMO_ARGS, t);
  assert.equal(code, 0, out);
  assert.ok(!out.includes('\r') && !out.includes(ESC), 'no terminal control characters in a pipe');
  const progress = out.split('\n').filter((l) => / reported /.test(l));
  assert.ok(progress.length >= 1);
  for (let i = 1; i < progress.length; i++) assert.notEqual(progress[i], progress[i - 1], 'a progress line is not repeated');
  assertSummary(out);
});

test('demo --exit-when-done on an 80-column terminal: no line wider than the terminal, one progress line redrawn in place', { timeout: 240_000 }, async (t) => {
  requireScript();
  const command = `stty cols 80 rows 24; exec ${[process.execPath, ...DEMO_ARGS].map(shQuote).join(' ')}`;
  const { code, out: raw } = await runDemo('script', scriptArgs(command), t);
  assert.equal(code, 0, raw);
  const out = raw.replace(/\r\n/g, '\n');
  // Every redraw of the progress line starts with \r and clears the rest of the line; none wraps.
  const physical = out.split('\n');
  for (const line of physical) {
    for (const segment of line.split('\r')) {
      const visible = segment.replace(CSI, '');
      assert.ok(visible.length <= 80, `a line fits 80 columns: '${visible}' has ${visible.length}`);
    }
  }
  assert.equal(physical.filter((l) => / reported /.test(l)).length, 1, 'the progress bar occupies one line, however often it is redrawn');
  const plain = physical.map((l) => l.split('\r').at(-1)!.replace(CSI, '')).join('\n');
  assertSummary(plain);
});
