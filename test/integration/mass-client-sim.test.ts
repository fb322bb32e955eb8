import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BridgeError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassClient, MassSample } from '../../src/mass/types.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';

type After = { after: (fn: () => unknown) => void };

async function startSim(t: After) {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger() });
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => sim.close());
  const apiRoot = `${origin}/api/`;
  const client = (apiKey: string): MassClient => {
    const c = createMassClient({ apiRoot, apiKey, timeoutMs: 5000 });
    t.after(() => c.close());
    return c;
  };
  const control = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${origin}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(res.ok, `${method} ${path} → ${res.status}`);
    return res.json();
  };
  return { sim, origin, apiRoot, client, control };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('poll, read, download, report and consume against the MASS simulator', async (t) => {
  const { sim, apiRoot, client, control } = await startSim(t);
  const mass = client(sim.instance.key);

  // First-poll catch-22: the instance is offline until it polls, so the scheduler gives it nothing before.
  assert.deepEqual(await mass.poll(sim.instance.uuid), []);
  const content = Buffer.from('%PDF-1.4\nhello from the client test\n');
  const seeded = (await control('POST', '/_sim/samples', {
    file_name: 'invoice.pdf',
    content_base64: content.toString('base64'),
    tags: ['campaign:demo'],
  })) as MassSample;
  assert.equal(sim.runScheduler(), 1);

  const [item] = await mass.poll(sim.instance.uuid);
  assert.ok(item.url.startsWith(apiRoot));
  assert.equal(item.sample, seeded.url);
  assert.deepEqual(await mass.getScheduledAnalysis(item.url), item);
  assert.equal((await mass.getScheduledAnalysis(item.id)).id, item.id);

  const sample = await mass.getSample(item.sample);
  assert.ok(sample._cls.startsWith('Sample.FileSample'));
  assert.equal(sample.sha256sum, sha256(content));
  assert.equal(sample.file_size, content.length);
  const download = await mass.downloadSample(sample);
  const chunks: Buffer[] = [];
  for await (const c of download.body) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), content);

  const report = await mass.submitReport(item, {
    analysisDate: new Date(Date.UTC(2026, 10, 23, 0, 25, 1, 123)),
    tags: ['al:verdict:malicious', 'al:score:1000'],
    additionalMetadata: { assemblyline: { sid: 'S1', max_score: 1000 } },
    jsonReportObjects: { al_result: { sid: 'S1', files: 2 } },
    rawReportObjects: { al_ontology: Buffer.from([0, 1, 98, 255]) },
  });
  assert.equal(report.analysis_date, '2026-11-23T00:25:01+00:00');
  assert.equal(report.error_message, null);
  assert.deepEqual(Object.keys(report.json_report_objects), ['al_result']);
  assert.deepEqual(Object.keys(report.raw_report_objects), ['al_ontology']);
  assert.deepEqual(report.additional_metadata, { assemblyline: { sid: 'S1', max_score: 1000 } });

  // The JSON object MASS stored is what we sent.
  const stored = await fetch(report.json_report_objects.al_result, { headers: { authorization: `APIKEY ${sim.instance.key}` } });
  assert.deepEqual(await stored.json(), { sid: 'S1', files: 2 });

  // The item is consumed; a second report is NOT_FOUND; report tags were merged into the sample.
  assert.deepEqual(await mass.poll(sim.instance.uuid), []);
  await assert.rejects(mass.submitReport(item, { errorMessage: 'again' }), (err: BridgeError) => err.code === 'NOT_FOUND');
  await assert.rejects(mass.getScheduledAnalysis(item.id), (err: BridgeError) => err.code === 'NOT_FOUND');
  const reports = await mass.listSampleReports(sample.url);
  assert.deepEqual(reports.map((r) => r.id), [report.id]);
  const after = await mass.getSample(sample.id);
  assert.ok(after.tags.includes('al:verdict:malicious'));
  assert.ok(after.tags.includes('campaign:demo'));
});

