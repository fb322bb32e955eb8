/**
 * The status page links and acts: links to the MASS sample and the Assemblyline submission, file names,
 * recent successes, a state filter, the oldest job per state, operator retry and abandon with a token typed
 * into the page (never in the URL or the logs), and data on first paint (embedded by the server).
 * Driven in Debian's chromium with playwright-core against a real bridge and the simulators.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApi } from '../../src/api/app.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { startHarness, type Harness } from '../helpers/bridge-harness.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { createFakeLedger, seedTypicalJobs } from '../helpers/fake-ledger.js';
import { waitFor } from '../helpers/wait.js';

// npm run test:e2e (test/browser/run.ts) sets CHROMIUM_PATH to the Chromium it found.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'op-token-7c1e9a04b2d85f36';

async function launch(t: { after: (fn: () => unknown) => void }): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run these tests with npm run test:e2e, which finds Chromium or says what to install`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  t.after(() => browser.close());
  return browser;
}

const text = (page: Page, selector: string) => page.locator(selector).innerText({ timeout: 10_000 });

/** Waits until the bridge has settled the job of `sampleUrl` in `state`; returns its id. */
async function jobIn(h: Harness, sampleUrl: string, state: string): Promise<string> {
  const job = await waitFor(() => h.ledger.list({ limit: 100 }).jobs.find((j) => j.sampleUrl === sampleUrl && j.state === state), {
    timeoutMs: 30_000,
    what: `the job of ${sampleUrl} in state ${state}`,
  });
  return job.id;
}

/** A sample whose analysis report and error report MASS both refuse (400): the bridge holds the job. */
async function heldSample(h: Harness, name: string) {
  await h.massControl('/_sim/faults', { method: 'POST', path_prefix: '/api/scheduled_analysis/', status: 400, times: 2 });
  const sample = await h.seedFile(name, `${name}: MASS refuses its reports once\n`);
  const id = await jobIn(h, sample.url, 'held');
  await h.massControl('/_sim/faults', undefined, 'DELETE');
  return { sample, id };
}

