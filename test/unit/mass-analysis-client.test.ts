import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config/index.js';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import {
  analysisClientSettingsFromIni,
  parseAnalysisIni,
  readAnalysisIni,
  FileAnalysisClient,
  IPAnalysisClient,
  type AnalysisClientSettings,
  type AnalysisRequest,
} from '../../src/mass/analysis-client.js';
import type { MassClient, MassSample, ReportSubmission, ScheduledAnalysis } from '../../src/mass/types.js';

const API = 'http://mass.test/api/';
const UUID = 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51';
const SETTINGS: AnalysisClientSettings = { apiRoot: API, sleepTime: 0.01, pollTime: 0.01, uuid: UUID, systemName: 'size_analysis', apiKey: 'k' };

interface FakeMass extends MassClient {
  pending: ScheduledAnalysis[];
  samples: Map<string, MassSample | BridgeError>;
  reports: { sa: string; report: ReportSubmission }[];
  polls: number;
  pollError?: BridgeError;
  /** Resolves when the number of reports reaches n. */
  reportsReach(n: number): Promise<void>;
}

/** An in-memory MASS with the poll/report semantics of the real one (items stay until reported). */
function fakeMass(): FakeMass {
  const waiters: { n: number; resolve: () => void }[] = [];
  const unsupported = async (): Promise<never> => {
    throw new Error('not used');
  };
  const mass: FakeMass = {
    apiRoot: API,
    pending: [],
    samples: new Map(),
    reports: [],
    polls: 0,
    reportsReach(n) {
      if (mass.reports.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async poll(uuid) {
      mass.polls++;
      if (mass.pollError) throw mass.pollError;
      assert.equal(uuid, UUID);
      return [...mass.pending];
    },
    async getInstance(uuid) {
      return { id: 'i', uuid, url: `${API}analysis_system_instance/${uuid}/`, analysis_system: '', is_online: true, last_seen: null, scheduled_analyses_count: 0 };
    },
    async getScheduledAnalysis(url) {
      const sa = mass.pending.find((p) => p.url === url);
      if (!sa) throw new BridgeError('NOT_FOUND', 'gone', { upstream: 'mass', status: 404 });
      return sa;
    },
    async getSample(url) {
      const s = mass.samples.get(url);
      if (!s) throw new BridgeError('NOT_FOUND', 'invisible', { upstream: 'mass', status: 404 });
      if (s instanceof BridgeError) throw s;
      return s;
    },
    async downloadSample() {
      return { body: Readable.from([Buffer.from('hello '), Buffer.from('world')]), size: 11 };
    },
    async submitReport(sa, report) {
      const url = typeof sa === 'string' ? sa : sa.url;
      mass.reports.push({ sa: url, report });
      mass.pending = mass.pending.filter((p) => p.url !== url);
      for (const w of waiters.filter((w) => mass.reports.length >= w.n)) w.resolve();
      return { id: `r${mass.reports.length}` } as never;
    },
    listSampleReports: unsupported,
    submitFileSample: unsupported,
    submitIPSample: unsupported,
    submitDomainSample: unsupported,
    submitURISample: unsupported,
    addRelation: unsupported,
    findSamples: unsupported,
    getAnalysisSystem: unsupported,
    createAnalysisSystem: unsupported,
    createInstance: unsupported,
    async close() {},
  };
  return mass;
}

function schedule(mass: FakeMass, id: string, sample: MassSample | BridgeError): ScheduledAnalysis {
  const sampleUrl = `${API}sample/${id}-sample/`;
  const sa: ScheduledAnalysis = {
    id,
    url: `${API}scheduled_analysis/${id}/`,
    sample: sampleUrl,
    analysis_system_instance: `${API}analysis_system_instance/${UUID}/`,
    analysis_scheduled: '2026-11-23T00:27:25+00:00',
    priority: 0,
  };
  mass.pending.unshift(sa);
  mass.samples.set(sampleUrl, sample instanceof BridgeError ? sample : { ...sample, url: sampleUrl });
  return sa;
}

function fileSample(id: string): MassSample {
  return { _cls: 'Sample.FileSample', id, url: '', file: `${API}sample/${id}/download/`, tags: [], tlp_level: 0, delivery_date: '', first_seen: '', dispatched_to: [] };
}

test('tutorial INI: GLOBAL + class section, keys case-insensitive, key falls back to GLOBAL', () => {
  const ini = parseAnalysisIni(
    ['[GLOBAL]', 'serverurl = http://localhost:5000', 'APIEndpoint = api/', 'SleepTime = 3', 'MASS API KEY = global_key', '',
      '[SizeAnalysisInstance]', 'polltime = 10', 'UUID = u-1', 'SystemName = size_analysis'].join('\n'),
  );
  assert.deepEqual(analysisClientSettingsFromIni(ini, 'SizeAnalysisInstance'), {
    apiRoot: 'http://localhost:5000/api/',
    sleepTime: 3,
    pollTime: 10,
    uuid: 'u-1',
    systemName: 'size_analysis',
    apiKey: 'global_key',
  });
  ini.SizeAnalysisInstance['mass api key'] = 'local_key';
  assert.equal(analysisClientSettingsFromIni(ini, 'SizeAnalysisInstance').apiKey, 'local_key');
  assert.throws(() => analysisClientSettingsFromIni(ini, 'Other'), (err: BridgeError) => err.code === 'CONFIG_INVALID' && /\[Other\]/.test(err.message));
  ini.GLOBAL.SleepTime = 'soon';
  assert.throws(() => analysisClientSettingsFromIni(ini, 'SizeAnalysisInstance'), /SleepTime/);
});

test('the analysis client reads INI files with the bridge configuration reader: same file, same values', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'analysis-ini-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'client.ini');
  // A key with ';' and '#' (no inline comments), a 'key: value' line, a comment line, and names spelt differently.
  await writeFile(file, [
    '[GLOBAL]', 'ServerURL: http://mass.example.org/', 'APIEndpoint = api/', 'SleepTime = 3', '',
    '[AssemblylineAnalysis]', '; the instance of the bridge', 'PollTime = 10', `UUID = ${UUID}`, 'SystemName = assemblyline',
    'MASS_API_KEY = IjAbc;def#ghi "quoted"', '',
    '[Assemblyline]', 'URL = https://al.example.org', 'User = bridge', 'APIKey = name:secret', '',
  ].join('\n'));
  const settings = analysisClientSettingsFromIni(await readAnalysisIni(file), 'AssemblylineAnalysis');
  const { config } = loadConfig({ file, env: {} });
  assert.equal(settings.apiKey, 'IjAbc;def#ghi "quoted"');
  assert.equal(settings.apiKey, config.mass.apiKey);
  assert.equal(settings.apiRoot, config.global.apiRoot);
  assert.equal(settings.uuid, config.mass.uuid);
  assert.equal(settings.pollTime, config.mass.pollTime);
  assert.equal(settings.sleepTime, config.global.sleepTime);

  await writeFile(file, ['[GLOBAL]', 'ServerURL = http://mass.example.org/', 'just a line', '[GLOBAL]', ''].join('\n'));
  await assert.rejects(readAnalysisIni(file), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /line 3: line is neither a section, a comment nor 'key = value'/);
    assert.match(err.message, /line 4: section \[GLOBAL\] appears twice/);
    return true;
  });
});

