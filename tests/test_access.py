"""Access control on runtime overrides, on a real Redis (issue 18): roles, signed writes, refusals in the
audit stream, unsigned direct writes ignored by clients, a tamper-evident audit stream, and production
changes that need two approvals by others than the proposer, before the proposal expires."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tusklang.cli import main
from tusklang.evaluate import Client
from tusklang.overrides import OverrideStore, RedisOverrides

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
UNIT = {
    "user_id": "u1",
    "environment": "production",
    "region": "us-east",
    "account_age": 3,
    "feature_usage": 9,
    "feedback_score": 4.5,
}
ROLES = {
    # The example, plus the approvers and the delivery controller.
    "release_manager": {"flags": ["*"], "environments": ["development", "staging", "production"]},
    "team_search": {"flags": ["search_*"], "environments": ["staging"]},
    "team_dark": {"flags": ["dark_mode*"], "environments": ["staging"]},
    "tech_lead": {"flags": ["*"], "environments": ["*"]},
    "product_manager": {"flags": ["*"], "environments": ["*"]},
    "controller": {"flags": ["*"], "environments": ["*"], "skip_approval": True},
}

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url: str, prefix: str) -> Iterator[OverrideStore]:
    s = OverrideStore.from_url(redis_url, prefix)
    yield s
    s.close()


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """The seed snapshot (its compiled runtime.access: production flags need 2 approvals by tech_lead or
    product_manager) with roles declared, as `security_config.access_control.roles` compiles them."""
    data = json.loads(SEED.read_text())
    access = data["runtime"]["access"]
    assert access["approval"]["required"] == 2 and "new_checkout_flow" in access["approval"]["flags"]
    access["roles"] = {n: {"skip_approval": False, **r} for n, r in ROLES.items()}
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A keyring ($TUSK_KEYRING) and a token file per identity, made with `tusk keys create`."""
    keyring = tmp_path / "keyring.json"
    monkeypatch.setenv("TUSK_KEYRING", str(keyring))
    monkeypatch.delenv("TUSK_TOKEN", raising=False)
    tokens = {}
    for identity, role in [
        ("rita", "release_manager"),
        ("sam", "team_search"),
        ("dora", "team_dark"),
        ("tess", "tech_lead"),
        ("tom", "tech_lead"),
        ("pam", "product_manager"),
        ("bot", "controller"),
    ]:
        tokens[identity] = tmp_path / f"{identity}.token"
        assert main(["keys", "create", identity, "--role", role, "--token-file", str(tokens[identity])]) == 0
    assert oct(keyring.stat().st_mode & 0o777) == "0o600"
    return tokens


def flags(redis_url: str, prefix: str, *args: str) -> int:
    return main(["flags", *args, "--redis", redis_url, "--prefix", prefix])


def as_(keys: dict[str, Path], who: str) -> list[str]:
    return ["--token-file", str(keys[who])]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.005)


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


# --- roles -----------------------------------------------------------------------------------------------


