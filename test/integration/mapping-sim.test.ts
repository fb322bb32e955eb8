/** The mapping over what the Assemblyline simulator produces for the demo's scripted dropper scenario. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import { demoSamples } from '../../src/commands/demo-samples.js';
import { silentLogger } from '../../src/log.js';
import { defaultMappingOptions, mapSubmissionToReport, MASS_TAG_PATTERN } from '../../src/mapping/index.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { waitFor } from '../helpers/wait.js';

test('the dropper scenario maps to the expected verdict, tags, extracted files and IOC relations', { timeout: 30_000 }, async (t) => {
  const sim = await createAssemblylineSimulator({ apiKey: 'bridgekey:mapping-test', analysisDelayMs: 20, logger: silentLogger() });
  t.after(() => sim.close());
  const url = await sim.listen();
  const al = createAssemblylineClient({ url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey });
  t.after(() => al.close());

  const dropper = demoSamples(1024).find((s) => s.label === 'dropper')!;
  const content = Buffer.from(dropper.content as string);
  const rootSha256 = createHash('sha256').update(content).digest('hex');
  const { ingestId } = await al.ingest({ name: dropper.fileName, body: content, metadata: { test: 'mapping' }, params: { priority: 100 }, notificationQueue: 'mapping-test' });
  const [message] = await waitFor(async () => {
    const m = await al.getMessages('mapping-test', 10);
    return m.length ? m : null;
  }, { what: 'the notification' });
  assert.equal(message.ingest_id, ingestId);
  const full = await al.getSubmissionFull(message.submission.sid);
  const summary = await al.getSubmissionSummary(message.submission.sid);
  assert.ok(full && summary);

  const plan = mapSubmissionToReport({ full, summary, message, cacheHit: false, rootSha256, now: '2026-11-23T00:00:00Z' }, defaultMappingOptions({ uiBaseUrl: url }));
  assert.equal(plan.verdict, 'malicious');
  assert.equal(plan.maxScore, 2000, 'max_score is the highest per-file total (stage2.dll)');
  for (const tag of plan.tags) assert.match(tag, MASS_TAG_PATTERN);
  assert.ok(plan.tags.includes('al:verdict:malicious'), plan.tags.join(' '));
  assert.ok(plan.tags.some((tag) => /^al:family:agenttesla$/i.test(tag)), plan.tags.join(' '));
  assert.ok(plan.tags.some((tag) => /^al:attack:t1055$/i.test(tag)), plan.tags.join(' '));
  assert.deepEqual(Object.keys(plan.jsonReportObjects).sort(), ['al_results', 'al_summary']);

  const files = plan.related.filter((r) => r.kind === 'file');
  assert.deepEqual(files.map((f) => [f.name, f.parentRelation, f.parentSha256 === rootSha256]).sort(), [
    ['stage2.dll', 'EXTRACTED', true],
    ['wupdsvc.exe', 'DYNAMIC', true],
  ]);
  assert.ok(!plan.related.some((r) => r.kind === 'file' && r.name === 'cape_report.zip'), 'supplementary files are not samples');
  const iocs = plan.related.flatMap((r) => (r.kind === 'file' ? [] : [`${r.relation} ${r.value}`])).sort();
  assert.deepEqual(iocs, [
    'contacted-by 203.0.113.45',
    'resolved-by update.example.com',
    'retrieved-by http://update.example.com/payload.bin?id=7',
  ]);

  const withStatic = mapSubmissionToReport({ full, summary, cacheHit: false, rootSha256, now: '2026-11-23T00:00:00Z' }, defaultMappingOptions({ uiBaseUrl: url, staticIocs: ['uri'] }));
  assert.ok(withStatic.related.some((r) => r.kind === 'uri' && r.value === 'http://c2.example.net/gate.php'), 'the static C2 URI of stage2.dll only with StaticIOCs = uri');
});