test('a file client analyses file samples and closes the rest with error reports, loop going on', async (t) => {
  const mass = fakeMass();
  const seenPaths: string[] = [];
  class Sizes extends FileAnalysisClient {
    async doAnalysis(request: AnalysisRequest): Promise<void> {
      if (request.sample.id === 'explodes') throw new Error('parser exploded');
      const content = await request.temporarySampleFile(async (path) => {
        seenPaths.push(path);
        return readFile(path, 'utf8');
      });
      await request.submitReport({ additionalMetadata: { size: content.length }, jsonReportObjects: { size_analysis: { size: content.length } } });
    }
  }
  const client = new Sizes({ settings: SETTINGS, massClient: mass, logger: silentLogger() });
  t.after(() => client.stop());
  schedule(mass, 'ok', fileSample('ok'));
  schedule(mass, 'ip', { ...fileSample('ip'), _cls: 'Sample.IPSample', file: undefined });
  schedule(mass, 'explodes', fileSample('explodes'));
  schedule(mass, 'tlp', new BridgeError('NOT_FOUND', 'hidden', { upstream: 'mass', status: 404 }));
  const running = client.start();
  assert.equal(client.start(), running, 'start twice returns the same loop');
  await mass.reportsReach(4);
  // A later item is still picked up: the loop survived the failing analysis.
  schedule(mass, 'later', fileSample('later'));
  await mass.reportsReach(5);
  await client.stop();
  await client.stop();
  await running;

  const bySa = new Map(mass.reports.map((r) => [r.sa.split('/').at(-2), r.report]));
  assert.deepEqual(bySa.get('ok'), { additionalMetadata: { size: 11 }, jsonReportObjects: { size_analysis: { size: 11 } } });
  assert.equal(bySa.get('ip')?.errorMessage, 'ERROR - No file found to scan.');
  assert.equal(bySa.get('explodes')?.errorMessage, 'parser exploded');
  assert.match(bySa.get('tlp')?.errorMessage ?? '', /not visible/);
  assert.ok(bySa.has('later'));
  assert.equal(mass.pending.length, 0);
  assert.ok(seenPaths.length >= 2);
  for (const path of seenPaths) await assert.rejects(access(path), 'the temporary sample file is removed');
});

