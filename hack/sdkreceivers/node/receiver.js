// A strict CloudEvents sink on the official JavaScript SDK (npm `cloudevents`).
//
// Every POST is decoded by HTTP.toEvent (binary or structured mode, batches too) and rebuilt
// as `new CloudEvent(event, true)`, the SDK's strict mode: attribute names, types and the
// spec's schema are checked. A valid event is answered 202 (500 under /fail, a subscriber failing on purpose), an invalid one 400 with the SDK's
// error. Both are recorded with the request path: GET /events returns the records as JSON,
// GET /health answers 200. The port comes from RECEIVER_PORT (default 8080).
"use strict";

const http = require("node:http");
const { CloudEvent, HTTP } = require("cloudevents");

const records = [];

function describe(err) {
  const detail = err && err.errors ? ` ${JSON.stringify(err.errors)}` : "";
  return `${err && err.message ? err.message : String(err)}${detail}`;
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://receiver").pathname;
  if (req.method === "GET" && path === "/health") {
    res.writeHead(200).end();
    return;
  }
  if (req.method === "GET" && path === "/events") {
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(records));
    return;
  }
  if (req.method !== "POST") {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const record = { sdk: "cloudevents-js", path, accepted: false };
    try {
      const parsed = HTTP.toEvent({ headers: req.headers, body });
      const events = Array.isArray(parsed) ? parsed : [parsed];
      for (const loose of events) {
        record.id = loose.id;
        record.type = loose.type;
        record.source = loose.source;
        record.subject = loose.subject;
        new CloudEvent({ ...loose }, true); // strict: throws a ValidationError
      }
      record.accepted = true;
      records.push(record);
      if (path.startsWith("/fail")) {
        // A subscriber that fails on purpose, for retries and dead letters.
        res.writeHead(500, { "Content-Type": "text/plain" }).end("failing on purpose");
        return;
      }
      res.writeHead(202).end();
    } catch (err) {
      record.error = describe(err);
      records.push(record);
      console.log(`refused a request to ${path}: ${record.error}`);
      res.writeHead(400, { "Content-Type": "text/plain" }).end(record.error);
    }
  });
});

const port = Number(process.env.RECEIVER_PORT || "8080");
server.listen(port, () => console.log(`cloudevents-js strict receiver listening on :${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