test('the page links jobs to MASS and Assemblyline, filters by state, and drives retry and abandon with the operator token', { timeout: 120_000 }, async (t) => {
  const h = await startHarness(t);
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  h.bridge.start();
  const fine = await h.seedFile('fine.exe', 'an ordinary sample\n');
  const fineId = await jobIn(h, fine.url, 'done');
  const held = await heldSample(h, 'held-then-retried.exe');
  const app = await buildApi({ ledger: h.ledger, control: h.bridge.control, metrics: h.metrics, token: TOKEN, logger: createLogger({ level: 'debug', destination }) });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  const requests: Array<{ url: string; method: string; authorization?: string }> = [];
  page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), authorization: r.headers().authorization }));
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${base}/?refresh=1`);

  // Links and file names: the finished job links to its MASS sample page and its Assemblyline submission.
  const fineRow = page.locator(`#successes [data-job="${fineId}"]`);
  assert.equal(await fineRow.locator('.file-name').innerText(), 'fine.exe');
  const sampleId = new URL(fine.url).pathname.split('/').filter(Boolean).pop();
  assert.equal(await fineRow.locator('a.mass-link').getAttribute('href'), `${h.massOrigin}/webui/sample/${sampleId}/`);
  const sid = h.ledger.get(fineId)!.sid;
  assert.ok(sid);
  assert.equal(await fineRow.locator('a.al-link').getAttribute('href'), `${h.alOrigin}/submission/${sid}`);

  // The held job: listed with its file name and as the oldest held job; no actions without the token.
  const heldRow = page.locator(`#failures [data-job="${held.id}"]`);
  assert.match(await heldRow.innerText(), /held-then-retried\.exe[\s\S]*held/);
  assert.match(await text(page, '[data-oldest="held"]'), new RegExp(`held\\s+${held.id}\\s+\\d+ s`));
  assert.equal(await heldRow.locator('button').count(), 0, 'read-only without the token');

  // Filter by state.
  await page.selectOption('#state-filter', 'done');
  await page.locator(`#jobs [data-job="${fineId}"]`).waitFor({ timeout: 10_000 });
  assert.deepEqual([...new Set(await page.locator('#jobs tr[data-job]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job-state'))))], ['done']);
  await page.selectOption('#state-filter', 'held');
  await page.locator(`#jobs [data-job="${held.id}"]`).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#jobs tr[data-job]').count(), 1);

  // The operator types the token: it stays in the tab's session storage, never in the URL.
  await page.fill('#token', TOKEN);
  await page.click('#token-use');
  await page.locator('#operator', { hasText: 'operator actions on' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.inputValue('#token'), '', 'the field is cleared');
  assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('massal-operator-token')), TOKEN);

  // Retry from the page: the job goes back to the step it was held in (sending its error report, which MASS
  // refused before) and moves on: the page shows it held → failed, and the report is on MASS.
  await heldRow.locator('button.retry').click({ timeout: 10_000 });
  await page.locator('#action-result', { hasText: `retry ${held.id}: now reporting` }).waitFor({ timeout: 10_000 });
  await page.locator(`#failures [data-job="${held.id}"] .pill`, { hasText: /^failed$/ }).waitFor({ timeout: 30_000 });
  assert.equal(h.ledger.get(held.id)!.state, 'failed');
  const reports = (await h.massState()).reports.filter((r) => r.sample === held.sample.url);
  assert.equal(reports.length, 1, 'the report reached MASS once, after the retry');
  assert.ok(h.ledger.events(held.id).some((e) => e.type === 'retry'));

  // Abandon from the page: the reason typed into the prompt becomes the error report.
  const second = await heldSample(h, 'held-then-abandoned.exe');
  page.once('dialog', (d) => void d.accept('sample withdrawn by its owner'));
  await page.locator(`#failures [data-job="${second.id}"] button.abandon`).click({ timeout: 15_000 });
  await page.locator(`#failures [data-job="${second.id}"] .pill`, { hasText: /^failed$/ }).waitFor({ timeout: 30_000 });
  const abandoned = (await h.massState()).reports.find((r) => r.sample === second.sample.url);
  assert.match(abandoned?.error_message ?? '', /sample withdrawn by its owner/);

  const actions = requests.filter((r) => r.method === 'POST');
  assert.deepEqual(actions.map((r) => new URL(r.url).pathname), [`/api/v1/jobs/${held.id}/retry`, `/api/v1/jobs/${second.id}/abandon`]);
  for (const r of actions) assert.equal(r.authorization, `Bearer ${TOKEN}`);
  assert.ok(requests.every((r) => !r.url.includes(TOKEN)), 'the token is in no URL');
  assert.ok(!page.url().includes(TOKEN));
  assert.ok(logLines.length > 0 && logLines.every((l) => !l.includes(TOKEN)), 'the token is in no log line');
  assert.deepEqual(pageErrors, []);
});

test('first paint shows the data embedded by the server, even when the page cannot reach the API', { timeout: 60_000 }, async (t) => {
  const now = Date.now();
  const ledger = createFakeLedger();
  seedTypicalJobs(ledger, now);
  // A file name that tries to close the embedding script element.
  ledger.seed({ id: 'sa-evil', state: 'held', createdAt: now - 90 * 60_000, stateSince: now - 60 * 60_000, updatedAt: now - 60_000, fileName: '</script><script>window.pwned=1</script>.exe', lastError: 'x', lastErrorCode: 'UPSTREAM_HTTP' });
  const control = createFakeControl(ledger);
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }), version: '1.2.3' });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  const html = await (await fetch(`${base}/`)).text();
  assert.ok(!html.includes('loading…'), 'the run state is filled in by the server');
  assert.match(html, /<span id="run-state" class="pill ok">Running<\/span>/);
  assert.equal(html.split('</script>').length, 3, 'the embedded data closes no script element');

  const browser = await launch(t);
  const page = await browser.newPage();
  const apiCalls: string[] = [];
  // The API is unreachable for the page: everything it shows comes with the document.
  await page.route('**/api/v1/**', (route) => (apiCalls.push(route.request().url()), route.abort()));
  await page.goto(base, { waitUntil: 'domcontentloaded' });
  assert.equal(await text(page, '#run-state'), 'Running');
  assert.equal(await text(page, '[data-state="done"] td'), '24');
  assert.equal(await page.locator('#successes tr[data-job]').count(), 10);
  assert.equal(await page.locator('#chart svg rect.bar-failed').count(), 3);
  assert.match(await text(page, '[data-oldest="held"]'), /sa-evil\s+60 min/);
  assert.match(await text(page, '#failures [data-job="sa-evil"] .file-name'), /^<\/script><script>window\.pwned=1<\/script>\.exe$/);
  assert.equal(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned), undefined);
  assert.deepEqual(apiCalls, [], 'nothing was fetched for the first paint');
});
