/**
 * [Report] IOCMinVerdict: each verdict level relates exactly the IOCs at or above it; the report counts and
 * lists the IOCs the threshold left out; the MaxIOCs cap applies to the IOCs kept, not to the ones left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultMappingOptions, mapSubmissionToReport, type MappingOptions, type RelatedItem } from '../../src/mapping/index.js';
import { applyIocThreshold, iocLevels } from '../../src/mapping/ioc-threshold.js';

const ROOT = '0a'.repeat(32);
const NOW = '2026-01-01T00:00:00.000Z';

/** One section per IOC; the section's heuristic score gives the tag its summary level (AL h_type). */
function section(score: number | null, type: string, value: string) {
  return {
    title_text: `${type} ${value}`,
    body: '',
    body_format: 'TEXT',
    depth: 0,
    heuristic: score === null ? null : { heur_id: `H.${score}`, name: `h${score}`, score, attack: [] },
    tags: [{ type, value, safelisted: false }],
  };
}

const full = {
  sid: 'S-threshold',
  files: [{ name: 'root.exe', sha256: ROOT, size: 10 }],
  results: {
    [`${ROOT}.CAPE.v4_7_0.c0`]: {
      sha256: ROOT,
      response: { service_name: 'CAPE', service_version: '4.7.0', extracted: [], supplementary: [] },
      result: {
        score: 2500,
        sections: [
          section(1000, 'network.dynamic.ip', '203.0.113.1'), // malicious
          section(500, 'network.dynamic.domain', 'suspicious.example.net'), // suspicious
          section(10, 'network.dynamic.uri', 'http://info.example.org/x'), // info
          section(null, 'network.dynamic.ip', '203.0.113.2'), // no heuristic: info
          section(-100, 'network.dynamic.domain', 'safe.example.com'), // safe
          // seen twice, at info and at malicious: counts at its highest level
          section(0, 'network.dynamic.ip', '203.0.113.3'),
          section(1500, 'network.dynamic.ip', '203.0.113.3'),
        ],
      },
    },
  },
  errors: {},
  file_tree: {},
};

function plan(opts: Partial<MappingOptions>) {
  return mapSubmissionToReport({ full, cacheHit: false, rootSha256: ROOT, now: NOW }, defaultMappingOptions(opts));
}
const iocKeys = (related: RelatedItem[]) => related.filter((r) => r.kind !== 'file').map((r) => r.key).sort();
const belowOf = (p: ReturnType<typeof plan>) =>
  ((p.jsonReportObjects.al_summary as Record<string, unknown>).related as Record<string, unknown>).iocs_below_min_verdict as
    | { min_verdict: string; count: number; by_level: Record<string, number>; values: string[] }
    | undefined;

const MALICIOUS = ['ip:203.0.113.1', 'ip:203.0.113.3'];
const SUSPICIOUS = [...MALICIOUS, 'domain:suspicious.example.net'];
const INFO = [...SUSPICIOUS, 'uri:http://info.example.org/x', 'ip:203.0.113.2'];
const SAFE = ['domain:safe.example.com'];

test('without a threshold every IOC is related (the mapping default)', () => {
  assert.deepEqual(iocKeys(plan({}).related), [...INFO, ...SAFE].sort());
  assert.equal(belowOf(plan({})), undefined);
});

test('IOCMinVerdict = info relates info, suspicious and malicious IOCs; the safe one is left out and counted', () => {
  const p = plan({ iocMinVerdict: 'info' });
  assert.deepEqual(iocKeys(p.related), [...INFO].sort());
  assert.deepEqual(belowOf(p), { min_verdict: 'info', count: 1, by_level: { malicious: 0, suspicious: 0, info: 0, safe: 1 }, values: SAFE });
});

test('IOCMinVerdict = suspicious relates suspicious and malicious IOCs only', () => {
  const p = plan({ iocMinVerdict: 'suspicious' });
  assert.deepEqual(iocKeys(p.related), [...SUSPICIOUS].sort());
  const below = belowOf(p)!;
  assert.equal(below.count, 3);
  assert.deepEqual(below.by_level, { malicious: 0, suspicious: 0, info: 2, safe: 1 });
  assert.deepEqual([...below.values].sort(), ['uri:http://info.example.org/x', 'ip:203.0.113.2', ...SAFE].sort());
  assert.ok(p.notes.includes('3 network IOC(s) not reported: their verdict is below IOCMinVerdict suspicious'));
});

test('IOCMinVerdict = malicious relates the malicious IOCs only (an IOC counts at its highest level)', () => {
  const p = plan({ iocMinVerdict: 'malicious' });
  assert.deepEqual(iocKeys(p.related), [...MALICIOUS].sort());
  assert.deepEqual(belowOf(p)?.by_level, { malicious: 0, suspicious: 1, info: 2, safe: 1 });
});

test('MaxIOCs caps the IOCs kept by the threshold: IOCs left out never take a place', () => {
  const p = plan({ iocMinVerdict: 'malicious', maxIocs: 2 });
  assert.deepEqual(iocKeys(p.related), [...MALICIOUS].sort(), 'both malicious IOCs fit although four IOCs came before them');
  const capped = plan({ iocMinVerdict: 'suspicious', maxIocs: 1 });
  assert.equal(iocKeys(capped.related).length, 1);
  assert.ok(capped.notes.includes('2 network IOC(s) not reported: MaxIOCs is 1'));
  const stats = (capped.jsonReportObjects.al_summary as Record<string, Record<string, unknown>>).related;
  assert.equal(stats.iocs, 1);
  assert.equal(stats.iocs_cut_by_max_iocs, 2);
});

test('iocLevels keeps the highest level of an IOC and normalises the value like the plan does', () => {
  const levels = iocLevels([
    { type: 'network.dynamic.domain', value: 'EVIL.example.COM', level: 'info' },
    { type: 'network.static.domain', value: 'evil.example.com', level: 'suspicious' },
    { type: 'attribution.family', value: 'x', level: 'malicious' },
  ]);
  assert.deepEqual([...levels], [['domain\u0000evil.example.com', 'suspicious']]);
  const item: RelatedItem = { kind: 'domain', key: 'domain:evil.example.com', value: 'evil.example.com', tagType: 'network.dynamic.domain', sourceSha256: ROOT, relation: 'resolved-by' };
  const stats = { files: 0, filesCutByMaxExtracted: 0, filesBeyondMaxDepth: 0, filesWithOtherRelation: 0, filesTooLarge: 0, filesUnderOmittedParent: 0, iocs: 1, iocsCutByMaxIocs: 0, iocsSafelisted: 0, iocsInvalid: 0 };
  assert.equal(applyIocThreshold({ items: [item], notes: [], stats }, levels, 'suspicious', 10).plan.items.length, 1);
  assert.equal(applyIocThreshold({ items: [item], notes: [], stats }, levels, 'malicious', 10).outcome.leftOut, 1);
});
