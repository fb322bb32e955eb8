import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createMassSimulator, type MassSimulator } from '../../src/simulators/mass/index.js';
import { htmlErrorPage } from '../../src/simulators/mass/http-errors.js';
import { silentLogger } from '../../src/log.js';

// The real MASS turns the uploaded file name's extension into the sample tag
// `extension:<ext>` and validates every sample tag against ^[\w:\-\_\/\+\.]+$ on save;
// a name whose extension breaks that rule makes `POST sample/submit_file/` answer 500.

const HOST = 'mass.test:8080';

/** Werkzeug's 500 page, byte for byte as recorded from the real server (h-errors.json, "submit_file whose metadata tags break the tag regex"). */
const RECORDED_500 =
  '<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n' +
  '<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n';

async function simulator(t: TestContext): Promise<MassSimulator> {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger() });
  t.after(() => sim.close());
  return sim;
}

function quote(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/** Uploads `content` under `filename` as the analysis-system instance, the way mass_api_client does. */
async function upload(sim: MassSimulator, filename: string, content: string, tags: string[] = ['al:extracted']) {
  const boundary = 'file-name-boundary-42';
  const body = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n${JSON.stringify({ tlp_level: 0, tags })}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quote(filename)}"\r\nContent-Type: binary/octet-stream\r\n\r\n${content}\r\n` +
      `--${boundary}--\r\n`,
  );
  const res = await sim.app.inject({
    method: 'POST',
    url: '/api/sample/submit_file/',
    headers: { host: HOST, authorization: `APIKEY ${sim.instance.key}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: body,
  });
  const type = String(res.headers['content-type'] ?? '');
  return { status: res.statusCode, type, text: res.body, json: type.startsWith('application/json') ? (res.json() as Record<string, any>) : undefined };
}

async function sampleCount(sim: MassSimulator): Promise<number> {
  const res = await sim.app.inject({ method: 'GET', url: '/api/sample/', headers: { host: HOST, authorization: `APIKEY ${sim.userKey}` } });
  return (res.json() as { results: unknown[] }).results.length;
}

test('a name whose extension breaks the tag rule (download.php?id=7) gets the real 500 page and stores nothing', async (t) => {
  const sim = await simulator(t);
  const before = await sampleCount(sim);
  const res = await upload(sim, 'download.php?id=7', 'payload fetched from a URL\n');
  assert.equal(res.status, 500);
  assert.equal(res.type, 'text/html; charset=utf-8');
  assert.equal(res.text, RECORDED_500);
  assert.equal(res.text, htmlErrorPage(500));
  assert.equal(await sampleCount(sim), before, 'no sample was created');
  const again = await upload(sim, 'download.php?id=7', 'payload fetched from a URL\n');
  assert.equal(again.status, 500, 'the same request fails the same way every time');
});

test('the same bytes under an acceptable name are stored with extension:<lower-case extension>', async (t) => {
  const sim = await simulator(t);
  const ok = await upload(sim, 'download.PHP', 'payload fetched from a URL\n');
  assert.equal(ok.status, 201);
  assert.ok(ok.json?.tags.includes('extension:php'), JSON.stringify(ok.json?.tags));
  assert.deepEqual(ok.json?.file_names, ['download.PHP']);
  // a duplicate is not initialised again: no extension tag is derived, so the bad name passes
  const dup = await upload(sim, 'download.php?id=7', 'payload fetched from a URL\n');
  assert.equal(dup.status, 201);
  assert.equal(dup.json?.id, ok.json?.id);
  assert.deepEqual(dup.json?.file_names, ['download.PHP'], 'file_names is not extended on a duplicate');
  assert.ok(!dup.json?.tags.some((tag: string) => tag.includes('?')), JSON.stringify(dup.json?.tags));
});

test('only the text after the last dot of the base name is the extension; the tag rule decides', async (t) => {
  const sim = await simulator(t);
  const cases: Array<[name: string, status: number, extensionTag: string | null]> = [
    ['archive.tar.gz', 201, 'extension:gz'],
    ['no-extension', 201, null],
    ['trailing-dot.', 201, null],
    ['dir.v2/inner', 201, null],
    ['dir.v2\\inner', 500, null],
    ['folder\\file.EXE', 201, 'extension:exe'],
    ['page.html#top', 500, null],
    ['query.asp?x', 500, null],
    ['report. pdf', 500, null],
    ['mail.eml,1', 500, null],
    ['a.b=c', 500, null],
    ['user@host.x@y', 500, null],
    ['kept.c++', 201, 'extension:c++'],
    ['path.with_under-score', 201, 'extension:with_under-score'],
    ['datei.überweisung', 201, 'extension:überweisung'],
  ];
  let n = 0;
  for (const [name, status, extensionTag] of cases) {
    const res = await upload(sim, name, `distinct content ${n++}\n`);
    assert.equal(res.status, status, name);
    if (status !== 201) continue;
    const extensionTags = (res.json?.tags as string[]).filter((tag) => tag.startsWith('extension:'));
    assert.deepEqual(extensionTags, extensionTag === null ? [] : [extensionTag], name);
  }
});

test('the stored name is the POSIX base name: only a Windows drive or UNC path loses its folders', async (t) => {
  const sim = await simulator(t);
  const cases: Array<[sent: string, stored: string]> = [
    ['reports/2030/invoice.pdf', 'invoice.pdf'],
    ['C:\\Users\\me\\evil.exe', 'evil.exe'],
    ['\\\\share\\drop\\evil.dll', 'evil.dll'],
    ['folder\\file.exe', 'folder\\file.exe'],
  ];
  let n = 0;
  for (const [sent, stored] of cases) {
    const res = await upload(sim, sent, `another distinct content ${n++}\n`);
    assert.equal(res.status, 201, sent);
    assert.deepEqual(res.json?.file_names, [stored], sent);
  }
});
