"""Lint rules driven by management_config and the flags themselves; codes configurable."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tusklang.compiler import LintOptions, compile_files
from tusklang.diagnostics import Severity, TuskError

MANAGEMENT = """
management_config = {
    flag_lifecycle = { cleanup_threshold = "90 days" }
    approval_workflow = { required_for = ["production_flags"], approvers = ["tech_lead"] }
    documentation = { required_fields = ["description", "owner"] }
}
"""
ENVIRONMENTS = """
    targeting = {
        environments = {
            staging = { auto_enable = true }
            production = { approval_required = true }
        }
    }
"""


def run(tmp_path: Path, flags: str, options: LintOptions | None = None, extra: str = "") -> list:
    path = tmp_path / "p.tsk"
    path.write_text("feature_flags = {\n flags = {\n" + flags + "\n }\n" + ENVIRONMENTS + "}\n" + MANAGEMENT + extra)
    options = options or LintOptions(now=datetime(2024, 6, 1))
    return [
        d
        for d in compile_files([str(path)], static=True, lint_options=options).diagnostics
        if d.code.startswith("TSK4")
    ]


def codes(diagnostics: list) -> list[str]:
    return sorted(d.code for d in diagnostics)


def test_documented_flag_in_staging_is_clean(tmp_path: Path) -> None:
    flags = (
        '  a = { rollout_percentage = 5, targeting = { environments = ["staging"] },'
        ' metadata = { description = "d", owner = "o", created_at = "2024-05-20" } }'
    )
    assert run(tmp_path, flags) == []


def test_required_fields_reported_per_flag(tmp_path: Path) -> None:
    found = run(
        tmp_path,
        '  a = { rollout_percentage = 5, targeting = { environments = ["staging"] }, metadata = { owner = "o" } }',
    )
    assert codes(found) == ["TSK401"]
    assert "description" in found[0].message and "owner" not in found[0].message.split(":")[-1]
    assert found[0].span is not None and found[0].span.line == 3


def test_production_flag_without_approval(tmp_path: Path) -> None:
    meta = 'description = "d", owner = "o"'
    assert codes(run(tmp_path, f"  a = {{ rollout_percentage = 5, metadata = {{ {meta} }} }}")) == ["TSK402"]
    approved = f'  a = {{ rollout_percentage = 5, metadata = {{ {meta}, approved_by = "tech_lead" }} }}'
    assert run(tmp_path, approved) == []


def test_stale_and_fully_rolled_out(tmp_path: Path) -> None:
    meta = 'description = "d", owner = "o", approved_by = "x", created_at = "2024-01-01"'
    partial = f"  a = {{ rollout_percentage = 5, metadata = {{ {meta} }} }}"
    full = f"  b = {{ rollout_percentage = 100, metadata = {{ {meta} }} }}"
    found = run(tmp_path, partial + "\n" + full)
    assert codes(found) == ["TSK403", "TSK404"]
    # the clock is an option: on 2024-02-01 neither is older than 90 days
    assert run(tmp_path, partial + "\n" + full, LintOptions(now=datetime(2024, 2, 1))) == []


def test_clock_from_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = 'description = "d", owner = "o", approved_by = "x", created_at = "2024-01-01"'
    flags = f"  a = {{ rollout_percentage = 5, metadata = {{ {meta} }} }}"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1704153600")  # 2024-01-02
    assert run(tmp_path, flags, LintOptions()) == []
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1735689600")  # 2025-01-01
    assert codes(run(tmp_path, flags, LintOptions())) == ["TSK403"]


def test_empty_and_overlapping_targeting(tmp_path: Path) -> None:
    meta = 'metadata = { description = "d", owner = "o", approved_by = "x" }'
    flags = (
        f"  a = {{ rollout_percentage = 5, targeting = {{ regions = [] }}, {meta} }}\n"
        f'  b = {{ rollout_percentage = 5, targeting = {{ user_segments = ["all_users", "vip"] }}, {meta} }}\n'
        f'  c = {{ rollout_percentage = 5, targeting = {{ regions = ["eu", "eu"] }}, {meta} }}'
    )
    assert codes(run(tmp_path, flags)) == ["TSK406", "TSK407", "TSK407"]


def test_threshold_direction_inferred_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.tsk"
    path.write_text(
        "feature_flags = {\n progressive_delivery = {\n  feature_gates = {\n   gates = {\n    g = {\n"
        '     metrics = ["throughput", "p99"]\n     thresholds = { throughput = 100, p99 = 2 }\n'
        '     directions = { p99 = "lower" }\n    }\n   }\n  }\n }\n}\n'
    )
    found = [d for d in compile_files([str(path)], static=True).diagnostics if d.code == "TSK405"]
    assert len(found) == 1 and "throughput" in found[0].message and found[0].severity is Severity.INFO


def test_error_and_ignore_options(tmp_path: Path) -> None:
    flags = '  a = { rollout_percentage = 5, targeting = { environments = ["staging"] }, metadata = { owner = "o" } }'
    assert run(tmp_path, flags, LintOptions(ignored={"TSK401"}, now=datetime(2024, 6, 1))) == []
    with pytest.raises(TuskError) as info:
        run(tmp_path, flags, LintOptions(errors={"TSK401"}, now=datetime(2024, 6, 1)))
    assert [d.code for d in info.value.diagnostics if d.is_error] == ["TSK401"]


def test_inferred_direction_of_a_compared_metric_points_at_its_comparison(tmp_path: Path) -> None:
    path = tmp_path / "p.tsk"
    path.write_text(
        "feature_flags = {\n progressive_delivery = {\n  canary_deployments = {\n   enabled = true\n"
        "   traffic_split = { canary = 10, stable = 90 }\n"
        '   health_checks = {\n    metrics = ["error_rate"]\n    evaluation_period = "5 minutes"\n'
        "    compare = { error_rate = { max_ratio = 1.5 } }\n   }\n  }\n }\n}\n"
    )
    found = [d for d in compile_files([str(path)], static=True).diagnostics if d.code == "TSK405"]
    assert len(found) == 1
    # the finding sits on the `error_rate = { max_ratio = ... }` entry of `compare`, not on a missing
    # thresholds entry (which would fall back to an enclosing block)
    assert found[0].span is not None and found[0].span.line == 9
