/**
 * Property: whatever sequence of upstream answers the bridge meets (ok, transient, permanent, repeated 500,
 * lost answer, crash and restart), every job ends done, failed or held within its budget, each scheduled
 * analysis gets at most one report (exactly one unless held), and every analysis report's related counts
 * equal what MASS holds. Real bridge, real clients, simulators on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBridge, type Bridge } from '../../src/bridge/bridge.js';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { MassClient } from '../../src/mass/types.js';
import { overrideMethods, startHarness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const PATHS = [
  { method: 'GET', path_prefix: '/api/sample/' },
  { method: 'POST', path_prefix: '/api/sample/submit_file/' },
  { method: 'POST', path_prefix: '/api/sample/submit_ip/' },
  { method: 'POST', path_prefix: '/api/sample_relation/' },
  { method: 'POST', path_prefix: '/api/scheduled_analysis/' },
] as const;

type Answer =
  | { kind: 'transient'; path: number; times: number }
  | { kind: 'permanent'; path: number }
  | { kind: 'repeated500'; path: number }
  | { kind: 'lost'; call: 'submitReport' | 'addRelation' | 'submitFileSample'; times: number }
  | { kind: 'crash'; afterMs: number };

const answer: fc.Arbitrary<Answer> = fc.oneof(
  fc.record({ kind: fc.constant('transient' as const), path: fc.nat(PATHS.length - 1), times: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('permanent' as const), path: fc.nat(PATHS.length - 1) }),
  fc.record({ kind: fc.constant('repeated500' as const), path: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('lost' as const), call: fc.constantFrom('submitReport' as const, 'addRelation' as const, 'submitFileSample' as const), times: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('crash' as const), afterMs: fc.integer({ min: 50, max: 1500 }) }),
);

const DROPPER = { score: 700, extracted: [{ name: 'stage2.dll', relation: 'EXTRACTED', content: 'second stage\n' }], iocs: [{ type: 'network.dynamic.ip', value: '203.0.113.50' }] };

test('property: every job ends within its budget, one report per scheduled analysis, report counts equal MASS', { timeout: 600_000 }, async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: 4 }), async (answers) => {
      const cleanups: Array<() => unknown> = [];
      try {
        const lost = { submitReport: 0, addRelation: 0, submitFileSample: 0 };
        for (const a of answers) if (a.kind === 'lost') lost[a.call] += a.times;
        const loseAfter = (name: keyof typeof lost) => async (original: (...a: never[]) => Promise<unknown>, ...args: never[]) => {
          const r = await original(...args);
          if (lost[name] > 0) {
            lost[name]--;
            throw new BridgeError('NETWORK', `socket hang up (simulated: ${name} answer lost)`, { upstream: 'mass' });
          }
          return r;
        };
        const wrap = (c: MassClient): MassClient =>
          overrideMethods(c, { submitReport: loseAfter('submitReport'), addRelation: loseAfter('addRelation'), submitFileSample: loseAfter('submitFileSample') } as never);
        const h = await startHarness(
          { after: (fn) => void cleanups.push(fn) },
          { config: { bridge: { outageBudget: 2, retryBaseDelay: 0.01, retryMaxDelay: 0.05, stepRetries: 2 } }, wrapMass: wrap },
        );
        const root = await h.seedFile('dropper.exe', `dropper\nAL-SIM: ${JSON.stringify(DROPPER)}\n`);
        await h.seedFile('plain.txt', 'an ordinary file\n');
        for (const a of answers) {
          if (a.kind === 'transient') await h.massControl('/_sim/faults', { ...PATHS[a.path], status: 503, times: a.times });
          if (a.kind === 'permanent') await h.massControl('/_sim/faults', { ...PATHS[a.path], status: 400, times: 1 });
          if (a.kind === 'repeated500') await h.massControl('/_sim/faults', { ...PATHS[a.path], status: 500, times: 40 });
        }
        let bridge: Bridge = h.bridge;
        bridge.start();
        for (const a of answers) {
          if (a.kind !== 'crash') continue;
          await new Promise((r) => setTimeout(r, a.afterMs));
          // A crash: running steps are cut off (grace 0); a new bridge resumes from the ledger.
          await bridge.stop({ graceMs: 0 });
          bridge = createBridge({ config: h.config, mass: wrap(h.massClient), assemblyline: h.alClient, ledger: h.ledger, logger: silentLogger() });
          bridge.start();
        }
        const last = bridge;
        cleanups.push(() => last.stop({ graceMs: 500 }));
        // Within the budgets: OutageBudget 2 s per state plus backoff; far below this bound.
        await waitFor(async () => {
          const s = await h.massState();
          return h.ledger.inFlight() === 0 && s.scheduled_pending + s.analysis_requests <= h.ledger.countByState().held ? true : null;
        }, { timeoutMs: 60_000, what: 'every job ended' });
        const state = await h.massState();
        const jobs = h.ledger.list({ limit: 100 }).jobs;
        assert.ok(jobs.length >= 2, 'both scheduled analyses were claimed');
        for (const job of jobs) {
          assert.ok(['done', 'failed', 'held'].includes(job.state), `job ${job.id} ended (${job.state})`);
          const reports = state.reports.filter((r) => r.sample === job.sampleUrl);
          if (job.state === 'held') assert.ok(reports.length <= 1, 'a held job has at most one report');
          else assert.equal(reports.length, 1, `exactly one report for ${job.sampleUrl} (${job.state})`);
          if (job.state === 'held') assert.ok(job.lastError, 'held with a reason');
        }
        const rootReport = state.reports.find((r) => r.sample === root.url);
        if (rootReport && rootReport.error_message == null) {
          const res = await fetch(`${rootReport.url}json_report_object/al_summary/`, { headers: { authorization: `APIKEY ${h.endpoints.massKey}` } });
          const summary = (await res.json()) as { related: { files: number; iocs: number } };
          const distinct = (cls: string) => new Set(state.relations.filter((r) => r._cls.includes(cls) && r.other === root.url).map((r) => r.sample)).size;
          assert.equal(summary.related.files, distinct('DroppedBy'), 'related files in the report = files related on MASS');
          assert.equal(summary.related.iocs, distinct('ContactedBy'), 'related IOCs in the report = IOCs related on MASS');
        }
      } finally {
        for (const c of cleanups.reverse()) await c();
      }
    }),
    { numRuns: 12, seed: 1010, endOnFailure: true },
  );
  t.diagnostic('12 random sequences of upstream answers');
});
