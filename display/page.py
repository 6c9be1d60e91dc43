"""The live page of event-display: one self-contained HTML document (no external assets).

Above the list of events the page draws, with its own inline SVG (no chart library, no CDN:
the page must work on a cluster without internet):

- a live chart of events per second by type over the last five minutes (5 s buckets, one
  line per type, redrawn every second so it moves even when nothing arrives), bucketed by the
  time event-display received each event (its clock, corrected to the browser's by the
  `clock` message that opens every stream);
- the count of events per source (bars, largest first);
- filters by type and by source (applied to the chart, the counts and the list) and a pause
  button: while paused, arriving events are held (and counted in the status line) and the
  chart stands still; resuming adds them.

What the chart shows is also kept as data in `window.keventsChart` (series per type with
their points and totals, counts per source, the filters, whether it is paused, when it was
last drawn), so tests and people with a console can read it.
"""

STYLE = """
  body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f6f7f9; color: #1d2330; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  #status { font-size: .85rem; color: #5b6475; margin-bottom: 1rem; }
  .event { background: #fff; border: 1px solid #d8dce3; border-radius: 6px;
           padding: .7rem .9rem; margin-bottom: .7rem; }
  .type { font-weight: 600; color: #0b5cad; }
  table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0; }
  td { padding: .1rem .8rem .1rem 0; vertical-align: top; }
  td.k { color: #5b6475; }
  pre { background: #f1f3f6; padding: .5rem; border-radius: 4px; max-height: 18rem;
        overflow: auto; font-size: .8rem; margin: .3rem 0 0; }
  #overview { display: flex; gap: 1rem; flex-wrap: wrap; background: #fff;
              border: 1px solid #d8dce3; border-radius: 6px; padding: .7rem .9rem;
              margin-bottom: 1rem; }
  #overview h2 { font-size: .9rem; margin: 0 0 .3rem; color: #5b6475; font-weight: 600; }
  #controls { display: flex; gap: .6rem; align-items: center; font-size: .85rem;
              margin-bottom: .8rem; flex-wrap: wrap; }
  #controls select { max-width: 22rem; }
  #rate svg { background: #fbfcfd; border: 1px solid #eceef2; }
  #legend { font-size: .8rem; margin-top: .3rem; }
  #legend span.swatch { display: inline-block; width: .8rem; height: .8rem;
                        border-radius: 2px; margin: 0 .3rem 0 .8rem; vertical-align: -1px; }
  #sources { min-width: 16rem; flex: 1; font-size: .8rem; }
  .bar { display: flex; align-items: center; gap: .4rem; margin: .15rem 0; }
  .bar .label { flex: 0 0 11rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .bar .fill { background: #0b5cad; height: .7rem; border-radius: 2px; min-width: 1px; }
"""

