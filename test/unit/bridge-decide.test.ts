import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BridgeError } from '../../src/errors.js';
import type { Job } from '../../src/ledger/types.js';
import {
  backoffMs,
  decideDeadline,
  decideEchoNotInParent,
  decideNotification,
  decideOverAge,
  decideResultsMissing,
  decideSample,
  decideStepError,
  decideSubmissionState,
  ECHO_BY_MASS_TAGS,
  parseNotification,
  type Policy,
} from '../../src/bridge/decide.js';

const policy: Policy = { maxAttempts: 3, resultDeadlineMs: 60_000, retryBaseMs: 1000, retryMaxMs: 30_000, maxFileSize: 1000, reanalyseOwnSamples: false };
const NOW = 1_700_000_000_000;
const half = () => 0.5;

function job(patch: Partial<Job> = {}): Job {
  return {
    id: 'sa1', scheduledAnalysisUrl: 'http://m/api/scheduled_analysis/sa1/', sampleUrl: 'http://m/api/sample/s1/', state: 'waiting',
    sha256: 'a'.repeat(64), fileName: 'f.exe', fileSize: 10, sampleCls: 'Sample.FileSample', attempts: 1, ingestId: 'ING1', sid: null,
    cacheHit: false, score: null, alFailure: null, errorCode: null, errorMessage: null, lastError: null, lastErrorCode: null,
    massReportUrl: null, notBefore: 0, deadline: NOW + 1000, createdAt: NOW - 5000, updatedAt: NOW - 5000, finishedAt: null,
    ignoreCache: false, neverDrop: false, stepFailures: 0, echoOf: null, ...patch,
  };
}

const fileSample = { _cls: 'Sample.FileSample', url: 'http://m/api/sample/s1/', tlp_level: 0, file_size: 10, file_names: ['f.exe'], sha256sum: 'A'.repeat(64) };

test('backoff grows exponentially, is capped, and stays within [step/2, step]', () => {
  assert.equal(backoffMs(1, 1000, 30_000, () => 0), 500);
  assert.equal(backoffMs(1, 1000, 30_000, () => 1), 1000);
  assert.equal(backoffMs(3, 1000, 30_000, () => 1), 4000);
  assert.equal(backoffMs(20, 1000, 30_000, () => 1), 30_000);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r) => {
      const d = backoffMs(n, 200, 10_000, () => r);
      const step = Math.min(10_000, 200 * 2 ** Math.max(0, n - 1));
      return d >= step / 2 - 1 && d <= step + 1;
    }),
  );
});

test('sample decisions: invisible, not a file, too large, own sample, normal file', () => {
  const invisible = decideSample('invisible', policy, undefined, NOW);
  assert.equal(invisible.patch.state, 'reporting');
  assert.equal(invisible.patch.errorCode, 'SAMPLE_INVISIBLE');
  assert.match(String(invisible.patch.errorMessage), /TLP/);

  const ip = decideSample({ _cls: 'Sample.IPSample', url: 'u', tlp_level: 0 }, policy, undefined, NOW);
  assert.equal(ip.patch.errorCode, 'SAMPLE_NOT_FILE');
  assert.match(String(ip.patch.errorMessage), /not a file sample/);

  const big = decideSample({ ...fileSample, file_size: 1001 }, policy, undefined, NOW);
  assert.equal(big.patch.errorCode, 'SAMPLE_TOO_LARGE');
  assert.equal(big.patch.sha256, 'a'.repeat(64));

  const own = decideSample(fileSample, policy, { jobId: 'parent', sid: 'SIDP' }, NOW);
  assert.equal(own.patch.state, 'collecting');
  assert.equal(own.patch.sid, 'SIDP');
  assert.equal(own.patch.echoOf, 'parent');

  assert.equal(own.event.data?.via, 'ledger');

  // Extracted by another bridge of the system, recognised by its tags on MASS: no job of ours to name.
  const byTags = decideSample(fileSample, policy, { jobId: null, sid: 'SIDQ' }, NOW);
  assert.equal(byTags.patch.state, 'collecting');
  assert.equal(byTags.patch.sid, 'SIDQ');
  assert.equal(byTags.patch.echoOf, ECHO_BY_MASS_TAGS);
  assert.equal(byTags.event.data?.via, 'mass-tags');
  assert.match(String(byTags.event.message), /tags of a file a bridge of this analysis system extracted in submission SIDQ/);

  const again = decideSample(fileSample, { ...policy, reanalyseOwnSamples: true }, { jobId: 'parent', sid: 'SIDP' }, NOW);
  assert.equal(again.patch.state, 'ingesting');

  const normal = decideSample({ ...fileSample, _cls: 'Sample.FileSample.ExecutableBinarySample' }, policy, undefined, NOW);
  assert.equal(normal.patch.state, 'ingesting');
  assert.equal(normal.patch.fileName, 'f.exe');
});