test('new samples (streamed file, IP), relations and filtered search against the simulator', async (t) => {
  const { sim, client } = await startSim(t);
  const mass = client(sim.instance.key);
  await mass.poll(sim.instance.uuid);

  const parent = await mass.submitFileSample({ filename: 'parent.bin', body: Buffer.from('parent sample bytes\n') });
  const bytes = Buffer.alloc(512 * 1024 + 5);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
  const dropped = await mass.submitFileSample({
    filename: 'dropped.bin',
    // Unknown size: goes out chunked.
    body: Readable.from((function* () {
      for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536);
    })()),
    tags: ['al:extracted'],
  });
  assert.equal(dropped.sha256sum, sha256(bytes));
  assert.equal(dropped.file_size, bytes.length);
  assert.equal(dropped.tlp_level, 0);
  assert.ok(dropped.tags.includes('al:extracted'));

  const again = await mass.submitFileSample({ filename: 'copy.bin', body: bytes, size: bytes.length, tags: ['al:seen-twice'] });
  assert.equal(again.id, dropped.id, 'MASS deduplicates files and answers with the existing sample');

  const ip = await mass.submitIPSample('203.0.113.7', { tags: ['al:network'] });
  assert.equal(ip._cls, 'Sample.IPSample');
  assert.equal((await mass.submitIPSample('203.0.113.7')).id, ip.id);
  const domain = await mass.submitDomainSample('malicious.example.com');
  assert.equal(domain._cls, 'Sample.DomainSample');
  const uri = await mass.submitURISample('http://malicious.example.com/payload.bin?id=7');
  assert.equal(uri._cls, 'Sample.URISample');

  const rel = await mass.addRelation('dropped-by', dropped.url, parent.url);
  assert.equal(rel._cls, 'SampleRelation.DroppedBySampleRelation');
  assert.equal(rel.sample, dropped.url);
  assert.equal(rel.other, parent.url);
  assert.equal((await mass.addRelation('contacted-by', ip.url, parent.url))._cls, 'SampleRelation.ContactedBySampleRelation');
  assert.equal((await mass.addRelation('resolved-by', domain.url, parent.url))._cls, 'SampleRelation.ResolvedBySampleRelation');
  assert.equal((await mass.addRelation('retrieved-by', uri.url, parent.url))._cls, 'SampleRelation.RetrievedBySampleRelation');

  const bySha = await mass.findSamples({ sha256sum: dropped.sha256sum! });
  assert.deepEqual(bySha.map((s) => s.id), [dropped.id]);
  const files = await mass.findSamples({ _cls__startswith: 'Sample.FileSample' });
  assert.deepEqual(new Set(files.map((s) => s.id)), new Set([parent.id, dropped.id]));
});

test('findSamples keeps the filter across pages', async (t) => {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, objectsPerPage: 2, logger: silentLogger() });
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => sim.close());
  const mass = createMassClient({ apiRoot: `${origin}/api/`, apiKey: sim.instance.key });
  t.after(() => mass.close());
  for (let i = 0; i < 5; i++) await mass.submitIPSample(`198.51.100.${i}`);
  for (let i = 0; i < 3; i++) await mass.submitDomainSample(`d${i}.example.com`);
  const ips = await mass.findSamples({ _cls: 'Sample.IPSample' });
  assert.equal(ips.length, 5);
  assert.ok(ips.every((s) => s._cls === 'Sample.IPSample'));
});

test('auth errors: a wrong key is AUTH, another instance uuid is NOT_FOUND, admin calls need the admin key', async (t) => {
  const { sim, apiRoot, client } = await startSim(t);
  await assert.rejects(client('not-a-key').poll(sim.instance.uuid), (err: BridgeError) => {
    assert.equal(err.code, 'AUTH');
    assert.ok(!err.message.includes('not-a-key'));
    return true;
  });
  const instanceClient = client(sim.instance.key);
  await assert.rejects(instanceClient.poll('11111111-2222-4333-8444-555555555555'), (err: BridgeError) => err.code === 'NOT_FOUND');
  await assert.rejects(
    instanceClient.createAnalysisSystem({ identifier_name: 'other', verbose_name: 'Other', tag_filter_expression: '' }),
    (err: BridgeError) => err.code === 'AUTH',
  );

  const admin = client(sim.adminKey);
  await assert.rejects(admin.getAnalysisSystem('size_analysis'), (err: BridgeError) => err.code === 'NOT_FOUND');
  const system = await admin.createAnalysisSystem({ identifier_name: 'size_analysis', verbose_name: 'Size', tag_filter_expression: 'sample-type:filesample' });
  assert.equal(system.url, `${apiRoot}analysis_system/size_analysis/`);
  assert.equal((await admin.getAnalysisSystem('size_analysis')).identifier_name, 'size_analysis');
  const instance = await admin.createInstance(system.url, '0b7a2a52-7d1c-4b1e-9d6e-1a2b3c4d5e6f');
  assert.equal(instance.uuid, '0b7a2a52-7d1c-4b1e-9d6e-1a2b3c4d5e6f');
  assert.equal(instance.analysis_system, system.url);
  assert.equal((await instanceClient.getInstance(instance.uuid)).is_online, false);
});
