import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  defaultMappingOptions,
  mapErrorReport,
  mapOwnSampleReport,
  mapSubmissionToReport,
  MASS_TAG_PATTERN,
  normaliseIoc,
  sanitizeTag,
  type MappingOptions,
  type ReportPlan,
} from '../../src/mapping/index.js';

const NOW = '2026-03-02T10:00:00.000Z';
const SHAS = Array.from({ length: 8 }, (_, i) => (i.toString(16) + 'f').repeat(32));
const ROOT = SHAS[0];

const sha = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...SHAS) }, { weight: 1, arbitrary: fc.string() });
const iocType = fc.constantFrom(
  'network.dynamic.ip',
  'network.dynamic.domain',
  'network.dynamic.uri',
  'network.static.ip',
  'network.static.domain',
  'network.static.uri',
);
const tagValue = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.domain(),
  fc.webUrl(),
  fc.constantFrom('EVIL.Example.com', '10.0.0.1', 'evil.example.com.', 'not a domain', '/rel', 'http://x y/'),
  fc.integer(),
  fc.string(),
  fc.constant(null),
);
const tag = fc.record({
  type: fc.oneof(iocType, fc.constantFrom('attribution.family', 'network.port', 'file.behavior', 'av.virus_name'), fc.string()),
  value: tagValue,
  safelisted: fc.oneof({ weight: 3, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.anything() }),
});
const heuristic = fc.option(
  fc.record({
    heur_id: fc.string(),
    name: fc.string(),
    score: fc.integer({ min: -1000, max: 3000 }),
    attack: fc.array(fc.record({ attack_id: fc.constantFrom('T1055', 'T1071', 'T1555', 'T1059.001', 'bad id!'), pattern: fc.string(), categories: fc.array(fc.string(), { maxLength: 3 }) }), { maxLength: 3 }),
    signature: fc.array(fc.record({ name: fc.string() }), { maxLength: 2 }),
  }),
);
const section = fc.record({
  title_text: fc.string(),
  body: fc.oneof(fc.constant(null), fc.string({ maxLength: 400 }), fc.jsonValue({ maxDepth: 3 })),
  body_format: fc.constantFrom('TEXT', 'KEY_VALUE', 'TABLE', 'JSON', 'MULTI'),
  depth: fc.integer({ min: 0, max: 4 }),
  heuristic,
  tags: fc.array(tag, { maxLength: 8 }),
});
const child = fc.record({
  sha256: sha,
  name: fc.string(),
  parent_relation: fc.option(fc.constantFrom('EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED', 'INFORMATION', 'dynamic', 'ROOT')),
  is_section_image: fc.boolean(),
});
const result = fc.record({
  // results of the root and of few other files, so extraction chains (and cycles) form often
  sha256: fc.oneof({ weight: 3, arbitrary: fc.constant(ROOT) }, { weight: 4, arbitrary: fc.constantFrom(...SHAS.slice(1, 5)) }, { weight: 1, arbitrary: sha }),
  service: fc.constantFrom('CAPE', 'Extract', 'YARA', 'FrankenStrings', 'ConfigExtractor'),
  extracted: fc.array(child, { maxLength: 4 }),
  supplementary: fc.array(child, { maxLength: 2 }),
  score: fc.integer({ min: -500, max: 3000 }),
  sections: fc.array(section, { maxLength: 4 }),
});
const { node: treeNode } = fc.letrec((tie) => ({
  node: fc.record({
    sha256: sha,
    name: fc.array(fc.string(), { maxLength: 2 }),
    type: fc.string(),
    size: fc.oneof(fc.nat(), fc.constant(null)),
    score: fc.integer({ min: -100, max: 3000 }),
    truncated: fc.boolean(),
    children: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant([]), fc.array(tie('node'), { maxLength: 3 })),
  }),
}));

