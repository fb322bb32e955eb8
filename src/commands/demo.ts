/**
 * `mass-al-bridge demo`: the two simulators and the bridge in one process on loopback, a temporary
 * ledger and a seeded set of samples that exercise extracted files, IOCs, failures and a duplicate.
 * Shows live progress, then a summary table; keeps serving the status API until Ctrl-C
 * (or exits when done with --exit-when-done).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import { EXIT_LEDGER_FAILED, openBridgeRuntime, type BridgeRuntime } from '../bridge/commands.js';
import { DEFAULT_QUEUE_READS_PER_MINUTE } from '../bridge/poll-pacing.js';
import { loadConfig } from '../config/index.js';
import type { BridgeError } from '../errors.js';
import type { LedgerOptions } from '../ledger/sqlite.js';
import type { Job } from '../ledger/types.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { demoSamples } from './demo-samples.js';
import { PLAIN_WIDTH, progressLine, renderSummary, wrap, type DemoRow } from './demo-view.js';
import { LOCKED_DOWN_QUOTAS, renderSimulatorIni } from './sim-config.js';
import { lockedDownDescription, startSimulators } from './simulate.js';

export interface DemoOptions {
  exitWhenDone: boolean;
  /** Port of the status API on 127.0.0.1 (0 = any free port). */
  apiPort: number;
  out: NodeJS.WritableStream;
  isTTY: boolean;
  /** The terminal's width now (it may change while the demo runs); unused when not a TTY. */
  columns?: () => number | undefined;
  logger: Logger;
  signal: AbortSignal;
  /**
   * The Assemblyline simulator's user is locked down like a production service account (profile,
   * required metadata, classification, quotas; see sim-config.ts) and the bridge is configured for it.
   */
  lockedDown?: boolean;
  /** Stop waiting for the demo to settle after this long (default 180 s). */
  settleTimeoutMs?: number;
  /** For tests: the fsync of the ledger's WAL file (see openBridgeRuntime), e.g. one that fails like a broken disk. */
  ledgerFsync?: LedgerOptions['fsync'];
}

const MAX_FILE_SIZE = 1024 * 1024;

