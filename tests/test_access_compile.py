"""`security_config.access_control` compiled into the snapshot's `runtime.access` (issue 18): roles, the
environments each flag reaches, which flags need approval, and the TSK350/TSK317 warnings; the policy
read from the snapshot grants what the roles say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tusklang.compiler import compile_files
from tusklang.overrides.access import NEEDS_APPROVAL, OUTSIDE_ROLE, Policy
from tusklang.overrides.keys import KeyEntry
from tusklang.snapshot import load_snapshot

PROJECT = """
feature_flags = {
    flags = {
        search_v2 = { enabled = true, rollout_percentage = 100, targeting = { environments = ["production"] } }
        search_preview = { enabled = true, rollout_percentage = 100, targeting = { environments = ["staging"] } }
        dark_mode = { enabled = true, rollout_percentage = 100, metadata = { risk = "high" } }
    }
    targeting = {
        environments = {
            development = { auto_enable = true }
            staging = { auto_enable = true }
            production = { approval_required = true }
        }
    }
}
security_config = {
    access_control = {
        role_based_access = true
        audit_logging = true
        change_approval = true
        roles = {
            release_manager = { flags = ["*"], environments = ["production", "staging", "development"] }
            team_search = { flags = ["search_*"], environments = ["staging"] }
            tech_lead = { flags = ["*"], environments = ["*"] }
            delivery = { flags = ["*"], environments = ["*"], skip_approval = true }
        }
    }
}
management_config = {
    approval_workflow = {
        required_for = ["production_flags"]
        approvers = ["tech_lead", "product_manager"]
        required_approvals = 2
        expires_after = "2 hours"
        auto_approval = ["staging", "development"]
    }
}
"""


def compile_project(tmp_path: Path, text: str) -> tuple[dict[str, Any], list[Any]]:
    path = tmp_path / "p.tsk"
    path.write_text(text, encoding="utf-8")
    result = compile_files([str(path)], static=True, verify=True)
    return result.snapshot, result.diagnostics


def entry(*roles: str) -> KeyEntry:
    return KeyEntry("k-0000000000000000", "someone", roles, b"x" * 32, "2026-01-01T00:00:00.000Z")


def test_roles_reach_and_approvals_are_compiled(tmp_path: Path) -> None:
    snapshot, diagnostics = compile_project(tmp_path, PROJECT)
    access = snapshot["runtime"]["access"]
    assert access["role_based_access"] is True and access["audit_logging"] is True
    assert access["environments"] == {
        "dark_mode": ["development", "production", "staging"],  # no list of its own: every declared one
        "search_preview": ["staging"],
        "search_v2": ["production"],
    }
    assert access["roles"]["team_search"] == {
        "flags": ["search_*"],
        "environments": ["staging"],
        "skip_approval": False,
    }
    assert access["roles"]["tech_lead"]["environments"] == ["*"]
    # Production flags need 2 approvals; search_preview reaches only an auto_approval environment.
    assert access["approval"] == {
        "flags": ["dark_mode", "search_v2"],
        "approvers": ["tech_lead", "product_manager"],
        "required": 2,
        "expires_seconds": 7200,
    }
    # product_manager approves but is no declared role: said so, with the declared ones.
    warnings = [d for d in diagnostics if d.code == "TSK350"]
    assert len(warnings) == 1 and "product_manager" in warnings[0].message
    assert not [d for d in diagnostics if d.code == "TSK331" and "access_control" in d.message]

    policy = Policy.of(load_snapshot(snapshot))
    assert policy.enforced
    assert policy.authorise(entry("team_search"), "search_preview") is None
    assert policy.authorise(entry("team_search"), "search_v2")[0] == OUTSIDE_ROLE  # type: ignore[index]
    assert policy.authorise(entry("team_search"), "dark_mode")[0] == OUTSIDE_ROLE  # type: ignore[index]
    assert policy.authorise(entry("release_manager"), "search_v2")[0] == NEEDS_APPROVAL  # type: ignore[index]
    assert policy.authorise(entry("delivery"), "search_v2") is None  # skip_approval
    assert policy.may_approve(["tech_lead"], "search_v2") and not policy.may_approve(["release_manager"], "search_v2")


def test_an_unknown_environment_in_a_role_is_an_error(tmp_path: Path) -> None:
    text = PROJECT.replace(
        'environments = ["staging"] }\n            tech_lead', 'environments = ["stagin"] }\n            tech_lead'
    )
    diagnostics = _diagnostics(tmp_path, text)
    problems = [d for d in diagnostics if d.code == "TSK317"]
    assert problems and "stagin" in problems[0].message and "staging" in (problems[0].hint or "")


def _diagnostics(tmp_path: Path, text: str) -> list[Any]:
    from tusklang.diagnostics import TuskError

    path = tmp_path / "p.tsk"
    path.write_text(text, encoding="utf-8")
    try:
        return list(compile_files([str(path)], static=True, verify=True).diagnostics)
    except TuskError as exc:
        return list(exc.diagnostics)


def test_without_roles_nothing_is_enforced_and_the_compiler_says_so(tmp_path: Path) -> None:
    start = PROJECT.index("        roles = {")
    end = PROJECT.index("    }\n}\nmanagement_config")
    snapshot, diagnostics = compile_project(tmp_path, PROJECT[:start] + PROJECT[end:])
    assert snapshot["runtime"]["access"]["roles"] == {}
    assert not Policy.of(load_snapshot(snapshot)).enforced
    assert any(d.code == "TSK350" and "nothing is enforced" in d.message for d in diagnostics)


def test_change_approval_without_role_based_access_is_not_acted_on(tmp_path: Path) -> None:
    snapshot, diagnostics = compile_project(
        tmp_path, PROJECT.replace("role_based_access = true", "role_based_access = false")
    )
    assert "approval" not in snapshot["runtime"]["access"]
    assert any(d.code == "TSK331" and "change_approval" in d.message for d in diagnostics)
    assert not Policy.of(load_snapshot(snapshot)).enforced
