/**
 * The status page in a real browser (Chromium via playwright-core): what an operator sees.
 * Run by `npm run test:e2e` (test/browser/run.ts finds Chromium), not by `npm test`.
 * UPDATE_SCREENSHOT=1 also writes docs/status-page.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApi } from '../../src/api/app.js';
import { createMetrics } from '../../src/metrics.js';
import { createFakeLedger, seedTypicalJobs } from '../helpers/fake-ledger.js';
import { createFakeControl } from '../helpers/fake-control.js';
import { findChromium } from './chromium.js';

const SCREENSHOT = new URL('../../docs/status-page.png', import.meta.url);

async function launch(): Promise<Browser> {
  const found = findChromium({ env: process.env });
  if (found.path === null) assert.fail(found.message);
  return chromium.launch({
    executablePath: found.path,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

const text = (page: Page, selector: string) => page.locator(selector).innerText({ timeout: 10_000 });

test('the status page shows counts, upstream health, the throughput chart and failures, and refreshes itself', async (t) => {
  const now = Date.now();
  const ledger = createFakeLedger();
  const ids = seedTypicalJobs(ledger, now);
  const control = createFakeControl(ledger, { startedAt: now - 2 * 3_600_000 });
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }), version: '1.2.3' });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const foreign: string[] = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(base)) foreign.push(req.url());
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  await page.goto(`${base}/?refresh=1`);
  await page.waitForSelector('body[data-refreshed]', { timeout: 10_000 });

  assert.equal(await text(page, '#run-state'), 'Running');
  assert.equal(await text(page, '#version'), 'v1.2.3');
  assert.equal(await text(page, '[data-state="done"] td'), '24');
  assert.equal(await text(page, '[data-state="failed"] td'), '3');
  assert.equal(await text(page, '[data-state="held"] td'), '1');
  assert.equal(await text(page, '[data-state="waiting"] td'), '2');
  assert.match(await text(page, '#inflight'), /^6 in flight; oldest 9 min$/);
  assert.match(await text(page, '[data-upstream="mass"]'), /MASS\s+OK/);
  assert.match(await text(page, '[data-upstream="assemblyline"]'), /Assemblyline\s+OK/);
  // A bridge without identity sections shows its one identity, default, with what it has in flight.
  assert.equal(await page.locator('#identities tr[data-identity]').count(), 1);
  assert.match(await text(page, '[data-identity="default"]'), /^default\s+online\s+–\s+6\s+\d+ s ago$/);

  const bars = await page.locator('#chart svg rect.bar').count();
  assert.ok(bars >= 20, `expected bars for the finished jobs of the last hour, got ${bars}`);
  assert.ok((await page.locator('#chart svg rect.bar-failed').count()) === 3);

  const failedId = ids.failed[0];
  const row = page.locator(`[data-job="${failedId}"]`);
  assert.match(await row.innerText(), /AL_FAILURE: Assemblyline reported the submission as failed/);
  const jsonHref = await row.locator('a.job-json').getAttribute('href');
  assert.equal(new URL(jsonHref!, base).pathname, `/api/v1/jobs/${failedId}`);
  assert.equal(await row.locator('a.al-link').getAttribute('href'), 'https://al.test/submission/sid-f1');
  assert.equal(await page.locator('#failures tr[data-job]').count(), 4, 'three failed jobs and one held job');

  if (process.env.UPDATE_SCREENSHOT === '1') await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true });

  // New data: one more finished job, Assemblyline failing, paused. The page must show it without a reload.
  ledger.seed({ id: 'sa-new', state: 'done', createdAt: now - 1000, finishedAt: Date.now() });
  control.state.upstreams.assemblyline = { lastSuccessAt: now - 120_000, lastErrorAt: Date.now(), lastError: 'Assemblyline answered 503 Service Unavailable', lastErrorCode: 'UPSTREAM_HTTP', consecutiveFailures: 4 };
  control.state.paused = true;
  // Two identities now, the second one failing to poll for 11 minutes: MASS counts it offline.
  control.state.identities = [
    { name: 'default', uuid: control.state.instanceUuid, lastPollAt: Date.now() - 2000, pendingOnMass: 101, inFlight: 97, online: true, lastPollError: null },
    { name: 'lab-2', uuid: '00000000-0000-4000-8000-000000000002', lastPollAt: Date.now() - 11 * 60_000, pendingOnMass: 40, inFlight: 3, online: false, lastPollError: 'MASS answered 404: Analysis instance not found' },
  ];
  await page.locator('[data-state="done"] td').filter({ hasText: /^25$/ }).waitFor({ timeout: 10_000 });
  assert.match(await text(page, '[data-identity="default"]'), /^default\s+online\s+101\s+97\s+\d+ s ago$/);
  assert.match(await text(page, '[data-identity="lab-2"]'), /^lab-2\s+OFFLINE\s+40\s+3\s+11 min ago\s+MASS answered 404: Analysis instance not found$/);
  assert.equal(await text(page, '#run-state'), 'Paused');
  assert.match(await text(page, '[data-upstream="assemblyline"]'), /FAILING[\s\S]*UPSTREAM_HTTP: Assemblyline answered 503 Service Unavailable \(4 failures in a row\)/);

  // The job link opens the job's JSON.
  await page.goto(new URL(jsonHref!, base).href);
  const job = JSON.parse(await page.locator('body').innerText());
  assert.equal(job.job.id, failedId);

  assert.deepEqual(foreign, [], 'the page loads nothing from other origins');
  assert.deepEqual(pageErrors, []);
});

test('the status page tells the operator when the API cannot be reached', async (t) => {
  const ledger = createFakeLedger();
  seedTypicalJobs(ledger, Date.now());
  const control = createFakeControl(ledger);
  const app = await buildApi({ ledger, control, metrics: createMetrics({ collectProcessMetrics: false }) });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${base}/?refresh=1`);
  await page.waitForSelector('body[data-refreshed]', { timeout: 10_000 });
  control.status = () => {
    throw new Error('bridge status unavailable');
  };
  await page.waitForSelector('#banner.show', { timeout: 10_000 });
  assert.match(await text(page, '#banner'), /Cannot reach the bridge API: api\/v1\/status answered HTTP 500/);
  assert.equal(await text(page, '[data-state="done"] td'), '24', 'the last data stays visible');
});
