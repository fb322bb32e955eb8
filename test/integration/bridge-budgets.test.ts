/**
 * Every job ends, nothing is dropped silently, every report tells the truth: the bridge against the
 * simulators (real sockets) with the inputs and partial failures real deployments produce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { readiness } from '../../src/api/routes/health.js';
import type { ApiContext } from '../../src/api/context.js';
import { BridgeError } from '../../src/errors.js';
import { encodeCart } from '../../src/simulators/assemblyline/index.js';
import type { MassClient, MassReport } from '../../src/mass/types.js';
import { overrideMethods, reportsBySample, startHarness, type Harness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';
import { walkTo } from '../helpers/ledger-walk.js';

async function allReported(h: Harness, reports: number, timeoutMs = 30_000) {
  return waitFor(
    async () => {
      const s = await h.massState();
      return s.reports.length >= reports && s.scheduled_pending === 0 && s.analysis_requests === 0 && h.ledger.inFlight() === 0 ? s : null;
    },
    { timeoutMs, what: `${reports} reports` },
  );
}

type Related = { files: number; iocs: number; files_skipped?: number; iocs_skipped?: number; skipped?: Array<{ kind: string; value: string; name?: string; reason: string }>; renamed?: Array<{ sha256: string; name: string; mass_name: string }> };

/** The analysis report of a sample, with its al_summary object read from MASS. */
async function analysisReport(h: Harness, reports: MassReport[] | undefined): Promise<{ report: MassReport; summary: { related: Related; notes: string[] } }> {
  assert.equal(reports?.length, 1, 'exactly one report');
  const report = reports![0];
  assert.equal(report.error_message ?? null, null, `an analysis report, not an error report (${String(report.error_message)})`);
  const res = await fetch(`${report.url}json_report_object/al_summary/`, { headers: { authorization: `APIKEY ${h.endpoints.massKey}` } });
  assert.equal(res.status, 200, 'al_summary is stored');
  return { report, summary: (await res.json()) as { related: Related; notes: string[] } };
}

/** What MASS holds for the analysed sample: relations pointing at it, by class. */
function relationsTo(state: { relations: Array<{ _cls: string; other: string; sample: string }> }, sampleUrl: string, cls: string) {
  return state.relations.filter((r) => r._cls.includes(cls) && r.other === sampleUrl);
}

test('a file MASS cannot store under its name is related under an accepted name; the parent gets its analysis report with a note', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const scenario = { score: 500, extracted: [{ name: 'download.php?id=7', relation: 'EXTRACTED', content: 'second stage\n' }] };
  const parent = await h.seedFile('dropper.exe', `dropper\nAL-SIM: ${JSON.stringify(scenario)}\n`);
  h.bridge.start();
  // the parent + the extracted file (dispatched back by MASS, answered from the parent's submission)
  const state = await allReported(h, 2);
  const { summary } = await analysisReport(h, reportsBySample(state).get(parent.url));
  const dropped = relationsTo(state, parent.url, 'DroppedBy');
  assert.equal(dropped.length, 1, 'the child is related to its parent');
  const child = await h.admin.getSample(dropped[0].sample);
  assert.deepEqual(child.file_names, ['download.php_id_7'], 'stored under a name MASS accepts');
  assert.equal(summary.related.files, 1);
  assert.deepEqual(summary.related.renamed?.map((r) => [r.name, r.mass_name]), [['download.php?id=7', 'download.php_id_7']], 'the original name is in the report');
  assert.ok(summary.notes.some((n) => n.includes('download.php?id=7') && n.includes('download.php_id_7')), 'a note says so');
  const job = h.ledger.list({}).jobs.find((j) => j.sampleUrl === parent.url)!;
  assert.equal(job.state, 'done');
  assert.ok(!h.ledger.events(job.id).some((e) => e.type === 'related-attempt-failed'), 'MASS never refused the upload');
});

