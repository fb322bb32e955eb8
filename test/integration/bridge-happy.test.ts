import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportsBySample, startHarness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const SCENARIO = {
  score: 1000,
  families: ['AGENTTESLA'],
  extracted: [{ name: 'stage2.dll', relation: 'EXTRACTED', scenario: { score: 500, extracted: [{ name: 'stage3.bin', relation: 'DYNAMIC' }] } }],
  iocs: [
    { type: 'network.dynamic.ip', value: '203.0.113.7', safelisted: false },
    { type: 'network.dynamic.domain', value: 'evil.example.com', safelisted: false },
    { type: 'network.dynamic.uri', value: 'http://evil.example.com/payload.bin', safelisted: false },
  ],
};

test('a fresh analysis ends with one report, the extracted files and IOCs as samples, one relation of each kind', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const root = await h.seedFile('invoice.exe', `MZ dropper\nAL-SIM: ${JSON.stringify(SCENARIO)}\n`);
  const updates: string[] = [];
  h.bridge.on('job', (u) => updates.push(`${u.job.id}:${u.event.type}`));
  h.bridge.start();

  // Done when MASS has nothing pending for us and every claimed job is reported (including echo-backs of the extracted files).
  await waitFor(
    async () => {
      const s = await h.massState();
      return s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 && s.reports.length >= 3 ? s : null;
    },
    { timeoutMs: 30_000, what: 'all reports on MASS' },
  );
  const state = await h.massState();
  const byRoot = reportsBySample(state).get(root.url) ?? [];
  assert.equal(byRoot.length, 1, 'exactly one report on the analysed sample');
  const report = byRoot[0];
  assert.equal(report.error_message, null);
  assert.ok(report.tags.some((tag) => tag.startsWith('al:')), `report tags ${report.tags.join(',')}`);
  const al = report.additional_metadata.assemblyline as Record<string, unknown>;
  assert.equal(typeof al.bridge_job, 'string');

  const samples = await h.admin.findSamples({});
  const byName = (n: string) => samples.find((s) => s.file_names?.includes(n));
  const stage2 = byName('stage2.dll');
  const stage3 = byName('stage3.bin');
  assert.ok(stage2 && stage3, 'extracted files are MASS samples');
  assert.ok(stage2.tags.includes('al:extracted'));
  const ip = samples.find((s) => s.ip_address === '203.0.113.7');
  const domain = samples.find((s) => s.domain === 'evil.example.com');
  const uri = samples.find((s) => s.uri === 'http://evil.example.com/payload.bin');
  assert.ok(ip && domain && uri, 'IOCs are MASS samples');

  const rel = (cls: string, sample: string, other: string) =>
    state.relations.filter((r) => r._cls.includes(cls) && r.sample === sample && r.other === other).length;
  assert.equal(rel('DroppedBy', stage2.url, root.url), 1);
  assert.equal(rel('DroppedBy', stage3.url, stage2.url), 1);
  assert.equal(rel('ContactedBy', ip.url, root.url), 1);
  assert.equal(rel('ResolvedBy', domain.url, root.url), 1);
  assert.equal(rel('RetrievedBy', uri.url, root.url), 1);
  assert.equal(state.relations.length, 5, 'no duplicate relations');

  // Echo-back: the extracted files came back as work and were answered from the parent submission, with no new ingest.
  for (const s of [stage2, stage3]) {
    const reports = reportsBySample(state).get(s.url) ?? [];
    assert.equal(reports.length, 1, `one report for echoed ${s.file_names?.[0]}`);
    assert.equal((reports[0].additional_metadata.assemblyline as Record<string, unknown>).answered_from_parent_submission, true);
  }
  assert.equal(h.al.stats().ingests, 1, 'only the root file was ingested');
  assert.ok(updates.some((u) => u.endsWith(':report-sent')));
});
