"""The flagd export against both flagd cores on generated flags (issue 16).

Random snapshots (tests/flagd_fuzz.py) use every condition op - contains, not_exists, starts_with,
ends_with, literal matches, semver_*, in/not_in, comparisons, contains_any/all, exists, segments,
all/any/not - with prerequisites, rollouts and splits over every variant type; contexts hit and just
miss the operands and carry every JSON type, missing and null attributes, numbers as strings, Unicode,
empty strings and versions with pre-release/build parts, `v`/`V` prefixes and whitespace. Each
(flag, context) is evaluated by our evaluator, by flagd's Python core and by flagd's TypeScript core
(tests/flagd_js), comparing value, variant and reason class. Ours is called as `tusk serve` calls it:
OpenFeature's `targetingKey` stands in for the unit attributes (bucket_by of the flag and of its
prerequisites) a context lacks; contexts carry it alone, beside the unit attributes, or not at all.

The suite compares at least 50,000 generated (flag, context) evaluations with each core (seed 2024;
TUSK_FLAGD_EVALUATIONS sets another count, TUSK_FLAGD_SEED another seed), the TypeScript ones batched
through one Node process; `python -m tests.flagd_fuzz SEED EVALUATIONS` runs it outside pytest.
"""

from __future__ import annotations

import json
import os
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files
from tusklang.evaluate import Client
from tusklang.export import dumps_flagd, to_flagd

from . import flagd_fuzz as fuzz
from .conftest import IN_CI

EVALUATIONS = int(os.environ.get("TUSK_FLAGD_EVALUATIONS", "50000"))
SEED = int(os.environ.get("TUSK_FLAGD_SEED", "2024"))
FLAGS, CONTEXTS = 12, 100  # per snapshot, per flag


@pytest.fixture(scope="module")
def node() -> str:
    found = fuzz.node()
    if found is None:
        problem = "Node.js or @openfeature/flagd-core missing: run `npm ci --prefix tests/flagd_js`"
        if IN_CI:
            pytest.fail(problem + " (CI=true: a missing oracle is a failure, not a skip)", pytrace=False)
        pytest.skip(problem)
    return found


def _flag(key: str, conditions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "type": "boolean",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "default_variant": "off",
        "rules": [{"id": "r", "conditions": conditions, "serve": "on"}],
        **extra,
    }


def _snapshot(*flags: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"format": "tusklang.snapshot/1", "flags": {f["key"]: f for f in flags}, **extra}


def _errors(diagnostics: list[Any]) -> dict[str, str]:
    return {d.message.split("`")[1]: d.message for d in diagnostics if d.code == "flagd-unsupported"}


# --- generated flags ------------------------------------------------------------------------------