test('the type check follows the subclass: an IP client refuses file samples', async (t) => {
  const mass = fakeMass();
  const analysed: string[] = [];
  class Ips extends IPAnalysisClient {
    async doAnalysis(request: AnalysisRequest): Promise<void> {
      analysed.push(request.sample.id);
      await request.submitReport({ tags: ['checked'] });
    }
  }
  const client = new Ips({ settings: SETTINGS, massClient: mass, logger: silentLogger() });
  t.after(() => client.stop());
  schedule(mass, 'f', fileSample('f'));
  schedule(mass, 'i', { ...fileSample('i'), _cls: 'Sample.IPSample', ip_address: '203.0.113.7' });
  void client.start();
  await mass.reportsReach(2);
  await client.stop();
  assert.deepEqual(analysed, ['i']);
  assert.equal(mass.reports.find((r) => r.sa.includes('/f/'))?.report.errorMessage, 'ERROR - No IP found to scan.');
});

test('stop() interrupts the idle sleep and waits for the running analysis', async (t) => {
  const mass = fakeMass();
  let release!: () => void;
  const started = new Promise<void>((resolve) => {
    release = resolve;
  });
  let finishAnalysis!: () => void;
  const gate = new Promise<void>((resolve) => {
    finishAnalysis = resolve;
  });
  class Slow extends FileAnalysisClient {
    async doAnalysis(request: AnalysisRequest): Promise<void> {
      release();
      await gate;
      await request.submitReport({});
    }
  }
  // Hour-long ticks: only an aborted sleep lets stop() return.
  const client = new Slow({ settings: { ...SETTINGS, sleepTime: 3600, pollTime: 3600 }, massClient: mass, logger: silentLogger() });
  t.after(() => client.stop());
  schedule(mass, 'slow', fileSample('slow'));
  const running = client.start();
  await started;
  let stopped = false;
  const stopping = client.stop().then(() => {
    stopped = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(stopped, false, 'stop waits for the analysis in progress');
  finishAnalysis();
  await stopping;
  await running;
  assert.equal(mass.reports.length, 1);
  assert.equal(client.running, false);
});

test('a refused key ends start() with AUTH; transient poll errors are retried', async (t) => {
  const mass = fakeMass();
  class Noop extends FileAnalysisClient {
    doAnalysis(): void {}
  }
  const client = new Noop({ settings: SETTINGS, massClient: mass, logger: silentLogger() });
  t.after(() => client.stop());
  mass.pollError = new BridgeError('NETWORK', 'ECONNRESET', { upstream: 'mass' });
  const running = client.start();
  while (mass.polls < 3) await new Promise((resolve) => setTimeout(resolve, 5));
  mass.pollError = new BridgeError('AUTH', 'refused', { upstream: 'mass', status: 403 });
  await assert.rejects(running, (err: BridgeError) => err.code === 'AUTH');
});
