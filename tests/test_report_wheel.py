"""The report and dashboard templates ship in the wheel: render both pages from the built wheel alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys, tusklang
from tusklang.reports import dashboard, report
assert tusklang.__file__.startswith(sys.argv[1]), tusklang.__file__
spec = dashboard.DashboardSpec("t", ())
print(len(dashboard.render_page(spec, [])) > 0)
data = {"experiment": "e", "metric": "m", "control": "c", "arms": [], "srm": None, "warnings": [],
        "decision": {"status": "problem", "winner": None, "why": "w", "more_units_per_arm": None},
        "config": {"method": "bayesian", "confidence_level": 0.95, "correction": "holm", "prior": [1, 1],
                   "minimum_sample_size": 1, "winner_detection": True}}
print("<svg" in report.render_html(data))
"""


@pytest.mark.slow
def test_templates_are_in_the_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("tusklang-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("base", "report", "dashboard", "panel"):
        assert f"tusklang/reports/templates/{template}.html.j2" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(unpacked)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["True", "True"]
