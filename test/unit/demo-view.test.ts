import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, renderSummary, wrap, type DemoRow } from '../../src/commands/demo-view.js';

const progress = { reported: 14, total: 15, done: 11, failed: 3, held: 1, inFlight: 1, waiting: 1 };
const rows: DemoRow[] = [
  { sample: 'wupdsvc.exe (extracted, sent back by MASS)', outcome: 'report', score: '0', related: '0', notes: ['answered from parent submission, no new ingest'] },
  { sample: 'TLP:AMBER (partner-intel.doc)', outcome: 'error', score: '-', related: '0', notes: ['sample not visible to this analysis instance (MASS answered 404: TLP above 0, or deleted)'] },
  { sample: 'clean pdf (brochure.pdf)', outcome: 'report', score: '0', related: '0', notes: [] },
];

test('the progress line never reaches the last column, at any width', () => {
  for (let width = 20; width <= 200; width++) {
    const line = progressLine(progress, width);
    assert.ok(line.length <= width - 1, `${width}: '${line}'`);
    assert.match(line, /14\/15 reported/);
  }
  assert.match(progressLine(progress, 200), /held 1$/, 'a wide terminal shows every detail');
});

test('the summary fits the width and keeps every word of every note', () => {
  for (const width of [40, 60, 80, 100, 120, 200]) {
    const lines = renderSummary(rows, width);
    for (const l of lines) assert.ok(l.length < width, `${width}: '${l}' (${l.length})`);
    const text = lines.join(' ').replace(/\s+/g, ' ');
    for (const r of rows) for (const n of r.notes) assert.ok(text.includes(n), `${width}: the note '${n}' is complete`);
  }
});

test('wrap breaks at spaces, and hard only inside a word longer than the line', () => {
  assert.deepEqual(wrap('one two three four', 9), ['one two', 'three', 'four']);
  assert.deepEqual(wrap('abcdefghij kl', 4), ['abcd', 'efgh', 'ij', 'kl']);
  assert.deepEqual(wrap('', 10), []);
});
