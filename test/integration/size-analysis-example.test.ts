import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { createMassClient } from '../../src/mass/client.js';
import type { MassReport, MassSample } from '../../src/mass/types.js';
import { createMassSimulator } from '../../src/simulators/mass/index.js';
import { createSizeAnalysisClient } from '../../examples/size-analysis.js';
import { until } from '../helpers/wait.js';

test('the tutorial size analysis reports the file size of a sample through the MASS simulator', async (t) => {
  const sim = await createMassSimulator({ systemName: 'size_analysis', schedulerIntervalMs: 0, logger: silentLogger() });
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => sim.close());
  const dir = await mkdtemp(join(tmpdir(), 'size-analysis-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const content = Buffer.from('MZ'.padEnd(12_345, 'x'));
  const res = await fetch(`${origin}/_sim/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ file_name: 'payload.bin', content_base64: content.toString('base64') }),
  });
  assert.equal(res.status, 201);
  const sample = (await res.json()) as MassSample;

  // The example INI format, with the simulator's instance.
  const configPath = join(dir, 'size-analysis.ini');
  await writeFile(
    configPath,
    [
      '[GLOBAL]',
      `ServerURL = ${origin}/`,
      'APIEndpoint = api/',
      'SleepTime = 0.02',
      '',
      '[SizeAnalysisInstance]',
      'PollTime = 0.02',
      `UUID = ${sim.instance.uuid}`,
      'SystemName = size_analysis',
      `mass api key = ${sim.instance.key}`,
      '',
    ].join('\n'),
  );
  const client = await createSizeAnalysisClient(configPath, { logger: silentLogger() });
  t.after(() => client.stop());
  const running = client.start();

  const mass = createMassClient({ apiRoot: `${origin}/api/`, apiKey: sim.instance.key });
  t.after(() => mass.close());
  // First-poll catch-22: MASS schedules only to an instance that has polled; run the scheduler once it has.
  await until('the first poll', async () => ((await mass.getInstance(sim.instance.uuid)).last_seen ? true : undefined));
  assert.equal(sim.runScheduler(), 1);

  const [report] = await until('the size report', async () => {
    const reports = await mass.listSampleReports(sample.url);
    return reports.length > 0 ? reports : undefined;
  });
  await client.stop();
  await running;

  const r = report as MassReport;
  assert.equal(r.error_message, null);
  assert.deepEqual(r.additional_metadata, { 'file size': content.length });
  const objectUrl = r.json_report_objects.file_size_analysis;
  assert.ok(objectUrl, 'the report has the file_size_analysis JSON object');
  const stored = await fetch(objectUrl, { headers: { authorization: `APIKEY ${sim.instance.key}` } });
  assert.deepEqual(await stored.json(), { 'file size': content.length });
  assert.deepEqual(await mass.poll(sim.instance.uuid), [], 'the scheduled analysis was consumed');
});
