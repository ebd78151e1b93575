"""`tusk dashboard`: widgets rendered from their SQL, failures in their cards, config errors at positions."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import tusklang
from tusklang.cli import main
from tusklang.db import connect
from tusklang.reports import dashboard
from tusklang.reports.server import PanelCache, create_app

from .browser import widget_values

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "dashboard" / "dashboard.tsk"
SEED_DB = ROOT / "fixtures" / "db" / "seed.db"


def expected_values(db_path: Path, config: Path = FIXTURE) -> dict[str, list[tuple[Any, Any]]]:
    """What each widget must show, straight from sqlite3 (not through tusklang.db) with the config's SQL."""
    data = tusklang.loads(config.read_text())["real_time_feature_dashboard"]
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    out: dict[str, list[tuple[Any, Any]]] = {}
    for panel_name, panel in data.items():
        for name, widget in panel["widgets"].items():
            rows = connection.execute(widget["query"], widget.get("params", [])).fetchall()
            if widget["type"] in ("counter", "gauge"):
                out[f"{panel_name}.{name}"] = [(None, rows[0][0])]
            elif widget["type"] in ("list", "table"):
                out[f"{panel_name}.{name}"] = [(None, cell) for row in rows for cell in row]
            else:
                out[f"{panel_name}.{name}"] = [(row[0], row[1]) for row in rows]
    connection.close()
    return out


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_fixture_renders_every_widget_with_the_database_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "dashboard.html"
    code, _, err = run(["dashboard", str(FIXTURE), "--db", f"sqlite:///{SEED_DB}", "-o", str(out_file)], capsys)
    assert code == 0, err
    assert "7 of 7 widgets rendered" in err
    values, status, text = widget_values(out_file.read_text())
    assert set(status.values()) == {"ok"}
    assert values == expected_values(SEED_DB)
    # Hand-checked against fixtures/db/rows.sql, so a wrong query in the fixture is caught too.
    assert values["flag_status.active_flags"] == [(None, 7)]
    assert values["flag_status.user_exposure"] == [(None, 25.0)]
    assert values["flag_status.flag_evaluations"] == [("2024-01-30", 1), ("2024-01-31", 2), ("2024-02-01", 9)]
    assert [label for label, _ in values["experiment_monitoring.experiment_performance"]] == [
        "control",
        "variant_a",
        "variant_b",
        "variant_c",
    ]
    assert values["performance_impact.error_rate_impact"] == [(None, None)]
    assert "no data" in text["performance_impact.error_rate_impact"]
    assert "time range: 7 days" in text["flag_status.flag_evaluations"]


def test_param_binds_the_seed_question_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "d.html"
    code, _, err = run(
        [
            "dashboard",
            str(FIXTURE),
            "--db",
            f"sqlite:///{SEED_DB}",
            "-o",
            str(out_file),
            "--param",
            "experiment_performance=recommendations_ai",
        ],
        capsys,
    )
    assert code == 0, err
    values, _, _ = widget_values(out_file.read_text())
    assert values["experiment_monitoring.experiment_performance"] == [("ai_v1", 0.138), ("control", 0.12)]
    code, _, err = run(["dashboard", str(FIXTURE), "--db", f"sqlite:///{SEED_DB}", "--param", "nope=1"], capsys)
    assert code == 2 and "error[TSK947]" in err and "no widget 'nope'" in err
    # A value that is not text a database can take (argv decoded with surrogateescape) is the widget's error.
    code, _, err = run(
        [
            "dashboard",
            str(FIXTURE),
            "--db",
            f"sqlite:///{SEED_DB}",
            "-o",
            str(out_file),
            "--param",
            "experiment_performance=\udcff",
        ],
        capsys,
    )
    assert code == 1 and "error[TSK944]" in err and "lone surrogate" in err and "Traceback" not in err


def _config(tmp_path: Path, widgets: str, extra: str = "") -> Path:
    path = tmp_path / "dash.tsk"
    path.write_text(
        'real_time_feature_dashboard = {\n    main = {\n        refresh_interval = "5 seconds"\n'
        f"        widgets = {{\n{widgets}\n        }}\n    }}\n}}\n{extra}"
    )
    return path


