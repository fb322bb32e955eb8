/**
 * deploy/prometheus/alerts.yml: every metric a rule reads is exported by a running bridge (scraped from /metrics
 * after a sample went through the simulators, plus prom-client's process metrics that `run` registers). The promtool checks are in test/tools/alerts-promtool.test.ts
 * (`npm run test:e2e`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildApi } from '../../src/api/app.js';
import { createMetrics } from '../../src/metrics.js';
import { startHarness } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';

const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = `${DIR}alerts.yml`;

interface Rule {
  alert: string;
  expr: string;
  annotations?: Record<string, string>;
}
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

/** Metric names in a PromQL expression: massal_* identifiers (every metric of the bridge has that prefix). */
const metricsOf = (expr: string) => [...expr.matchAll(/\b(massal_[a-z0-9_]+)\b/g)].map((m) => m[1]);
/** The scrape job of the bridge in the example Prometheus configuration: the one rule on Prometheus's own `up` must name it. */
const SCRAPE_JOBS = (parse(readFileSync(`${DIR}prometheus.yml`, 'utf8')) as { scrape_configs: Array<{ job_name: string }> }).scrape_configs.map((c) => c.job_name);
/** `up{job="…"}` in a PromQL expression: Prometheus's metric of whether the scrape of that job answered. */
const upJobsOf = (expr: string) => [...expr.matchAll(/\bup\{job="([^"]+)"\}/g)].map((m) => m[1]);

test('every alert has a runbook and reads only metrics the running bridge exports (or up of its scrape job)', { timeout: 60_000 }, async (t) => {
  assert.ok(rules.length >= 8);
  const h = await startHarness(t);
  const sample = await h.seedFile('scraped.bin', 'one sample through the bridge\n');
  h.bridge.start();
  await waitFor(async () => (await h.massState()).reports.some((r) => r.sample === sample.url), { timeoutMs: 30_000, what: 'the report' });
  const app = await buildApi({ ledger: h.ledger, control: h.bridge.control, metrics: h.metrics });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const text = await (await fetch(`${base}/metrics`)).text();
  // The harness leaves out prom-client's process metrics; `run` registers them (createMetrics() with its defaults).
  const processText = await createMetrics().registry.metrics();
  const namesIn = (scrape: string) => [...scrape.matchAll(/^([a-z_:][a-z0-9_:]*)(?:\{|\s)/gm)].map((m) => m[1]);
  const exported = new Set([...namesIn(text), ...namesIn(processText)]);
  for (const rule of rules) {
    assert.ok(rule.annotations?.runbook && rule.annotations.summary, `${rule.alert} has a summary and a runbook`);
    const names = metricsOf(rule.expr);
    const upJobs = upJobsOf(rule.expr);
    assert.ok(names.length > 0 || upJobs.length > 0, `${rule.alert} reads a bridge metric or the scrape's up`);
    for (const job of upJobs) assert.ok(SCRAPE_JOBS.includes(job), `${rule.alert} reads up of job ${job}, which prometheus.yml does not scrape`);
    for (const name of names) assert.ok(exported.has(name), `${rule.alert} reads ${name}, which /metrics does not export`);
  }
  assert.match(processText, /^massal_process_start_time_seconds \d+/m, 'the start time the restart alert reads');
  assert.match(text, /massal_oldest_job_age_seconds\{state="waiting"\} \d/, 'the oldest job age is exported per state');
  assert.ok(rules.some((r) => upJobsOf(r.expr).length > 0), 'a rule fires when the bridge cannot be scraped at all');
});