interface SimState {
  scheduled_pending: number;
  analysis_requests: number;
  reports: Array<{ id: string; sample: string; error_message: string | null; json_report_objects?: Record<string, string> }>;
  relations: Array<{ _cls: string }>;
  samples: number;
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${new URL(url).pathname} answered ${res.status}: ${body.slice(0, 200)}`);
  return JSON.parse(body) as T;
}

/** Every job of the ledger, oldest first. */
function allJobs(ledger: BridgeRuntime['ledger']): Job[] {
  const jobs: Job[] = [];
  let cursor: string | null | undefined;
  do {
    const page = ledger.list({ limit: 500, cursor: cursor ?? undefined });
    jobs.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor);
  return jobs.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

interface ServiceErrorEntry {
  service?: string;
  status?: string;
  message?: string;
}

/** What a report's `al_errors` object lists, as a note: "report lists 1 service error: MetaDefender FAIL_RECOVERABLE (TASK PRE-EMPTED)". */
function serviceErrorNote(errors: ServiceErrorEntry[]): string {
  const list = errors.map((e) => `${e.service ?? '?'} ${e.status ?? ''}${e.message ? ` (${e.message})` : ''}`.replace(/\s+\(/, ' (').trim());
  return `report lists ${errors.length} service error${errors.length === 1 ? '' : 's'}: ${list.join(', ')}`;
}

export async function demoCommand(opts: DemoOptions): Promise<number> {
  const { out, logger, signal } = opts;
  const say = (s = '') => out.write(`${s}\n`);
  const stateDir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-demo-'));
  const lockedDown = opts.lockedDown ?? false;
  const sims = await startSimulators({ host: '127.0.0.1', massPort: 0, alPort: 0, logger, schedulerIntervalMs: 500, lockedDown });
  let runtime: BridgeRuntime | null = null;
  let api: FastifyInstance | null = null;
  let ticker: NodeJS.Timeout | null = null;
  try {
    const iniPath = join(stateDir, 'demo.ini');
    await writeFile(
      iniPath,
      renderSimulatorIni({
        massOrigin: sims.massOrigin,
        instanceUuid: sims.mass.instance.uuid,
        instanceKey: sims.mass.instance.key,
        alOrigin: sims.alOrigin,
        alUser: sims.al.user,
        alApiKey: sims.al.apiKey,
        stateDir,
        lockedDown,
        overrides: {
          GLOBAL: { SleepTime: 0.5 },
          AssemblylineAnalysis: { PollTime: 0.5 },
          Assemblyline: { NeverDrop: false },
          // Locked down too: the demo lasts a minute or so, far from the daily API quota even at this poll time and
          // the default queue-read rate.
          Bridge: {
            ResultDeadline: 6, QueuePollTime: 0.25, QueueReadsPerMinute: DEFAULT_QUEUE_READS_PER_MINUTE, MaxFileSize: MAX_FILE_SIZE, RetryBaseDelay: 0.5, RetryMaxDelay: 2,
          },
          API: { Listen: `127.0.0.1:${opts.apiPort}` },
        },
      }),
      { mode: 0o600 },
    );
    const { config } = loadConfig({ file: iniPath, env: {} });
    runtime = await openBridgeRuntime(config, logger, { ledgerFsync: opts.ledgerFsync });
    const { bridge, ledger, metrics } = runtime;
    // A failed fsync of the ledger stops the bridge (runtime.fatal): every wait below ends at once, and the demo
    // says why and exits with EXIT_LEDGER_FAILED instead of waiting for analyses that will not come.
    const fatal: { err: BridgeError | null } = { err: null };
    void runtime.fatal.then((err) => {
      fatal.err = err;
    });
    const ledgerFailed = (err: BridgeError): number => {
      if (ticker) {
        clearInterval(ticker);
        ticker = null;
        if (opts.isTTY) out.write('\n');
      }
      for (const line of wrap(`The bridge stopped: ${err.message}.`, (opts.isTTY ? (opts.columns?.() ?? 80) : PLAIN_WIDTH) - 1)) say(line);
      say('A failed fsync of the ledger is never retried; a supervisor restarts the bridge, which goes on from what the ledger holds on disk.');
      return EXIT_LEDGER_FAILED;
    };
    api = await buildApi({ ledger, control: bridge.control, metrics, logger, version: VERSION });
    let apiAddress: string;
    try {
      apiAddress = await api.listen({ host: '127.0.0.1', port: opts.apiPort });
    } catch (err) {
      // The demo must just work: another program on the port is not a reason to fail.
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
      apiAddress = await api.listen({ host: '127.0.0.1', port: 0 });
      say(`(port ${opts.apiPort} is in use; the status API took a free port instead)`);
    }

    say(`mass-al-bridge ${VERSION} demo${lockedDown ? ', locked down' : ''}`);
    say(`  MASS simulator          ${sims.massOrigin}/api/`);
    say(`  Assemblyline simulator  ${sims.alOrigin}`);
    if (lockedDown) for (const line of lockedDownDescription()) say(`    ${line}`);
    say(`  status page             ${apiAddress}/`);
    say(`  API docs                ${apiAddress}/documentation`);
    say(`  ledger                  ${join(stateDir, 'bridge.sqlite')}`);
    say();

    // The bridge's first poll makes the instance online; only then does the MASS scheduler give it work.
    bridge.start();

    const samples = demoSamples(MAX_FILE_SIZE);
    const labels = new Map<string, string>();
    for (const s of samples) {
      const content = Buffer.isBuffer(s.content) ? s.content : Buffer.from(s.content);
      const created = await json<{ url: string; id: string }>(`${sims.massOrigin}/_sim/samples`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ file_name: s.fileName, content_base64: content.toString('base64'), tlp_level: s.tlpLevel ?? 0 }),
      });
      labels.set(created.url, `${s.label} (${s.fileName})`);
    }
    // A non-file sample scheduled directly by an admin, and the dropper scheduled a second time (a duplicate: cache hit).
    const admin = { authorization: `APIKEY ${sims.mass.adminKey}`, 'content-type': 'application/json' };
    const ip = await json<{ url: string }>(`${sims.massOrigin}/api/sample/submit_ip/`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ ip_address: '192.0.2.99', tlp_level: 0, tags: ['demo'] }),
    });
    labels.set(ip.url, 'IP sample (192.0.2.99)');
    const instanceUrl = `${sims.massOrigin}/api/analysis_system_instance/${sims.mass.instance.uuid}/`;
    const dropperUrl = [...labels.entries()].find(([, l]) => l.startsWith('dropper'))![0];
    // Wait for the instance to be online (first poll) before the admin schedules directly.
    const seeded = Date.now();
    while (!bridge.control.status().lastPollAt && !fatal.err && Date.now() - seeded < 10_000) await sleep(100);
    if (fatal.err) return ledgerFailed(fatal.err);
    const schedule = (sample: string) =>
      json(`${sims.massOrigin}/api/scheduled_analysis/`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ analysis_system_instance: instanceUrl, sample }),
      });
    await schedule(ip.url);
    // The second scheduling of the dropper waits until the first one was ingested, so that it is
    // the one Assemblyline answers from its cache (the same summary on every run).
    const ingested = Date.now();
    while (!signal.aborted && !fatal.err && Date.now() - ingested < 60_000 && !allJobs(ledger).some((j) => j.sampleUrl === dropperUrl && j.ingestId)) await sleep(100);
    if (fatal.err) return ledgerFailed(fatal.err);
    await schedule(dropperUrl);
    const duplicateNote = 'dropper again (scheduled twice)';

    // Live progress: redrawn in place on a terminal (fitted to its width), a plain line every few seconds otherwise.
    const width = () => (opts.isTTY ? (opts.columns?.() ?? 80) : PLAIN_WIDTH);
    let lastLine = '';
    const draw = (final = false) => {
      const c = ledger.countByState();
      const total = Object.values(c).reduce((a, b) => a + b, 0);
      const line = progressLine({ reported: c.done + c.failed, total, done: c.done, failed: c.failed, held: c.held, inFlight: total - c.done - c.failed - c.held, waiting: c.waiting }, width());
      if (opts.isTTY) out.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
      else if (line !== lastLine) say(line);
      lastLine = line;
    };
    ticker = setInterval(draw, opts.isTTY ? 200 : 3000);

    // Settled: MASS has nothing pending or waiting for the scheduler, and the bridge has nothing in flight, twice in a row.
    const deadline = Date.now() + (opts.settleTimeoutMs ?? 180_000);
    let quiet = 0;
    while (!signal.aborted && !fatal.err && Date.now() < deadline) {
      await sleep(500);
      if (fatal.err) break;
      const st = await json<SimState>(`${sims.massOrigin}/_sim/state`);
      const c = ledger.countByState();
      const busy = st.scheduled_pending + st.analysis_requests + ledger.inFlight();
      quiet = busy === 0 && c.done + c.failed > 0 ? quiet + 1 : 0;
      if (quiet >= 3) break;
    }
    if (fatal.err) return ledgerFailed(fatal.err);
    clearInterval(ticker);
    ticker = null;
    draw(true);
    say();

    // Summary table: the seeded samples in their order (the dropper's second scheduling right after
    // its first), then the IP sample, then the files MASS sent back, by name.
    const st0 = await json<SimState>(`${sims.massOrigin}/_sim/state`);
    const serviceErrors = new Map<string, string>();
    for (const report of st0.reports) {
      const errorsUrl = report.json_report_objects?.al_errors;
      if (!errorsUrl) continue;
      const body = await json<{ errors?: ServiceErrorEntry[] }>(errorsUrl, { headers: admin });
      if (body.errors?.length) serviceErrors.set(report.id, serviceErrorNote(body.errors));
    }
    const jobs = allJobs(ledger);
    const seededOrder = [...labels.keys()];
    const rank = (j: Job) => (seededOrder.includes(j.sampleUrl) ? seededOrder.indexOf(j.sampleUrl) : seededOrder.length);
    jobs.sort((a, b) => rank(a) - rank(b) || (rank(a) === seededOrder.length ? (a.fileName ?? a.sampleUrl).localeCompare(b.fileName ?? b.sampleUrl) : 0) || a.createdAt - b.createdAt);
    const seenSample = new Set<string>();
    const rows: DemoRow[] = jobs.map((job) => {
      let label = labels.get(job.sampleUrl) ?? `${job.fileName ?? job.sampleUrl} (extracted, sent back by MASS)`;
      if (seenSample.has(job.sampleUrl) && job.sampleUrl === dropperUrl) label = duplicateNote;
      seenSample.add(job.sampleUrl);
      const notes: string[] = [];
      const events = new Set(ledger.events(job.id).map((e) => e.type));
      if (job.cacheHit) notes.push('cache hit');
      if (events.has('al-skipped')) notes.push('Skipped by Assemblyline, re-ingested with never_drop');
      if (events.has('reconciled')) notes.push('notification lost; found by the reconciler after ResultDeadline');
      if (job.echoOf) notes.push('answered from parent submission, no new ingest');
      if (job.attempts > 1) notes.push(`${job.attempts} ingests`);
      const reportId = job.massReportUrl ? /\/report\/([^/]+)\/?$/.exec(job.massReportUrl)?.[1] : undefined;
      const listed = reportId ? serviceErrors.get(reportId) : undefined;
      if (listed) notes.push(listed);
      if (job.errorMessage) notes.push(job.errorMessage);
      return {
        sample: label,
        outcome: job.state === 'done' ? 'report' : job.state === 'failed' ? 'error' : job.state,
        score: job.score === null ? '-' : String(job.score),
        related: String(ledger.relatedSamples(job.id).length),
        notes,
      };
    });
    for (const line of renderSummary(rows, width())) say(line);
    const st = await json<SimState>(`${sims.massOrigin}/_sim/state`);
    // Fixed order: the order of the relation kinds in the README.
    const relationKinds = new Map<string, number>(['DroppedBySampleRelation', 'ContactedBySampleRelation', 'ResolvedBySampleRelation', 'RetrievedBySampleRelation'].map((k) => [k, 0]));
    for (const r of st.relations) {
      const kind = r._cls.replace('SampleRelation.', '');
      relationKinds.set(kind, (relationKinds.get(kind) ?? 0) + 1);
    }
    say();
    const totals = `MASS now holds ${st.reports.length} reports (${st.reports.filter((r) => r.error_message).length} error reports), ${st.samples} samples, ${st.relations.length} relations: ${[...relationKinds].filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; pending scheduled analyses: ${st.scheduled_pending}.`;
    for (const line of wrap(totals, width() - 1)) say(line);
    const alStats = sims.al.stats();
    say(`Assemblyline saw ${alStats.ingests} ingests and created ${alStats.submissions} submissions.`);
    if (lockedDown) {
      // Ingest is exempt from the daily API quota; every other call (queue reads included) counts.
      const usage = sims.al.usage();
      const calls = usage.api + alStats.ingests;
      const analyses = jobs.length;
      const perAnalysis = analyses > 0 ? (calls / analyses).toFixed(1) : '0';
      say();
      const line = `Ran locked down: the Assemblyline user has no submission_customize and ingests under the profile static with the required metadata. ${usage.api} of its ${LOCKED_DOWN_QUOTAS.dailyApiCalls} daily API calls used, ${calls} Assemblyline calls in all (ingests included) for ${analyses} scheduled analyses: ${perAnalysis} per scheduled analysis.`;
      for (const l of wrap(line, width() - 1)) say(l);
    }
    const settled = st.scheduled_pending === 0 && ledger.inFlight() === 0;
    if (!settled && signal.aborted) say('The demo was stopped before every analysis was reported: some were still pending.');
    else if (!settled) say('The demo did not settle in time: some analyses are still pending (see the status page).');

    if (opts.exitWhenDone || signal.aborted) return settled ? 0 : 1;
    say();
    say(`Status page: ${apiAddress}/`);
    say(`Jobs:        ${apiAddress}/api/v1/jobs`);
    say(`Metrics:     ${apiAddress}/metrics`);
    say('Press Ctrl-C to stop.');
    await new Promise<void>((res) => {
      if (signal.aborted) return res();
      signal.addEventListener('abort', () => res(), { once: true });
    });
    return 0;
  } finally {
    if (ticker) clearInterval(ticker);
    if (runtime) await runtime.bridge.stop({ graceMs: 5000 }).catch(() => undefined);
    if (api) await api.close().catch(() => undefined);
    if (runtime) await runtime.close().catch(() => undefined);
    await sims.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}