test('a related item MASS answers 500 to again and again (MASS otherwise up) is skipped after a bounded budget, with why, and the report goes out', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const nested = { extracted: [{ name: 'b.bin', relation: 'EXTRACTED', content: 'stage b inside a\n' }] };
  const scenario = { score: 500, extracted: [{ name: 'a.bin', relation: 'EXTRACTED', content: 'stage a\n', scenario: nested }], iocs: [{ type: 'network.dynamic.ip', value: '203.0.113.7' }] };
  const parent = await h.seedFile('dropper.exe', `dropper\nAL-SIM: ${JSON.stringify(scenario)}\n`);
  await h.massControl('/_sim/faults', { method: 'POST', path_prefix: '/api/sample/submit_file/', status: 500, times: 1000 });
  h.bridge.start();
  const state = await allReported(h, 1);
  const { summary } = await analysisReport(h, reportsBySample(state).get(parent.url));
  assert.equal(relationsTo(state, parent.url, 'DroppedBy').length, 0);
  assert.equal(relationsTo(state, parent.url, 'ContactedBy').length, 1, 'the IOC after it is still related');
  assert.equal(summary.related.files, 0, 'the report counts what MASS holds');
  assert.equal(summary.related.iocs, 1);
  assert.equal(summary.related.files_skipped, 2, 'a.bin and the b.bin inside it');
  assert.match(summary.related.skipped?.[0]?.reason ?? '', /^MASS answered HTTP 500: POST \/api\/sample\/submit_file\/.*\(5 times, while answering other requests\)$/);
  const child = summary.related.skipped?.find((x) => x.name === 'b.bin');
  assert.match(child?.reason ?? '', /has no MASS sample/, 'no false dropped-by to the root: the child of a file MASS refused is skipped, with why');
  assert.ok(summary.notes.some((n) => n.includes('b.bin')), 'and a note says so');
  const job = h.ledger.list({}).jobs[0];
  const tries = h.ledger.events(job.id).filter((e) => e.type === 'related-attempt-failed').length;
  assert.equal(tries, 5, 'a bounded budget of tries for the item');
  const skippedSha = summary.related.skipped?.[0]?.value ?? '';
  assert.match(skippedSha, /^[0-9a-f]{64}$/);
  assert.equal(h.ledger.ownSample(skippedSha), undefined, 'no own-sample row survives the failed upload');
});

test('a relation whose lookup is not available (relation_graph 404) is posted again, never dropped', { timeout: 60_000 }, async (t) => {
  let lost = 1;
  const h: Harness = await startHarness(t, {
    wrapMass: (c) =>
      overrideMethods(c, {
        addRelation: async (original: MassClient['addRelation'], ...args: Parameters<MassClient['addRelation']>) => {
          const r = await original(...args);
          if (lost-- > 0) throw new BridgeError('NETWORK', 'socket hang up (simulated: answer lost after MASS saved)', { upstream: 'mass' });
          return r;
        },
        getRelationGraph: (async () => {
          throw new BridgeError('NOT_FOUND', 'GET /api/sample/x/relation_graph/: not found on MASS (404)', { upstream: 'mass', status: 404 });
        }) as never,
      }),
  });
  const parent = await h.seedFile('beacon.exe', `beacon\nAL-SIM: ${JSON.stringify({ score: 300, iocs: [{ type: 'network.dynamic.ip', value: '198.51.100.9' }] })}\n`);
  h.bridge.start();
  const state = await allReported(h, 1);
  assert.ok(lost < 0, 'the fault was injected');
  const contacted = relationsTo(state, parent.url, 'ContactedBy');
  assert.ok(contacted.length >= 1, 'the relation exists on MASS (a duplicate is the accepted price)');
  const { summary } = await analysisReport(h, reportsBySample(state).get(parent.url));
  assert.equal(summary.related.iocs, 1);
  const job = h.ledger.list({}).jobs[0];
  assert.ok(!h.ledger.events(job.id).some((e) => e.type === 'related-failed'), 'nothing recorded as failed');
  assert.ok(h.ledger.events(job.id).some((e) => e.type === 'relation-lookup-unavailable'));
});

