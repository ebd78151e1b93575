"""Generated flags and contexts for checking the flagd export against both flagd cores (issue 16).

`snapshot(rng)` builds a random, valid snapshot whose rules use every condition op (weighted towards
the string, version, list and presence ops), nested all/any/not, defined and external segments,
prerequisites (chains, disabled ones), rollouts and splits, over every variant type. `contexts(rng, s)`
gives contexts that hit the operands (satisfying values and near misses) and every JSON type, missing
and null attributes, numbers as strings, Unicode, empty strings, versions with pre-release and build
parts, `v`/`V` prefixes and whitespace. Flags bucket by `user_id` or another attribute (one that rules
also read, Unicode, `segments`, `targetingKey`); a share of contexts carry OpenFeature's `targetingKey`
alone (no unit attribute, or a null one), some both (the attribute wins), the rest none.

`run(seed, evaluations, flags, contexts, node)` exports each snapshot, evaluates every (flag, context)
with our evaluator as `tusk serve` calls it (the targeting key standing in for unit attributes,
`ofrep_context`), flagd's Python core and (when Node.js and tests/flagd_js are there) flagd's
TypeScript core, and compares value, variant and reason class per evaluation. Used by
tests/test_flagd_generated.py; `python -m tests.flagd_fuzz SEED EVALUATIONS` runs it alone and prints
the table.

Not a test module itself (pytest collects test_*.py only).
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tusklang.evaluate import Client
from tusklang.export import dumps_flagd, to_flagd
from tusklang.openfeature import TargetingKey
from tusklang.snapshot import Snapshot, load_snapshot

ORACLE = Path(__file__).resolve().parent / "flagd_js"
NOW = 1_722_000_000  # 2024-07-26: the evaluation time unless a caller gives one (no generated op reads it)

# --- operands -----------------------------------------------------------------------------------

# Attribute names: ordinary ones, Unicode, a space, digits, and names of JavaScript's Object.prototype
# members (json-logic-engine's `var` reads object properties: `constructor` must stay missing).
ATTRIBUTES = [
    "email",
    "plan",
    "app_version",
    "tags",
    "age",
    "country",
    "score",
    "beta",
    "ünï",
    "a b",
    "0",
    "constructor",
    "toString",
    "length",
]
WORDS = [
    "acme",
    "pro",
    "beta",
    "@acme.io",
    "ä",
    "漢字",
    "😀",
    "-",
    "x",
    "",
    "DE",
    "true",
    "5",
    "1.0",
    "null",
    " ",
    "a$&b",
    "\\",
]
NUMBERS: list[Any] = [0, 1, -1, 2, 5, 10, 1.5, -0.5, 18, 100, 2**31, 2**53, 1e3, 0.1]
VERSIONS = [
    "1.2.3",
    "1.2.3-rc.1",
    "1.2.3-rc.1+build.5",
    "1.2.3+build",
    "2.0.0",
    "0.0.1",
    "1.2",
    "1",
    "v1.4.0",
    "1.2-beta",
    "3-alpha.2",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta.11",
    "1.0.0-0.3.7",
    "1.0.0-x.7.z.92",
    "1.0.0--",
    "10.20.30",
    "1.2.3-9",
]
SEGMENT_NAMES = ["adults", "acme_staff", "vip"]  # vip is external
# bucket_by other than user_id: one that rules read, names an evaluator cannot carry (Unicode, a space),
# the external segments list, and the targeting key itself
BUCKET_BY = ["account", "account", "email", "plan", "ünï", "a b", "segments", "targetingKey"]

OPS = {
    # new or newly exported in issue 16 (weighted up)
    "contains": 8,
    "not_exists": 5,
    "starts_with": 6,
    "ends_with": 6,
    "matches": 6,
    "semver": 12,
    "exists": 3,
    # the rest, so they mix with the new ones
    "in": 5,
    "not_in": 4,
    "compare": 6,
    "contains_any": 4,
    "contains_all": 3,
    "segment": 3,
    "date": 1,
}


def _literal_regex(rng: random.Random) -> str:
    word = rng.choice(["acme", "a.b", "x-y", "ä", "io", "", "1.2"])
    escaped = "".join("\\" + ch if ch in ".-" else ch for ch in word)
    if rng.random() < 0.1:
        # not literals: refused (the flag must then be reported, never exported)
        return rng.choice(["^a.*z$", "(?i)acme", "ac?me", "(?m)^acme"])
    return rng.choice(
        [
            escaped,
            "^" + escaped,
            escaped + "$",
            "^" + escaped + "$",
            "\\A" + escaped + "\\Z",
            "[.]" if word == "a.b" else escaped,
        ]
    )


def _version(rng: random.Random) -> str:
    """A version-ish string: usually valid for us, often an edge of flagd's reading."""
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(VERSIONS)

    def number() -> str:
        return rng.choice(["0", "1", "2", "10", "01", "9007199254740991", "1234567890123456", "123"])

    parts = [number() for _ in range(rng.choice([1, 2, 3, 3, 3, 4]))]
    text = ".".join(parts)
    if rng.random() < 0.4:
        text += "-" + ".".join(rng.choice(["rc", "1", "0", "01", "alpha", "x-y", "", "0a", "b2"]) for _ in range(2))
    if rng.random() < 0.2:
        text += "+" + rng.choice(["build", "001", "b.7", ""])
    prefix = rng.choice(["", "", "", "", "v", "V", "vv", " ", "=", "\t"])
    suffix = rng.choice(["", "", "", "", " ", "\n", "\u00a0", "."])
    return prefix + text + suffix


