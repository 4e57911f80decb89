/**
 * The status page served at `GET /`: one self-contained HTML document (inline CSS and script, no external
 * asset, no request but its own `status.json`) that polls `status.json` every {@link pollMillis} ms and
 * shows spend today per key and per channel, each channel's health and circuit breaker, p50/p99, the
 * alerts firing and the most recent errors. Every value is written with `textContent`, never as HTML, so a
 * key's name cannot inject markup.
 *
 * @since 0.1.0
 */

/** How often the page asks for `status.json`. @category defaults */
export const pollMillis = 2_000

const style = `
:root{--bg:#0f1115;--panel:#171a21;--line:#272c36;--text:#e6e8ec;--dim:#9aa3b2;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--idle:#6e7681;--accent:#58a6ff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--text)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:12px 24px;padding:16px 24px;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}
header .meta{color:var(--dim);font-size:12px}
#state{margin-left:auto;font-size:12px;color:var(--dim)}
#state.stale{color:var(--bad)}
main{padding:16px 24px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
section{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--dim);margin:0 0 8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:12px}
.tile .v{font-size:22px;font-variant-numeric:tabular-nums}
.tile .k{font-size:12px;color:var(--dim)}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-weight:500;color:var(--dim);font-size:12px}
td.n,th.n{text-align:right}
td.msg{white-space:normal;word-break:break-word}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;border:1px solid currentColor}
.ok{color:var(--ok)}.degraded,.half-open{color:var(--warn)}.down,.open,.firing{color:var(--bad)}.idle,.closed,.cleared{color:var(--idle)}
.bar{height:6px;background:var(--accent);border-radius:3px;min-width:1px}
.empty{color:var(--dim);font-style:italic}
`

const script = `
"use strict";
const money = (usd) => "$" + usd.toFixed(usd >= 100 ? 2 : 4);
const ms = (value) => value === null || value === undefined ? "–" : value >= 10000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
const el = (tag, text, cls) => { const node = document.createElement(tag); if (text !== undefined) node.textContent = String(text); if (cls) node.className = cls; return node; };
const row = (cells, attrs) => { const tr = document.createElement("tr"); for (const [name, value] of Object.entries(attrs || {})) tr.setAttribute(name, value); for (const cell of cells) tr.appendChild(cell); return tr; };
const num = (text) => el("td", text, "n");
const pill = (text) => { const td = el("td"); td.appendChild(el("span", text, "pill " + text)); return td; };
const bar = (value, max) => { const td = el("td"); td.style.width = "30%"; const b = el("div", undefined, "bar"); b.style.width = (max > 0 ? Math.max(1, (100 * value) / max) : 0) + "%"; td.appendChild(b); return td; };
const fill = (id, rows, empty, columns) => { const body = document.getElementById(id); body.replaceChildren(...(rows.length ? rows : [row([Object.assign(el("td", empty, "empty"), { colSpan: columns })])])); };
const tile = (id, text) => { document.getElementById(id).textContent = text; };

function render(status) {
  tile("pipeline", status.pipeline);
  tile("day", "today (UTC) " + status.day + " · up since " + status.startedAt.replace("T", " ").slice(0, 19));
  tile("t-spend", money(status.totals.spendTodayUsd));
  tile("t-requests", status.totals.requests);
  tile("t-errors", status.totals.errors);
  tile("t-cache", status.totals.cacheHits + " / " + (status.totals.cacheHits + status.totals.cacheMisses));
  tile("t-p50", ms(status.totals.latency.p50Ms));
  tile("t-p99", ms(status.totals.latency.p99Ms));
  const maxChannel = Math.max(0, ...status.channels.map((c) => c.spendTodayUsd));
  fill("channels", status.channels.map((c) => row([
    el("td", c.name), pill(c.health), pill(c.breaker + (c.reopensInMs !== undefined ? " " + ms(c.reopensInMs) : "")),
    num(c.requests), num(c.errors), num(ms(c.latency.p50Ms)), num(ms(c.latency.p99Ms)),
    num(c.upstream ? c.upstream.calls : 0), num(ms(c.upstream ? c.upstream.p99Ms : null)),
    num(money(c.spendTodayUsd)), bar(c.spendTodayUsd, maxChannel),
  ], { "data-channel": c.name, "data-health": c.health, "data-breaker": c.breaker })), "no channel", 11);
  const maxKey = Math.max(0, ...status.keys.map((k) => k.spendTodayUsd));
  fill("keys", status.keys.map((k) => row([
    el("td", k.name), num(k.requests), num(k.errors), num(money(k.spendTodayUsd)), bar(k.spendTodayUsd, maxKey),
  ], { "data-key": k.name })), "no request yet", 5);
  const alerts = status.firing.map((a) => ({ ...a, now: true })).concat(status.alerts.slice(0, 20));
  fill("alerts", alerts.map((a) => row([
    el("td", a.at.slice(11, 19)), pill(a.now ? "firing" : a.state), el("td", a.message, "msg"),
  ], { "data-alert": a.alert, "data-state": a.now ? "firing" : a.state })), "no alert", 3);
  fill("errors", status.recentErrors.slice(0, 20).map((e) => row([
    el("td", e.at.slice(11, 19)), num(e.status), el("td", e.route), el("td", e.key), el("td", e.channel || "–"), el("td", e.error, "msg"),
  ], { "data-error": e.error })), "no error", 6);
}

let failures = 0;
async function poll() {
  const state = document.getElementById("state");
  try {
    const response = await fetch("status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    failures = 0;
    state.textContent = "updated " + new Date().toLocaleTimeString();
    state.className = "";
    document.body.dataset.loaded = "true";
  } catch (error) {
    failures++;
    state.textContent = "cannot reach the gateway (" + (error && error.message ? error.message : error) + ")";
    state.className = "stale";
  }
  setTimeout(poll, failures > 0 ? Math.min(30000, POLL * 2 ** failures) : POLL);
}
poll();
`