test('a MASS 403 while relating waits with backoff, /ready says why, and then the job completes with the relation', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const parent = await h.seedFile('beacon.exe', `beacon\nAL-SIM: ${JSON.stringify({ score: 300, iocs: [{ type: 'network.dynamic.ip', value: '198.51.100.10' }] })}\n`);
  await h.massControl('/_sim/faults', { method: 'POST', path_prefix: '/api/sample/submit_ip/', status: 403, times: 6 });
  h.bridge.start();
  const apiCtx = { now: Date.now, control: h.bridge.control, ledger: h.ledger, readyAssemblylineWindowMs: 600_000 } as unknown as ApiContext;
  const reason = await waitFor(() => readiness(apiCtx).reasons.find((r) => /refuses submit_ip/.test(r)) ?? null, { timeoutMs: 20_000, what: '/ready names the refused call' });
  assert.match(reason, /MASS refuses submit_ip \(AUTH\)/);
  const state = await allReported(h, 1);
  assert.equal(relationsTo(state, parent.url, 'ContactedBy').length, 1, 'the relation is created once MASS accepts the key again');
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.state, 'done');
  assert.ok(h.ledger.events(job.id).some((e) => e.type === 'retry-later' && e.code === 'AUTH'), 'it waited');
  assert.ok(!readiness(apiCtx).reasons.some((r) => /refuses submit_ip/.test(r)), '/ready clears once the call succeeds');
});

test('15 consecutive MASS 500s on submit_report end with the analysis report, not an error report', { timeout: 90_000 }, async (t) => {
  const h = await startHarness(t, { config: { bridge: { retryBaseDelay: 0.01, retryMaxDelay: 0.05 } } });
  const sample = await h.seedFile('ordinary.bin', 'an ordinary file\n');
  await h.massControl('/_sim/faults', { method: 'POST', path_prefix: '/api/scheduled_analysis/', status: 500, times: 15 });
  h.bridge.start();
  const state = await allReported(h, 1, 60_000);
  await analysisReport(h, reportsBySample(state).get(sample.url));
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.state, 'done');
  assert.equal(job.errorCode, null);
});

test('MaxExtractedSize: the report counts the related files MASS holds, and says which one was left out and why', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t, { config: { report: { maxExtractedSize: 100 } } });
  const scenario = { score: 500, extracted: [{ name: 'small.bin', content: 'tiny\n' }, { name: 'large.bin', content: 'x'.repeat(200) }] };
  const parent = await h.seedFile('dropper.exe', `dropper\nAL-SIM: ${JSON.stringify(scenario)}\n`);
  h.bridge.start();
  const state = await allReported(h, 2);
  const { summary } = await analysisReport(h, reportsBySample(state).get(parent.url));
  const dropped = relationsTo(state, parent.url, 'DroppedBy');
  assert.equal(dropped.length, 1);
  assert.equal(summary.related.files, dropped.length, 'report counts equal what MASS holds');
  assert.ok(summary.notes.some((n) => n.includes('large.bin') || n.includes('MaxExtractedSize')), 'a note names what was left out');
});

