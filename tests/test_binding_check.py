"""A policy's flag binding is checked where the flags are compiled: `tusk check` and `tusk compile` refuse
what `tusk rollout start` would refuse (TSK823), at the binding's own line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

POLICY = """feature_flags = {{
 flags = {{
  search = {{ rollout_percentage = 5, metadata = {{ owner = "o", description = "d", approved_by = "x" }} }}
 }}
 progressive_delivery = {{
  canary_deployments = {{
   enabled = true
   flag = {binding}
   traffic_split = {{ canary = 10, stable = 90 }}
   health_checks = {{ metrics = ["error_rate"], thresholds = {{ error_rate = 0.05 }}, evaluation_period = "5 minutes" }}
  }}
 }}
}}
"""


def _tusk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tusklang.cli", *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("binding", "message", "hint"),
    [
        ('"serch"', "no flag or experiment `serch`", "did you mean `search`?"),
        ('{ key = "search", rule = "rolout" }', "has no rule `rolout`", "did you mean `rollout`?"),
    ],
)
def test_check_and_compile_refuse_a_binding_rollout_start_would_refuse(
    tmp_path: Path, binding: str, message: str, hint: str
) -> None:
    path = tmp_path / "p.tsk"
    path.write_text(POLICY.format(binding=binding))
    out = tmp_path / "flags.json"
    out.write_text("previous")
    for args in (("check", str(path)), ("compile", str(path), "-o", str(out))):
        done = _tusk(*args, "--format", "json")
        assert done.returncode == 1, done
        found = [d for d in json.loads(done.stdout)["diagnostics"] if d["code"] == "TSK823"]
        assert len(found) == 1 and message in found[0]["message"] and found[0]["hint"] == hint
        assert found[0]["span"]["line"] == 8
    assert out.read_text() == "previous"


def test_a_good_binding_compiles(tmp_path: Path) -> None:
    path = tmp_path / "p.tsk"
    path.write_text(POLICY.format(binding='"search"'))
    assert _tusk("check", str(path)).returncode == 0
    assert _tusk("compile", str(path), "-o", str(tmp_path / "f.json")).returncode == 0