def test_failed_widget_shows_its_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(
        tmp_path,
        '            ok = { type = "counter", query = "SELECT COUNT(*) AS count FROM experiments" }\n'
        '            broken = { type = "list", query = "SELECT nope FROM missing_table" }\n'
        '            writes = { type = "counter", query = "DELETE FROM experiments" }\n'
        '            unbound = { type = "bar_chart", query = "SELECT variant, conversion_rate FROM experiment_results '
        'WHERE experiment_name = ?" }',
    )
    out_file = tmp_path / "d.html"
    code, _, err = run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}", "-o", str(out_file)], capsys)
    assert code == 1
    assert (
        "error[TSK944]: widget `main.broken` (list): query failed (missing table): no such table: missing_table" in err
    )
    assert f"--> {config}:6:47" in err  # the position of the broken widget's query
    assert "widget `main.writes` (counter): query failed (read only)" in err
    assert "widget `main.unbound` (bar_chart): query failed (syntax)" in err and "--param WIDGET=VALUE" in err
    assert "1 of 4 widgets rendered" in err
    values, status, text = widget_values(out_file.read_text())
    assert status == {"main.ok": "ok", "main.broken": "error", "main.writes": "error", "main.unbound": "error"}
    assert values["main.ok"] == [(None, 6)]
    assert "no such table: missing_table" in text["main.broken"]
    with sqlite3.connect(SEED_DB) as check:
        assert check.execute("SELECT COUNT(*) FROM experiments").fetchone()[0] == 6


def test_json_report_lists_every_widget_and_the_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(
        tmp_path,
        '            ok = { type = "counter", query = "SELECT COUNT(*) AS count FROM experiments" }\n'
        '            broken = { type = "list", query = "SELECT nope FROM missing_table" }',
    )
    out_file = tmp_path / "d.html"
    argv = ["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}", "-o", str(out_file), "--format", "json"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    body = json.loads(out)
    assert body["output"] == str(out_file) and out_file.exists()
    assert [(w["widget"], w["rows"], w["error"] is None) for w in body["widgets"]] == [
        ("main.ok", 1, True),
        ("main.broken", 0, False),
    ]
    assert [d["code"] for d in body["diagnostics"]] == ["TSK944"]
    assert run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}", "--format", "json"], capsys)[0] == 2


def test_widget_rows_that_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(
        tmp_path,
        '            two = { type = "counter", query = "SELECT 1 AS a, 2 AS b" }\n'
        '            text = { type = "line_chart", query = "SELECT status, experiment_name FROM experiments" }\n'
        '            many = { type = "gauge", query = "SELECT participants FROM experiments" }',
    )
    code, out, err = run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}"], capsys)
    assert code == 1
    assert "a counter shows one value, but the query returned the columns a, b" in err
    assert "a line_chart plots numbers, but column `experiment_name` holds 'checkout_optimization'" in err
    assert "a gauge shows one value, but the query returned 6 rows" in err
    assert out.startswith("<!DOCTYPE html>")


def test_unknown_widget_type_is_an_error_at_its_position(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = ROOT / "fixtures" / "compile" / "invalid" / "dashboard_unknown_widget_type.tsk"
    out_file = tmp_path / "d.html"
    code, _, err = run(["dashboard", str(bad), "--db", f"sqlite:///{SEED_DB}", "-o", str(out_file)], capsys)
    assert code == 1
    assert 'error[TSK304]: `real_time_feature_dashboard.flag_status.widgets.heat.type` is "heatmap"' in err
    assert f"--> {bad}:5:29" in err
    assert not out_file.exists()


def test_missing_block_and_bad_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.tsk"
    plain.write_text("a = 1\n")
    code, _, err = run(["dashboard", str(plain), "--db", f"sqlite:///{SEED_DB}"], capsys)
    assert code == 1 and "error[TSK940]" in err
    code, _, err = run(["dashboard", str(FIXTURE), "--db", f"sqlite:///{tmp_path}/absent.db"], capsys)
    assert code == 2 and "cannot open" in err
    code, _, err = run(["dashboard", str(FIXTURE), "--db", "mysql://x"], capsys)
    assert code == 2 and "unsupported database URL scheme" in err


def test_reporting_block_selects_and_can_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    widgets = (
        '            a = { type = "counter", query = "SELECT 1 AS value" }\n'
        '            b = { type = "counter", query = "SELECT 2 AS value" }'
    )
    reporting = (
        "feature_analytics_config = {\n    reporting = {\n        real_time_dashboard = {\n"
        '            enabled = {enabled}\n            refresh_interval = "30 seconds"\n'
        '            widgets = ["b", "business_impact"]\n        }}\n    }}\n}}\n'
    )
    config = _config(tmp_path, widgets, reporting.replace("{enabled}", "true").replace("}}", "}"))
    code, out, err = run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}"], capsys)
    assert code == 0, err
    values, _, _ = widget_values(out)
    assert values == {"main.b": [(None, 2)]}
    assert "warning[TSK942]: `business_impact`" in err and "info[TSK943]" in err
    config = _config(tmp_path, widgets, reporting.replace("{enabled}", "false").replace("}}", "}"))
    code, out, err = run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}"], capsys)
    assert code == 1 and "error[TSK941]" in err and out == ""


