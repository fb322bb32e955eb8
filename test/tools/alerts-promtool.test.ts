/**
 * `promtool` checks the alert rules and the demo Prometheus configuration, and `promtool test rules`
 * passes the rule unit tests (each alert fires on its scenario and stays quiet otherwise).
 * promtool comes from Debian's `prometheus` package; this is part of `npm run test:e2e`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = `${DIR}alerts.yml`;
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }).groups.flatMap((g) => g.rules);

function promtool(): string {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  assert.ok(
    found.status === 0 && path,
    'promtool is not installed: install Debian\'s `prometheus` package (apt-get install prometheus) to run the alert rule tests',
  );
  return path;
}

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