const head = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${style}</style>
</head>`

/** The page (the same bytes every time: data comes from `status.json`). @category rendering */
export const html = `${head("Peel gateway")}
<body>
<header>
  <h1>Peel gateway · <span id="pipeline">…</span></h1>
  <span class="meta" id="day"></span>
  <span id="state">loading…</span>
</header>
<main>
  <section class="wide" data-section="totals">
    <div class="tiles">
      <div class="tile"><div class="v" id="t-spend">–</div><div class="k">spent today</div></div>
      <div class="tile"><div class="v" id="t-requests">–</div><div class="k">requests</div></div>
      <div class="tile"><div class="v" id="t-errors">–</div><div class="k">not answered (4xx/5xx)</div></div>
      <div class="tile"><div class="v" id="t-cache">–</div><div class="k">cache hits / answers</div></div>
      <div class="tile"><div class="v" id="t-p50">–</div><div class="k">p50 latency</div></div>
      <div class="tile"><div class="v" id="t-p99">–</div><div class="k">p99 latency</div></div>
    </div>
  </section>
  <section class="wide" data-section="channels">
    <h2>Channels</h2>
    <table><thead><tr><th>channel</th><th>health</th><th>breaker</th><th class="n">requests</th><th class="n">5xx</th><th class="n">p50</th><th class="n">p99</th><th class="n">upstream calls</th><th class="n">upstream p99</th><th class="n">spent today</th><th></th></tr></thead>
    <tbody id="channels"></tbody></table>
  </section>
  <section data-section="keys">
    <h2>Spend today by key</h2>
    <table><thead><tr><th>key</th><th class="n">requests</th><th class="n">refused/failed</th><th class="n">spent</th><th></th></tr></thead>
    <tbody id="keys"></tbody></table>
  </section>
  <section data-section="alerts">
    <h2>Alerts</h2>
    <table><thead><tr><th>at (UTC)</th><th>state</th><th>alert</th></tr></thead>
    <tbody id="alerts"></tbody></table>
  </section>
  <section class="wide" data-section="errors">
    <h2>Recent errors</h2>
    <table><thead><tr><th>at (UTC)</th><th class="n">status</th><th>route</th><th>key</th><th>channel</th><th>error</th></tr></thead>
    <tbody id="errors"></tbody></table>
  </section>
</main>
<script>const POLL = ${pollMillis};${script}</script>
</body>
</html>
`

/**
 * The page's Content-Security-Policy: its inline style and script, requests to its own origin only.
 *
 * @category rendering
 */
export const contentSecurityPolicy =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