def test_values_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(
        tmp_path,
        '            rows = { type = "list", query = "SELECT \'<script>alert(1)</script>\' AS \\"<b>x</b>\\"" }\n'
        '            "<img src=x>" = { type = "bar_chart", query = "SELECT \'<i>\' AS label, 1 AS n" }',
    )
    code, out, err = run(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}"], capsys)
    assert code == 0, err
    assert "<script>" not in out and "<img src=x>" not in out and "<b>x</b>" not in out and "<i>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    values, _, _ = widget_values(out)
    assert values["main.rows"] == [(None, "<script>alert(1)</script>")]


def test_every_chart_type_draws(tmp_path: Path) -> None:
    widget = dashboard.Widget
    rows = [{"k": "a", "v": 1}, {"k": "b", "v": 3}]
    pie = dashboard.shape(widget(type="pie_chart", query="q"), rows)
    assert [s["share"] for s in pie["slices"]] == ["25.0%", "75.0%"]
    bars = dashboard.shape(widget(type="bar_chart", query="q"), rows)
    assert bars["bars"][1]["h"] == pytest.approx(3 * bars["bars"][0]["h"], abs=0.05)
    lines = dashboard.shape(widget(type="line_chart", query="q"), rows)
    assert lines["series"][0]["dots"][1]["y"] < lines["series"][0]["dots"][0]["y"]
    gauge = dashboard.shape(widget(type="gauge", query="q", min=0, max=0.01), [{"v": 0.02}])
    assert gauge["fraction"] == 1.0 and gauge["text"] == "0.02"


def test_panel_cache_reruns_after_the_refresh_interval() -> None:
    now = [0.0]
    with connect(f"sqlite:///{SEED_DB}") as db:
        spec = dashboard.load(str(FIXTURE), FIXTURE.read_text(), database=db)
        cache = PanelCache(db, spec, clock=lambda: now[0])
        flag_status = spec.panels[0]  # refresh_interval = "10 seconds"
        first = cache.panel(flag_status)
        now[0] = 9.9
        assert cache.panel(flag_status) is first and cache.runs == 1
        now[0] = 10.0
        assert cache.panel(flag_status) is not first and cache.runs == 2


def test_served_page_and_sections(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    with connect(f"sqlite:///{SEED_DB}") as db:
        spec = dashboard.load(str(FIXTURE), FIXTURE.read_text(), database=db)
        client = TestClient(create_app(db, spec))
        page = client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">' in page.text and "default-src 'none'" in csp
        assert client.get("/").headers["content-security-policy"] != csp  # a fresh nonce per page
        section = client.get("/panel/flag_status")
        assert section.status_code == 200 and section.text.startswith('<section class="panel" id="p-flag_status"')
        assert 'data-refresh="10"' in section.text
        assert client.get("/panel/nope").status_code == 404


@pytest.mark.postgres
def test_fixture_gives_the_same_values_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "fixtures" / "db"))
    try:
        import build  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    schema = f"tusk_dash_{uuid.uuid4().hex[:12]}"
    url = build.load_postgres(postgres_url, schema)
    try:
        with connect(url) as db:
            spec = dashboard.load(str(FIXTURE), FIXTURE.read_text(), database=db)
            panels = dashboard.run_all(db, spec)
        assert dashboard.failures(panels) == []
        values, _, _ = widget_values(dashboard.render_page(spec, panels))
    finally:
        build.drop_postgres(postgres_url, schema)
    assert values == expected_values(SEED_DB)


def test_cli_serve_on_loopback(tmp_path: Path) -> None:
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tusklang.cli",
            "dashboard",
            str(FIXTURE),
            "--db",
            f"sqlite:///{SEED_DB}",
            "--serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/panel/flag_status", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "tusk dashboard --serve did not answer"
                time.sleep(0.05)
        values, _, _ = widget_values(body)
        assert values["flag_status.active_flags"] == [(None, 7)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert f"serving the dashboard on http://127.0.0.1:{port}/" in (process.stderr.read() if process.stderr else "")
