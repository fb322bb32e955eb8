import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SubmissionFull } from '../../src/assemblyline/types.js';
import { derivedTlp, tlpLevelOf, withClassification } from '../../src/mapping/classification.js';

test('TLP markings map to MASS tlp_level; other markings do not map', () => {
  const cases: Array<[string, number | null]> = [
    ['TLP:CLEAR', 0], ['TLP:WHITE', 0], ['tlp:c', 0], ['TLP:GREEN', 1], ['TLP:G', 1], ['TLP:AMBER', 2], ['TLP:AMBER+STRICT', 2],
    ['TLP:A+S', 2], ['TLP:RED', 3], ['TLP:AMBER//REL TO CCCS', 2], ['UNCLASSIFIED', null], ['SECRET//NOFORN', null], ['', null],
  ];
  for (const [marking, level] of cases) assert.equal(tlpLevelOf(marking), level, marking);
});

const full = (sub: string, results: Array<{ c: string; extracted?: string[] }>): SubmissionFull =>
  ({
    classification: sub,
    results: Object.fromEntries(results.map((r, i) => [`k${i}`, { classification: r.c, response: { extracted: (r.extracted ?? []).map((c) => ({ name: 'f', sha256: 'x', classification: c })) } }])),
  }) as unknown as SubmissionFull;

test('derived samples get the widest of the configured level and every marking of the submission', () => {
  assert.deepEqual(derivedTlp(full('TLP:CLEAR', [{ c: 'TLP:CLEAR' }]), 0), { ok: true, tlpLevel: 0, classification: 'TLP:CLEAR' });
  assert.deepEqual(derivedTlp(full('TLP:CLEAR', [{ c: 'TLP:CLEAR' }]), 1), { ok: true, tlpLevel: 1, classification: 'TLP:CLEAR' });
  assert.deepEqual(derivedTlp(full('TLP:GREEN', [{ c: 'TLP:GREEN', extracted: ['TLP:AMBER+STRICT'] }]), 0), { ok: true, tlpLevel: 2, classification: 'TLP:AMBER+STRICT' });
  assert.deepEqual(derivedTlp(full('TLP:GREEN', [{ c: 'TLP:RED' }]), 0), { ok: true, tlpLevel: 3, classification: 'TLP:RED' });
  const odd = derivedTlp(full('TLP:GREEN', [{ c: 'PROTECTED B' }]), 0);
  assert.equal(odd.ok, false);
  assert.match(odd.ok ? '' : odd.note, /'PROTECTED B', which has no TLP equivalent/);
});

test('the report records the most restrictive marking beside what the mapping put there', () => {
  const md = withClassification({ assemblyline: { sid: 's1' }, other: 1 }, full('TLP:GREEN', [{ c: 'TLP:AMBER' }]));
  assert.deepEqual(md, { assemblyline: { sid: 's1', classification: 'TLP:AMBER' }, other: 1 });
});