test('a report found again after a lost answer is not labelled gone; a 2xx without a body counts as stored', { timeout: 60_000 }, async (t) => {
  let lose = 1;
  let hideList = 1;
  let noBody = 1;
  const h: Harness = await startHarness(t, {
    wrapMass: (c) =>
      overrideMethods(c, {
        submitReport: async (original: MassClient['submitReport'], ...args: Parameters<MassClient['submitReport']>) => {
          const r = await original(...args);
          if (lose-- > 0) throw new BridgeError('NETWORK', 'socket hang up (simulated: answer lost after MASS saved)', { upstream: 'mass' });
          if (noBody-- > 0) throw new BridgeError('UPSTREAM_PROTOCOL', 'POST submit_report: MASS answered 204 with a body that is not JSON', { upstream: 'mass', status: 204 });
          return r;
        },
        listSampleReports: async (original: MassClient['listSampleReports'], ...args: Parameters<MassClient['listSampleReports']>) => (hideList-- > 0 ? [] : original(...args)),
      }),
  });
  const first = await h.seedFile('one.bin', 'first file\n');
  h.bridge.start();
  let state = await allReported(h, 1);
  assert.equal(reportsBySample(state).get(first.url)?.length, 1);
  const job1 = h.ledger.list({}).jobs[0];
  const sent1 = h.ledger.events(job1.id).find((e) => e.type === 'report-sent');
  assert.notEqual(sent1?.data?.outcome, 'gone', 'our own report is not "gone"');
  assert.equal(sent1?.code, null);
  assert.equal(job1.state, 'done');
  // The next report is answered 204: stored, the job is done (not held with a false rejection).
  const second = await h.seedFile('two.bin', 'second file\n');
  state = await allReported(h, 2);
  assert.equal(reportsBySample(state).get(second.url)?.length, 1);
  const job2 = h.ledger.list({}).jobs.find((j) => j.sampleUrl === second.url)!;
  assert.equal(job2.state, 'done');
  assert.equal(noBody, 0, 'the 204 was injected');
});

test('a notification-queue read whose answer is lost: the waiting job is looked up at once, not after ResultDeadline', { timeout: 60_000 }, async (t) => {
  let lose = 0;
  const h: Harness = await startHarness(t, {
    config: { bridge: { resultDeadline: 3600 } },
    wrapAl: (c) =>
      overrideMethods(c, {
        getMessages: async (original, ...args) => {
          const messages = await original(...args);
          if (messages.length > 0 && lose++ === 0) throw new BridgeError('NETWORK', 'socket hang up (simulated: read answer lost)', { upstream: 'assemblyline' });
          return messages;
        },
      }),
  });
  const sample = await h.seedFile('one.bin', 'a file whose notification is lost in transit\n');
  h.bridge.start();
  const state = await allReported(h, 1);
  assert.equal(lose >= 1, true, 'the read answer was lost');
  assert.equal(reportsBySample(state).get(sample.url)?.length, 1);
  const job = h.ledger.list({}).jobs[0];
  assert.ok(h.ledger.events(job.id).some((e) => e.type === 'reconciled' && e.data?.early === true), 'found by the early lookup');
});

test('a MASS download that always breaks half-way: MaxAttempts ingest attempts, then an error report naming MASS; no Assemblyline backpressure', { timeout: 60_000 }, async (t) => {
  const h: Harness = await startHarness(t, {
    config: { bridge: { maxAttempts: 3, retryBaseDelay: 0.01, retryMaxDelay: 0.02, stepRetries: 2 } },
    wrapMass: (c) =>
      overrideMethods(c, {
        downloadSample: async (original, ...args) => {
          const d = await original(...args);
          d.body.on('error', () => undefined);
          d.body.destroy();
          let sent = false;
          const body = new Readable({
            read() {
              if (!sent) {
                sent = true;
                this.push(Buffer.from('half of the '));
              } else this.destroy(new BridgeError('NETWORK', 'GET download: other side closed (simulated)', { upstream: 'mass' }));
            },
          });
          return { ...d, body, size: undefined };
        },
      }),
  });
  const sample = await h.seedFile('broken.bin', 'a file whose download always breaks\n');
  h.bridge.start();
  const state = await allReported(h, 1);
  const report = reportsBySample(state).get(sample.url)?.[0];
  assert.ok(report?.error_message, 'an error report');
  assert.match(String(report?.error_message), /MASS/);
  const job = h.ledger.list({}).jobs[0];
  assert.equal(job.state, 'failed');
  assert.ok(job.attempts <= 3, `attempts bounded (${job.attempts})`);
  assert.equal(h.bridge.control.status().upstreams.assemblyline.consecutiveFailures, 0, 'not counted against Assemblyline');
});