def test_generated_flags_agree_with_both_flagd_cores(node: str) -> None:
    report = fuzz.run(SEED, EVALUATIONS, FLAGS, CONTEXTS, node)
    print(fuzz.summary(report))
    assert not report.disagreements, f"{len(report.disagreements)} disagreements, e.g.\n" + "\n".join(
        report.disagreements[:10]
    )
    assert report.evaluations["typescript"] == report.evaluations["python"] >= EVALUATIONS
    # Only contexts flagd cannot read as we do (numbers beyond 2^53 in JavaScript) differ, and rarely.
    assert sum(report.known.values()) < EVALUATIONS / 200, report.known
    assert {e for e, _ in report.known} <= {"typescript"}
    # Not vacuous: every op the export now handles was exported and evaluated, and flags served by
    # rules, by prerequisites failing and by default, often.
    wanted = {"contains", "not_exists", "starts_with", "ends_with", "matches", "exists", "in", "not_in"}
    wanted |= {"semver_eq", "semver_ne", "semver_lt", "semver_le", "semver_gt", "semver_ge"}
    wanted |= {"contains_any", "contains_all", "==", "!=", "<", ">=", "all", "any", "not", "segment"}
    assert wanted <= {op for op, n in report.ops.items() if n >= 3}, wanted - set(report.ops)
    for reason in ("TARGETING_MATCH", "PREREQUISITE_FAILED", "DEFAULT", "STATIC", "SPLIT", "DISABLED"):
        assert report.served[reason] >= EVALUATIONS / 100, (reason, report.served)
    # Compared with our OFREP semantics: OpenFeature's targetingKey stood in for a missing or null unit
    # attribute (the flag's or a prerequisite's bucket_by) in a large share, came beside present unit
    # attributes (which win) in another, and was absent in the rest.
    assert report.targeting_key["stood in"] >= EVALUATIONS / 5, report.targeting_key
    assert report.targeting_key["beside"] >= EVALUATIONS / 10, report.targeting_key
    assert report.targeting_key["none"] >= EVALUATIONS / 5, report.targeting_key
    # ... for flags bucketed by other attributes too (one rules read, names no evaluator can carry,
    # `segments`, `targetingKey` itself), whose prerequisites may bucket by yet another
    assert all(report.bucket_by[name] >= EVALUATIONS / 200 for name in fuzz.BUCKET_BY), report.bucket_by
    # The generator also writes what flagd cannot express; those flags were reported (checked per
    # snapshot in compare_snapshot), never exported.
    assert any("regular expression" in why for why in report.refused)
    assert any("ISO-8601" in why or "`before`" in why or "`after`" in why for why in report.refused)


# --- versions ---------------------------------------------------------------------------------------

VERSIONS: list[Any] = [
    "1.2.3",
    "v1.2.3",
    "V1.2.3",
    "vv1.2.3",
    "vV1.2.3",
    " 1.2.3",
    "1.2.3 ",
    "1.2.3\n",
    "\t1.2.3",
    "\u00a01.2.3",
    "\ufeff1.2.3",
    "v 1.2.3",
    "=1.2.3",
    "1",
    "1.2",
    "01",
    "1.02",
    "1-rc.1",
    "1.2-rc.1",
    "v1.2-rc.1",
    "1+b",
    "1.2+b",
    "v1+b.7",
    "1.2.3-01",
    "1.2.3-rc.01",
    "1.2.3-0a",
    "1.2.3+01",
    "1.2.3-",
    "1.2.3+",
    "1.2.3.4",
    "1.2.3.4-rc",
    "1..2-rc",
    "1.-rc",
    "-rc",
    "1.2.3--",
    "1.2.3-a-",
    "1.2.3-x.7.z.92",
    "1.2.3-rc.1+b.2",
    "1.2.3-\u03b1",
    "\uff11.2.3",
    "9007199254740991.0.0",
    "1.0.0-" + "a" * 200,
    "",
    "v",
    "V",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-beta.11",
    "1.0.0-alpha.beta+other",
    "1.2-beta.2",
    "v1.2.0-beta.2+b",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    1,
    1.2,
    True,
    None,
    ["1.2.3"],
    {"v": "1.2.3"},
]
TARGETS = ["1.2.3", "v1.0", "1.0.0-rc.1", "1.0.0-alpha.beta+build.1", "2", "1.2-beta.2"]


def test_every_version_edge_agrees_in_both_flagd_cores(node: str) -> None:
    """flagd's sem_ver strips `v`/`V`; its TypeScript core also trims whitespace, takes `vv1.2.3` and
    refuses `1.2-rc.1`; python-semver pads partial versions. The export's guards and padding make both
    answer as we do for each of these inputs, target and comparison."""
    flags = [
        _flag(f"{op}_{i}", [{"op": f"semver_{op}", "attribute": "v", "value": target}])
        for i, target in enumerate(TARGETS)
        for op in ("eq", "ne", "lt", "le", "gt", "ge")
    ]
    snapshot = _snapshot(*flags)
    document, diagnostics = to_flagd(snapshot)
    assert not _errors(diagnostics)
    client = Client(snapshot)
    core = fuzz._python_core()
    core.set_flags(dumps_flagd(document))
    cases = [{"key": f["key"], "type": "boolean", "context": {"v": v}, "now": 0} for v in VERSIONS for f in flags]
    served = set()
    for case, got in zip(cases, fuzz.flagd_js(node, document, cases)):
        ours = client.evaluate(case["key"], case["context"])
        py = fuzz._python_resolve(core, case["key"], "boolean", ours.value, case["context"])
        served.add((case["key"], ours.value))
        assert (got["value"], got["variant"]) == (ours.value, ours.variant), (case, got, ours.detail)
        assert py[:2] == (ours.value, ours.variant), (case, py, ours.detail)
    assert {(f["key"], v) for f in flags for v in (True, False)} <= served  # every flag both ways