@dataclass
class Spec:
    """What one generated snapshot's conditions read, so contexts can hit (and just miss) them: per
    rule (and segment), its leaf conditions as (attribute, candidate values), about half satisfying."""

    rules: dict[str, list[list[tuple[str, list[Any]]]]] = field(default_factory=dict)  # flag or segment
    leaves: list[tuple[str, list[Any]]] = field(default_factory=list)  # of the rule being built

    def add(self, attribute: str, *values: Any) -> None:
        self.leaves.append((attribute, list(values)))

    def close(self, owner: str) -> None:
        self.rules.setdefault(owner, []).append(self.leaves)
        self.leaves = []


def _string_near(word: str) -> list[Any]:
    return [
        word,
        word + "x",
        "x" + word,
        "pre" + word + "post",
        word.upper(),
        word + "\n",
        " " + word,
        word[:-1],
        [word],
    ]


def _condition(rng: random.Random, spec: Spec, depth: int, segment: bool = False) -> dict[str, Any]:
    roll = rng.random()
    if depth < 2 and roll < 0.10:
        op = rng.choice(["all", "any"])
        return {"op": op, "conditions": [_condition(rng, spec, depth + 1, segment) for _ in range(rng.randint(0, 3))]}
    if depth < 2 and roll < 0.17:
        return {"op": "not", "condition": _condition(rng, spec, depth + 1, segment)}
    kind = rng.choices(list(OPS), weights=list(OPS.values()))[0]
    while segment and kind == "segment":  # segments referring to segments: kept acyclic by leaving them out
        kind = rng.choices(list(OPS), weights=list(OPS.values()))[0]
    attr = rng.choice(ATTRIBUTES)
    if kind == "segment":
        return {"op": "segment", "segments": rng.sample(SEGMENT_NAMES, rng.randint(1, 2))}
    if kind in ("exists", "not_exists"):
        spec.add(attr, None, "", 0, False, "x", [])
        return {"op": kind, "attribute": attr}
    if kind in ("contains", "starts_with", "ends_with"):
        word = rng.choice(WORDS)
        spec.add(attr, *_string_near(word))
        return {"op": kind, "attribute": attr, "value": word}
    if kind == "matches":
        pattern = _literal_regex(rng)
        spec.add(attr, "acme", "xacme", "acme\n", "acme\n\n", "a.b", "axb", "x-y", "ä", "1.2", "io\n", "AcMe", "")
        return {"op": "matches", "attribute": attr, "value": pattern}
    if kind == "semver":
        target = rng.choice(VERSIONS)
        spec.add(attr, target, *(rng.choice(VERSIONS) for _ in range(3)), *(_version(rng) for _ in range(3)))
        op = rng.choice(["semver_eq", "semver_ne", "semver_lt", "semver_le", "semver_gt", "semver_ge"])
        return {"op": op, "attribute": attr, "value": target}
    if kind in ("in", "not_in"):
        values = rng.sample([*WORDS[:8], 1, 2.5, True, False, 0], rng.randint(0, 4))
        spec.add(attr, *values, *values, *(str(v) for v in values), "other", 3, [*values[:1]])
        return {"op": kind, "attribute": attr, "values": values}
    if kind in ("contains_any", "contains_all"):
        values = rng.sample(["a", "b", 1, True, "ä", ""], rng.randint(0, 3))
        spec.add(attr, values, values, values[:1], [*values, "z"], ["z"], [values], "a", [1.0], [[]])
        return {"op": kind, "attribute": attr, "values": values}
    if kind == "date":
        # not exportable: the flag must be reported and left out
        return {"op": rng.choice(["before", "after"]), "attribute": attr, "value": "2024-01-01T00:00:00Z"}
    op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
    value = rng.choice([*NUMBERS, "pro", "", True, "pró", "\uff11", "😀"])  # the last two are refused
    if isinstance(value, int | float) and not isinstance(value, bool):
        spec.add(attr, value, value, value + 1, value - 1, float(value) + 0.5, str(value), True, [value])
    else:
        spec.add(attr, value, value, str(value).upper(), str(value) + "a", "\uffff", "😀", 1, [value])
    return {"op": op, "attribute": attr, "value": value}


