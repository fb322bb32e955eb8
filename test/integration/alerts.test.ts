/**
 * deploy/prometheus/alerts.yml: every metric a rule reads is exported by a running bridge (scraped from /metrics
 * after a sample went through the simulators), and `promtool test rules` passes the rule unit tests
 * (each alert fires on its scenario and stays quiet otherwise). promtool comes from Debian's `prometheus` package.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildApi } from '../../src/api/app.js';
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

function promtool(): string {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  assert.ok(
    found.status === 0 && path,
    'promtool is not installed: install Debian\'s `prometheus` package (apt-get install prometheus) to run the alert rule tests',
  );
  return path;
}

test('every alert has a runbook and reads only metrics the running bridge exports', { timeout: 60_000 }, async (t) => {
  assert.ok(rules.length >= 8);
  const h = await startHarness(t);
  const sample = await h.seedFile('scraped.bin', 'one sample through the bridge\n');
  h.bridge.start();
  await waitFor(async () => (await h.massState()).reports.some((r) => r.sample === sample.url), { timeoutMs: 30_000, what: 'the report' });
  const app = await buildApi({ ledger: h.ledger, control: h.bridge.control, metrics: h.metrics });
  t.after(() => app.close());
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const text = await (await fetch(`${base}/metrics`)).text();
  const exported = new Set([...text.matchAll(/^([a-z_:][a-z0-9_:]*)(?:\{|\s)/gm)].map((m) => m[1]));
  for (const rule of rules) {
    assert.ok(rule.annotations?.runbook && rule.annotations.summary, `${rule.alert} has a summary and a runbook`);
    const names = metricsOf(rule.expr);
    assert.ok(names.length > 0, `${rule.alert} reads a bridge metric`);
    for (const name of names) assert.ok(exported.has(name), `${rule.alert} reads ${name}, which /metrics does not export`);
  }
  assert.match(text, /massal_oldest_job_age_seconds\{state="waiting"\} \d/, 'the oldest job age is exported per state');
});

test('promtool: the rules are valid and their unit tests pass', () => {
  const bin = promtool();
  execFileSync(bin, ['check', 'rules', RULES], { encoding: 'utf8' });
  // The demo Prometheus configuration (docker-compose demo profile) loads the same rules.
  execFileSync(bin, ['check', 'config', `${DIR}prometheus.yml`], { encoding: 'utf8' });
  const run = spawnSync(bin, ['test', 'rules', 'alerts.test.yml'], { cwd: DIR, encoding: 'utf8' });
  assert.equal(run.status, 0, `promtool test rules failed:\n${run.stdout}\n${run.stderr}`);
  // Every alert has at least one scenario in the unit tests.
  const tests = readFileSync(`${DIR}alerts.test.yml`, 'utf8');
  for (const rule of rules) assert.match(tests, new RegExp(`alertname: ${rule.alert}\\b`), `${rule.alert} is unit-tested`);
});
