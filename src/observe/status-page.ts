// The status page the daemon serves at /ui: one self-contained HTML document (its own style and
// script, no library, nothing fetched from anywhere but this server's /status). It shows the
// Services table with live counts (search, namespace and node-port/draining filters, real
// servers on a click), a chart of the last syncs' durations (full vs partial, failures marked),
// drift and failure indicators, and the node's and the API source's state. The script builds every
// element with textContent, never markup, so object names cannot inject anything; the
// Content-Security-Policy admits only this script and style by their hashes.
import { createHash } from 'node:crypto';

const STYLE = String.raw`
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --bg: #f6f7f9; --card: #fff; --ok: #1a7f37; --bad: #c62828; --warn: #b26a00; --full: #2f5fb3; --partial: #8fb3ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 "DejaVu Sans", system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 12px 20px; background: #16202e; color: #fff; }
header h1 { font-size: 18px; margin: 0 12px 0 0; font-weight: 600; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #3a4658; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
main { padding: 16px 20px; display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 4px; font-weight: 600; }
.card .value { font-size: 16px; font-weight: 600; }
.card .sub { color: var(--muted); font-size: 12px; }
.value.ok { color: var(--ok); } .value.bad { color: var(--bad); } .value.warn { color: var(--warn); }
section.panel { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px; }
section.panel h2 { font-size: 15px; margin: 0 0 8px; }
#history { width: 100%; height: 140px; display: block; }
.legend { font-size: 12px; color: var(--muted); display: flex; gap: 14px; margin-top: 4px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
.issues li { margin: 2px 0; } .issues { margin: 0; padding-left: 18px; color: var(--bad); }
.toolbar { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 8px; }
.toolbar input[type=search] { flex: 1 1 260px; padding: 6px 8px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
.toolbar select { padding: 5px; font: inherit; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key { white-space: nowrap; }
.table-wrap { overflow-x: auto; }
tr.svc { cursor: pointer; } tr.svc:hover { background: #f0f4fa; }
tr.svc.open { background: #eaf1fb; }
tr.rs td { background: #fafbfc; font-size: 12px; }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
.vip { display: block; white-space: nowrap; }
.missing { color: var(--bad); font-weight: 600; }
.lost { display: block; color: var(--bad); font-weight: 600; max-width: 320px; }
.drain { color: var(--warn); font-weight: 600; }
.muted { color: var(--muted); }
#error { display: none; background: var(--bad); color: #fff; padding: 8px 20px; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var state = { doc: null, open: {}, timer: null };
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function ms(seconds) {
    if (seconds < 0.0001) return '<0.1 ms';
    if (seconds < 1) return (Math.round(seconds * 10000) / 10) + ' ms';
    return (Math.round(seconds * 100) / 100) + ' s';
  }
  function rate(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
    return String(Math.round(n * 10) / 10);
  }
  function bytes(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MB/s';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' kB/s';
    return Math.round(n) + ' B/s';
  }
  function ago(iso, now) {
    if (!iso) return 'never';
    var s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }
  function plural(n, what) { return n + ' ' + what + (n === 1 ? '' : 's'); }
  function counts(obj) {
    var parts = [];
    for (var k in obj) if (obj[k]) parts.push(k + ' ' + obj[k]);
    return parts.join(', ');
  }
  function setCard(id, value, cls, sub) {
    var v = $(id);
    v.textContent = value;
    v.className = 'value' + (cls ? ' ' + cls : '');
    $(id + '-sub').textContent = sub || '';
  }

  function renderHeader(d, now) {
    $('node-name').textContent = d.node.name;
    $('families').textContent = d.node.families.join(' + ') || 'no family';
    var h = $('health');
    h.textContent = d.proxy.healthy ? 'healthy' : 'unhealthy';
    h.className = 'badge ' + (d.proxy.healthy ? 'ok' : 'bad');
    var el2 = $('eligible');
    el2.textContent = d.node.eligible ? 'node eligible' : 'node being deleted';
    el2.className = 'badge ' + (d.node.eligible ? 'ok' : 'warn');
    var src = $('source');
    src.textContent = (d.source.kind === 'api' ? 'API ' : 'manifests ') + (d.source.connected ? 'connected' : 'failing: ' + d.source.failing.join(', '));
    src.className = 'badge ' + (d.source.connected ? 'ok' : 'bad');
    src.title = d.source.target;
    $('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString();

    var last = d.sync.last;
    if (last) setCard('last-sync', (last.full ? 'full' : 'partial') + ', ' + ms(last.durationSeconds) + (last.ok ? '' : ', failed'), last.ok ? 'ok' : 'bad', ago(last.at, now) + (last.changes ? ' \u2014 ' + last.changes : ' \u2014 no writes'));
    else setCard('last-sync', 'not yet', 'warn', 'the first sync has not run');
    var p = d.sync.pending;
    setCard('pending', p.services + ' services, ' + p.endpoints + ' endpoints', p.services + p.endpoints > 0 ? 'warn' : 'ok', 'changes waiting for the next sync');
    var drift = d.sync.drift;
    if (drift.lastAt) setCard('drift', 'repaired ' + ago(drift.lastAt, now), 'warn', counts(drift.last) + ' (since start: ' + counts(drift.total) + ')');
    else setCard('drift', 'none found', 'ok', 'full resyncs found the kernel as left');
    var issues = d.failures.length + d.problems.length + d.conflicts.length;
    setCard('issues', issues === 0 ? 'none' : plural(d.failures.length, 'failed operation') + ', ' + plural(d.problems.length, 'invalid object') + ', ' + plural(d.conflicts.length, 'conflict'), issues === 0 ? 'ok' : 'bad', 'last sync and current objects');
    setCard('totals', d.totals.servicePorts + ' ports, ' + d.totals.virtualServers + ' VS', '', d.totals.realServers + ' real servers, ' + d.totals.draining + ' draining');

    var list = $('issue-list');
    clear(list);
    d.failures.forEach(function (f) { list.appendChild(el('li', null, f.subsystem + ' ' + f.operation + ' ' + f.object + ': ' + f.error)); });
    d.problems.forEach(function (pr) { list.appendChild(el('li', null, pr.kind + ' ' + pr.namespace + '/' + pr.name + (pr.field ? ' ' + pr.field : '') + ': ' + pr.reason + ' (' + pr.effect + ')')); });
    d.conflicts.forEach(function (c) { list.appendChild(el('li', null, 'virtual server ' + c.virtualServer + ' wanted by ' + [c.winner].concat(c.losers).join(', ') + '; ' + c.winner + ' has it')); });
    $('issues-panel').style.display = issues === 0 ? 'none' : '';
  }

  function renderHistory(d) {
    var svg = $('history');
    clear(svg);
    var hist = d.sync.history;
    var W = 600, H = 120;
    var max = 0;
    hist.forEach(function (r) { if (r.durationSeconds > max) max = r.durationSeconds; });
    if (max === 0) max = 0.001;
    svg.appendChild(svgEl('line', { x1: 0, y1: H, x2: W, y2: H, stroke: '#b8c0cc' }));
    svg.appendChild(svgEl('line', { x1: 0, y1: 4, x2: W, y2: 4, stroke: '#e3e7ec', 'stroke-dasharray': '4 4' }));
    $('history-max').textContent = 'longest ' + ms(max);
    var slot = W / Math.max(hist.length, 30);
    hist.forEach(function (r, i) {
      // Square-root heights: a slow first sync must not flatten every later one.
      var h = Math.max(1.5, Math.sqrt(r.durationSeconds / max) * (H - 4));
      var bar = svgEl('rect', { x: i * slot + 1, y: H - h, width: Math.max(1, slot - 2), height: h, fill: r.full ? '#2f5fb3' : '#8fb3ea', stroke: r.ok ? 'none' : '#c62828', 'stroke-width': r.ok ? 0 : 2, 'class': 'bar ' + (r.full ? 'full' : 'partial') + (r.ok ? '' : ' failed') });
      var t = svgEl('title', {});
      t.textContent = r.at + ': ' + (r.full ? 'full' : 'partial') + ' sync, ' + ms(r.durationSeconds) + (r.ok ? '' : ', FAILED') + (r.changes ? ', ' + r.changes : '') + (r.drift ? ', drift ' + r.drift : '');
      bar.appendChild(t);
      svg.appendChild(bar);
    });
    $('history-count').textContent = '(last ' + hist.length + ')';
  }

  function matches(s, q) {
    if (!q) return true;
    var hay = [s.key, s.type].concat(s.virtualServers.map(function (v) { return v.key; }), s.realServers.map(function (r) { return r.endpoint + ' ' + (r.pod || '') + ' ' + (r.node || ''); })).join(' ').toLowerCase();
    return q.toLowerCase().split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; });
  }
  function sum(list, f) { var n = 0; list.forEach(function (x) { n += f(x); }); return n; }

  function renderServices(d) {
    var q = $('search').value.trim();
    var ns = $('ns-filter').value;
    var np = $('nodeport-filter').checked;
    var dr = $('draining-filter').checked;
    var sel = $('ns-filter');
    var namespaces = {};
    d.services.forEach(function (s) { namespaces[s.namespace] = true; });
    var have = {};
    for (var i = 1; i < sel.options.length; i++) have[sel.options[i].value] = true;
    Object.keys(namespaces).sort().forEach(function (n) { if (!have[n]) { var o = el('option', null, n); o.value = n; sel.appendChild(o); } });

    var body = $('services-body');
    clear(body);
    var shown = 0;
    d.services.forEach(function (s) {
      if (ns && s.namespace !== ns) return;
      if (np && !s.virtualServers.some(function (v) { return v.kind === 'NodePort'; })) return;
      var rss = dr ? s.realServers.filter(function (r) { return r.draining; }) : s.realServers;
      if (dr && rss.length === 0) return;
      if (!matches(s, q)) return;
      shown++;
      var tr = el('tr', 'svc' + (state.open[s.key] ? ' open' : ''));
      tr.setAttribute('data-key', s.key);
      tr.appendChild(el('td', 'mono key', s.key));
      tr.appendChild(el('td', null, s.type));
      var vips = el('td', 'mono');
      s.virtualServers.forEach(function (v) { var span = el('span', 'vip' + (v.inKernel ? '' : ' missing'), v.key + (v.inKernel ? '' : ' (missing)')); span.title = v.kind; vips.appendChild(span); });
      d.conflicts.forEach(function (c) { if (c.losers.indexOf(s.key) >= 0) vips.appendChild(el('span', 'lost', c.virtualServer + ' went to ' + c.winner)); });
      if (!vips.firstChild) vips.appendChild(el('span', 'muted', 'none planned'));
      tr.appendChild(vips);
      tr.appendChild(el('td', null, s.scheduler + (s.schedulerFlags.length ? ' ' + s.schedulerFlags.join(',') : '') + (s.persistenceSeconds ? ' (sticky ' + s.persistenceSeconds + 's)' : '')));
      var ready = s.realServers.filter(function (r) { return r.ready; }).length;
      var draining = s.realServers.filter(function (r) { return r.draining; }).length;
      var eps = el('td', 'num', ready + '/' + s.realServers.length);
      if (draining) eps.appendChild(el('span', 'drain', ' ' + draining + ' draining'));
      tr.appendChild(eps);
      tr.appendChild(el('td', 'num', sum(s.realServers, function (r) { return r.activeConnections; })));
      tr.appendChild(el('td', 'num', sum(s.realServers, function (r) { return r.inactiveConnections; })));
      tr.appendChild(el('td', 'num', rate(sum(s.virtualServers, function (v) { return v.stats.connectionsPerSecond; }))));
      tr.appendChild(el('td', 'num', bytes(sum(s.virtualServers, function (v) { return v.stats.bytesInPerSecond + v.stats.bytesOutPerSecond; }))));
      tr.addEventListener('click', function () { state.open[s.key] = !state.open[s.key]; renderServices(state.doc); });
      body.appendChild(tr);
      if (!state.open[s.key]) return;
      var sub = el('tr', 'rs');
      var td = el('td');
      td.colSpan = 9;
      var t = el('table');
      var hr = el('tr');
      ['Endpoint', 'Pod', 'Node', 'Zone', 'State', 'Weight', 'Active', 'Inactive', 'Draining', 'Conn/s'].forEach(function (h, i) { hr.appendChild(el('th', i >= 5 ? 'num' : null, h)); });
      t.appendChild(hr);
      rss.forEach(function (r) {
        var row = el('tr');
        row.appendChild(el('td', 'mono', r.endpoint));
        row.appendChild(el('td', null, r.pod || '\u2014'));
        row.appendChild(el('td', null, (r.node || '\u2014') + (r.local ? ' (this node)' : '')));
        row.appendChild(el('td', null, r.zone || '\u2014'));
        var gone = !r.pod && !r.node;
        row.appendChild(el('td', r.draining ? 'drain' : null, r.terminating ? (r.serving ? 'terminating, serving' : 'terminating') : r.ready ? 'ready' : r.serving ? 'serving' : gone ? (r.draining ? 'removed, draining' : 'removed') : 'not ready'));
        row.appendChild(el('td', 'num', r.inKernel ? r.weight : 'not in kernel'));
        row.appendChild(el('td', 'num', r.activeConnections));
        row.appendChild(el('td', 'num', r.inactiveConnections));
        row.appendChild(el('td', 'num' + (r.draining ? ' drain' : ''), r.draining ? Math.round(r.draining.leftSeconds) + ' s left' : '\u2014'));
        row.appendChild(el('td', 'num', rate(r.stats.connectionsPerSecond)));
        t.appendChild(row);
      });
      td.appendChild(t);
      sub.appendChild(td);
      body.appendChild(sub);
    });
    $('shown').textContent = shown + ' of ' + d.services.length + ' service ports' + (d.realServerStats ? '' : ' (per-pod rates not read: too many virtual servers)');
  }

  function render() {
    var d = state.doc;
    if (!d) return;
    var now = Date.parse(d.generatedAt) || Date.now();
    renderHeader(d, now);
    renderHistory(d);
    renderServices(d);
  }

  function refresh() {
    fetch('status', { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }).then(function (doc) {
      state.doc = doc;
      $('error').style.display = 'none';
      document.body.setAttribute('data-loaded', 'true');
      render();
    }).catch(function (e) {
      var box = $('error');
      box.textContent = 'cannot read /status: ' + e.message + ' (is the daemon running?)';
      box.style.display = 'block';
    }).then(function () {
      state.timer = setTimeout(refresh, 2000);
    });
  }

  ['search', 'ns-filter', 'nodeport-filter', 'draining-filter'].forEach(function (id) {
    $(id).addEventListener('input', function () { if (state.doc) renderServices(state.doc); });
    $(id).addEventListener('change', function () { if (state.doc) renderServices(state.doc); });
  });
  refresh();
})();
`;