VARIANTS: dict[str, dict[str, Any]] = {
    "boolean": {"on": True, "off": False},
    "string": {"alpha": "alpha", "beta": "béta", "empty": ""},
    "number": {"low": 1, "mid": 2.5, "high": 2**53, "neg": -3},
    "object": {"compact": {"rows": 50, "dense": True}, "roomy": {"rows": 20}, "none": {}, "list": [1, "x"]},
}


def snapshot(rng: random.Random, n_flags: int) -> dict[str, Any]:
    spec = Spec()
    segments: dict[str, Any] = {"adults": {"conditions": [_condition(rng, spec, 1, True)]}}
    spec.close("segments")
    both = [_condition(rng, spec, 1, True), _condition(rng, spec, 1, True)]
    segments["acme_staff"] = {"conditions": both, "match": "any"}
    spec.close("segments")
    flags: dict[str, Any] = {}
    for i in range(n_flags):
        key = f"f{i}"
        kind = rng.choice(list(VARIANTS))
        variants = dict(VARIANTS[kind])
        if kind == "object" and rng.random() < 0.5:
            del variants["list"]
        names = list(variants)
        rules = []
        for r in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            rule: dict[str, Any] = {
                "id": f"r{r}",
                "conditions": [_condition(rng, spec, 0) for _ in range(rng.choice([1, 1, 2, 3]))],
            }
            spec.close(key)
            roll = rng.random()
            if roll < 0.1:
                rule["rollout"] = {"salt": f"{key}/rollout", "percentage": rng.choice([0, 30_000, 100_000])}
            if roll > 0.9:
                rule["split"] = {"salt": f"{key}/split", "weights": [[n, rng.randint(0, 3)] for n in names]}
                rule["split"]["weights"][0][1] += 1
            else:
                rule["serve"] = rng.choice(names)
            rules.append(rule)
        flag: dict[str, Any] = {
            "key": key,
            "type": kind,
            "enabled": rng.random() > 0.05,
            "variants": variants,
            "off_variant": rng.choice(names),
            "default_variant": rng.choice(names),
            "rules": rules,
        }
        if rng.random() < 0.3:
            flag["bucket_by"] = rng.choice(BUCKET_BY)
        if i and rng.random() < 0.3:
            needs = rng.sample(range(i), min(i, rng.randint(1, 2)))
            flag["prerequisites"] = [
                {"flag": f"f{j}", "variants": rng.sample(list(flags[f"f{j}"]["variants"]), rng.randint(1, 2))}
                for j in needs
            ]
        flags[key] = flag
    return {
        "format": "tusklang.snapshot/1",
        "segments": segments,
        "external_segments": ["vip"],
        "flags": flags,
        "_rules": spec.rules,  # removed before use; carried here so contexts can read it
    }