def test_versions_flagd_cannot_hold_are_refused() -> None:
    big = "9007199254740992.0.0"  # node-semver refuses numbers above 2^53 - 1
    snapshot = _snapshot(
        _flag("big", [{"op": "semver_lt", "attribute": "v", "value": big}]),
        _flag("pre", [{"op": "semver_lt", "attribute": "v", "value": "1.0.0-9007199254740991"}]),
        _flag("long", [{"op": "semver_gt", "attribute": "v", "value": "1.0.0-" + "a" * 300}]),
        _flag("fine", [{"op": "semver_lt", "attribute": "v", "value": "v9007199254740991.2-rc.1+b"}]),
    )
    document, diagnostics = to_flagd(snapshot)
    errors = _errors(diagnostics)
    assert sorted(errors) == ["big", "long", "pre"]
    assert "2^53-1" in errors["big"] and "orders as text" in errors["pre"] and "longer" in errors["long"]
    # a partial, `v`-prefixed target with a build is written as node-semver reads it
    assert '"9007199254740991.2.0-rc.1"' in json.dumps(document["flags"]["fine"]["targeting"])


# --- prerequisites ----------------------------------------------------------------------------------


def _compare_all(node: str, snapshot: dict[str, Any], contexts: list[dict[str, Any]]) -> list[Any]:
    """Every exported flag over every context in both cores; returns our results (for coverage checks)."""
    document, _ = to_flagd(snapshot)
    report = fuzz.Report()
    cases = [(key, ctx) for key in document["flags"] for ctx in contexts]
    fuzz.compare_snapshot(snapshot, cases, report, node)
    assert not report.disagreements, "\n".join(report.disagreements[:10])
    assert report.evaluations["python"] == report.evaluations["typescript"] == len(cases)
    client = Client(snapshot)
    return [client.evaluate(key, ctx, now=fuzz.NOW) for key, ctx in cases]


def test_prerequisites_are_the_other_flags_targeting_inlined(node: str) -> None:
    """A chain (c needs b needs a), a prerequisite that is disabled, one that is an experiment with a
    split, and one that is met by several variants: flagd serves what we serve, reasons included."""
    a = _flag("a", [{"op": "semver_ge", "attribute": "app", "value": "2.0"}])
    b = {**_flag("b", [{"op": "contains", "attribute": "email", "value": "@acme."}]), "default_variant": "on"}
    b["prerequisites"] = [{"flag": "a", "variants": ["on"]}]
    b["rules"][0]["conditions"] = [{"op": "not", "condition": b["rules"][0]["conditions"][0]}]
    b["rules"][0]["serve"] = "off"
    c = {
        **_flag("c", [{"op": "not_exists", "attribute": "beta"}]),
        "prerequisites": [{"flag": "b", "variants": ["on"]}],
    }
    off = {**_flag("off", [], enabled=False), "off_variant": "on"}  # disabled: serves its off variant, on
    d = {
        **_flag("d", []),
        "rules": [],
        "prerequisites": [{"flag": "off", "variants": ["on"]}, {"flag": "exp", "variants": ["x", "y"]}],
    }
    exp = {
        "key": "exp",
        "type": "string",
        "variants": {"x": "x", "y": "y", "z": "z"},
        "off_variant": "z",
        "default_variant": "z",
        "rules": [
            {
                "id": "r",
                "conditions": [{"op": "ends_with", "attribute": "email", "value": ".io"}],
                "split": {"salt": "exp/split", "weights": [["x", 1], ["y", 1], ["z", 1]]},
            }
        ],
    }
    snapshot = _snapshot(a, b, c, off, d, experiments={"exp": exp})
    document, diagnostics = to_flagd(snapshot)
    assert not _errors(diagnostics)
    assert "prerequisites" not in json.dumps(document["flags"]["a"])
    assert json.loads(document["flags"]["c"]["metadata"]["tusklang.prerequisites"]) == c["prerequisites"]
    contexts = [
        {"user_id": f"u{i}", "app": app, "email": email, **({"beta": beta} if beta != "-" else {})}
        for i, (app, email, beta) in enumerate(
            (app, email, beta)
            for app in ("2.1.0", "1.9", "2.0-rc.1", None, 2)
            for email in ("me@acme.io", "me@other.io", "x@acme.de", 5)
            for beta in ("-", None, True)
        )
    ]
    results = _compare_all(node, snapshot, contexts * 4)
    reasons = {(r.flag, r.reason) for r in results}
    assert {("b", "PREREQUISITE_FAILED"), ("c", "PREREQUISITE_FAILED"), ("d", "PREREQUISITE_FAILED")} <= reasons
    assert {("b", "TARGETING_MATCH"), ("c", "TARGETING_MATCH"), ("d", "STATIC"), ("c", "DEFAULT")} <= reasons