test('a success notification moves a waiting job to collecting; a cache hit is recognised by sid != ingest_id', () => {
  const msg = parseNotification({ ingest_id: 'ING1', failure: '', score: 500, submission: { sid: 'OLD', metadata: { bridge_job: 'sa1' } } });
  assert.equal(msg.bridgeJob, 'sa1');
  const d = decideNotification(job(), msg, policy, NOW, half);
  assert.equal(d.kind, 'apply');
  if (d.kind !== 'apply') return;
  assert.equal(d.transition.patch.state, 'collecting');
  assert.equal(d.transition.patch.sid, 'OLD');
  assert.equal(d.transition.patch.cacheHit, true);
  assert.equal(decideNotification(job({ state: 'done' }), msg, policy, NOW, half).kind, 'ignore');
});

test('Skipped re-ingests with never_drop and backoff until MaxAttempts, then an error report', () => {
  const msg = parseNotification({ ingest_id: 'ING1', failure: 'Skipped', score: null, submission: { sid: 'ING1' } });
  const d = decideNotification(job({ attempts: 1 }), msg, policy, NOW, half);
  assert.equal(d.kind, 'apply');
  if (d.kind !== 'apply') return;
  assert.equal(d.transition.patch.state, 'ingesting');
  assert.equal(d.transition.patch.neverDrop, true);
  assert.ok((d.transition.patch.notBefore ?? 0) > NOW);
  const last = decideNotification(job({ attempts: 3 }), msg, policy, NOW, half);
  assert.equal(last.kind === 'apply' && last.transition.patch.errorCode, 'AL_SKIPPED');
  // A failure of an older ingest of the job is stale.
  const stale = parseNotification({ ingest_id: 'ING0', failure: 'Skipped', submission: { sid: 'ING0', metadata: { bridge_job: 'sa1' } } });
  assert.equal(decideNotification(job(), stale, policy, NOW, half).kind, 'ignore');
  const tooLarge = parseNotification({ ingest_id: 'ING1', failure: 'File too large (5 > 4)', submission: { sid: 'ING1' } });
  const t = decideNotification(job(), tooLarge, policy, NOW, half);
  assert.equal(t.kind === 'apply' && t.transition.patch.errorCode, 'AL_FILE_TOO_LARGE');
});

test('results gone: re-ingest with ignore_cache, or error report after MaxAttempts; echo jobs ingest the file itself', () => {
  const r = decideResultsMissing(job({ state: 'collecting', sid: 'OLD', attempts: 1 }), policy, NOW);
  assert.equal(r.patch.state, 'ingesting');
  assert.equal(r.patch.ignoreCache, true);
  assert.equal(decideResultsMissing(job({ state: 'collecting', attempts: 3 }), policy, NOW).patch.state, 'reporting');
  const echo = decideResultsMissing(job({ state: 'collecting', echoOf: 'p', attempts: 0 }), policy, NOW);
  assert.equal(echo.patch.state, 'ingesting');
  assert.equal(echo.patch.echoOf, null);
  // The submission the tags named does not hold the file: it is analysed itself, with a fresh ingest.
  const unconfirmed = decideEchoNotInParent(job({ state: 'collecting', echoOf: ECHO_BY_MASS_TAGS, sid: 'SIDQ', cacheHit: true }), NOW);
  assert.deepEqual(
    { state: unconfirmed.patch.state, echoOf: unconfirmed.patch.echoOf, sid: unconfirmed.patch.sid, cacheHit: unconfirmed.patch.cacheHit },
    { state: 'ingesting', echoOf: null, sid: null, cacheHit: false },
  );
  assert.equal(unconfirmed.event.type, 'echo-not-in-parent');
  assert.match(String(unconfirmed.event.message), /submission SIDQ does not hold this file/);
});

