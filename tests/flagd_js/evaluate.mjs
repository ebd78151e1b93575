// flagd's own TypeScript evaluator over batches of cases, for tests/test_flagd_js.py and
// tests/flagd_fuzz.py (one Node process for a whole generated run: starting Node costs ~0.3 s).
// stdin: {"flags": "<flagd document JSON text>", "cases": [{"key", "type", "context", "now"}]}
//    or: {"batches": [{"flags": ..., "cases": [...]}, ...]}, each batch with a fresh FlagdCore.
// stdout: [{"value", "variant", "reason", "errorCode"}] in the same order (for batches: one such
// list per batch).
// `now` (epoch seconds) is what `$flagd.timestamp` reads: Date.now is set per case.
import { FlagdCore } from "@openfeature/flagd-core";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const defaults = { boolean: false, string: "", number: 0, object: {} };
const realNow = Date.now;

function evaluate({ flags, cases }) {
  const core = new FlagdCore(undefined, silent);
  core.setConfigurations(flags);
  return cases.map(({ key, type, context, now }) => {
    Date.now = () => now * 1000;
    try {
      const r = core.resolve(type, key, defaults[type], context, silent);
      return { value: r.value, variant: r.variant ?? null, reason: r.reason ?? null, errorCode: r.errorCode ?? null };
    } catch (e) {
      return { value: null, variant: null, reason: "ERROR", errorCode: String((e && e.code) || e) };
    } finally {
      Date.now = realNow;
    }
  });
}

const out = input.batches ? input.batches.map(evaluate) : evaluate(input);
process.stdout.write(JSON.stringify(out));
