/**
 * The operator's status page: one self-contained HTML document (inline CSS and JS, no CDN, no build
 * step) that polls the JSON API every 5 s and draws the throughput chart as inline SVG.
 * The server embeds the first data in the document (renderStatusPage), so the first paint already shows it.
 * With the operator token (typed into the page, kept in sessionStorage, sent as a bearer header; never in the
 * URL) each unfinished job offers retry and abandon. Kept in a .ts module so `npm run build` ships it inside dist/.
 */
import type { JobState } from '../ledger/types.js';

export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mass-al-bridge status</title>
<style>
  :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #fff; }
  header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; padding: .8rem 1.2rem; border-bottom: 1px solid var(--line); background: var(--bg); }
  header h1 { font-size: 1.15rem; margin: 0; }
  header .meta { color: var(--muted); }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); }
  section { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: .95rem; margin: 0 0 .6rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .25rem .5rem .25rem 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .pill { display: inline-block; padding: 0 .55rem; border-radius: 999px; font-weight: 600; font-size: .85rem; }
  .pill.ok { background: #dafbe1; color: var(--ok); }
  .pill.bad { background: #ffebe9; color: var(--bad); }
  .pill.warn { background: #fff8c5; color: var(--warn); }
  .muted { color: var(--muted); }
  .err { color: var(--bad); word-break: break-word; }
  #banner { display: none; margin: 0; padding: .5rem 1.2rem; background: #ffebe9; color: var(--bad); }
  #banner.show { display: block; }
  svg { width: 100%; height: auto; max-height: 260px; display: block; }
  .legend span { margin-right: 1rem; }
  .sw { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; vertical-align: -1px; margin-right: .3rem; }
  a { color: #0969da; }
  #token-box { margin-left: auto; display: flex; gap: .4rem; align-items: center; }
  #token-box input { font: inherit; padding: .15rem .4rem; width: 14rem; }
  button { font: inherit; padding: .1rem .6rem; cursor: pointer; }
  td.actions button { margin-right: .3rem; }
  #action-result.ok { color: var(--ok); }
  #action-result.bad { color: var(--bad); }
  .filter { float: right; font-weight: normal; text-transform: none; letter-spacing: 0; }
</style>
</head>
<body>
<header>
  <h1>mass-al-bridge</h1>
  <span id="run-state" class="pill warn">loading…</span>
  <span class="meta" id="version"></span>
  <span class="meta" id="uptime"></span>
  <span class="meta" id="updated"></span>
  <span id="token-box">
    <input id="token" type="password" autocomplete="off" placeholder="operator token" aria-label="Operator token">
    <button id="token-use" type="button">Use token</button>
    <button id="token-forget" type="button" hidden>Forget token</button>
    <span class="meta" id="operator">read-only</span>
  </span>
</header>
<p id="action-result" role="status" class="muted"></p>
<p id="banner" role="alert"></p>
<main>
  <section id="upstreams-section">
    <h2>Upstreams</h2>
    <table><tbody id="upstreams"></tbody></table>
  </section>
  <section id="identities-section">
    <h2>Identities on MASS</h2>
    <table>
      <thead><tr><th>Identity</th><th>MASS</th><th>Pending on MASS</th><th>In flight</th><th>Last poll</th></tr></thead>
      <tbody id="identities"></tbody>
    </table>
  </section>
  <section id="counts-section">
    <h2>Jobs per state</h2>
    <table><tbody id="counts"></tbody></table>
    <p class="muted" id="inflight"></p>
  </section>
  <section id="oldest-section">
    <h2>Oldest job per state</h2>
    <table>
      <thead><tr><th>State</th><th>Job</th><th>In state</th><th>Budget</th></tr></thead>
      <tbody id="oldest"></tbody>
    </table>
  </section>
  <section class="wide" id="chart-section">
    <h2>Finished jobs, last hour (per minute)</h2>
    <div id="chart"></div>
    <p class="legend muted"><span><i class="sw" style="background:#2da44e"></i>done</span><span><i class="sw" style="background:#cf222e"></i>failed</span><span id="throughput-summary"></span></p>
  </section>
  <section class="wide" id="failures-section">
    <h2>Latest failures</h2>
    <table>
      <thead><tr><th>Job</th><th>State</th><th>Error</th><th>When</th><th>Links</th><th>Actions</th></tr></thead>
      <tbody id="failures"></tbody>
    </table>
  </section>
  <section class="wide" id="successes-section">
    <h2>Recent successes</h2>
    <table>
      <thead><tr><th>Job</th><th>Score</th><th>When</th><th>Links</th></tr></thead>
      <tbody id="successes"></tbody>
    </table>
  </section>
  <section class="wide" id="jobs-section">
    <h2>Jobs <label class="filter">state <select id="state-filter" aria-label="Filter jobs by state"></select></label></h2>
    <table>
      <thead><tr><th>Job</th><th>State</th><th>Claimed</th><th>Last error</th><th>Links</th><th>Actions</th></tr></thead>
      <tbody id="jobs"></tbody>
    </table>
  </section>
</main>
<script type="application/json" id="initial-data">__INITIAL_DATA__</script>
<script>
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var refreshSeconds = Math.max(1, Number(params.get('refresh')) || 5);
  var STATES = ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'done', 'failed', 'held'];
  var SVG = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    (children || []).forEach(function (c) { node.append(c instanceof Node ? c : document.createTextNode(String(c))); });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function ago(isoTime) {
    if (!isoTime) return 'never';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(isoTime)) / 1000));
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 90) return Math.round(seconds) + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }
  function getJson(path) {
    return fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(path + ' answered HTTP ' + r.status);
      return r.json();
    });
  }

  var TOKEN_KEY = 'massal-operator-token';
  var UNFINISHED = ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'held'];
  var lastStatus = null;
  var filter = 'unfinished';
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function jobsPath() {
    return 'api/v1/jobs?state=' + (filter === 'unfinished' ? UNFINISHED.join(',') : filter) + '&limit=20';
  }
  /** The MASS web UI page of a sample: <server>/webui/sample/<id>/ next to the API root <server>/api/. */
  function massSampleLink(sampleUrl) {
    var root = lastStatus && lastStatus.massApiRoot;
    if (!root || typeof sampleUrl !== 'string' || sampleUrl.indexOf(root) !== 0) return null;
    var m = /^sample\\/([^\\/?#]+)\\/?$/.exec(sampleUrl.slice(root.length));
    if (!m) return null;
    try { return new URL('../webui/sample/' + m[1] + '/', root).href; } catch (e) { return null; }
  }
  function linkCell(j) {
    var cell = el('td', {}, [el('a', { href: 'api/v1/jobs/' + encodeURIComponent(j.id), class: 'job-json' }, ['JSON'])]);
    var mass = massSampleLink(j.sampleUrl);
    if (mass && /^https?:/i.test(mass)) cell.append(' · ', el('a', { href: mass, class: 'mass-link', target: '_blank', rel: 'noopener noreferrer' }, ['MASS sample']));
    if (j.assemblylineUrl && /^https?:/i.test(j.assemblylineUrl)) {
      cell.append(' · ', el('a', { href: j.assemblylineUrl, class: 'al-link', target: '_blank', rel: 'noopener noreferrer' }, ['Assemblyline']));
    }
    return cell;
  }
  function jobCell(j) {
    return el('td', {}, [el('code', {}, [j.id]), el('div', { class: 'muted file-name' }, [j.fileName || (j.sha256 ? j.sha256.slice(0, 16) + '…' : '')])]);
  }
  function actionCell(j) {
    var cell = el('td', { class: 'actions' });
    if (!token() || j.state === 'done' || j.state === 'failed') return cell;
    var retry = el('button', { type: 'button', class: 'retry' }, ['Retry']);
    retry.addEventListener('click', function () { act(j.id, 'retry', undefined); });
    var abandon = el('button', { type: 'button', class: 'abandon' }, ['Abandon']);
    abandon.addEventListener('click', function () {
      var reason = window.prompt('Abandon ' + j.id + ': the error report sent to MASS says why. Reason:', 'abandoned from the status page');
      if (reason) act(j.id, 'abandon', { reason: reason });
    });
    cell.append(retry, abandon);
    return cell;
  }
  function say(text, ok) {
    var r = document.getElementById('action-result');
    r.textContent = text;
    r.className = ok ? 'ok' : 'bad';
  }
  function act(id, action, body) {
    var headers = { accept: 'application/json', authorization: 'Bearer ' + token() };
    if (body) headers['content-type'] = 'application/json';
    return fetch('api/v1/jobs/' + encodeURIComponent(id) + '/' + action, { method: 'POST', headers: headers, body: body ? JSON.stringify(body) : undefined, cache: 'no-store' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (answer) {
          if (!r.ok) throw new Error((answer && answer.message) || ('HTTP ' + r.status));
          say(action + ' ' + id + ': now ' + answer.job.state, true);
        });
      })
      .catch(function (err) { say(action + ' ' + id + ' refused: ' + err.message, false); })
      .then(refresh);
  }
  function renderOperator() {
    var has = !!token();
    document.getElementById('operator').textContent = has ? 'operator actions on' : 'read-only';
    document.getElementById('token-forget').hidden = !has;
  }

  function renderStatus(s) {
    lastStatus = s;
    var run = document.getElementById('run-state');
    run.textContent = s.paused ? 'Paused' : 'Running';
    run.className = 'pill ' + (s.paused ? 'warn' : 'ok');
    document.getElementById('version').textContent = 'v' + s.version;
    document.getElementById('uptime').textContent = 'up ' + duration(s.uptimeSeconds);

    var up = document.getElementById('upstreams');
    up.replaceChildren();
    [['MASS', 'mass', s.massApiRoot], ['Assemblyline', 'assemblyline', s.assemblylineUiUrl]].forEach(function (u) {
      var h = s.upstreams[u[1]];
      var pill = el('span', { class: 'pill ' + (h.ok ? 'ok' : 'bad') }, [h.ok ? 'OK' : 'FAILING']);
      var detail = el('div', {}, [el('span', { class: 'muted' }, ['last success ' + ago(h.lastSuccessAt)])]);
      if (!h.ok && h.lastError) {
        detail.append(el('div', { class: 'err' }, [(h.lastErrorCode ? h.lastErrorCode + ': ' : '') + h.lastError + ' (' + h.consecutiveFailures + ' failures in a row)']));
      }
      up.append(el('tr', { 'data-upstream': u[1] }, [el('th', {}, [u[0]]), el('td', {}, [pill]), el('td', {}, [detail])]));
    });
    up.append(el('tr', {}, [el('th', {}, ['Last MASS poll']), el('td', { colspan: '2' }, [ago(s.lastPollAt)])]));

    var ids = document.getElementById('identities');
    ids.replaceChildren();
    (s.identities || []).forEach(function (i) {
      var online = el('span', { class: 'pill ' + (i.online ? 'ok' : 'bad') }, [i.online ? 'online' : 'OFFLINE']);
      var poll = el('div', {}, [ago(i.lastPollAt)]);
      if (i.lastPollError) poll.append(el('div', { class: 'err' }, [i.lastPollError]));
      ids.append(el('tr', { 'data-identity': i.name }, [
        el('th', { title: i.uuid }, [i.name]),
        el('td', {}, [online]),
        el('td', { class: 'num' }, [i.pendingOnMass === null ? '–' : String(i.pendingOnMass)]),
        el('td', { class: 'num' }, [String(i.inFlight)]),
        el('td', {}, [poll]),
      ]));
    });

    var counts = document.getElementById('counts');
    counts.replaceChildren();
    STATES.forEach(function (state) {
      var n = s.counts[state] || 0;
      counts.append(el('tr', { 'data-state': state }, [el('th', {}, [state]), el('td', { class: 'num' }, [String(n)])]));
    });
    document.getElementById('inflight').textContent =
      s.inFlight + ' in flight; oldest ' + duration(s.oldestInFlightAgeSeconds);
    document.getElementById('throughput-summary').textContent =
      'last 5 min: ' + (s.throughput.last5m.done + s.throughput.last5m.failed) +
      ', last hour: ' + (s.throughput.last60m.done + s.throughput.last60m.failed) +
      ' (' + s.throughput.last60m.perMinute.toFixed(2) + '/min)';

    var oldest = document.getElementById('oldest');
    oldest.replaceChildren();
    (s.oldestPerState || []).forEach(function (o) {
      oldest.append(el('tr', { 'data-oldest': o.state }, [
        el('th', {}, [o.state]),
        el('td', {}, [el('a', { href: 'api/v1/jobs/' + encodeURIComponent(o.jobId) }, [o.jobId])]),
        el('td', { class: 'num' }, [duration(o.ageSeconds)]),
        el('td', { class: 'num muted' }, [o.budgetSeconds === null ? '–' : duration(o.budgetSeconds)]),
      ]));
    });
    if (!s.oldestPerState || s.oldestPerState.length === 0) oldest.append(el('tr', {}, [el('td', { colspan: '4', class: 'muted' }, ['No unfinished jobs.'])]));
  }

  function renderChart(t) {
    var W = 1000, H = 220, left = 34, bottom = 20, top = 8;
    var n = t.buckets.length;
    var max = 1;
    t.buckets.forEach(function (b) { max = Math.max(max, b.done + b.failed); });
    var plotH = H - bottom - top, bw = (W - left) / Math.max(1, n);
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'finished jobs per minute' });
    root.append(svg('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: '#d0d7de' }));
    root.append(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, String(max)));
    root.append(svg('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, '0'));
    root.append(svg('text', { x: left, y: H - 4, 'font-size': 11, fill: '#57606a' }, '-' + Math.round(n * t.bucketSeconds / 60) + ' min'));
    root.append(svg('text', { x: W, y: H - 4, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, 'now'));
    t.buckets.forEach(function (b, i) {
      var x = left + i * bw + 1, w = Math.max(1, bw - 2);
      var hd = plotH * b.done / max, hf = plotH * b.failed / max;
      var title = new Date(b.start).toLocaleTimeString() + ': ' + b.done + ' done, ' + b.failed + ' failed';
      if (b.done > 0) {
        var r = svg('rect', { class: 'bar bar-done', x: x, y: H - bottom - hd, width: w, height: hd, fill: '#2da44e' });
        r.append(svg('title', {}, title));
        root.append(r);
      }
      if (b.failed > 0) {
        var f = svg('rect', { class: 'bar bar-failed', x: x, y: H - bottom - hd - hf, width: w, height: hf, fill: '#cf222e' });
        f.append(svg('title', {}, title));
        root.append(f);
      }
    });
    document.getElementById('chart').replaceChildren(root);
  }

  function renderFailures(page) {
    var body = document.getElementById('failures');
    body.replaceChildren();
    if (page.jobs.length === 0) {
      body.append(el('tr', {}, [el('td', { colspan: '6', class: 'muted' }, ['No failures.'])]));
      return;
    }
    page.jobs.forEach(function (j) {
      var code = j.errorCode || j.lastErrorCode;
      var msg = j.errorMessage || j.lastError || '';
      body.append(el('tr', { 'data-job': j.id }, [
        jobCell(j),
        el('td', {}, [el('span', { class: 'pill ' + (j.state === 'held' ? 'warn' : 'bad') }, [j.state])]),
        el('td', { class: 'err' }, [(code ? code + ': ' : '') + msg]),
        el('td', {}, [ago(j.finishedAt || j.updatedAt)]),
        linkCell(j),
        actionCell(j),
      ]));
    });
  }

  function renderSuccesses(page) {
    var body = document.getElementById('successes');
    body.replaceChildren();
    if (page.jobs.length === 0) body.append(el('tr', {}, [el('td', { colspan: '4', class: 'muted' }, ['No successes yet.'])]));
    page.jobs.forEach(function (j) {
      body.append(el('tr', { 'data-job': j.id }, [
        jobCell(j),
        el('td', { class: 'num' }, [j.score === null || j.score === undefined ? '—' : String(j.score)]),
        el('td', {}, [ago(j.finishedAt || j.updatedAt)]),
        linkCell(j),
      ]));
    });
  }

  function renderJobs(page) {
    var body = document.getElementById('jobs');
    body.replaceChildren();
    if (page.jobs.length === 0) body.append(el('tr', {}, [el('td', { colspan: '6', class: 'muted' }, ['No jobs in this state.'])]));
    page.jobs.forEach(function (j) {
      var code = j.errorCode || j.lastErrorCode;
      var msg = j.errorMessage || j.lastError || '';
      body.append(el('tr', { 'data-job': j.id, 'data-job-state': j.state }, [
        jobCell(j),
        el('td', {}, [el('span', { class: 'pill ' + (j.state === 'done' ? 'ok' : j.state === 'failed' ? 'bad' : 'warn') }, [j.state])]),
        el('td', {}, [ago(j.createdAt)]),
        el('td', { class: 'err' }, [msg ? (code ? code + ': ' : '') + msg : '']),
        linkCell(j),
        actionCell(j),
      ]));
    });
  }

  function renderAll(d) {
    renderStatus(d.status);
    renderChart(d.throughput);
    renderFailures(d.failures);
    renderSuccesses(d.successes);
    renderJobs(d.jobs);
    renderOperator();
  }

  var timer = null;
  function refresh() {
    clearTimeout(timer);
    return Promise.all([
      getJson('api/v1/status'),
      getJson('api/v1/throughput?minutes=60&bucket=60'),
      getJson('api/v1/jobs?state=failed,held&limit=10'),
      getJson('api/v1/jobs?state=done&limit=10'),
      getJson(jobsPath()),
    ]).then(function (r) {
      renderAll({ status: r[0], throughput: r[1], failures: r[2], successes: r[3], jobs: r[4] });
      document.getElementById('banner').className = '';
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      document.body.setAttribute('data-refreshed', String(Number(document.body.getAttribute('data-refreshed') || 0) + 1));
    }).catch(function (err) {
      var b = document.getElementById('banner');
      b.textContent = 'Cannot reach the bridge API: ' + err.message + ' (showing the last data)';
      b.className = 'show';
    }).then(function () {
      timer = setTimeout(refresh, refreshSeconds * 1000);
    });
  }
  var select = document.getElementById('state-filter');
  ['unfinished'].concat(STATES).forEach(function (st) {
    select.append(el('option', { value: st }, [st === 'unfinished' ? 'all unfinished' : st]));
  });
  select.addEventListener('change', function () {
    filter = select.value;
    refresh();
  });
  var input = document.getElementById('token');
  function useToken() {
    var value = input.value.trim();
    input.value = '';
    if (!value) return;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (e) { say('this browser keeps no session storage: the token cannot be used', false); }
    refresh();
  }
  document.getElementById('token-use').addEventListener('click', useToken);
  input.addEventListener('keydown', function (e) { if (e.key === 'Enter') useToken(); });
  document.getElementById('token-forget').addEventListener('click', function () {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
    refresh();
  });

  // The server embedded the first data: draw it at once, then poll.
  var initial = null;
  try { initial = JSON.parse(document.getElementById('initial-data').textContent || 'null'); } catch (e) { initial = null; }
  if (initial && initial.status) {
    renderAll(initial);
    document.getElementById('updated').textContent = 'as of ' + new Date(initial.status.now).toLocaleTimeString();
    timer = setTimeout(refresh, refreshSeconds * 1000);
  } else {
    renderOperator();
    refresh();
  }
})();
</script>
</body>
</html>
`;

/** What the server embeds for the first paint: the answers of the API calls the page makes. */
export interface StatusPageData {
  status: unknown;
  throughput: unknown;
  failures: unknown;
  successes: unknown;
  jobs: unknown;
}

/** The job lists of StatusPageData: the same queries as the page's own GET /api/v1/jobs calls. */
export const STATUS_PAGE_JOB_LISTS: Record<'failures' | 'successes' | 'jobs', { states: JobState[]; limit: number }> = {
  failures: { states: ['failed', 'held'], limit: 10 },
  successes: { states: ['done'], limit: 10 },
  jobs: { states: ['claimed', 'fetching', 'ingesting', 'waiting', 'collecting', 'relating', 'reporting', 'held'], limit: 20 },
};

/**
 * The page with `data` embedded (null: none, the page fetches it at once). The JSON is escaped so no value
 * can close the script element; the run-state pill is filled in so even a page whose script has not run says it.
 */
export function renderStatusPage(data: StatusPageData | null): string {
  const json = data === null ? 'null' : JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  let html = STATUS_PAGE_HTML.replace('__INITIAL_DATA__', () => json);
  const paused = (data?.status as { paused?: unknown } | undefined)?.paused;
  if (typeof paused === 'boolean') {
    html = html.replace('<span id="run-state" class="pill warn">loading…</span>', `<span id="run-state" class="pill ${paused ? 'warn' : 'ok'}">${paused ? 'Paused' : 'Running'}</span>`);
  }
  return html;
}