test('deadline: completed submission is collected, running extends, missing re-ingests then errors', () => {
  assert.equal(decideDeadline(job(), { kind: 'completed', sid: 'ING1' }, policy, NOW).patch.state, 'collecting');
  const ext = decideDeadline(job(), { kind: 'running' }, policy, NOW);
  assert.equal(ext.patch.state, undefined);
  assert.equal(ext.patch.deadline, NOW + policy.resultDeadlineMs);
  assert.equal(decideDeadline(job({ attempts: 1 }), { kind: 'missing' }, policy, NOW).patch.state, 'ingesting');
  const last = decideDeadline(job({ attempts: 3 }), { kind: 'missing' }, policy, NOW);
  assert.equal(last.patch.errorCode, 'RESULT_DEADLINE');
});

test('step errors: transient waits with backoff, permanent → error report, rejected error report → held, shutdown → checkpoint', () => {
  const transient = decideStepError(job({ state: 'collecting', stepFailures: 2 }), new BridgeError('NETWORK', 'reset'), policy, NOW, half);
  assert.equal(transient.kind, 'apply');
  if (transient.kind === 'apply') {
    assert.equal(transient.transition.patch.state, undefined);
    assert.equal(transient.transition.patch.stepFailures, 3);
    assert.equal(transient.transition.patch.notBefore, NOW + backoffMs(3, 1000, 30_000, half));
    assert.equal(transient.transition.patch.lastErrorCode, 'NETWORK');
  }
  const auth = decideStepError(job({ state: 'ingesting' }), new BridgeError('AUTH', 'refused'), policy, NOW, half);
  assert.equal(auth.kind === 'apply' && auth.transition.patch.state, undefined);
  const permanent = decideStepError(job({ state: 'collecting' }), new BridgeError('UPSTREAM_PROTOCOL', 'bad json'), policy, NOW, half);
  assert.equal(permanent.kind === 'apply' && permanent.transition.patch.errorCode, 'UPSTREAM_PROTOCOL');
  const reportRejected = decideStepError(job({ state: 'reporting' }), new BridgeError('UPSTREAM_HTTP', 'bad', { status: 400 }), policy, NOW, half);
  assert.equal(reportRejected.kind === 'apply' && reportRejected.transition.patch.state, 'reporting');
  assert.equal(reportRejected.kind === 'apply' && typeof reportRejected.transition.patch.errorCode, 'string');
  const held = decideStepError(job({ state: 'reporting', errorCode: 'X' }), new BridgeError('UPSTREAM_HTTP', 'bad', { status: 400 }), policy, NOW, half);
  assert.equal(held.kind === 'apply' && held.transition.patch.state, 'held');
  assert.equal(decideStepError(job(), new BridgeError('ABORTED', 'stop'), policy, NOW, half).kind, 'checkpoint');
});

test('a late message of a superseded ingest: success results are used while the job waits, ignored once it moved on', () => {
  // ING1 passed its deadline; the job re-ingested as ING2 and waits. ING1's late success analysed the same file.
  const late = parseNotification({ ingest_id: 'ING1', failure: '', score: 10, submission: { sid: 'ING1', metadata: { bridge_job: 'sa1' } } });
  const d = decideNotification(job({ ingestId: 'ING2', attempts: 2 }), late, policy, NOW, half);
  assert.equal(d.kind === 'apply' && d.transition.patch.state, 'collecting');
  assert.equal(d.kind === 'apply' && d.transition.patch.sid, 'ING1');
  // Once collecting (or later), neither the late ING1 message nor ING2's own message changes the job.
  for (const state of ['collecting', 'relating', 'reporting', 'done', 'failed', 'held'] as const) {
    assert.equal(decideNotification(job({ ingestId: 'ING2', state, sid: 'ING1' }), late, policy, NOW, half).kind, 'ignore', state);
  }
  // A failure of the superseded ingest never overrides the current one.
  const lateFailure = parseNotification({ ingest_id: 'ING1', failure: 'File too large (5 > 4)', submission: { sid: 'ING1' } });
  assert.equal(decideNotification(job({ ingestId: 'ING2' }), lateFailure, policy, NOW, half).kind, 'ignore');
});