# --- contexts -----------------------------------------------------------------------------------

EDGE: list[Any] = [
    None,
    "",
    " ",
    "5",
    "1.0",
    "true",
    "null",
    "ä",
    "😀",
    "\ue000",
    "a\u0000b",
    0,
    1,
    -1,
    2.5,
    1e20,
    True,
    False,
    [],
    ["a"],
    [1, True],
    [["a"]],
    {},
    {"a": 1},
    "[object Object]",
    "{",
    "V",
    "v",
    "1.2.3",
]


def contexts(
    rng: random.Random, snap: dict[str, Any], rules: dict[str, list[list[tuple[str, list[Any]]]]], key: str, n: int
) -> list[dict[str, Any]]:
    """Contexts for flag `key`: every attribute random (any JSON type, missing, null, a version-ish
    string), then, for most, the leaves of some of the flag's rules, of its prerequisites' rules and of
    the segments set from their candidates, so whole rules (and prerequisites) match often; then unit
    ids under the flag's (and its prerequisites') bucket_by attributes, and a `targetingKey` (unit_ids)."""
    owners = [key, *(p["flag"] for p in snap["flags"][key].get("prerequisites", [])), "segments"]
    pool = [leaves for owner in owners for leaves in rules.get(owner, [])]
    units = unit_attributes(snap, key)
    out = []
    for i in range(n):
        ctx: dict[str, Any] = {}
        for attr in ATTRIBUTES:
            roll = rng.random()
            if roll < 0.2:
                continue  # missing
            if roll < 0.25:
                ctx[attr] = None
            elif roll < 0.45:
                ctx[attr] = _version(rng)
            else:
                ctx[attr] = copy.deepcopy(rng.choice(EDGE))
        for leaves in rng.sample(pool, min(len(pool), rng.choice([0, 1, 2, 3]))):
            for attr, candidates in leaves:
                ctx[attr] = copy.deepcopy(rng.choice(candidates))
                if ctx[attr] is None and rng.random() < 0.5:
                    del ctx[attr]
        ctx["user_id"] = f"user-{i}" if rng.random() < 0.95 else rng.choice([None, 7, 5.5, ["u"], ""])
        if rng.random() < 0.5:
            ctx["segments"] = rng.choice([["vip"], ["other"], [], "vip", ["vip", 1]])
        out.append(unit_ids(rng, ctx, units, i, pool))
    return out


def unit_attributes(snap: dict[str, Any], key: str) -> tuple[str, ...]:
    """The attributes the targeting key stands in for when `key` is evaluated (TargetingKey.attributes)."""
    return TargetingKey().attributes(load_snapshot(snap), key)


