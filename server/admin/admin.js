// The operator dashboard: polls GET /admin/stats (an AdminStats body) every POLL_MS and draws
// small SVG charts. No dependencies, nothing fetched from anywhere but this server.
// With operators configured the stats need `Authorization: Bearer <operator token>`; the token
// is asked for on 401/403 and kept in sessionStorage (this tab only), never in the URL.

const POLL_MS = 2000;
const HISTORY = 60; // polls kept for the charts (two minutes)
const TOKEN_KEY = "signalbox.adminToken";
const SVG = "http://www.w3.org/2000/svg";

const samples = []; // { t: seconds, stats }
let token = sessionStorage.getItem(TOKEN_KEY);

const $ = (id) => document.getElementById(id);
const sum = (counts) => counts.reduce((a, c) => a + c.count, 0);

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.textContent = text;
}

function setNumber(id, value, text = String(value)) {
  const el = $(id);
  el.dataset.value = String(value);
  el.textContent = text;
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Lines over time: `series` is [{ label, values }], drawn on a shared scale. */
function lineChart(svg, series, unit = "") {
  svg.replaceChildren();
  const w = 300, h = 80, top = 12;
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  svg.append(el("line", { class: "axis", x1: 0, y1: h - 1, x2: w, y2: h - 1 }));
  series.forEach((s, i) => {
    const step = w / Math.max(1, HISTORY - 1);
    const offset = (HISTORY - s.values.length) * step;
    const points = s.values
      .map((v, j) => (v === null ? null : `${(offset + j * step).toFixed(1)},${(h - 1 - (v / max) * (h - top - 2)).toFixed(1)}`))
      .filter((p) => p !== null)
      .join(" ");
    if (points) svg.append(el("polyline", { class: `s${i}`, points }));
    svg.append(el("text", { x: 4 + i * 90, y: 10, class: `l${i}` }, s.label));
  });
  svg.append(el("text", { x: w - 4, y: 10, "text-anchor": "end", class: "muted" }, `max ${fmt(max)}${unit}`));
}

/** Horizontal bars: `items` is [{ name, value }], largest first, at most six. */
function barChart(svg, items, format = fmt) {
  svg.replaceChildren();
  const shown = items.filter((i) => i.value > 0).sort((a, b) => b.value - a.value).slice(0, 6);
  if (shown.length === 0) {
    svg.append(el("text", { x: 4, y: 14, class: "muted" }, "none"));
    return;
  }
  const max = shown[0].value;
  shown.forEach((item, i) => {
    const y = i * 20;
    svg.append(el("text", { x: 0, y: y + 13 }, item.name.length > 22 ? `${item.name.slice(0, 21)}…` : item.name));
    svg.append(el("rect", { class: "bar", x: 130, y: y + 3, height: 13, width: Math.max(1, (item.value / max) * 120) }));
    svg.append(el("text", { x: 298, y: y + 13, "text-anchor": "end" }, format(item.value)));
  });
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function us(v) {
  if (v === null) return "–";
  return v >= 1000 ? `≤${v / 1000} ms` : `≤${v} µs`;
}

/** Per-name rates between the last two samples. */
function rates(pick) {
  if (samples.length < 2) return [];
  const [a, b] = samples.slice(-2);
  const dt = Math.max(0.001, b.t - a.t);
  const before = new Map(pick(a.stats).map((c) => [c.name, c.count]));
  return pick(b.stats).map((c) => ({ name: c.name, value: Math.max(0, c.count - (before.get(c.name) ?? 0)) / dt }));
}

/** Total rate for every consecutive pair of samples (null for the first). */
function rateSeries(pick) {
  return samples.map((s, i) => {
    if (i === 0) return null;
    const prev = samples[i - 1];
    return Math.max(0, sum(pick(s.stats)) - sum(pick(prev.stats))) / Math.max(0.001, s.t - prev.t);
  });
}

function render() {
  const now = samples[samples.length - 1].stats;
  const series = (f) => samples.map((s) => f(s.stats));
  $("uptime").textContent = `up ${Math.floor(now.uptimeSeconds / 3600)} h ${Math.floor((now.uptimeSeconds % 3600) / 60)} min`;

  setNumber("conn-websocket", now.connections.websocket);
  setNumber("conn-sse", now.connections.sseStreams);
  lineChart($("chart-connections"), [
    { label: "WebSocket", values: series((s) => s.connections.websocket) },
    { label: "SSE streams", values: series((s) => s.connections.sseStreams) },
  ]);

  setNumber("users-online", now.usersOnline);
  lineChart($("chart-users"), [{ label: "users", values: series((s) => s.usersOnline) }]);

  barChart($("top-servers"), now.topServers.map((s) => ({ name: s.serverId, value: s.members })));

  for (const [dir, pick] of [["in", (s) => s.envelopesIn], ["out", (s) => s.envelopesOut]]) {
    const total = sum(pick(now));
    const totals = rateSeries(pick);
    const last = totals[totals.length - 1] ?? 0;
    setNumber(`env-${dir}-total`, total, fmt(total));
    setNumber(`env-${dir}-rate`, last, fmt(last));
    lineChart($(`chart-${dir}`), [{ label: "all types", values: totals }], "/s");
    barChart($(`bars-${dir}`), rates(pick), (v) => `${fmt(v)}/s`);
  }

  setNumber("errors-total", sum(now.errors));
  barChart($("bars-errors"), now.errors.map((c) => ({ name: c.name, value: c.count })));
  setNumber("closes-total", sum(now.closes));
  barChart($("bars-closes"), now.closes.map((c) => ({ name: c.name, value: c.count })));
  setNumber("refused-total", sum(now.upgradesRefused));
  barChart($("bars-refused"), now.upgradesRefused.map((c) => ({ name: c.name, value: c.count })));

  const lat = now.forwardLatency;
  setNumber("lat-count", lat.count);
  for (const p of ["p50", "p90", "p99"]) setNumber(`lat-${p}`, lat[`${p}Us`] ?? -1, us(lat[`${p}Us`]));
  lineChart(
    $("chart-latency"),
    ["p50", "p90", "p99"].map((p) => ({ label: p, values: series((s) => s.forwardLatency[`${p}Us`]) })),
    " µs",
  );

  setNumber("sse-sessions", now.sse.sessions);
  setNumber("sse-created", now.sse.sessionsCreated);
  setNumber("sse-pruned", now.sse.sessionsPruned);
  setNumber("sse-dropped", now.sse.streamsDroppedSlow);
  lineChart($("chart-sse"), [
    { label: "sessions", values: series((s) => s.sse.sessions) },
    { label: "streams", values: series((s) => s.connections.sseStreams) },
  ]);
}

function askForToken(status) {
  $("token-form").hidden = false;
  $("token-hint").textContent = status === 403 && token ? "this token is not an operator's" : "";
}

async function poll() {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let res;
  try {
    res = await fetch("/admin/stats", { headers, cache: "no-store" });
  } catch {
    setStatus("offline", "server unreachable");
    return;
  }
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => null);
    setStatus("denied", body?.error?.message ?? `HTTP ${res.status}`);
    // 403 without a token: loopback-only mode and this is not loopback; a token will not help.
    if (res.status === 401 || token) askForToken(res.status);
    return;
  }
  if (!res.ok) {
    setStatus("error", `HTTP ${res.status}`);
    return;
  }
  const stats = await res.json();
  samples.push({ t: performance.now() / 1000, stats });
  if (samples.length > HISTORY) samples.shift();
  $("token-form").hidden = true;
  render();
  setStatus("live", `live · ${new Date().toLocaleTimeString()}`);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim() || null;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  poll();
});

poll();
setInterval(poll, POLL_MS);