test('submission states: completed is used, submitted waits with the sid kept, failed re-ingests without the cache until MaxAttempts', () => {
  const collecting = job({ state: 'collecting', sid: 'S1', attempts: 1 });
  assert.equal(decideSubmissionState(collecting, 'completed', policy, NOW), null);
  const wait = decideSubmissionState(collecting, 'submitted', policy, NOW);
  assert.equal(wait?.patch.state, 'waiting');
  assert.equal(wait?.patch.sid, undefined, 'the sid stays for the reconciler');
  assert.equal(wait?.patch.deadline, NOW + policy.resultDeadlineMs);
  const failed = decideSubmissionState(collecting, 'failed', policy, NOW);
  assert.equal(failed?.patch.state, 'ingesting');
  assert.equal(failed?.patch.ignoreCache, true);
  const last = decideSubmissionState(job({ state: 'collecting', sid: 'S1', attempts: 3 }), 'failed', policy, NOW);
  assert.equal(last?.patch.errorCode, 'AL_FAILURE');
  assert.equal(decideSubmissionState(job({ state: 'collecting', sid: 'P', echoOf: 'parent' }), 'failed', policy, NOW)?.patch.echoOf, null);
});

test('MASS 500s on a report are waited out and never change the report; only a permanent refusal does, and says who refused what', () => {
  const crash = () => new BridgeError('UPSTREAM_HTTP', 'POST /api/scheduled_analysis/1/submit_report/: MASS answered 500', { status: 500, upstream: 'mass' });
  const early = decideStepError(job({ state: 'reporting', stepFailures: 0 }), crash(), policy, NOW, half);
  assert.equal(early.kind === 'apply' && early.transition.event.type, 'retry-later', 'a first 500 is retried');
  const fifteenth = decideStepError(job({ state: 'reporting', stepFailures: 14, stateSince: NOW - 60_000 }), crash(), policy, NOW, half);
  assert.equal(fifteenth.kind === 'apply' && fifteenth.transition.event.type, 'retry-later', 'the 15th 500 is still waited out');
  assert.equal(fifteenth.kind === 'apply' && fifteenth.transition.patch.errorCode, undefined, 'the analysis report is kept');
  const refused = decideStepError(job({ state: 'reporting' }), new BridgeError('UPSTREAM_HTTP', 'POST /api/x/submit_report/: MASS answered 400: bad field', { status: 400, upstream: 'mass' }), policy, NOW, half);
  assert.equal(refused.kind === 'apply' && refused.transition.patch.state, 'reporting');
  assert.match(refused.kind === 'apply' ? String(refused.transition.patch.errorMessage) : '', /^MASS refused the analysis report: MASS answered HTTP 400/);
  const errorReportRefused = decideStepError(job({ state: 'reporting', errorCode: 'INTERNAL' }), new BridgeError('UPSTREAM_HTTP', 'bad', { status: 400, upstream: 'mass' }), policy, NOW, half);
  assert.equal(errorReportRefused.kind === 'apply' && errorReportRefused.transition.patch.state, 'held');
  const collecting = decideStepError(job({ state: 'collecting', stepFailures: 10 }), crash(), policy, NOW, half);
  assert.equal(collecting.kind === 'apply' && collecting.transition.event.type, 'retry-later', 'outside reporting a 500 stays transient');
});

