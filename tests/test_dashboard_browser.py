"""The dashboard in headless Chromium: no console errors, values in the DOM equal the database's, live refresh.

Screenshots land in test-artifacts/ (repo root). Without Chromium: skipped with the reason, failed under CI=true.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.db import connect
from tusklang.reports import dashboard
from tusklang.reports.server import create_app

from .browser import Browser, widget_values
from .test_dashboard import FIXTURE, SEED_DB, expected_values

pytestmark = pytest.mark.slow


def test_static_dashboard_in_chromium(browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "dashboard.html"
    assert main(["dashboard", str(FIXTURE), "--db", f"sqlite:///{SEED_DB}", "-o", str(page)]) == 0
    capsys.readouterr()
    result = browser.load(page.as_uri(), screenshot="dashboard.png")
    assert result.console_errors == []
    values, status, _ = widget_values(result.dom)
    assert set(status.values()) == {"ok"} and len(status) == 7
    assert values == expected_values(SEED_DB)
    assert result.screenshot is not None and result.screenshot.stat().st_size > 10_000


def test_failed_widget_card_in_chromium(browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dash.tsk"
    config.write_text(
        'real_time_feature_dashboard = { main = { refresh_interval = "5 seconds", widgets = {\n'
        '    ok = { type = "counter", query = "SELECT COUNT(*) AS count FROM experiments" }\n'
        '    broken = { type = "gauge", query = "SELECT AVG(nope) AS v FROM experiments" }\n'
        "} } }\n"
    )
    page = tmp_path / "d.html"
    assert main(["dashboard", str(config), "--db", f"sqlite:///{SEED_DB}", "-o", str(page)]) == 1
    capsys.readouterr()
    result = browser.load(page.as_uri(), screenshot="dashboard-failed-widget.png")
    assert result.console_errors == []
    values, status, text = widget_values(result.dom)
    assert status == {"main.ok": "ok", "main.broken": "error"}
    assert values["main.ok"] == [(None, 6)]
    assert "no such column: nope" in text["main.broken"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_dashboard_refreshes_from_the_database(browser: Browser, tmp_path: Path) -> None:
    import uvicorn

    db_file = tmp_path / "live.db"
    shutil.copy(SEED_DB, db_file)
    config = tmp_path / "live.tsk"
    config.write_text(
        "real_time_feature_dashboard = {\n"
        '    fast = { refresh_interval = "1 second", widgets = {\n'
        '        active_flags = { type = "counter", query = "SELECT COUNT(*) AS count FROM feature_flags '
        'WHERE enabled = TRUE" }\n'
        "    } }\n"
        '    slow = { refresh_interval = "1 hour", widgets = {\n'
        '        total = { type = "counter", query = "SELECT COUNT(*) AS count FROM feature_flags" }\n'
        "    } }\n"
        "}\n"
    )
    port = _free_port()
    with connect(f"sqlite:///{db_file}") as db:
        spec = dashboard.load(str(config), config.read_text(), database=db)
        server = uvicorn.Server(
            uvicorn.Config(create_app(db, spec), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline, "the dashboard server did not start"
                time.sleep(0.02)
            tab = browser.open(f"http://127.0.0.1:{port}/")
            try:
                values, _, _ = widget_values(tab.dom())
                assert values == {"fast.active_flags": [(None, 7)], "slow.total": [(None, 10)]}
                with sqlite3.connect(db_file) as writer:
                    writer.execute("UPDATE feature_flags SET enabled = TRUE")
                    writer.execute(
                        "INSERT INTO feature_flags VALUES "
                        "(11, 'x', TRUE, 'percentage', 0, '{}', 'false', '{}', TRUE, '2024-01-01T00:00:00')"
                    )
                browser.pump(2.5)  # more than the fast section's interval: its script fetched it again
                values, _, _ = widget_values(tab.dom())
                tab.screenshot("dashboard-live.png")
                # The 1-second section shows the new count; the 1-hour section still shows its first run.
                assert values == {"fast.active_flags": [(None, 11)], "slow.total": [(None, 10)]}
                assert tab.console_errors() == []
            finally:
                tab.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def test_the_browser_helper_sees_console_errors(browser: Browser) -> None:
    """The checks above can fail: a script error, a console.error and a CSP-blocked script are all reported."""
    page = (
        "data:text/html,<meta http-equiv='Content-Security-Policy' content=\"script-src 'nonce-a'\">"
        "<script>document.title = 'blocked'</script>"
        "<script nonce='a'>console.error('boom'); missingFunction()</script>"
    )
    errors = browser.load(page).console_errors
    assert any(e.startswith("console: boom") for e in errors)
    assert any("missingFunction is not defined" in e for e in errors)
    assert any("Content Security Policy" in e for e in errors)