def test_a_prerequisite_that_cannot_be_exported_refuses_its_dependents_by_name() -> None:
    base = _flag("base", [{"op": "before", "attribute": "signed_up", "value": "2024-01-01T00:00:00Z"}])
    mid = {**_flag("mid", []), "prerequisites": [{"flag": "base", "variants": ["on"]}]}
    top = {**_flag("top", []), "prerequisites": [{"flag": "mid", "variants": ["on", "off"]}]}
    fine = {**_flag("fine", []), "prerequisites": [{"flag": "other", "variants": ["off"]}]}
    other = {**_flag("other", [{"op": "before", "attribute": "x", "value": "2024-01-01T00:00:00Z"}], enabled=False)}
    document, diagnostics = to_flagd(_snapshot(base, mid, top, fine, other))
    errors = _errors(diagnostics)
    assert sorted(errors) == ["base", "mid", "top"]
    assert "prerequisite `base` cannot be exported" in errors["mid"] and "ISO-8601" in errors["mid"]
    assert "prerequisite `mid` cannot be exported: its prerequisite `base` cannot be exported" in errors["top"]
    # a disabled prerequisite serves its off variant whatever its rules say: nothing to express
    assert sorted(document["flags"]) == ["fine", "other"]


def test_prerequisite_chains_too_deep_or_wide_for_flagd_are_refused_naming_the_chain() -> None:
    flags = []
    for i in range(128):
        flag = _flag(f"c{i:03}", [{"op": "exists", "attribute": "v"}])
        if i:
            flag["prerequisites"] = [{"flag": f"c{i - 1:03}", "variants": ["on"]}]
        flags.append(flag)
    document, diagnostics = to_flagd(_snapshot(*flags))
    errors = _errors(diagnostics)
    assert 40 < len(document["flags"]) < 128 and len(errors) == 128 - len(document["flags"])
    assert "c127 -> c126 -> c125 -> ... ->" in errors["c127"] and "levels deep" in errors["c127"]
    # a lattice (each flag needs the two before it) doubles with every step: refused on size, fast
    lattice = []
    for i in range(60):
        flag = _flag(f"d{i:02}", [{"op": "contains", "attribute": "email", "value": f"@{i}."}])
        if i > 1:
            flag["prerequisites"] = [
                {"flag": f"d{i - 1:02}", "variants": ["on"]},
                {"flag": f"d{i - 2:02}", "variants": ["on"]},
            ]
        lattice.append(flag)
    document, diagnostics = to_flagd(_snapshot(*lattice))
    errors = _errors(diagnostics)
    assert "d59" in errors and "characters" in errors["d59"]
    assert max(len(json.dumps(f)) for f in document["flags"].values()) < 1_100_000


