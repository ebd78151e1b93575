"""Keys and the keyring (`tusk keys`): what a token proves, rotation and revocation as a reader sees
them, and that secrets stay out of everything but the one-time token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tusklang.cli import main
from tusklang.overrides import keys
from tusklang.overrides.access import Policy
from tusklang.overrides.store import record_bytes
from tusklang.snapshot.models import AccessSettings


def _signed(signer: keys.Signer, identity: str, at: str, flag: str = "f") -> dict[str, object]:
    record: dict[str, object] = {"version": 1, "enabled": False, "updated_at": at, "updated_by": identity}
    record["signature"] = {"kid": signer.kid, "sig": signer.sign(record_bytes(flag, record))}
    return record


POLICY = Policy(
    AccessSettings.model_validate(
        {"role_based_access": True, "roles": {"ops": {"flags": ["*"], "environments": ["*"]}}}
    )
)


def test_rotation_keeps_what_the_old_key_signed_and_revocation_drops_everything() -> None:
    ring, old = keys.create(keys.Keyring(), "alice", ["ops"])
    before = _signed(old, "alice", "2000-01-01T00:00:00.000Z")
    assert POLICY.verify_record(ring, "f", before) is None
    ring, new, retired = keys.rotate(ring, "alice")
    assert retired == [old.kid] and ring.check(new).identity == "alice"
    with pytest.raises(keys.KeyError_, match="retired"):
        ring.check(old)  # the old token can no longer write ...
    assert POLICY.verify_record(ring, "f", before) is None  # ... but its earlier record still applies
    after = _signed(old, "alice", "2999-01-01T00:00:00.000Z")  # signed with the retired key "later"
    assert "retired" in (POLICY.verify_record(ring, "f", after) or "")
    ring, revoked = keys.revoke(ring, "alice")
    assert set(revoked) == {old.kid, new.kid}
    assert "revoked" in (POLICY.verify_record(ring, "f", _signed(new, "alice", "2999-01-01T00:00:00.000Z")) or "")


def test_a_signature_binds_flag_fields_and_identity() -> None:
    ring, signer = keys.create(keys.Keyring(), "alice", ["ops"])
    record = _signed(signer, "alice", "2026-01-01T00:00:00.000Z")
    assert POLICY.verify_record(ring, "f", record) is None
    assert "bad signature" in (POLICY.verify_record(ring, "g", record) or "")  # moved to another flag
    assert "bad signature" in (POLICY.verify_record(ring, "f", {**record, "version": 7}) or "")
    other_ring, other = keys.create(ring, "bob", ["ops"])
    claimed = _signed(other, "alice", "2026-01-01T00:00:00.000Z")  # bob signs, names alice
    assert "attributed" in (POLICY.verify_record(other_ring, "f", claimed) or "")
    stranger = keys.create(keys.Keyring(), "eve", ["ops"])[1]
    assert "unknown key" in (
        POLICY.verify_record(ring, "f", _signed(stranger, "eve", "2026-01-01T00:00:00.000Z")) or ""
    )


def test_tokens_round_trip_and_never_show_their_secret() -> None:
    ring, signer = keys.create(keys.Keyring(), "alice", ["ops"])
    token = signer.token()
    assert keys.Signer.from_token(token) == signer
    assert token.split(":")[3] not in repr(signer) and "secret" not in repr(ring.get(signer.kid))
    with pytest.raises(keys.KeyError_) as bad:
        keys.Signer.from_token(token[:-10])
    assert token[20:] not in str(bad.value)
    with pytest.raises(keys.KeyError_, match="already has an active key"):
        keys.create(ring, "alice", ["ops"])


def test_the_cli_makes_a_0600_keyring_and_prints_the_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUSK_KEYRING", raising=False)
    ring = tmp_path / "keyring.json"
    assert main(["keys", "create", "alice", "--role", "ops", "--keyring", str(ring), "--format", "json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["token"].startswith("tusk-token:1:" + made["kid"]) and "secret" not in made
    assert oct(ring.stat().st_mode & 0o777) == "0o600"
    assert main(["keys", "create", "alice", "--role", "ops", "--keyring", str(ring), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["diagnostics"][0]["code"] == "TSK714"
    assert main(["keys", "list", "--keyring", str(ring)]) == 0
    listed = capsys.readouterr().out
    assert "alice" in listed and made["token"].split(":")[3] not in listed
    assert main(["keys", "revoke", "nobody", "--keyring", str(ring)]) == 1
    assert main(["keys", "list"]) == 2  # no keyring given