const BODY = String.raw`<header>
<h1>kube-ipvs &mdash; <span id="node-name">&hellip;</span></h1>
<span id="families" class="badge"></span>
<span id="health" class="badge">&hellip;</span>
<span id="eligible" class="badge"></span>
<span id="source" class="badge"></span>
<span id="updated" class="muted" style=""></span>
</header>
<div id="error" role="alert"></div>
<main>
<div class="cards">
<div class="card"><h2>Last sync</h2><div id="last-sync" class="value">&hellip;</div><div id="last-sync-sub" class="sub"></div></div>
<div class="card"><h2>Pending</h2><div id="pending" class="value">&hellip;</div><div id="pending-sub" class="sub"></div></div>
<div class="card"><h2>Drift</h2><div id="drift" class="value">&hellip;</div><div id="drift-sub" class="sub"></div></div>
<div class="card"><h2>Failures</h2><div id="issues" class="value">&hellip;</div><div id="issues-sub" class="sub"></div></div>
<div class="card"><h2>Node</h2><div id="totals" class="value">&hellip;</div><div id="totals-sub" class="sub"></div></div>
</div>
<section class="panel" id="issues-panel"><h2>Failures and invalid objects</h2><ul id="issue-list" class="issues"></ul></section>
<section class="panel"><h2>Sync durations <span id="history-count" class="muted"></span> <span id="history-max" class="muted"></span></h2>
<svg id="history" viewBox="0 0 600 122" preserveAspectRatio="none" role="img" aria-label="duration of the last syncs"></svg>
<div class="legend"><span><span class="swatch" id="sw-full"></span>full resync</span><span><span class="swatch" id="sw-partial"></span>partial sync</span><span><span class="swatch" id="sw-failed"></span>failed (outlined)</span><span>bar height: square root of the duration</span></div>
</section>
<section class="panel"><h2>Services</h2>
<div class="toolbar">
<input id="search" type="search" placeholder="search: service, address, pod, node" aria-label="search">
<select id="ns-filter" aria-label="namespace"><option value="">all namespaces</option></select>
<label><input id="nodeport-filter" type="checkbox"> node ports only</label>
<label><input id="draining-filter" type="checkbox"> draining only</label>
<span id="shown" class="muted"></span>
</div>
<div class="table-wrap"><table><thead><tr><th>Service port</th><th>Type</th><th>Virtual servers</th><th>Scheduler</th><th class="num">Ready/endpoints</th><th class="num">Active</th><th class="num">Inactive</th><th class="num">Conn/s</th><th class="num">Traffic</th></tr></thead>
<tbody id="services-body"></tbody></table></div>
</section>
</main>`;

// Legend swatches are coloured by the stylesheet rather than style attributes (which the policy forbids).
const SWATCH_STYLE = '#sw-full { background: var(--full); } #sw-partial { background: var(--partial); } #sw-failed { border: 2px solid var(--bad); }';

const fullStyle = `${STYLE}${SWATCH_STYLE}`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page (UTF-8 HTML). */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kube-ipvs status</title>
<link rel="icon" href="data:,">
<style>${fullStyle}</style>
</head><body>
${BODY.replace(' style=""', '')}
<script>${SCRIPT}</script>
</body></html>
`;

/** Its Content-Security-Policy: its own script and style by hash, requests to this server only. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(fullStyle)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
