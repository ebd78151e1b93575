// The baseline of benchmarks/bench_serve.py: flagd's own evaluator (@openfeature/flagd-core, from
// tests/flagd_js) behind Node's http module, serving the two OFREP evaluation routes over a flagd
// document (`tusk compile --target flagd`). Usage: node flagd_core_server.js FLAGD.json PORT
"use strict";
const { readFileSync } = require("node:fs");
const { createServer } = require("node:http");
const path = require("node:path");

const { FlagdCore } = require(path.join(__dirname, "../tests/flagd_js/node_modules/@openfeature/flagd-core"));
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const core = new FlagdCore(undefined, silent);
core.setConfigurations(readFileSync(process.argv[2], "utf8"));
const PREFIX = "/ofrep/v1/evaluate/flags";
const answer = (key, d) => ({ key, value: d.value, reason: d.reason, variant: d.variant, metadata: d.flagMetadata });

function reply(res, status, body) {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "content-type": "application/json", "content-length": bytes.length });
  res.end(bytes);
}

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let context;
    try {
      context = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString("utf8")).context ?? {}) : {};
    } catch {
      return reply(res, 400, { errorCode: "PARSE_ERROR", errorDetails: "request body is not valid JSON" });
    }
    if (req.method === "POST" && req.url === PREFIX) {
      return reply(res, 200, { flags: core.resolveAll(context, silent).map((d) => answer(d.flagKey, d)) });
    }
    if (req.method === "POST" && req.url.startsWith(PREFIX + "/")) {
      const key = decodeURIComponent(req.url.slice(PREFIX.length + 1));
      const flag = core.getFlag(key);
      if (!flag) return reply(res, 404, { key, errorCode: "FLAG_NOT_FOUND", errorDetails: `flag ${key} not found` });
      return reply(res, 200, answer(key, flag.evaluate(context, silent)));
    }
    reply(res, 404, { errorCode: "GENERAL", errorDetails: "no such route" });
  });
}).listen(Number(process.argv[3]), "127.0.0.1");