def test_a_write_outside_the_role_is_refused_and_audited(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], capsys: Any
) -> None:
    # dark_mode_v2 reaches only staging: team_dark may change it (no approval needed outside production).
    assert flags(redis_url, prefix, "disable", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
    assert store.get("dark_mode_v2")["updated_by"] == "dora"
    # search_v2 reaches production; team_search may change search_* in staging only.
    capsys.readouterr()
    code = flags(
        redis_url, prefix, "disable", "search_v2", "--snapshot", str(snapshot), *as_(keys, "sam"), "--format", "json"
    )
    assert code == 1
    diagnostic = _json(capsys)["diagnostics"][0]
    assert diagnostic["code"] == "TSK709" and "search_v2" in diagnostic["message"]
    assert store.get("search_v2") is None  # nothing written
    refusal = store.audit("search_v2")[-1]
    assert (refusal.outcome, refusal.actor, refusal.op) == ("refused", "sam", "disable")
    assert refusal.kid and refusal.new == {"enabled": False} and "no role of the writer" in refusal.reason
    # dora's role covers dark_mode*, not search_v2; an unsigned write is refused as having no identity.
    assert flags(redis_url, prefix, "disable", "search_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 1
    assert flags(redis_url, prefix, "disable", "dark_mode_v2", "--snapshot", str(snapshot), "--format", "json") == 1
    assert _json(capsys)["diagnostics"][0]["code"] == "TSK710"
    outcomes = [(e.flag, e.actor, e.outcome) for e in store.audit()]
    assert outcomes[1:] == [
        ("search_v2", "sam", "refused"),
        ("search_v2", "dora", "refused"),
        ("dark_mode_v2", outcomes[-1][1], "refused"),
    ]
    # A production flag with a role that allows it still needs the approvals.
    assert (
        flags(
            redis_url,
            prefix,
            "disable",
            "new_checkout_flow",
            "--snapshot",
            str(snapshot),
            *as_(keys, "rita"),
            "--format",
            "json",
        )
        == 1
    )
    assert _json(capsys)["diagnostics"][0]["code"] == "TSK711"
    # The audit stream with its refusals verifies.
    assert flags(redis_url, prefix, "audit", "--verify", "--snapshot", str(snapshot)) == 0


def test_a_revoked_or_forged_token_is_no_identity(
    redis_url: str, prefix: str, snapshot: Path, keys: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    forged = tmp_path / "forged.token"
    kid = keys["dora"].read_text().split(":")[2]
    forged.write_text(f"tusk-token:1:{kid}:" + "A" * 43)
    args = ["disable", "dark_mode_v2", "--snapshot", str(snapshot), "--format", "json"]
    assert flags(redis_url, prefix, *args, "--token-file", str(forged)) == 1
    assert _json(capsys)["diagnostics"][0]["code"] == "TSK710"
    assert main(["keys", "revoke", "dora"]) == 0
    assert "revoked: k-" in capsys.readouterr().out
    assert flags(redis_url, prefix, *args, *as_(keys, "dora")) == 1
    assert "revoked" in _json(capsys)["diagnostics"][0]["message"]
    # No command prints a secret but the one-time token of `create` without --token-file.
    assert main(["keys", "list", "--format", "json"]) == 0
    listed = capsys.readouterr().out
    assert "secret" not in listed and keys["rita"].read_text().split(":")[3].strip() not in listed


# --- readers apply only signed, authorised records ---------------------------------------------------


def test_an_unsigned_direct_redis_write_is_ignored_by_clients_and_logged(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], caplog: Any
) -> None:
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(snapshot, overrides=source)
    try:
        assert source.status()["access"] == "enforced"
        assert client.evaluate("dark_mode_v2", {"user_id": "u1"}).reason == "DISABLED"  # off in the seed
        # A signed, authorised write applies ...
        assert flags(redis_url, prefix, "enable", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
        _wait_for(lambda: client.evaluate("dark_mode_v2", {"user_id": "u1"}).reason != "DISABLED", 1.0, "signed")
        # ... an attacker's HSET (no signature) of another flag is ignored and logged ...
        with caplog.at_level(logging.ERROR, logger="tusklang.overrides"):
            store.client.hset(store.hash_key, "new_checkout_flow", json.dumps({"version": 99, "enabled": False}))
            store.client.publish(store.channel, json.dumps({"flag": "new_checkout_flow", "version": 99}))
            _wait_for(lambda: "new_checkout_flow" in source.status()["rejected"], 1.0, "rejected")
        assert client.evaluate("new_checkout_flow", UNIT).value is True
        assert "unsigned" in source.status()["rejected"]["new_checkout_flow"]["reason"]
        assert any("new_checkout_flow" in r.getMessage() and "unsigned" in r.getMessage() for r in caplog.records)
        # ... and so is a signed record edited in place: dark_mode_v2 keeps its last good (signed) record.
        record = json.loads(store.client.hget(store.hash_key, "dark_mode_v2"))
        record["enabled"] = False
        store.client.hset(store.hash_key, "dark_mode_v2", json.dumps(record))
        store.client.publish(store.channel, json.dumps({"flag": "dark_mode_v2", "version": 999}))
        _wait_for(lambda: "dark_mode_v2" in source.status()["rejected"], 1.0, "edited record rejected")
        assert "bad signature" in source.status()["rejected"]["dark_mode_v2"]["reason"]
        assert client.evaluate("dark_mode_v2", {"user_id": "u1"}).reason != "DISABLED"
        # The audit verification names both direct writes.
        assert flags(redis_url, prefix, "audit", "--verify", "--snapshot", str(snapshot)) == 1
    finally:
        client.close()


def test_tusk_serve_applies_signed_records_and_ignores_unsigned_ones(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    keyring = keys["rita"].parent / "keyring.json"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "tusklang.cli", "serve", str(snapshot), "--port", str(port)),
            *("--redis", redis_url, "--prefix", prefix, "--poll-interval", "600", "--keyring", str(keyring)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "TUSK_KEYRING"},
    )
    url = f"http://127.0.0.1:{port}"
    flag_url = f"{url}/ofrep/v1/evaluate/flags/"
    body = {"context": {"targetingKey": "u1", **UNIT}}
    try:
        with httpx.Client(timeout=2) as http:
            _wait_for(lambda: _healthy(http, url), 20.0, "tusk serve up")
            assert http.get(f"{url}/health").json()["overrides"]["access"] == "enforced"
            store.client.hset(store.hash_key, "new_checkout_flow", json.dumps({"version": 1, "enabled": False}))
            store.client.publish(store.channel, json.dumps({"flag": "new_checkout_flow", "version": 1}))
            assert (
                flags(redis_url, prefix, "enable", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
            )
            _wait_for(
                lambda: http.post(flag_url + "dark_mode_v2", json=body).json()["reason"] != "DISABLED", 1.0, "signed"
            )
            assert http.post(flag_url + "new_checkout_flow", json=body).json()["value"] is True
            rejected = http.get(f"{url}/health").json()["overrides"]["rejected"]
            assert list(rejected) == ["new_checkout_flow"] and "unsigned" in rejected["new_checkout_flow"]["reason"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert "new_checkout_flow" in (tmp_path / "serve.log").read_text()  # the ignored write is logged


def _healthy(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(f"{url}/health", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_without_a_keyring_an_enforcing_client_applies_nothing(
    redis_url: str, prefix: str, snapshot: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert flags(redis_url, prefix, "enable", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
    monkeypatch.delenv("TUSK_KEYRING")
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(snapshot, overrides=source)
    try:
        assert "no keyring" in source.status()["rejected"]["dark_mode_v2"]["reason"]
        assert client.evaluate("dark_mode_v2", {"user_id": "u1"}).reason == "DISABLED"  # the enable is not applied
    finally:
        client.close()


# --- the audit stream ------------------------------------------------------------------------------------


def _some_history(redis_url: str, prefix: str, snapshot: Path, keys: dict[str, Path]) -> None:
    for args in (["disable", "dark_mode_v2"], ["enable", "dark_mode_v2"], ["set-rollout", "dark_mode_v2", "30"]):
        assert flags(redis_url, prefix, *args, "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
    assert flags(redis_url, prefix, "disable", "search_v2", "--snapshot", str(snapshot), *as_(keys, "sam")) == 1
    assert flags(redis_url, prefix, "clear", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0
    assert flags(redis_url, prefix, "disable", "dark_mode_v2", "--snapshot", str(snapshot), *as_(keys, "dora")) == 0


def _verify(redis_url: str, prefix: str, snapshot: Path, capsys: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = flags(redis_url, prefix, "audit", "--verify", "--snapshot", str(snapshot), "--format", "json", *extra)
    return code, _json(capsys)


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_first", "delete_last", "resign", "insert"])
def test_tampering_with_the_audit_stream_is_detected(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], capsys: Any, tamper: str
) -> None:
    from tusklang.overrides.store import CHAINED, entry_hash

    _some_history(redis_url, prefix, snapshot, keys)
    code, result = _verify(redis_url, prefix, snapshot, capsys)
    assert code == 0 and result["ok"] and result["entries"] == 6 and result["refused"] == 1, result
    entries = store.client.xrange(store.audit_key)
    ids = [e[0] for e in entries]
    fields = [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
    if tamper == "edit":  # hide who did it
        store.client.delete(store.audit_key)
        for i, f in enumerate(fields):
            store.client.xadd(store.audit_key, {**f, "actor": "someone-else"} if i == 1 else f)
    elif tamper == "delete_middle":  # hide the refusal
        store.client.xdel(store.audit_key, ids[3])
    elif tamper == "delete_first":
        store.client.xdel(store.audit_key, ids[0])
    elif tamper == "delete_last":  # and put the counter back, as if the last write never happened
        store.client.xdel(store.audit_key, ids[-1])
        store.client.set(store.version_key, "5")
    elif tamper == "resign":  # edit an entry and recompute every hash after it (no key: no signatures)
        store.client.delete(store.audit_key)
        prev = ""
        for i, f in enumerate(fields):
            f = {**f, "prev": prev}
            if i == 2:
                f["reason"] = "nothing to see"
            f["hash"] = entry_hash(prev, {n: f.get(n, "") for n in CHAINED})
            prev = f["hash"]
            store.client.xadd(store.audit_key, f)
    elif tamper == "insert":  # a fake unsigned write entry at the end, chained properly
        fake = {n: "" for n in CHAINED} | {"version": "7", "flag": "search_v2", "op": "disable", "actor": "sam"}
        fake |= {"outcome": "applied", "prev": fields[-1]["hash"]}
        fake["hash"] = entry_hash(fake["prev"], {n: fake.get(n, "") for n in CHAINED})
        store.client.xadd(store.audit_key, fake)
        store.client.set(store.version_key, "7")
    code, result = _verify(redis_url, prefix, snapshot, capsys)
    assert code == 1 and not result["ok"], result
    assert flags(redis_url, prefix, "audit", "--verify", "--snapshot", str(snapshot)) == 1


def test_a_checkpoint_catches_a_consistent_rewrite_of_the_whole_stream(
    redis_url: str,
    prefix: str,
    store: OverrideStore,
    snapshot: Path,
    keys: dict[str, Path],
    capsys: Any,
    tmp_path: Path,
) -> None:
    checkpoint = str(tmp_path / "audit.checkpoint")
    _some_history(redis_url, prefix, snapshot, keys)
    assert _verify(redis_url, prefix, snapshot, capsys, "--checkpoint", checkpoint)[0] == 0
    assert json.loads(Path(checkpoint).read_text())["version"] == 6
    # An attacker empties everything: an empty stream is consistent on its own, not with the checkpoint.
    store.client.delete(store.audit_key, store.hash_key, store.version_key)
    assert _verify(redis_url, prefix, snapshot, capsys)[0] == 0
    code, result = _verify(redis_url, prefix, snapshot, capsys, "--checkpoint", checkpoint)
    assert code == 1 and "checkpoint" in json.dumps(result["problems"])


# --- approvals -------------------------------------------------------------------------------------------


def test_a_production_change_needs_two_approvals_by_others_than_the_proposer(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], capsys: Any
) -> None:
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(snapshot, overrides=source)
    try:
        capsys.readouterr()
        assert flags(redis_url, prefix, "propose", "disable", "new_checkout_flow", "--snapshot", str(snapshot),
                     *as_(keys, "tess"), "--reason", "INC-1", "--format", "json") == 0  # fmt: skip
        proposal = _json(capsys)["id"]

        def approve(who: str) -> tuple[int, Any]:
            capsys.readouterr()
            code = flags(redis_url, prefix, "approve", proposal, "--snapshot", str(snapshot), *as_(keys, who),
                         "--format", "json")  # fmt: skip
            return code, _json(capsys)

        code, out = approve("tess")  # the proposer
        assert code == 1 and "own change" in out["diagnostics"][0]["message"]
        code, out = approve("sam")  # not an approver role
        assert code == 1 and "may not approve" in out["diagnostics"][0]["message"]
        code, out = approve("tom")
        assert code == 0 and out["applied"] is False
        code, out = approve("tom")  # twice by the same identity counts once
        assert code == 1 and "already approved" in out["diagnostics"][0]["message"]
        assert store.get("new_checkout_flow") is None
        assert client.evaluate("new_checkout_flow", UNIT).value is True
        code, out = approve("pam")  # the second distinct approver: applied, signed by pam
        assert code == 0 and out["applied"] is True
        _wait_for(lambda: client.evaluate("new_checkout_flow", UNIT).reason == "DISABLED", 1.0, "approved change")
        record = store.get("new_checkout_flow")
        assert record["updated_by"] == "pam" and record["approval"]["proposal"]["proposer"] == "tess"
        assert {a["identity"] for a in record["approval"]["approvals"]} == {"tom", "pam"}
        code, out = approve("rita")
        assert code == 1 and "applied" in out["diagnostics"][0]["message"]
        # Refused approvals are audited too.
        refused = [(e.actor, e.op) for e in store.audit("new_checkout_flow") if e.outcome == "refused"]
        assert refused == [("tess", "approve"), ("sam", "approve"), ("tom", "approve"), ("rita", "approve")]
        assert flags(redis_url, prefix, "audit", "--verify", "--snapshot", str(snapshot)) == 0
        # A forged approval (a record claiming two approvals, signed only by the writer) is ignored.
        forged = dict(record)
        forged["approval"] = {**record["approval"], "approvals": record["approval"]["approvals"][:1]}
        from tusklang.overrides.access import Policy
        from tusklang.overrides.keys import Keyring

        policy = Policy.of(client.snapshot)
        keyring = Keyring.load(keys["rita"].parent / "keyring.json")
        assert policy.verify_record(keyring, "new_checkout_flow", record) is None
        assert "bad signature" in (policy.verify_record(keyring, "new_checkout_flow", forged) or "")
    finally:
        client.close()


def test_proposals_expire(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], capsys: Any
) -> None:
    data = json.loads(snapshot.read_text())
    data["runtime"]["access"]["approval"]["expires_seconds"] = 1
    snapshot.write_text(json.dumps(data))
    capsys.readouterr()
    assert flags(redis_url, prefix, "propose", "set-rollout", "new_checkout_flow", "50", "--snapshot", str(snapshot),
                 *as_(keys, "rita"), "--format", "json") == 0  # fmt: skip
    proposal = _json(capsys)["id"]
    assert flags(redis_url, prefix, "approve", proposal, "--snapshot", str(snapshot), *as_(keys, "tom")) == 0
    time.sleep(1.1)
    capsys.readouterr()
    assert flags(redis_url, prefix, "approve", proposal, "--snapshot", str(snapshot), *as_(keys, "pam"),
                 "--format", "json") == 1  # fmt: skip
    assert "expired" in _json(capsys)["diagnostics"][0]["message"]
    assert store.get("new_checkout_flow") is None
    assert flags(redis_url, prefix, "proposals", "--all", "--format", "json") == 0
    assert [p["status"] for p in _json(capsys)["proposals"]] == ["expired"]


def test_the_controller_role_writes_without_approval(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], monkeypatch: Any
) -> None:
    """`tusk rollout` writes through write_override, which signs with $TUSK_TOKEN: a role with
    skip_approval (the controller's policy is reviewed as code) moves a production flag, and clients apply it."""
    from tusklang.overrides.writer import write_override

    monkeypatch.setenv("TUSK_TOKEN", keys["bot"].read_text().strip())
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(snapshot, overrides=source)
    try:
        result = write_override(store, "new_checkout_flow", {"rollout": {"rollout": 0}}, actor="tusk-rollout:co",
                                reason="rollback", op="rollout-rollback")  # fmt: skip
        assert result.new["updated_by"] == "bot" and result.new["agent"] == "tusk-rollout:co"
        _wait_for(lambda: client.evaluate("new_checkout_flow", UNIT).value is False, 1.0, "controller write")
        assert source.status()["rejected"] == {}
    finally:
        client.close()


def test_tusk_rollout_with_a_controller_token_moves_a_production_flag_under_access_control(
    tmp_path: Path,
    fixtures_dir: Path,
    redis_url: str,
    prefix: str,
    store: OverrideStore,
    snapshot: Path,
    keys: dict[str, Path],
    monkeypatch: Any,
) -> None:
    """The delivery controller signs with $TUSK_TOKEN: with a skip_approval role its decisions apply;
    without a token, or with a role that needs approval, `tusk rollout start` refuses before it records or
    writes anything (clients would ignore every write it made)."""
    config = fixtures_dir / "delivery" / "seed_policy.tsk"
    source = RedisOverrides(redis_url, prefix=prefix, poll_interval=600)
    client = Client.from_file(snapshot, overrides=source)
    users = [{**UNIT, "user_id": f"user-{i}"} for i in range(2000)]

    def share() -> float:
        return sum(client.evaluate("new_checkout_flow", u).variant == "on" for u in users) / len(users)

    try:
        compiled = share()
        assert 0.2 < compiled < 0.3  # the seed's 25%
        start = ["rollout", "start", "checkout", "--config", str(config), "--flag", "new_checkout_flow"]
        common = ["--snapshot", str(snapshot), "--prefix", prefix, "--redis", redis_url]
        unsigned = [*common[:-2], "--rollout-db", f"sqlite:///{tmp_path / 'a.db'}", *common[-2:]]
        assert main([*start, *unsigned]) == 1  # no token: TSK710, nothing written
        monkeypatch.setenv("TUSK_TOKEN", keys["rita"].read_text().strip())
        assert main([*start, *unsigned]) == 1  # release_manager needs approval on a production flag: TSK711
        assert store.get("new_checkout_flow") is None
        assert share() == compiled
        monkeypatch.setenv("TUSK_TOKEN", keys["bot"].read_text().strip())
        signed = [*common[:-2], "--rollout-db", f"sqlite:///{tmp_path / 'b.db'}", *common[-2:]]
        assert main(["rollout", "start", "checkout2", *start[3:], *signed]) == 0
        _wait_for(lambda: abs(share() - 0.10) < 0.03, 2.0, "the signed start's 10%")
        assert source.status()["rejected"] == {}
        assert store.get("new_checkout_flow")["updated_by"] == "bot"
    finally:
        client.close()


def test_a_proposal_edited_in_redis_cannot_be_approved(
    redis_url: str, prefix: str, store: OverrideStore, snapshot: Path, keys: dict[str, Path], capsys: Any
) -> None:
    capsys.readouterr()
    args = ["propose", "set-rollout", "new_checkout_flow", "10", "--snapshot", str(snapshot), "--format", "json"]
    assert flags(redis_url, prefix, *args, *as_(keys, "rita")) == 0
    proposal = _json(capsys)
    key = f"{prefix}overrides:proposals"
    stored = json.loads(store.client.hget(key, proposal["id"]))
    stored["patch"] = {"rollout": {"rollout": 100}}  # an attacker with Redis access widens the change
    store.client.hset(key, proposal["id"], json.dumps(stored))
    approve = ["approve", proposal["id"], "--snapshot", str(snapshot), "--format", "json"]
    assert flags(redis_url, prefix, *approve, *as_(keys, "tom")) == 1
    assert "signature does not hold" in _json(capsys)["diagnostics"][0]["message"]
    assert store.get("new_checkout_flow") is None