# --- what flagd cannot express, and what it reads differently --------------------------------------


def test_constructs_flagd_would_read_differently_are_refused_naming_the_flag() -> None:
    snapshot = _snapshot(
        _flag("proto", [{"op": "exists", "attribute": "__proto__"}]),
        _flag("backslash", [{"op": "contains", "attribute": "a\\\\b", "value": "x"}]),
        _flag("big_value", [{"op": "==", "attribute": "n", "value": 2**53 + 1}]),
        {**_flag("big_variant", []), "type": "number", "variants": {"on": 2**60 + 1, "off": 0}},
        {**_flag("empty_name", []), "variants": {"": True, "off": False}, "rules": []},
        _flag("regex", [{"op": "matches", "attribute": "e", "value": "(?i)^admin"}]),
        _flag("ok", [{"op": "==", "attribute": "n", "value": 2**53}]),
    )
    document, diagnostics = to_flagd(snapshot)
    errors = _errors(diagnostics)
    assert sorted(errors) == ["backslash", "big_value", "big_variant", "empty_name", "proto", "regex"]
    assert "prototype" in errors["proto"] and "backslash" in errors["backslash"]
    assert "double" in errors["big_value"] and "2^53" in errors["big_variant"]
    assert sorted(document["flags"]) == ["ok"]


def test_literal_regexes_export_exactly_in_both_cores(node: str) -> None:
    """Python's `$` also matches before one final newline, `\\Z` does not; escapes and one-character
    classes are literals; `(?i)`/`(?m)` or any operator is refused."""
    patterns = ["acme", "^acme", "acme$", "^acme$", "\\Aacme\\Z", "a\\.b", "[.]io$", "", "^$", "$", "ä+?"[:1]]
    flags = [_flag(f"m{i}", [{"op": "matches", "attribute": "e", "value": p}]) for i, p in enumerate(patterns)]
    flags.append(_flag("c_empty", [{"op": "contains", "attribute": "e", "value": ""}]))
    flags.append(_flag("c_dot", [{"op": "contains", "attribute": "e", "value": "."}]))
    snapshot = _snapshot(*flags)
    assert not _errors(to_flagd(snapshot)[1])
    values: list[Any] = ["acme", "xacme", "acme\n", "acme\n\n", "\nacme", "ACME", "a.b", "axb", "x.io", "x.io\n"]
    values += ["", "\n", "ä", ["acme"], 1, None, True, {"e": "acme"}]
    results = _compare_all(node, snapshot, [{"e": v} for v in values])
    assert {(r.flag, r.value) for r in results} >= {(f["key"], v) for f in flags for v in (True, False)}


def test_segment_bodies_javascript_would_rewrite_are_inlined(node: str) -> None:
    """The TypeScript core splices `$evaluators` with String.replaceAll, which expands `$&` and `$'` in
    the body: a segment holding them is inlined (before, the whole document failed to load there)."""
    snapshot = _snapshot(
        _flag("f", [{"op": "segment", "segments": ["dollar"]}]),
        _flag("g", [{"op": "segment", "segments": ["plain"]}]),
        segments={
            "dollar": {"conditions": [{"op": "in", "attribute": "plan", "values": ["a$&b", "c$'d"]}]},
            "plain": {"conditions": [{"op": "in", "attribute": "plan", "values": ["pro$"]}]},
        },
    )
    document, _ = to_flagd(snapshot)
    assert sorted(document["$evaluators"]) == ["plain"]
    _compare_all(node, snapshot, [{"plan": p} for p in ("a$&b", "c$'d", "pro$", "pro", None)])


def test_an_object_flag_serving_a_list_is_a_warning_for_strict_validators() -> None:
    flag = {**_flag("layout", []), "type": "object", "variants": {"on": [1, 2], "off": {"rows": 1}}}
    document, diagnostics = to_flagd(_snapshot(flag))
    assert [(d.code, d.severity) for d in diagnostics] == [("flagd-variant-types", "warning")]
    assert "`on`" in diagnostics[0].message and document["flags"]["layout"]["variants"]["on"] == [1, 2]