test('budgets: an outage longer than OutageBudget ends each state as its table row says; MaxAttempts bounds the ingest step', () => {
  const outage = () => new BridgeError('NETWORK', 'connect ECONNREFUSED', { upstream: 'mass' });
  const budget = { ...policy, outageMs: 3_600_000 };
  const old = NOW - 3_600_000;
  const within = decideStepError(job({ state: 'reporting', stateSince: NOW - 3_599_000 }), outage(), budget, NOW, half);
  assert.equal(within.kind === 'apply' && within.transition.event.type, 'retry-later');
  const reporting = decideStepError(job({ state: 'reporting', stateSince: old }), outage(), budget, NOW, half);
  assert.equal(reporting.kind === 'apply' && reporting.transition.patch.state, 'held', 'a report that cannot be delivered is held');
  assert.match(reporting.kind === 'apply' ? String(reporting.transition.event.message) : '', /MASS answered NETWORK.*OutageBudget 1 h/);
  const relating = decideStepError(job({ state: 'relating', stateSince: old }), outage(), budget, NOW, half);
  assert.equal(relating.kind === 'apply' && relating.transition.patch.state, 'reporting', 'relating: the rest is skipped, the report goes out');
  assert.equal(relating.kind === 'apply' && relating.transition.patch.errorCode, undefined, 'still the analysis report');
  const fetching = decideStepError(job({ state: 'claimed', stateSince: old }), outage(), budget, NOW, half);
  assert.equal(fetching.kind === 'apply' && fetching.transition.patch.errorCode, 'NETWORK');
  assert.match(fetching.kind === 'apply' ? String(fetching.transition.patch.errorMessage) : '', /^MASS answered/);
  const auth = decideStepError(job({ state: 'relating', stateSince: NOW - 1000 }), new BridgeError('AUTH', 'MASS refused (403)', { upstream: 'mass', status: 403 }), budget, NOW, half);
  assert.equal(auth.kind === 'apply' && auth.transition.event.type, 'retry-later', 'a 403 while relating waits');
  const broken = () => new BridgeError('NETWORK', 'the MASS download of the sample broke', { upstream: 'mass' });
  assert.equal(decideStepError(job({ state: 'ingesting', attempts: 2 }), broken(), budget, NOW, half).kind === 'apply', true);
  const spent = decideStepError(job({ state: 'ingesting', attempts: 3 }), broken(), budget, NOW, half);
  assert.equal(spent.kind === 'apply' && spent.transition.patch.state, 'reporting', 'MaxAttempts ingest attempts end with an error report');
  assert.match(spent.kind === 'apply' ? String(spent.transition.patch.errorMessage) : '', /all 3 ingest attempts failed; the last: MASS answered NETWORK/);
  const alDown = decideStepError(job({ state: 'ingesting', attempts: 5 }), new BridgeError('NETWORK', 'ECONNREFUSED', { upstream: 'assemblyline' }), budget, NOW, half);
  assert.equal(alDown.kind === 'apply' && alDown.transition.event.type, 'retry-later', 'an Assemblyline outage is waited out, whatever the attempts');
});

test('over its age budget, a job held in ingesting by a shut ingest gate goes to held with the reason and fix; otherwise it gets its error report', () => {
  const stuck = job({ state: 'ingesting', lastError: 'Assemblyline answered HTTP 400', lastErrorCode: 'UPSTREAM_HTTP' });
  const shut = { shut: true, reason: 'Required metadata is missing from submission: [\'sensor\']', fix: 'set [Assemblyline] Metadata = sensor=<value>' };
  const held = decideOverAge(stuck, 13 * 3_600_000, 12 * 3_600_000, NOW, shut);
  assert.equal(held.patch?.state, 'held');
  assert.match(String(held.patch?.lastError), /Required metadata is missing.*fix: set \[Assemblyline\] Metadata/);
  assert.equal(held.event?.type, 'held');
  const open = decideOverAge(stuck, 13 * 3_600_000, 12 * 3_600_000, NOW, { shut: false, reason: null, fix: null });
  assert.equal(open.patch?.state, 'reporting', 'a job the gate does not hold ends with its error report');
  assert.equal(decideOverAge(job({ state: 'collecting' }), 13 * 3_600_000, 12 * 3_600_000, NOW, shut).patch?.state, 'reporting', 'the gate only concerns ingesting');
});
