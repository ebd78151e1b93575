"""`tusk flags audit --verify`: is the audit stream the one the writers wrote?

Every entry carries ``prev`` (the previous entry's hash) and ``hash`` (SHA-256 over ``prev`` and its own
fields), and versions run 1, 2, 3, ... with no gap (every write and every refusal takes the next one).
A signed entry's ``sig`` is its writer's HMAC of its hash. The checks, each naming the entry:

- the chain: each ``prev`` is its predecessor's ``hash`` (the first's is empty), each ``hash``
  recomputes, versions are consecutive from 1, and the last is the version counter: an edited,
  inserted or deleted entry (first, middle or last) breaks one of these;
- signatures (with a keyring): each ``sig`` is its key's; under enforced access control an applied
  write must be signed: an attacker who rewrites the chain from an edited entry on can recompute the
  hashes but not the signatures;
- the records: each stored record is, byte for byte, the ``new`` of its flag's latest applied entry;
- a checkpoint (``--checkpoint FILE``): the version and hash the last good verification saw must
  still be in the chain, so even a consistent rewrite of the whole stream is caught after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import safejson
from .access import Policy
from .keys import Keyring
from .store import CHAINED, OverrideStore, _text, audit_bytes, entry_hash, raw_fields


@dataclass
class Verification:
    entries: int = 0
    version: int | None = None
    head: str = ""
    signed: int = 0
    refused: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    signatures_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, entry_id: str | None, version: int | None, message: str) -> None:
        self.problems.append({"id": entry_id, "version": version, "problem": message})

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "version": self.version,
            "head": self.head,
            "signed": self.signed,
            "refused": self.refused,
            "signatures_checked": self.signatures_checked,
            "problems": self.problems,
        }


def verify(
    store: OverrideStore, keyring: Keyring | None, policy: Policy, checkpoint: str | None = None
) -> Verification:
    """Check the audit stream, the counter and the records (docs/overrides.md, "Audit")."""
    out = Verification(signatures_checked=keyring is not None)
    with store.client.pipeline(transaction=True) as pipe:
        pipe.xrange(store.audit_key)
        pipe.get(store.version_key)
        pipe.hgetall(store.hash_key)
        stream, counter, records = pipe.execute()
    anchor = _read_checkpoint(checkpoint)
    anchor_seen = anchor is None
    prev, expected_version = "", 1
    latest: dict[str, tuple[int, str]] = {}
    for entry_id, raw in stream or []:
        fields = raw_fields(raw)
        eid = _text(entry_id)
        version = int(fields["version"]) if fields.get("version", "").isdigit() else None
        out.entries += 1
        if not fields.get("hash"):
            out.problem(eid, version, "entry without a hash (not written by a chaining writer, or edited)")
        else:
            if fields.get("prev", "") != prev:
                out.problem(
                    eid,
                    version,
                    "its prev is not the previous entry's hash (an entry before it was deleted, edited or inserted)",
                )
            if entry_hash(fields.get("prev", ""), {n: fields.get(n, "") for n in CHAINED}) != fields["hash"]:
                out.problem(eid, version, "its hash does not match its fields (the entry was edited)")
        if version != expected_version:
            out.problem(
                eid, version, f"version {version}, expected {expected_version} (an entry is missing or out of place)"
            )
        if anchor is not None and version == anchor[0]:
            anchor_seen = True
            if fields.get("hash") != anchor[1]:
                out.problem(eid, version, "differs from the checkpoint: the stream was rewritten since it was verified")
        _check_signature(out, keyring, policy, eid, version, fields)
        if fields.get("outcome") == "refused":
            out.refused += 1
        elif fields.get("flag") is not None and version is not None:
            latest[fields["flag"]] = (version, fields.get("new", ""))
        prev = fields.get("hash", "")
        expected_version = (version or expected_version) + 1
    out.head = prev
    out.version = expected_version - 1 if out.entries else 0
    if not anchor_seen and anchor is not None:
        out.problem(None, anchor[0], "the checkpoint's entry is gone: entries were deleted since it was verified")
    counter_text = _text(counter) if counter is not None else "0"
    if counter_text != str(out.version):
        out.problem(
            None,
            None,
            f"the version counter is {counter_text}, the last entry's version {out.version} "
            "(entries deleted at the end?)",
        )
    for key, value in sorted((records or {}).items(), key=lambda kv: _text(kv[0])):
        flag, text = _text(key), _text(value)
        entry = latest.get(flag)
        if entry is None or entry[1] != text:
            out.problem(
                None,
                None,
                f"the stored record of `{flag}` is not the one its last audited write stored "
                "(written into Redis directly)",
            )
    for flag, (version, text) in latest.items():
        if text and flag not in {_text(k) for k in records or {}}:
            out.problem(
                None, version, f"`{flag}` has no record, though its last audited write stored one (deleted directly)"
            )
    return out


def _check_signature(
    out: Verification, keyring: Keyring | None, policy: Policy, eid: str, version: int | None, fields: dict[str, str]
) -> None:
    kid = fields.get("kid", "")
    if not kid:
        if policy.enforced and fields.get("outcome", "applied") == "applied":
            out.problem(eid, version, "an applied write without a signature under access control")
        return
    out.signed += 1
    if keyring is None:
        return
    key = keyring.get(kid)
    if key is None:
        out.problem(eid, version, f"signed by an unknown key {kid}")
    elif not key.verify(fields.get("sig", ""), audit_bytes(fields.get("hash", ""))):
        out.problem(eid, version, f"its signature by {key.identity} ({kid}) does not hold (the entry was edited)")
    elif fields.get("actor") != key.identity:
        out.problem(eid, version, f"signed by {key.identity} but attributed to {fields.get('actor')!r}")


def _read_checkpoint(path: str | None) -> tuple[int, str] | None:
    if path is None or not Path(path).exists():
        return None
    data = safejson.loads(Path(path).read_bytes())
    if not isinstance(data, dict) or type(data.get("version")) is not int or not isinstance(data.get("hash"), str):
        raise ValueError(f'{path}: not a checkpoint ({{"version": N, "hash": ...}})')
    if data["version"] == 0:
        return None
    return data["version"], data["hash"]