def unit_ids(
    rng: random.Random, ctx: dict[str, Any], units: tuple[str, ...], i: int, pool: list[list[tuple[str, list[Any]]]]
) -> dict[str, Any]:
    """`ctx` with unit ids: under each unit attribute other than user_id (often, keeping a value the
    rules' leaves chose otherwise), then OpenFeature's `targetingKey`: none (40%), alone with the unit
    attributes missing or null (35%: it stands in for them), or beside them (25%: they win, some may
    be missing). The key is mostly a fresh unit id, sometimes a value a rule tests, or ""."""
    for attr in units:
        if attr not in ("user_id", "targetingKey") and (attr not in ctx or rng.random() < 0.5):
            ctx[attr] = f"{attr}-{i}" if rng.random() < 0.9 else rng.choice([None, 7, ["u"], ""])
        value = ctx.get(attr)
        if isinstance(value, float) and value.is_integer():
            # a known difference, not this test's: JSON cannot tell 5.0 from 5, we refuse the float as
            # a unit id (docs/flagd.md, Integral floats as unit ids)
            ctx[attr] = f"{attr}-{i}"
    roll = rng.random()
    if roll < 0.4:
        ctx.pop("targetingKey", None)
        return ctx
    tested = [v for leaves in pool for attr, vs in leaves if attr in units for v in vs if isinstance(v, str)]
    pick = rng.random()
    if pick < 0.85 or not tested:
        ctx["targetingKey"] = f"tk-{i}" if pick < 0.95 else ""
    else:
        ctx["targetingKey"] = rng.choice(tested)
    for attr in units:
        if attr == "targetingKey":
            continue
        if roll < 0.75:  # the targeting key alone
            if rng.random() < 0.8:
                ctx.pop(attr, None)
            else:
                ctx[attr] = None
        elif rng.random() < 0.15:  # both, mostly; sometimes one unit attribute is missing
            ctx.pop(attr, None)
    return ctx


_UNITS = TargetingKey()


