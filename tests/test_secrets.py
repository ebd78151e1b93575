"""Values from @env never reach a snapshot (or an OFREP response) verbatim: the secret rule.

docs/directives.md, "@env and secrets": a value computed from @env may set a setting (a switch, a
number, a fixed choice, `storage.connection`); in metadata and descriptions it is left out (TSK270, or
TSK271 under --strict-secrets); anywhere else the snapshot copies text it is an error (TSK272).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from tusklang.cli import main
from tusklang.compiler import compile_files
from tusklang.diagnostics import Diagnostic, TuskError
from tusklang.serve import create_app
from tusklang.syntax import nodes
from tusklang.syntax.parser import parse

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette nudges towards httpx2; httpx is what we have
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed"
TOKEN = "tok-Zq8-SECRET"
PASSWORD = "pw-Zq8-SECRET"
ENV = {"API_TOKEN": TOKEN, "DB_PASSWORD": PASSWORD, "REDIS_URL": "redis://:pw-redis-SECRET@h:6379/0"}

# The repro: a variable, an interpolation, a nested object and a list, in a flag's metadata.
REPRO = """$tok = @env(API_TOKEN)
feature_flags = {
    storage = { type = "redis", connection = @env(REDIS_URL) }
    flags = {
        checkout = {
            rollout_percentage = 50
            fallback = false
            metadata = {
                owner = "checkout-team"
                a = $tok
                b = "t=${tok}"
                c = { password = @env(DB_PASSWORD), region = "eu" }
                d = [@env(DB_PASSWORD), "kept"]
            }
        }
    }
}
"""


def _project(tmp_path: Path, text: str, name: str = "p.tsk") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _flag(body: str, prelude: str = "") -> str:
    return f"{prelude}\nfeature_flags = {{\n flags = {{\n  f = {{\n{body}\n  }}\n }}\n}}\n"


def _compile(path: Path, env: dict[str, str] | None = None, **options: Any) -> tuple[dict[str, Any], list[Diagnostic]]:
    result = compile_files([str(path)], env=ENV if env is None else env, verify=True, **options)
    return result.snapshot, result.diagnostics


def _errors(path: Path, env: dict[str, str] | None = None, **options: Any) -> list[Diagnostic]:
    with pytest.raises(TuskError) as caught:
        compile_files([str(path)], env=ENV if env is None else env, **options)
    return [d for d in caught.value.diagnostics if d.is_error]


def _secret_codes(diagnostics: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return sorted((d.code, d.span.line, d.span.column) for d in diagnostics if d.code.startswith("TSK27") and d.span)


# --- the repro ------------------------------------------------------------------------------------


def test_the_repro_leaves_every_secret_out_and_warns_at_the_env_call(tmp_path: Path) -> None:
    snapshot, diagnostics = _compile(_project(tmp_path, REPRO))
    text = json.dumps(snapshot)
    assert "SECRET" not in text
    assert snapshot["flags"]["checkout"]["metadata"] | {"source": None} == {
        "owner": "checkout-team",
        "c": {"region": "eu"},
        "d": ["kept"],
        "rollout_strategy": "percentage",
        "source": None,
    }
    warned = [d for d in diagnostics if d.code == "TSK270"]
    assert sorted(d.message.split("`")[1] for d in warned) == [
        "feature_flags.flags.checkout.metadata.a",
        "feature_flags.flags.checkout.metadata.b",
        "feature_flags.flags.checkout.metadata.c.password",
        "feature_flags.flags.checkout.metadata.d[0]",
    ]
    # at the @env call; a use through a variable says where it was used
    via_variable = next(d for d in warned if d.message.split("`")[1].endswith(".a"))
    assert (via_variable.span.line, via_variable.span.text) == (1, "@env(API_TOKEN)")
    assert [(r.span.line, r.span.text) for r in via_variable.related] == [(10, "$tok")]
    direct = next(d for d in warned if d.message.split("`")[1].endswith("password"))
    assert (direct.span.line, direct.span.text, direct.related) == (12, "@env(DB_PASSWORD)", ())


def test_strict_secrets_makes_them_errors_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, REPRO)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    out = tmp_path / "flags.json"
    out.write_text("previous\n")
    assert main(["compile", str(project), "-o", str(out), "--env-file", str(env_file), "--strict-secrets"]) == 1
    assert out.read_text() == "previous\n"
    err = capsys.readouterr().err
    assert err.count("error[TSK271]") == 4 and "SECRET" not in err
    assert main(["compile", str(project), "-o", str(out), "--env-file", str(env_file)]) == 0
    assert "SECRET" not in out.read_text()
    assert capsys.readouterr().err.count("warning[TSK270]") == 4


def test_check_reports_what_compile_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, REPRO)
    _, compiled = _compile(project)
    assert main(["check", str(project), "--format", "json"]) == 0
    checked = json.loads(capsys.readouterr().out)["diagnostics"]
    found = sorted(
        (d["code"], d["span"]["line"], d["span"]["column"]) for d in checked if d["code"].startswith("TSK27")
    )
    assert found == _secret_codes(compiled) and len(found) == 4
    assert main(["check", str(project), "--strict-secrets", "--format", "json"]) == 1
    strict = json.loads(capsys.readouterr().out)["diagnostics"]
    assert sorted(d["code"] for d in strict if d["code"].startswith("TSK27")) == ["TSK271"] * 4


def test_tusk_serve_hands_no_secret_to_ofrep_clients(tmp_path: Path) -> None:
    project = _project(tmp_path, REPRO)
    out = tmp_path / "flags.json"
    out.write_text(compile_files([str(project)], env=ENV).text)
    with TestClient(create_app(out, watch_interval=60)) as http:
        single = http.post("/ofrep/v1/evaluate/flags/checkout", json={"context": {"user_id": "u-1"}})
        bulk = http.post("/ofrep/v1/evaluate/flags", json={"context": {"user_id": "u-1"}})
    assert single.status_code == 200 and bulk.status_code == 200
    assert single.json()["metadata"]["owner"] == "checkout-team"  # metadata is served: the test can fail
    assert "SECRET" not in single.text and "SECRET" not in bulk.text


# --- how taint flows ------------------------------------------------------------------------------

FLOWS = {
    "variable": ("$t = @env(API_TOKEN)", "$t"),
    "interpolation": ("$t = @env(API_TOKEN)", '"x-${t}-y"'),
    "plus": ("", '"Bearer " + @env(API_TOKEN)'),
    "comparison": ("", '@env(API_TOKEN) == "tok"'),
    "not": ("", '!(@env(API_TOKEN) == "tok")'),
    "ternary condition": ("", '@env(API_TOKEN) == "x" ? "a" : "b"'),
    "ternary branch": ("", 'true ? @env(API_TOKEN) : "b"'),
    "list": ("", "[1, [@env(API_TOKEN)]]"),
    "object in a variable": ("$o = { deep = { t = @env(API_TOKEN) } }", "$o"),
    "variable of a variable": ("$a = @env(API_TOKEN)\n$b = [$a]", "$b"),
    "number default": ("", "@env(PORT, 8080)"),
    "boolean default": ("", "@env(ON, false)"),
    "array plus": ("$l = [@env(API_TOKEN)]", '$l + ["x"]'),
}


@pytest.mark.parametrize("prelude, expression", FLOWS.values(), ids=list(FLOWS))
def test_every_flow_from_env_into_metadata_is_left_out(tmp_path: Path, prelude: str, expression: str) -> None:
    body = f'rollout_percentage = 10\nmetadata = {{ owner = "core", x = {expression} }}'
    snapshot, diagnostics = _compile(_project(tmp_path, _flag(body, prelude)))
    metadata = snapshot["flags"]["f"]["metadata"]
    assert metadata["owner"] == "core"
    assert "x" not in metadata or "SECRET" not in json.dumps(metadata["x"])
    assert json.dumps(metadata.get("x", [])).count("tok") == 0
    assert any(d.code == "TSK270" for d in diagnostics)


def test_a_variable_keeps_its_structure_and_is_not_changed_for_its_other_uses(tmp_path: Path) -> None:
    prelude = (
        "$base = { enabled = @env(ON, true), rollout_percentage = @env(PCT, 10), fallback = false,"
        ' metadata = { team = "core", token = @env(API_TOKEN) } }'
    )
    text = f"{prelude}\nfeature_flags = {{\n flags = {{ one = $base, two = $base }}\n}}\n"
    snapshot, diagnostics = _compile(_project(tmp_path, text), env={**ENV, "ON": "false", "PCT": "30"})
    for key in ("one", "two"):
        flag = snapshot["flags"][key]
        assert flag["enabled"] is False  # a switch from @env: a setting
        assert flag["rules"][0]["rollout"]["percentage"] == 30_000  # a number from @env: a setting
        assert flag["metadata"]["team"] == "core" and "token" not in flag["metadata"]
    assert sorted(d.message.split("`")[1] for d in diagnostics if d.code == "TSK270") == [
        "feature_flags.flags.one.metadata.token",
        "feature_flags.flags.two.metadata.token",
    ]


def test_settings_may_come_from_env(tmp_path: Path) -> None:
    body = (
        "enabled = @env(ON, true)\n"
        'rollout_strategy = @env(STRATEGY, "percentage")\n'
        "rollout_percentage = @env(PCT, 10) + 0\n"
        "targeting = { feature_usage = { min_sessions = @env(MIN, 3) },"
        ' time_of_day = { start = @env(START, "09:00"), end = "17:00", time_zone = @env(TZ, "UTC") } }\n'
        "a_b_testing = { variants = { a = @env(WA, 0.5), b = 0.5 } }\n"
        "fallback = false"
    )
    text = _flag(body).replace(
        "feature_flags = {",
        'feature_flags = {\n storage = { type = "redis", connection = @env(REDIS_URL), ttl = @env(TTL, 60) }',
        1,
    )
    env = {**ENV, "ON": "true", "STRATEGY": "targeted", "PCT": "40", "MIN": "7", "START": "08:30", "TZ": "Europe/Paris"}
    snapshot, diagnostics = _compile(_project(tmp_path, text), env=env)
    assert not [d for d in diagnostics if d.code.startswith("TSK27")]
    flag = snapshot["flags"]["f"]
    assert flag["metadata"]["rollout_strategy"] == "targeted"
    assert flag["rules"][-1]["rollout"]["percentage"] == 40_000
    assert {"op": ">=", "attribute": "sessions", "value": 7} in flag["rules"][-1]["conditions"]
    assert flag["time_zone"] == "Europe/Paris"
    assert "SECRET" not in json.dumps(snapshot) and snapshot["runtime"]["storage"]["ttl"] == 60


VERBATIM = {
    "fallback": ("rollout_percentage = 5\nfallback = @env(API_TOKEN)", "feature_flags.flags.f.fallback"),
    "structured fallback": (
        'rollout_percentage = 5\nfallback = { type = "static", value = { k = @env(API_TOKEN) } }',
        "feature_flags.flags.f.fallback.value.k",
    ),
    "targeting list": (
        "rollout_percentage = 5\nfallback = false\ntargeting = { regions = [@env(API_TOKEN)] }",
        "feature_flags.flags.f.targeting.regions[0]",
    ),
    "bucket_by": (
        "rollout_percentage = 5\nfallback = false\nbucket_by = @env(API_TOKEN)",
        "feature_flags.flags.f.bucket_by",
    ),
    "override ids": (
        "rollout_percentage = 5\nfallback = false\n"
        'targeting = { manual_override = true, overrides = { on = ["u", @env(API_TOKEN)] } }',
        "feature_flags.flags.f.targeting.overrides.on[1]",
    ),
}


@pytest.mark.parametrize("body, place", VERBATIM.values(), ids=list(VERBATIM))
def test_a_secret_where_leaving_it_out_would_change_the_flag_is_an_error(tmp_path: Path, body: str, place: str) -> None:
    errors = _errors(_project(tmp_path, _flag(body)))
    secret = [d for d in errors if d.code == "TSK272"]
    assert len(secret) == 1 and f"`{place}`" in secret[0].message
    assert secret[0].span.text.startswith("@env(")
    assert "SECRET" not in secret[0].render()


def test_segment_criteria_and_key_prefix_are_verbatim(tmp_path: Path) -> None:
    text = (
        "feature_flags = {\n"
        ' storage = { type = "redis", key_prefix = @env(PREFIX, "ff:") }\n'
        " targeting = { user_segments = { staff = { criteria = { email_domain = @env(DOMAIN) },"
        " description = @env(API_TOKEN) } } }\n"
        "}\n"
    )
    errors = _errors(_project(tmp_path, text), env={**ENV, "PREFIX": "p:", "DOMAIN": "corp.example"})
    assert sorted(d.message.split("`")[1] for d in errors if d.code == "TSK272") == [
        "feature_flags.storage.key_prefix",
        "feature_flags.targeting.user_segments.staff.criteria.email_domain",
    ]


def test_an_included_files_secrets_stay_secrets(tmp_path: Path) -> None:
    _project(
        tmp_path,
        'owner = "core"\ntoken = @env(API_TOKEN)\nnested = { deep = { pw = @env(DB_PASSWORD) } }\n',
        "meta.tsk",
    )
    body = (
        "rollout_percentage = 5\nfallback = false\n"
        'metadata = { all = @file("meta.tsk"), part = @file("meta.tsk", "nested") }'
    )
    snapshot, diagnostics = _compile(_project(tmp_path, _flag(body)))
    metadata = snapshot["flags"]["f"]["metadata"]
    assert metadata["all"] == {"owner": "core", "nested": {"deep": {}}}
    assert metadata["part"] == {"deep": {}}
    assert "SECRET" not in json.dumps(snapshot)
    assert len([d for d in diagnostics if d.code == "TSK270"]) == 3
    assert all(d.span.file.endswith("meta.tsk") for d in diagnostics if d.code == "TSK270")


def test_a_directive_argument_does_not_make_its_result_secret(tmp_path: Path) -> None:
    _project(tmp_path, 'owner = "core"\n', "meta.tsk")
    body = "rollout_percentage = 5\nfallback = false\nmetadata = @file(@env(META_FILE))"
    snapshot, diagnostics = _compile(_project(tmp_path, _flag(body)), env={**ENV, "META_FILE": "meta.tsk"})
    assert snapshot["flags"]["f"]["metadata"]["owner"] == "core"
    assert not [d for d in diagnostics if d.code.startswith("TSK27")]


def _string_literals(text: str) -> list[Any]:
    document = parse(text, "project.tsk")
    found: list[Any] = []
    stack: list[Any] = [m.value for m in document.members] + [m.value for s in document.sections for m in s.members]
    while stack:
        node = stack.pop()
        if type(node) is nodes.String:
            found.append(node.span)
        elif type(node) is nodes.Object:
            stack.extend(m.value for m in node.members)
        elif type(node) is nodes.Array:
            stack.extend(node.items)
    return found


def test_no_string_of_the_seed_project_can_carry_a_secret_into_the_snapshot(tmp_path: Path) -> None:
    """Each string literal of the seed project in turn becomes @env(MARK): the mark never reaches a snapshot.

    This checks the rule's tables against what the compiler really copies: a place wrongly taken for a
    setting or for one that is never copied would let the mark through.
    """
    source = (SEED / "project.tsk").read_text(encoding="utf-8")
    (tmp_path / "feature_flags_data.tsk").write_text((SEED / "feature_flags_data.tsk").read_text(encoding="utf-8"))
    spans = _string_literals(source)
    assert len(spans) > 100
    written = dropped = refused = 0
    for index, span in enumerate(spans):
        mark = f"MARK{index}SECRET"
        project = _project(tmp_path, source[: span.start] + "@env(MARK)" + source[span.end :], "project.tsk")
        try:
            result = compile_files(
                [str(project)],
                env={"REDIS_URL": "x", "MARK": mark},
                database=f"sqlite:///{ROOT / 'fixtures/db/seed.db'}",
            )
        except TuskError:
            refused += 1
            continue
        assert mark not in result.text, f"{span.text} at line {span.line} reached the snapshot"
        written += 1
        dropped += any(d.code == "TSK270" for d in result.diagnostics)
    assert written and dropped and refused  # every kind of place was exercised


def test_check_refuses_the_same_verbatim_secrets_as_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = 'rollout_percentage = 5\nfallback = "v-${t}"\ntargeting = { regions = [@env(REGION)] }'
    project = _project(tmp_path, _flag(body, "$t = @env(API_TOKEN)"))
    compiled = _secret_codes(_errors(project, env={**ENV, "REGION": "eu"}))
    assert [code for code, _, _ in compiled] == ["TSK272", "TSK272"]
    assert main(["check", str(project), "--format", "json"]) == 1
    checked = json.loads(capsys.readouterr().out)["diagnostics"]
    assert (
        sorted((d["code"], d["span"]["line"], d["span"]["column"]) for d in checked if d["code"].startswith("TSK27"))
        == compiled
    )