test('a job longer in its state than the budget is moved on by the reconciler; the status lists the oldest job per state', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const sample = await h.seedFile('stuck.bin', 'a job the bridge lost track of\n');
  const [sa] = await waitFor(async () => {
    const items = await h.massClient.poll(h.endpoints.uuid);
    return items.length > 0 ? items : null;
  }, { timeoutMs: 10_000, what: 'scheduled analysis' });
  // A waiting job whose notification will never come and whose deadline is far away, 3 days in the state.
  const long = Date.now() - 72 * 3_600_000;
  h.ledger.claim({ id: sa.id, scheduledAnalysisUrl: sa.url, sampleUrl: sa.sample }, long);
  walkTo(h.ledger, sa.id, 'waiting', long);
  h.ledger.update(sa.id, { state: 'waiting', ingestId: 'never-ingested', deadline: Date.now() + 86_400_000, notBefore: Date.now() + 86_400_000 }, { type: 'ingested' }, long);
  const status = h.bridge.control.status();
  assert.equal(status.stateBudgetsMs?.waiting, 48 * 3_600_000 + 5000, "waiting: Assemblyline's 2-day limit + ResultDeadline");
  const oldest = h.ledger.oldestPerState().find((o) => o.state === 'waiting');
  assert.equal(oldest?.jobId, sa.id);
  h.bridge.start();
  const state = await allReported(h, 1);
  const report = reportsBySample(state).get(sample.url)?.[0];
  assert.match(String(report?.error_message), /in state waiting for 72(\.0)? h, longer than its budget of 48(\.0)? h/);
  assert.equal(h.ledger.get(sa.id)?.state, 'failed');
});

test('runOnce returns promptly after stop(), with the unfinished job counted', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t, { config: { bridge: { resultDeadline: 3600 } } });
  await h.seedFile('slow.bin', `slow\nAL-SIM: ${JSON.stringify({ lose_notification_times: 100, delay_ms: 60_000 })}\n`);
  await waitFor(async () => ((await h.massClient.poll(h.endpoints.uuid)).length > 0 ? true : null), { timeoutMs: 10_000, what: 'scheduled analysis' });
  const run = h.bridge.runOnce({ timeoutMs: 3_600_000 });
  await waitFor(() => (h.ledger.countByState().waiting === 1 ? true : null), { timeoutMs: 20_000, what: 'a waiting job' });
  await h.bridge.stop({ graceMs: 100 });
  const bound = new Promise<'bound'>((resolve) => setTimeout(() => resolve('bound'), 5000).unref());
  const summary = await Promise.race([run, bound]);
  assert.notEqual(summary, 'bound', 'runOnce has returned');
  if (summary !== 'bound') {
    assert.equal(summary.timedOut, false);
    assert.equal(summary.remaining, 1);
  }
});

test('a MASS sample that is a CaRT file gets analysed_sha256 (the inner file) and its relations point at the MASS sample', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const inner = Buffer.from(`packed dropper\nAL-SIM: ${JSON.stringify({ score: 400, iocs: [{ type: 'network.dynamic.ip', value: '192.0.2.44' }] })}\n`);
  const carted = encodeCart(inner, { name: 'dropper.exe' });
  const sample = (await h.massControl('/_sim/samples', { file_name: 'dropper.exe.cart', content_base64: carted.toString('base64'), tlp_level: 0, tags: [] })) as { url: string; sha256sum: string };
  h.bridge.start();
  const state = await allReported(h, 1);
  const { report } = await analysisReport(h, reportsBySample(state).get(sample.url));
  const al = report.additional_metadata?.assemblyline as Record<string, unknown>;
  const innerSha = createHash('sha256').update(inner).digest('hex');
  assert.notEqual(innerSha, sample.sha256sum.toLowerCase());
  assert.equal(al.analysed_sha256, innerSha, 'the report says which file Assemblyline analysed');
  assert.equal(relationsTo(state, sample.url, 'ContactedBy').length, 1, 'the IOC is related to the MASS sample');
});
