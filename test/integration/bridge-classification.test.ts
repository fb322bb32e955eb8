/** Classification on the way back: derived samples never get a wider TLP than their results; the report records the marking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MassClient } from '../../src/mass/types.js';
import { reportsBySample, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const SCENARIO = {
  score: 1000,
  extracted: [{ name: 'stage2.dll', relation: 'EXTRACTED', scenario: { score: 500, classification: 'TLP:RED' } }],
  iocs: [{ type: 'network.dynamic.ip', value: '203.0.113.9', safelisted: false }],
};

function recordTlp(levels: number[]): (mass: MassClient) => MassClient {
  return (mass) => ({
    ...mass,
    submitFileSample: (req: Parameters<MassClient['submitFileSample']>[0], ...rest: unknown[]) => {
      levels.push(req.tlpLevel ?? -1);
      return (mass.submitFileSample as (...a: unknown[]) => ReturnType<MassClient['submitFileSample']>)(req, ...rest);
    },
    submitIPSample: (value: string, opts: Parameters<MassClient['submitIPSample']>[1], ...rest: unknown[]) => {
      levels.push(opts?.tlpLevel ?? -1);
      return (mass.submitIPSample as (...a: unknown[]) => ReturnType<MassClient['submitIPSample']>)(value, opts, ...rest);
    },
  });
}

async function rootReport(h: Harness, url: string) {
  await waitFor(async () => {
    const s = await h.massState();
    return s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 && (reportsBySample(s).get(url)?.length ?? 0) >= 1 ? s : null;
  }, { timeoutMs: 30_000, what: 'the report of the root sample' });
  return (reportsBySample(await h.massState()).get(url) ?? [])[0];
}

test('a TLP:RED result makes every derived sample TLP red (3) even when RelatedTLP is 0; the report records TLP:RED', { timeout: 60_000 }, async (t) => {
  const levels: number[] = [];
  const h = await startHarness(t, { wrapMass: recordTlp(levels), config: { assemblyline: { classification: 'TLP:GREEN' }, report: { relatedTlp: 0 } } });
  const root = await h.seedFile('red.exe', `MZ red\nAL-SIM: ${JSON.stringify(SCENARIO)}\n`);
  h.bridge.start();
  const report = await rootReport(h, root.url);
  assert.equal(report.error_message, null);
  assert.equal((report.additional_metadata.assemblyline as Record<string, unknown>).classification, 'TLP:RED');
  assert.ok(levels.length >= 2, `derived samples created: ${levels.length}`);
  assert.deepEqual([...new Set(levels)], [3]);
});

test('a marking with no TLP equivalent: no derived samples, a note in the job history, the report still sent with the marking', { timeout: 60_000 }, async (t) => {
  const levels: number[] = [];
  const h = await startHarness(t, { wrapMass: recordTlp(levels), al: { classificationLevels: ['UNCLASSIFIED', 'SECRET'] } });
  const root = await h.seedFile('secret.exe', `MZ secret\nAL-SIM: ${JSON.stringify({ ...SCENARIO, extracted: [{ name: 'x.dll', relation: 'EXTRACTED' }] })}\n`);
  h.bridge.start();
  const report = await rootReport(h, root.url);
  assert.equal(report.error_message, null);
  assert.equal((report.additional_metadata.assemblyline as Record<string, unknown>).classification, 'UNCLASSIFIED');
  assert.deepEqual(levels, [], 'nothing derived was created on MASS');
  const job = h.ledger.list({ limit: 10 }).jobs.find((j) => j.sampleUrl === root.url);
  assert.ok(job);
  const note = h.ledger.events(job.id).find((e) => e.type === 'related-skipped');
  assert.match(note?.message ?? '', /'UNCLASSIFIED', which has no TLP equivalent/);
});