type GenResult = { sha256: string; service: string; extracted: unknown[]; supplementary: unknown[]; score: number; sections: unknown[] };
const alDocument = fc
  .record({
    sid: fc.oneof(fc.constant('4Hc0QBr3BzVoArs3KbVHIW'), fc.string()),
    max_score: fc.oneof(fc.integer({ min: -100, max: 5000 }), fc.constant(undefined)),
    results: fc.array(result, { maxLength: 6 }),
    tree: fc.array(treeNode, { maxLength: 2 }),
    errors: fc.array(fc.record({ sha256: sha, service: fc.string(), message: fc.string() }), { maxLength: 2 }),
    envelope: fc.boolean(),
    services: fc.array(fc.string({ minLength: 40, maxLength: 200 }), { maxLength: 3 }),
  })
  .map((g) => {
    const results: Record<string, unknown> = {};
    (g.results as GenResult[]).forEach((r, i) => {
      results[`${r.sha256}.${r.service}.v4_7_0.c${i}${r.sections.length === 0 ? '.e' : ''}`] = {
        sha256: r.sha256,
        response: { service_name: r.service, service_version: '4.7.0', extracted: r.extracted, supplementary: r.supplementary },
        result: { score: r.score, sections: r.sections },
      };
    });
    // long service names exercise the additional_metadata size bound
    g.services.forEach((s, i) => {
      results[`${ROOT}.long${i}.v1.c1`] = { sha256: ROOT, response: { service_name: s, extracted: [] }, result: { score: 0, sections: [] } };
    });
    const errors: Record<string, unknown> = {};
    g.errors.forEach((e, i) => {
      errors[`${e.sha256}.${e.service}.v0.c0.e${i}`] = { sha256: e.sha256, response: { service_name: e.service, message: e.message } };
    });
    const file_tree: Record<string, unknown> = {};
    for (const n of g.tree as GenNode[]) file_tree[n.sha256] = toTree(n);
    const doc = { sid: g.sid, max_score: g.max_score, files: [{ name: 'x', sha256: ROOT, size: 1 }], results, errors, file_tree };
    return g.envelope ? { api_response: doc, api_error_message: '', api_status_code: 200 } : doc;
  });

type GenNode = { sha256: string; name: string[]; type: string; size: number | null; score: number; truncated: boolean; children: GenNode[] };
function toTree(n: GenNode): Record<string, unknown> {
  const children: Record<string, unknown> = {};
  for (const c of n.children) children[c.sha256] = toTree(c);
  return { ...n, children };
}

const options = fc.record({
  uiBaseUrl: fc.oneof(fc.constant('https://al.example.org'), fc.string({ maxLength: 600 })),
  bridgeVersion: fc.string({ maxLength: 200 }),
  tagKinds: fc.subarray(['verdict', 'family', 'attack', 'score', 'heuristic']),
  maxTags: fc.nat({ max: 8 }),
  tagPrefix: fc.oneof(fc.constant('al:'), fc.string({ maxLength: 10 })),
  maxSectionBody: fc.nat({ max: 300 }),
  extractedFiles: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  extractedRelations: fc.oneof(
    { weight: 3, arbitrary: fc.constant(['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED']) },
    { weight: 1, arbitrary: fc.subarray(['EXTRACTED', 'DYNAMIC', 'MEMDUMP', 'DOWNLOADED', 'INFORMATION']) },
  ),
  maxDepth: fc.nat({ max: 4 }),
  maxExtracted: fc.nat({ max: 6 }),
  networkIocs: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  staticIocs: fc.subarray(['ip', 'domain', 'uri'] as Array<'ip' | 'domain' | 'uri'>),
  maxIocs: fc.nat({ max: 6 }),
}) as fc.Arbitrary<MappingOptions>;

function metadataKeysValid(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(metadataKeysValid);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).every(([k, v]) => k !== '' && !k.includes('.') && !k.startsWith('$') && metadataKeysValid(v));
  }
  return true;
}

/** The invariants every plan must hold, whatever the input. */
function assertPlanInvariants(p: ReportPlan, opts: MappingOptions): void {
  for (const t of p.tags) assert.match(t, MASS_TAG_PATTERN);
  assert.equal(new Set(p.tags).size, p.tags.length);
  assert.ok(p.tags.length <= opts.maxTags);
  for (const k of Object.keys(p.jsonReportObjects)) assert.match(k, /^[A-Za-z0-9_-]+$/);
  assert.ok(metadataKeysValid(p.additionalMetadata));
  assert.ok(JSON.stringify(p.additionalMetadata).length < 4096, 'additional_metadata stays small');
  assert.doesNotThrow(() => JSON.stringify(p.jsonReportObjects));
  const files = p.related.filter((r) => r.kind === 'file');
  const iocs = p.related.filter((r) => r.kind !== 'file');
  assert.ok(files.length <= opts.maxExtracted);
  assert.ok(iocs.length <= opts.maxIocs);
  assert.ok(p.related.findIndex((r) => r.kind !== 'file') === -1 || p.related.slice(p.related.findIndex((r) => r.kind !== 'file')).every((r) => r.kind !== 'file'));
  const pairs = new Set<string>();
  const seenFiles = new Set<string>();
  for (const f of files) {
    if (f.kind !== 'file') continue;
    assert.ok(f.depth >= 1 && f.depth <= opts.maxDepth);
    assert.notEqual(f.sha256, f.parentSha256);
    assert.ok(!pairs.has(`${f.sha256}:${f.parentSha256}`));
    pairs.add(`${f.sha256}:${f.parentSha256}`);
    // parents before children
    if (f.depth > 1) assert.ok(seenFiles.has(f.parentSha256));
    // a nested file names the file item it needs; a child of the analysed sample needs none
    assert.equal(f.dependsOn, f.depth > 1 ? `file:${f.parentSha256}` : undefined);
    seenFiles.add(f.sha256);
  }
  for (const i of iocs) if (i.dependsOn !== undefined) assert.ok(seenFiles.has(i.dependsOn.replace(/^file:/, '')) && i.dependsOn === `file:${i.sourceSha256}`);
  const iocKeys = new Set<string>();
  for (const i of iocs) {
    assert.equal(normaliseIoc(i.kind, i.value), i.value);
    assert.ok(!iocKeys.has(i.key));
    iocKeys.add(i.key);
  }
}

