"""The live page of event-display: one self-contained HTML document (no external assets)."""

HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kevents event-display</title>
<style>
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
</style>
</head>
<body>
<h1>&#9729;&#65039; kevents event-display</h1>
<div id="status">connecting&hellip; <span id="count">0</span> event(s)</div>
<div id="events"></div>
<script>
const list = document.getElementById("events");
const status = document.getElementById("status");
let count = 0;
function row(table, key, value) {
  const tr = table.insertRow();
  const k = tr.insertCell(); k.className = "k"; k.textContent = key;
  tr.insertCell().textContent = value;
}
function show(item) {
  const box = document.createElement("div");
  box.className = "event";
  const title = document.createElement("div");
  title.className = "type";
  title.textContent = item.attributes.type || "(no type)";
  box.appendChild(title);
  const table = document.createElement("table");
  for (const [k, v] of Object.entries(item.attributes)) row(table, k, v);
  for (const [k, v] of Object.entries(item.extensions)) row(table, k + " (ext)", v);
  box.appendChild(table);
  if (item.data) {
    const pre = document.createElement("pre");
    pre.textContent = item.data;
    box.appendChild(pre);
  }
  list.insertBefore(box, list.firstChild);
  count += 1;
  status.textContent = "live: " + count + " event(s)";
}
function connect() {
  const source = new EventSource("events/stream");
  // Every (re)connection replays the kept events first: start from an empty list.
  source.onopen = () => {
    list.textContent = ""; count = 0; status.textContent = "live: 0 event(s)";
  };
  source.onmessage = (m) => show(JSON.parse(m.data));
  source.onerror = () => { status.textContent = "reconnecting\u2026"; };
}
connect();
</script>
</body>
</html>
"""
