/**
 * deploy/grafana/mass-al-bridge.json: a valid Grafana dashboard whose panels read only metrics the bridge
 * registers, laid out without overlaps, covering throughput, jobs per state, upstream latency and errors,
 * notification-queue lag and held/failed jobs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createMetrics } from '../../src/metrics.js';

interface Panel {
  id: number;
  title: string;
  type: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Array<{ refId: string; expr: string; datasource: { uid: string } }>;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string }> };
}

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/mass-al-bridge.json', import.meta.url), 'utf8')) as Dashboard;

/** Series names the bridge exports: each metric, plus _bucket/_sum/_count of histograms. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createMetrics({ collectProcessMetrics: false });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

test('the dashboard is a Grafana dashboard with a stable uid, a data-source variable and unique panel ids', () => {
  assert.equal(dashboard.uid, 'mass-al-bridge');
  assert.equal(typeof dashboard.title, 'string');
  assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 30);
  const vars = dashboard.templating.list.map((v) => v.name);
  assert.ok(vars.includes('datasource') && vars.includes('instance'));
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    assert.equal(p.datasource.uid, '${datasource}', `${p.title} uses the data-source variable`);
    assert.ok(p.targets.length > 0, `${p.title} has a query`);
    assert.ok(['stat', 'timeseries'].includes(p.type), `${p.title}: panel type ${p.type}`);
  }
});

test('panels sit on the 24-column grid without overlapping', () => {
  const cells = new Set<string>();
  for (const { title, gridPos: g } of dashboard.panels) {
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${title} fits the grid`);
    for (let x = g.x; x < g.x + g.w; x++) {
      for (let y = g.y; y < g.y + g.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
  }
});

test('every query reads metrics the bridge exports, and the dashboard covers what operators watch', async () => {
  const exported = await exportedNames();
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  for (const expr of exprs) {
    const names = [...expr.matchAll(/\b(massal_[a-z0-9_]+)\b/g)].map((m) => m[1]);
    assert.ok(names.length > 0, `${expr} reads a bridge metric`);
    for (const n of names) assert.ok(exported.has(n), `${expr} reads ${n}, which the bridge does not export`);
  }
  const all = exprs.join('\n');
  const covers: Array<[string, RegExp]> = [
    ['throughput', /rate\(massal_jobs_finished_total/],
    ['jobs per state', /sum by \(state\) \(massal_jobs\{/],
    ['upstream latency', /massal_upstream_request_duration_seconds_bucket/],
    ['upstream errors', /massal_upstream_requests_total\{outcome="error"/],
    ['queue lag', /massal_notification_lag_seconds_bucket/],
    ['held jobs', /massal_jobs\{state="held"/],
    ['failed jobs', /massal_jobs_finished_total\{outcome="failed"/],
  ];
  for (const [what, re] of covers) assert.match(all, re, `the dashboard shows ${what}`);
});