test('property: any JSON whatsoever maps without throwing and keeps the invariants', () => {
  fc.assert(
    fc.property(fc.anything(), fc.anything(), fc.anything(), fc.anything(), options, (full, summary, message, root, opts) => {
      const p = mapSubmissionToReport({ full, summary, message, cacheHit: false, rootSha256: root as string, now: NOW }, opts);
      assertPlanInvariants(p, defaultMappingOptions(opts));
      const own = mapOwnSampleReport({ full, sha256: root as string, parentSid: message as string, now: NOW }, opts);
      assert.deepEqual(own.related, []);
      assertPlanInvariants(own, defaultMappingOptions(opts));
    }),
    { numRuns: 300 },
  );
});

test('property: the mapping entry points survive garbage in every argument', () => {
  fc.assert(
    fc.property(fc.anything(), fc.anything(), (input, opts) => {
      const p = mapSubmissionToReport(input as never, opts as never);
      for (const t of p.tags) assert.match(t, MASS_TAG_PATTERN);
      mapOwnSampleReport(input as never, opts as never);
      const e = mapErrorReport(input as never);
      assert.equal(typeof e.errorMessage, 'string');
      assert.ok(metadataKeysValid(e.additionalMetadata));
    }),
    { numRuns: 300 },
  );
});

test('property: AL-shaped documents keep caps, never relate safelisted IOCs or supplementary-only files', () => {
  fc.assert(
    fc.property(alDocument, options, fc.boolean(), (doc, opts, withSummary) => {
      const inner = ('api_response' in doc ? doc.api_response : doc) as Record<string, any>;
      const summary = withSummary ? { tags: { ioc: { 'network.dynamic.ip': [['203.0.113.9', 'info', true, 'TLP:CLEAR']] } } } : undefined;
      const p = mapSubmissionToReport({ full: doc, summary, cacheHit: true, rootSha256: ROOT, now: NOW }, opts);
      assertPlanInvariants(p, opts);
      assert.equal((p.additionalMetadata.assemblyline as Record<string, unknown>).cache_hit, true);

      const safelisted = new Set<string>(withSummary ? ['ip:203.0.113.9'] : []);
      const extracted = new Set<string>();
      const supplementary = new Set<string>();
      for (const r of Object.values(inner.results) as any[]) {
        for (const s of r.result.sections) {
          for (const t of s.tags) {
            const kind = /^network\.(?:dynamic|static)\.(ip|domain|uri)$/.exec(t.type)?.[1] as 'ip' | 'domain' | 'uri' | undefined;
            if (!kind || t.safelisted !== true || (typeof t.value !== 'string' && typeof t.value !== 'number')) continue;
            const v = normaliseIoc(kind, String(t.value));
            if (v !== null) safelisted.add(`${kind}:${v}`);
          }
        }
        for (const e of r.response.extracted ?? []) if (!e.is_section_image) extracted.add(String(e.sha256));
        for (const e of r.response.supplementary ?? []) supplementary.add(String(e.sha256));
      }
      for (const item of p.related) {
        if (item.kind === 'file') {
          assert.ok(!(supplementary.has(item.sha256) && !extracted.has(item.sha256)), 'supplementary file related');
          assert.ok(opts.extractedRelations.includes(item.parentRelation));
        } else {
          assert.ok(!safelisted.has(item.key), `safelisted IOC ${item.key} related`);
          if (item.tagType.startsWith('network.static.')) assert.ok(opts.staticIocs.includes(item.kind));
        }
      }
      if (!opts.networkIocs) assert.ok(p.related.every((r) => r.kind === 'file'));
      if (!opts.extractedFiles) assert.ok(p.related.every((r) => r.kind !== 'file'));
    }),
    { numRuns: 400 },
  );
});

test('property: sanitizeTag output always matches MASS_TAG_PATTERN and is idempotent', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (raw) => {
      const t = sanitizeTag(raw);
      if (t === null) return;
      assert.match(t, MASS_TAG_PATTERN);
      assert.equal(sanitizeTag(t), t);
    }),
    { numRuns: 1000 },
  );
});