def ofrep_context(snapshot: Snapshot, key: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """The context our evaluator sees when `tusk serve` (or TuskProvider) evaluates `key`: the targeting
    key under each unit attribute that is missing or null (docs/serve.md)."""
    return _UNITS.context(snapshot, key, ctx)


def stand_in_class(snapshot: Snapshot, key: str, ctx: dict[str, Any]) -> str:
    """How the targeting key took part: `none` (no targetingKey), `stood in` (for at least one unit
    attribute), `beside` (every unit attribute present: they win)."""
    if "targetingKey" not in ctx:
        return "none"
    return "stood in" if _UNITS.missing(snapshot, key, ctx) else "beside"


# --- engines ------------------------------------------------------------------------------------


def node() -> str | None:
    found = shutil.which("node")
    if found is None or not (ORACLE / "node_modules" / "@openfeature" / "flagd-core").is_dir():
        return None
    return found


def without_randomness(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with every bucketing decision made certain: the TypeScript core 4.x buckets with
    fractional v2 (murmur3 of the text), the export targets v3 (of its CBOR encoding), docs/flagd.md."""
    out = copy.deepcopy(snapshot)
    scale = out.get("scale", 100_000)
    for section in ("flags", "experiments"):
        for flag in out.get(section, {}).values():
            for index, rule in enumerate(flag.get("rules", [])):
                rollout = rule.get("rollout")
                if rollout is not None and rollout.get("percentage") is not None:
                    rollout["percentage"] = scale if rollout["percentage"] > 0 else 0  # targeting still decides
                for step_index, step in enumerate((rollout or {}).get("schedule") or []):
                    step["percentage"] = scale if (index + step_index) % 2 else 0
                split = rule.get("split")
                if split is not None:
                    keep = (index + len(flag["key"])) % len(split["weights"])
                    split["weights"] = [[v, w if i == keep else 0] for i, (v, w) in enumerate(split["weights"])]
                    if not split["weights"][keep][1]:
                        split["weights"][keep][1] = 1
    return out


def flagd_js_batches(binary: str, batches: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[list[Any]]:
    """Each (document, cases) batch through flagd's TypeScript core, all in one Node process."""
    payload = json.dumps({"batches": [{"flags": dumps_flagd(doc), "cases": cases} for doc, cases in batches]})
    done = subprocess.run(
        [binary, str(ORACLE / "evaluate.mjs")], input=payload, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    answers = json.loads(done.stdout)
    assert [len(a) for a in answers] == [len(cases) for _, cases in batches]
    return answers


def flagd_js(binary: str, document: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return flagd_js_batches(binary, [(document, cases)])[0]


def openfeature_context(ctx: dict[str, Any]) -> Any:
    """The EvaluationContext a flagd client sends for `ctx`: flagd-core's Python targeting reads
    `targetingKey` from the context's targeting key only (an attribute of that name is overwritten)."""
    from openfeature.evaluation_context import EvaluationContext

    attributes = {k: v for k, v in ctx.items() if k != "targetingKey"}
    return EvaluationContext(targeting_key=ctx.get("targetingKey"), attributes=attributes)


def _python_core() -> Any:
    from openfeature.contrib.tools.flagd import core

    # flagd-core logs a stack trace for every non-version given to sem_ver; that is expected here
    logging.getLogger("openfeature.contrib").setLevel(logging.CRITICAL)
    return core.FlagdCore()


def _python_resolve(core: Any, key: str, kind: str, ours: Any, ctx: dict[str, Any]) -> tuple[Any, Any, str]:
    from openfeature.exception import OpenFeatureError

    ec = openfeature_context(ctx)
    try:
        if kind == "boolean":
            res = core.resolve_boolean_value(key, False, ec)
        elif kind == "string":
            res = core.resolve_string_value(key, "", ec)
        elif kind == "number":
            getter = core.resolve_integer_value if isinstance(ours, int) else core.resolve_float_value
            res = getter(key, 0, ec)
        else:
            res = core.resolve_object_value(key, {}, ec)
    except OpenFeatureError as exc:
        return None, None, f"ERROR {exc!r}"
    return res.value, res.variant, str(res.reason).rsplit(".", 1)[-1]


def reason_class(ours: Any, has_prerequisites: bool) -> str:
    """The reason flagd gives for our result (docs/flagd.md, Known differences)."""
    if ours.reason == "STATIC" and has_prerequisites:
        return "DEFAULT"  # the inlined prerequisites are targeting: nothing matched beyond them
    return {"SPLIT": "TARGETING_MATCH", "DISABLED": "STATIC", "PREREQUISITE_FAILED": "TARGETING_MATCH"}.get(
        ours.reason, ours.reason
    )


def same(a: Any, b: Any) -> bool:
    """JSON equality with types kept apart (True is not 1) and integral floats equal to integers (JSON
    read back from JavaScript writes 2.0 as 2)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- the comparison -----------------------------------------------------------------------------


def outside_exact_range(ctx: dict[str, Any]) -> str | None:
    """Why flagd cannot give our answer for this context whatever the export does, or None.

    JSON numbers beyond 2^53 are not the same number in JavaScript (the TypeScript core's context).
    Versions are read by node-semver (TypeScript core: numbers up to 2^53-1, 256 characters) and
    python-semver (255 characters after flagd pads it): a version beyond those limits is one to us and
    none to flagd. docs/flagd.md, Known differences."""
    for value in ctx.values():
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return "json-number-above-2^53"  # JavaScript reads 2**53 + 1 as 2**53: the context itself differs
        if isinstance(value, str) and any(
            # node-semver: a core number above 2^53 - 1 is invalid, a pre-release one from it up is text
            int(part) >= 2**53 - 1
            for part in value.replace("-", ".").replace("+", ".").split(".")
            if part.isascii() and part.isdigit()
        ):
            return "version-number-above-2^53"
        if isinstance(value, str) and len(value) > 240:
            return "version-longer-than-flagd-reads"
    return None


@dataclass
class Report:
    evaluations: Counter[str] = field(default_factory=Counter)  # engine -> evaluations compared
    agreed: Counter[str] = field(default_factory=Counter)
    known: Counter[tuple[str, str]] = field(default_factory=Counter)  # (engine, why) -> count
    disagreements: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # flags left out, by first words of reason
    ops: Counter[str] = field(default_factory=Counter)  # condition ops over exported flags
    served: Counter[str] = field(default_factory=Counter)  # our reason over compared evaluations
    targeting_key: Counter[str] = field(default_factory=Counter)  # stand_in_class over compared evaluations
    bucket_by: Counter[str] = field(default_factory=Counter)  # the evaluated flag's bucket_by

    def add(self, engine: str, problem: str | None, ctx: dict[str, Any]) -> None:
        self.evaluations[engine] += 1
        if problem is None:
            self.agreed[engine] += 1
            return
        why = outside_exact_range(ctx)
        if why is not None and (engine == "typescript" or why == "version-longer-than-flagd-reads"):
            self.known[(engine, why)] += 1
        else:
            self.disagreements.append(f"[{engine}] {problem}")


def _ops(conditions: list[dict[str, Any]], out: Counter[str]) -> None:
    for c in conditions:
        out[c["op"]] += 1
        _ops(c.get("conditions", []), out)
        if "condition" in c:
            _ops([c["condition"]], out)


def compare_snapshot(
    snap: dict[str, Any],
    cases: list[tuple[str, dict[str, Any]]],
    report: Report,
    binary: str | None,
    now: int = NOW,
) -> None:
    """Export `snap`, then compare every (flag, context) case that was exported, in both engines, at
    epoch second `now` (what `$flagd.timestamp` reads)."""
    compare_timed(snap, [(key, ctx, now) for key, ctx in cases], report, binary)


Timed = tuple[str, dict[str, Any], int]  # flag key, context, evaluation time (epoch seconds)


def compare_timed(snap: dict[str, Any], cases: list[Timed], report: Report, binary: str | None) -> None:
    """compare_snapshot with an evaluation time per case (one Node process for all of them)."""
    exported = _compare_python(snap, cases, report)
    if binary is not None:
        _compare_typescript([(snap, exported)], report, binary)


class _Clock:
    """Stands in for the `time` module flagd-core's targeting reads `$flagd.timestamp` from."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)


def _compare_python(snap: dict[str, Any], cases: list[Timed], report: Report) -> list[Timed]:
    """Our evaluator against flagd's Python core; returns the cases whose flag was exported."""
    document, diagnostics = to_flagd(snap)
    refused = {d.message.split("`")[1]: d.message for d in diagnostics if d.code == "flagd-unsupported"}
    for message in refused.values():
        report.refused[message.split(": ", 1)[1].split(" (")[0][:60]] += 1
    table = {**snap["flags"], **snap.get("experiments", {})}
    assert sorted([*document["flags"], *refused]) == sorted(table), "every flag is exported or reported"
    for key in document["flags"]:
        for rule in table[key].get("rules", []):
            _ops(rule.get("conditions", []), report.ops)
    cases = [case for case in cases if case[0] in document["flags"]]
    client = Client(snap)
    core = _python_core()
    core.set_flags(dumps_flagd(document))
    targeting = sys.modules["openfeature.contrib.tools.flagd.core.targeting.targeting"]
    clock = _Clock(NOW)
    real_time, targeting.time = targeting.time, clock
    try:
        _python_cases(snap, cases, report, clock, client, core)
    finally:
        targeting.time = real_time
    return cases


def _python_cases(
    snap: dict[str, Any], cases: list[Timed], report: Report, clock: _Clock, client: Any, core: Any
) -> None:
    table = {**snap["flags"], **snap.get("experiments", {})}
    model = load_snapshot(snap)
    for key, ctx, now in cases:
        flag = table[key]
        clock.now = now
        ours = client.evaluate(key, ofrep_context(model, key, ctx), now=now)
        report.served[ours.reason] += 1
        report.targeting_key[stand_in_class(model, key, ctx)] += 1
        report.bucket_by[flag.get("bucket_by", "user_id")] += 1
        value, variant, reason = _python_resolve(core, key, flag["type"], ours.value, ctx)
        want = reason_class(ours, bool(flag.get("prerequisites")))
        problem = None
        if not (same(value, ours.value) and variant == ours.variant and reason == want):
            problem = (
                f"{key} {json.dumps(ctx, ensure_ascii=False)}: flagd {variant}={value!r} ({reason}), ours "
                f"{ours.variant}={ours.value!r} ({ours.reason}: {ours.detail})"
            )
        report.add("python", problem, ctx)


def _compare_typescript(items: list[tuple[dict[str, Any], list[Timed]]], report: Report, binary: str) -> None:
    """Our evaluator against flagd's TypeScript core, bucketing made certain (without_randomness)."""
    pending = []
    for snap, cases in items:
        certain = without_randomness(snap)
        document, _ = to_flagd(certain)
        table = {**certain["flags"], **certain.get("experiments", {})}
        batch = [{"key": key, "type": table[key]["type"], "context": ctx, "now": now} for key, ctx, now in cases]
        pending.append((certain, table, document, batch))
    answers = flagd_js_batches(binary, [(document, batch) for _, _, document, batch in pending])
    for (certain, table, _, batch), got_all in zip(pending, answers):
        client = Client(certain)
        model = load_snapshot(certain)
        for case, got in zip(batch, got_all):
            ours = client.evaluate(case["key"], ofrep_context(model, case["key"], case["context"]), now=case["now"])
            want = reason_class(ours, bool(table[case["key"]].get("prerequisites")))
            problem = None
            if not (same(got["value"], ours.value) and got["variant"] == ours.variant and got["reason"] == want):
                problem = (
                    f"{case['key']} {json.dumps(case['context'], ensure_ascii=False)}: flagd-js "
                    f"{got['variant']}={got['value']!r} ({got['reason']} {got['errorCode']}), ours "
                    f"{ours.variant}={ours.value!r} ({ours.reason}: {ours.detail})"
                )
            report.add("typescript", problem, case["context"])


def run(seed: int, evaluations: int, n_flags: int, n_contexts: int, binary: str | None) -> Report:
    """Random snapshots of n_flags flags, each flag over n_contexts contexts, until at least `evaluations`
    (flag, context) cases of exported flags were compared with flagd's Python core; then the same cases
    with its TypeScript core (when `binary` is Node), all in one Node process. Deterministic for a seed
    (and a tz database)."""
    report = Report()
    rng = random.Random(seed)
    exported = []
    while report.evaluations["python"] < evaluations:
        snap = snapshot(rng, n_flags)
        rules = snap.pop("_rules")
        cases = [(key, ctx, NOW) for key in snap["flags"] for ctx in contexts(rng, snap, rules, key, n_contexts)]
        exported.append((snap, _compare_python(snap, cases, report)))
    if binary is not None:
        _compare_typescript(exported, report, binary)
    return report


def summary(report: Report) -> str:
    lines = []
    for engine in sorted(report.evaluations):
        known = sum(n for (e, _), n in report.known.items() if e == engine)
        lines.append(
            f"{engine}: {report.evaluations[engine]:,} evaluations compared, {report.agreed[engine]:,} agree, "
            f"{known:,} outside flagd's exact range, "
            f"{sum(1 for d in report.disagreements if d.startswith(f'[{engine}]')):,} disagree"
        )
    for (engine, why), n in sorted(report.known.items()):
        lines.append(f"  known difference [{engine}] {why}: {n}")
    lines.append("ours served: " + ", ".join(f"{k} {v:,}" for k, v in report.served.most_common()))
    lines.append("targetingKey: " + ", ".join(f"{k} {v:,}" for k, v in report.targeting_key.most_common()))
    lines.append("bucket_by: " + ", ".join(f"{k} {v:,}" for k, v in report.bucket_by.most_common()))
    lines.append("ops in exported flags: " + ", ".join(f"{k} {v}" for k, v in sorted(report.ops.items())))
    lines.append("flags refused: " + "; ".join(f"{k} ({v})" for k, v in report.refused.most_common()))
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.flagd_fuzz [seed] [evaluations]
    found = run(
        int(sys.argv[1]) if len(sys.argv) > 1 else 16, int(sys.argv[2]) if len(sys.argv) > 2 else 2400, 12, 100, node()
    )
    print(summary(found))
    print("\n".join(found.disagreements[:30]))