SCRIPT = r"""
const WINDOW = 300, BUCKET = 5, KEEP = 1000, SHOWN = 300;
const COLORS = ["#0b5cad", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0c8599",
                "#c2255c", "#5c940d", "#364fc7", "#495057"];
const SVG = "http://www.w3.org/2000/svg";
const list = document.getElementById("events");
const status = document.getElementById("status");
const typeFilter = document.getElementById("type-filter");
const sourceFilter = document.getElementById("source-filter");
const pauseButton = document.getElementById("pause");
let items = [], held = [], paused = false, offset = 0, count = 0;
const colors = new Map();

function color(type) {
  if (!colors.has(type)) colors.set(type, COLORS[colors.size % COLORS.length]);
  return colors.get(type);
}
function now() { return Date.now() / 1000 + offset; }
function typeOf(item) { return item.attributes.type || "(no type)"; }
function sourceOf(item) { return item.attributes.source || "(no source)"; }
function wanted(item) {
  return (!typeFilter.value || typeOf(item) === typeFilter.value) &&
         (!sourceFilter.value || sourceOf(item) === sourceFilter.value);
}
function addOption(select, value) {
  for (const o of select.options) if (o.value === value) return;
  const option = document.createElement("option");
  option.value = value; option.textContent = value;
  select.appendChild(option);
}
function row(table, key, value) {
  const tr = table.insertRow();
  const k = tr.insertCell(); k.className = "k"; k.textContent = key;
  tr.insertCell().textContent = value;
}
function box(item) {
  const div = document.createElement("div");
  div.className = "event";
  const title = document.createElement("div");
  title.className = "type";
  title.textContent = typeOf(item);
  div.appendChild(title);
  const table = document.createElement("table");
  for (const [k, v] of Object.entries(item.attributes)) row(table, k, v);
  for (const [k, v] of Object.entries(item.extensions)) row(table, k + " (ext)", v);
  div.appendChild(table);
  if (item.data) {
    const pre = document.createElement("pre");
    pre.textContent = item.data;
    div.appendChild(pre);
  }
  return div;
}
function showStatus() {
  let text = "live: " + count + " event(s)";
  if (paused) text += " \u2014 paused, " + held.length + " new event(s) held";
  status.textContent = text;
}
function add(item) {
  items.push(item);
  if (items.length > KEEP) items.shift();
  count += 1;
  addOption(typeFilter, typeOf(item));
  addOption(sourceFilter, sourceOf(item));
  if (wanted(item)) {
    list.insertBefore(box(item), list.firstChild);
    while (list.childNodes.length > SHOWN) list.removeChild(list.lastChild);
  }
}
function relist() {
  list.textContent = "";
  const shown = items.filter(wanted).slice(-SHOWN).reverse();
  for (const item of shown) list.appendChild(box(item));
}

// The chart's data: what is drawn, also readable as window.keventsChart.
function chartData() {
  const end = Math.floor(now() / BUCKET) * BUCKET, start = end - WINDOW;
  const series = new Map(), sources = new Map();
  for (const item of items) {
    if (!wanted(item)) continue;
    sources.set(sourceOf(item), (sources.get(sourceOf(item)) || 0) + 1);
    const t = item.received;
    if (!(t >= start)) continue;
    const type = typeOf(item);
    if (!series.has(type)) series.set(type, new Array(WINDOW / BUCKET + 1).fill(0));
    const slot = Math.min(WINDOW / BUCKET, Math.floor((t - start) / BUCKET));
    series.get(type)[slot] += 1;
  }
  return {
    windowSeconds: WINDOW, bucketSeconds: BUCKET, end: end, paused: paused,
    updated: Date.now(), filter: {type: typeFilter.value, source: sourceFilter.value},
    series: [...series.entries()].sort().map(([type, counts]) => ({
      type: type, color: color(type), total: counts.reduce((a, b) => a + b, 0),
      points: counts.map((n, i) => ({t: start + i * BUCKET, rate: n / BUCKET})),
    })),
    sources: [...sources.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([source, n]) => ({source: source, count: n})),
  };
}
function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}
function niceMax(value) {
  for (const step of [0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000])
    if (value <= step) return step;
  return Math.ceil(value / 10000) * 10000;
}
function drawRate(data) {
  const W = 720, H = 190, L = 44, R = 10, T = 10, B = 24;
  const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`,
                         role: "img", "aria-label": "events per second by type"});
  let top = 0;
  for (const s of data.series) for (const p of s.points) top = Math.max(top, p.rate);
  const ymax = niceMax(top);
  const x = (t) => L + (t - (data.end - WINDOW)) / WINDOW * (W - L - R);
  const y = (v) => H - B - v / ymax * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eceef2"}, svg);
    el("text", {x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10,
                fill: "#5b6475"}, svg).textContent = +v.toFixed(2) + "/s";
  }
  for (let m = 0; m <= WINDOW / 60; m++) {
    const t = data.end - WINDOW + m * 60;
    el("text", {x: x(t), y: H - 6, "text-anchor": "middle", "font-size": 10, fill: "#5b6475"},
       svg).textContent = m === WINDOW / 60 ? "now" : "-" + (WINDOW / 60 - m) + "m";
  }
  for (const s of data.series) {
    const points = s.points.map(
      (p) => x(Math.min(p.t + BUCKET / 2, data.end)).toFixed(1) + "," + y(p.rate).toFixed(1));
    el("polyline", {points: points.join(" "), fill: "none", stroke: s.color,
                    "stroke-width": 2, "data-type": s.type}, svg);
  }
  const holder = document.getElementById("rate-svg");
  holder.replaceChildren(svg);
  const legend = document.getElementById("legend");
  legend.textContent = data.series.length ? "" : "no events in the last 5 minutes";
  for (const s of data.series) {
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = s.color;
    legend.appendChild(swatch);
    legend.appendChild(document.createTextNode(s.type + " (" + s.total + ")"));
  }
}
function drawSources(data) {
  const holder = document.getElementById("source-bars");
  holder.textContent = "";
  const most = data.sources.length ? data.sources[0].count : 1;
  for (const s of data.sources.slice(0, 10)) {
    const bar = document.createElement("div"); bar.className = "bar";
    const label = document.createElement("span"); label.className = "label";
    label.textContent = s.source; label.title = s.source;
    const fill = document.createElement("span"); fill.className = "fill";
    fill.style.width = Math.max(1, 10 * s.count / most) + "rem";
    const n = document.createElement("span"); n.textContent = s.count;
    bar.append(label, fill, n);
    holder.appendChild(bar);
  }
  if (data.sources.length > 10) {
    const more = document.createElement("div");
    more.textContent = "and " + (data.sources.length - 10) + " more source(s)";
    holder.appendChild(more);
  }
}
function draw() {
  if (paused) return;
  const data = chartData();
  drawRate(data);
  drawSources(data);
  window.keventsChart = data;
}

function receive(item) {
  if (paused) { held.push(item); if (held.length > KEEP) held.shift(); }
  else { add(item); draw(); }
  showStatus();
}
pauseButton.onclick = () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  pauseButton.setAttribute("aria-pressed", paused);
  if (!paused) { for (const item of held) add(item); held = []; draw(); }
  else window.keventsChart = {...window.keventsChart, paused: true};
  showStatus();
};
typeFilter.onchange = sourceFilter.onchange = () => { relist(); draw(); };
function connect() {
  const stream = new EventSource("events/stream");
  // Every (re)connection replays the kept events first: start from an empty list.
  stream.onopen = () => {
    items = []; held = []; count = 0; list.textContent = ""; showStatus(); draw();
  };
  stream.addEventListener("clock", (m) => {
    offset = JSON.parse(m.data).now - Date.now() / 1000;
  });
  stream.onmessage = (m) => receive(JSON.parse(m.data));
  stream.onerror = () => { status.textContent = "reconnecting\u2026"; };
}
draw();
setInterval(draw, 1000);
connect();
"""

HTML = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kevents event-display</title>
<style>{STYLE}</style>
</head>
<body>
<h1>&#9729;&#65039; kevents event-display</h1>
<div id="status">connecting&hellip; <span id="count">0</span> event(s)</div>
<div id="controls">
  <label>type <select id="type-filter"><option value="">all types</option></select></label>
  <label>source <select id="source-filter"><option value="">all sources</option></select></label>
  <button id="pause" type="button" aria-pressed="false">Pause</button>
</div>
<div id="overview">
  <div id="rate"><h2>events per second by type, last 5 minutes</h2>
    <div id="rate-svg"></div><div id="legend"></div></div>
  <div id="sources"><h2>events per source</h2><div id="source-bars"></div></div>
</div>
<div id="events"></div>
<script>{SCRIPT}</script>
</body>
</html>
"""