# --- the typed fixture, from the command line ------------------------------------------------------

TYPED = fuzz.ORACLE.parent.parent / "fixtures" / "typed"
# What flagd cannot express in fixtures/typed/project.tsk, and a stand-in for each that it can.
_TYPED_STAND_INS = {
    '{ attribute = "signup", op = "after", value = "2024-01-01" }': '{ attribute = "signup", op = "exists" }',
    '{ attribute = "created_at", op = "before", value = "2020-01-01T00:00:00Z" }': '{ attribute = "created_at", '
    'op = "exists" }',
    '"^[a-z.]+@acme\\\\.(com|io)$"': '"^staff@acme\\\\.io$"',
}


def test_cli_refuses_the_typed_fixture_naming_each_flag_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fixtures/typed uses a date operator, a real regular expression and prerequisites on them: each
    flag is named with its reason (a dependent names its prerequisite), and the old output stays."""
    out = tmp_path / "typed.flagd.json"
    out.write_text("previous\n", encoding="utf-8")
    code = main(["compile", str(TYPED / "project.tsk"), "-o", str(out), "--target", "flagd", "--format", "json"])
    assert code == 1
    assert out.read_text(encoding="utf-8") == "previous\n"
    found = json.loads(capsys.readouterr().out)["diagnostics"]
    errors = {d["message"].split("`")[1]: d["message"] for d in found if d["code"] == "flagd-unsupported"}
    assert sorted(errors) == ["checkout_layout", "dark_mode_v3", "new_pricing_page", "search_limit"]
    assert "`after` on attribute `signup`" in errors["checkout_layout"] and "ISO-8601" in errors["checkout_layout"]
    assert "`before` on attribute `created_at`" in errors["dark_mode_v3"]
    assert "regular expression '^[a-z.]+@acme\\\\.(com|io)$'" in errors["search_limit"]
    assert "its prerequisite `checkout_layout` cannot be exported: `after`" in errors["new_pricing_page"]
    # the list-valued object flag is exportable; strict flagd validators want objects: a warning
    assert [d["severity"] for d in found if d["code"] == "flagd-variant-types"] == ["warning"]


def test_cli_exports_the_typed_fixture_and_both_flagd_cores_agree(tmp_path: Path, node: str) -> None:
    """The typed fixture with its three unexportable operands replaced: every flag (object, string,
    number, boolean and list variants; in/not_in, numeric and string comparisons, starts/ends_with,
    contains, an anchored literal regex, semver_*, contains_any/all, exists/not_exists, any/all/not,
    a segment, rollouts, splits, and a chain of three prerequisites) is written by `tusk compile
    --target flagd`, and flagd serves what we serve."""
    text = (TYPED / "project.tsk").read_text(encoding="utf-8")
    for old, new in _TYPED_STAND_INS.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    project = tmp_path / "project.tsk"
    project.write_text(text, encoding="utf-8")
    out, snap_out = tmp_path / "flags.flagd.json", tmp_path / "snapshot.json"
    assert main(["compile", str(project), "-o", str(out), "--target", "flagd"]) == 0
    assert main(["compile", str(project), "-o", str(snap_out)]) == 0
    snapshot = json.loads(snap_out.read_text(encoding="utf-8"))
    written = out.read_text(encoding="utf-8")
    assert written == dumps_flagd(to_flagd(snapshot)[0])
    assert sorted(json.loads(written)["flags"]) == sorted(snapshot["flags"])
    rng = random.Random(16)
    choices: dict[str, list[Any]] = {
        "country": ["NL", "BE", "KP", "US", 5, None],
        "app_version": ["2.1.0", "2.0.0", "1.8", "v1.8.9", "3.0.0-beta.1", "4.0.1", "2.5", "V2.1.0", 2, None],
        "email": ["admin@acme.io", "staff@acme.io", "staff@acme.io\n", "me@example.com", "a@acme.com", 1, None],
        "seats": [50, 49, 9999, 10000, "60", 60.5, True, None],
        "plan": ["pro", "free", "team", ["pro"], None],
        "preferences": [["dark"], ["dark", "oled"], ["oled"], "dark", [], None],
        "cohort": ["a", None],
        "score": [0.3, 0.1, 0.5, 99.6, "0.3", False, None],
        "environment": ["production", "staging", None],
        "beta_tester": [True, False, "true", 1, None],
        "signup": ["2024-02-01", None],
        "created_at": ["2019-01-01", None],
    }
    contexts = []
    for i in range(1500):
        ctx = {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.85}
        ctx = {k: v for k, v in ctx.items() if v is not None or rng.random() < 0.5}
        ctx["user_id"] = f"user-{i}" if i % 50 else rng.choice([7, None, ["u"]])
        contexts.append(ctx)
    report = fuzz.Report()
    fuzz.compare_snapshot(snapshot, [(key, ctx) for key in snapshot["flags"] for ctx in contexts], report, node)
    assert not report.disagreements, "\n".join(report.disagreements[:10])
    assert report.evaluations["python"] == report.evaluations["typescript"] == 5 * len(contexts)
    client = Client(snapshot)
    served = {(key, client.evaluate(key, ctx).variant) for key in snapshot["flags"] for ctx in contexts}
    for key, flag in snapshot["flags"].items():
        if flag["rules"] or flag.get("prerequisites"):
            assert len({v for k, v in served if k == key}) >= 2, (key, served)
    for reason in ("TARGETING_MATCH", "PREREQUISITE_FAILED", "SPLIT", "STATIC"):
        assert report.served[reason] > 50, report.served
    print(fuzz.summary(report))


def test_string_ordering_against_characters_javascript_orders_differently_is_refused(node: str) -> None:
    """JavaScript compares UTF-16 code units: "\\uff11" < "😀" is false there and true for us. An operand
    below U+D800 decides alike in both whatever the attribute holds; one from U+D800 up is refused."""
    snapshot = _snapshot(
        _flag("fullwidth", [{"op": "<", "attribute": "s", "value": "\uff11"}]),
        _flag("emoji", [{"op": ">=", "attribute": "s", "value": "a😀"}]),
        _flag("equal", [{"op": "==", "attribute": "s", "value": "😀"}]),
        _flag("latin", [{"op": "<", "attribute": "s", "value": "pró"}]),
    )
    document, diagnostics = to_flagd(snapshot)
    errors = _errors(diagnostics)
    assert sorted(errors) == ["emoji", "fullwidth"] and "UTF-16" in errors["fullwidth"]
    values = ["😀", "\uff11", "\ue000", "\uffff", "a😀", "a\uffff", "pro", "prz", "pró😀", "", "a", 5, None]
    results = _compare_all(node, snapshot, [{"s": v} for v in values])
    assert {(r.flag, r.value) for r in results} >= {(k, v) for k in document["flags"] for v in (True, False)}


def test_prerequisites_reading_the_clock_and_time_zones_agree_in_both_cores(node: str) -> None:
    """An inlined prerequisite carries its time window (zone table as a shared evaluator), its
    active_between and its scheduled rollout: the dependent follows it at every instant, in the
    context's zone or the prerequisite's own, around a DST change."""
    pre = {
        **_flag("pre", [{"op": "time_window", "start_minute": 9 * 60, "end_minute": 17 * 60, "days": ["mon", "fri"]}]),
        "time_zone": "Europe/Berlin",
    }
    pre["rules"].append(
        {
            "id": "later",
            "conditions": [{"op": "active_between", "start": "2024-03-31T00:30:00Z", "end": "2024-04-02T00:00:00Z"}],
            "rollout": {
                "salt": "pre/rollout",
                "schedule": [
                    {"at": "2024-03-30T12:00:00Z", "percentage": 0},
                    {"at": "2024-03-31T06:00:00Z", "percentage": 100_000},
                ],
            },
            "serve": "on",
        }
    )
    dep = {
        **_flag("dep", [{"op": "exists", "attribute": "user_id"}]),
        "prerequisites": [{"flag": "pre", "variants": ["on"]}],
    }
    top = {**_flag("top", [{"op": "not_exists", "attribute": "beta"}]), "time_zone": "America/New_York"}
    top["prerequisites"] = [{"flag": "dep", "variants": ["on"]}]
    top["rules"].append(
        {
            "id": "night",
            "conditions": [{"op": "time_window", "start_minute": 22 * 60, "end_minute": 6 * 60}],
            "serve": "on",
        }
    )
    snapshot = _snapshot(pre, dep, top)
    document, diagnostics = to_flagd(snapshot)
    assert not _errors(diagnostics) and sorted(document["flags"]) == ["dep", "pre", "top"]
    assert any(name.startswith("tusklang_utc_offset_") for name in document.get("$evaluators", {}))
    contexts = [
        {"user_id": f"u{i}", **({"timezone": tz} if tz else {}), **({"beta": True} if i % 3 == 0 else {})}
        for i, tz in enumerate([None, "Asia/Tokyo", "America/New_York", "Not/AZone", 5, "UTC", "Europe/Berlin"] * 3)
    ]
    report = fuzz.Report()
    start = 1_711_843_200  # 2024-03-31 00:00 UTC: Europe/Berlin changes to summer time at 01:00 UTC
    times = range(start - 3 * 86400, start + 3 * 86400, 3 * 3600 + 17 * 60)
    cases = [(k, c, now) for now in times for k in document["flags"] for c in contexts]
    fuzz.compare_timed(snapshot, cases, report, node)
    assert not report.disagreements, "\n".join(report.disagreements[:10])
    assert report.evaluations["python"] == report.evaluations["typescript"] > 2000
    assert {"TARGETING_MATCH", "PREREQUISITE_FAILED", "DEFAULT"} <= set(report.served)


# --- the conformance topics of the typed flag model -------------------------------------------------

CONFORMANCE = TYPED.parent / "conformance"


@pytest.mark.parametrize("path", sorted(CONFORMANCE.glob("*/*.json")), ids=lambda p: p.stem)
def test_typed_conformance_topics_agree_in_both_flagd_cores(path: Path, tmp_path: Path, node: str) -> None:
    """The topics tests/test_flagd_export.py and test_flagd_js.py leave out (prerequisites, whose failed
    answers flagd gives as TARGETING_MATCH, and TuskLang sources compiled first): each case is exported
    and evaluated by both cores, or its flag reported by name (dates and real regexes)."""
    topic = json.loads(path.read_text(encoding="utf-8"))
    snapshots = dict(topic.get("snapshots", {}))
    for name, text in topic.get("sources", {}).items():
        source = tmp_path / f"{name}.tsk"
        source.write_text(text, encoding="utf-8")
        snapshots[name] = dict(compile_files([str(source)], static=True, verify=True).snapshot)
    report = fuzz.Report()
    compared = 0
    for ref, snapshot in snapshots.items():
        cases = [
            (case["flag"], case["context"], int(datetime.fromisoformat(case["now"]).timestamp()))
            for case in topic["cases"]
            if ref in (case.get("snapshot_ref"), case.get("source_ref")) and isinstance(case["context"], dict)
        ]
        known = {**snapshot["flags"], **snapshot.get("experiments", {})}
        cases = [case for case in cases if case[0] in known]  # an unknown flag: the caller's default, both
        before = report.evaluations["python"]
        fuzz.compare_timed(snapshot, cases, report, node)
        compared += report.evaluations["python"] - before
    assert not report.disagreements, "\n".join(report.disagreements[:10])
    assert report.evaluations["typescript"] == report.evaluations["python"] == compared
    assert compared >= len(topic["cases"]) // 2, (compared, len(topic["cases"]), dict(report.refused))
