"""The one way a program writes an override: ``write_override(store, flag, patch, actor=, reason=)``.

Every controller write goes through here (the delivery controller's decisions; docs/delivery.md), so
one function is where a write is attributed (actor, reason, op), checked, and compared-and-set; signing
and access control on writes belong here too. The record format, the Lua script and the audit stream
are ``store.py``'s and unchanged: a write through here is an ordinary versioned, audited write, which
``tusk flags history`` lists and every watcher applies.

Compare-and-set on the flag's record version (``expect_version``): the write happens only if the
flag's stored record still carries that version (0 = no record). The store's script compares the
stored bytes with the ones read, so nothing can slip in between the check and the write; a writer that
finds another version gets :class:`VersionConflict` and has written nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis

from ..evaluate.overlay import check_record
from .access import Policy
from .keys import KeyEntry, Keyring, Signer, keyring_path, signer_from_environment
from .overlay import merge
from .store import AuditEntry, OverrideStore, WriteResult, _record, audit_entry

__all__ = [
    "ANY_VERSION",
    "FROM_ENVIRONMENT",
    "AccessRefused",
    "Identity",
    "VersionConflict",
    "current_version",
    "find_write",
    "identity_from_environment",
    "record_version",
    "write_override",
]


class _Any:
    def __repr__(self) -> str:
        return "ANY_VERSION"


ANY_VERSION: Final = _Any()

# How far back `find_write` reads the audit stream without a lower bound (entries, newest first).
_SCAN_LIMIT = 100_000
_PAGE = 500


class AccessRefused(Exception):
    """Access control turned the write down; the refusal is in the audit stream at ``version``."""

    def __init__(self, flag: str, code: str, reason: str, version: int) -> None:
        super().__init__(f"write of {flag!r} refused: {reason}")
        self.flag, self.code, self.reason, self.version = flag, code, reason, version


@dataclass(frozen=True)
class Identity:
    """A writer's key (from its token) and its keyring entry: who signs, with which roles."""

    signer: Signer
    entry: KeyEntry


class _FromEnvironment:
    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT: Final = _FromEnvironment()


def identity_from_environment(token_file: str | None = None, keyring: str | None = None) -> Identity | None:
    """The writer's identity from ``--token-file``/``$TUSK_TOKEN``/``$TUSK_TOKEN_FILE`` checked against
    ``--keyring``/``$TUSK_KEYRING``; None without a token. ``keys.KeyError_`` when the token is malformed,
    there is no keyring, or the token's key is not an active key of it."""
    from .keys import KeyError_

    signer = signer_from_environment(token_file)
    if signer is None:
        return None
    path = keyring_path(keyring)
    if path is None:
        raise KeyError_("a token is set but no keyring to check it against (--keyring or $TUSK_KEYRING)")
    return Identity(signer, Keyring.load(path).check(signer))


class VersionConflict(Exception):
    """The flag's record is not at the expected version: nothing was written."""

    def __init__(self, flag: str, expected: int | None, found: int | None) -> None:
        super().__init__(f"override of {flag!r} is at version {found}, not {expected}: not written")
        self.flag, self.expected, self.found = flag, expected, found


def record_version(record: Mapping[str, Any] | None) -> int:
    """A record's version; 0 for no record (a record without one reads as 0 too)."""
    version = (record or {}).get("version")
    return version if type(version) is int else 0


def current_version(store: OverrideStore, flag: str) -> int | None:
    """The version of ``flag``'s stored record: 0 when there is none, None when it is malformed (a
    compare-and-set on None then replaces exactly that malformed record)."""
    raw = store.client.hget(store.hash_key, flag)
    return _found_version(store, flag, _record(raw) if raw is not None else None, raw is not None)


def _found_version(store: OverrideStore, flag: str, record: dict[str, Any] | None, exists: bool | None) -> int | None:
    if record is not None:
        return record_version(record)
    if exists is None:
        exists = store.exists(flag)
    return None if exists else 0


def write_override(
    store: OverrideStore,
    flag: str,
    patch: Mapping[str, Any] | None,
    *,
    actor: str,
    reason: str,
    op: str,
    expect_version: int | _Any | None = ANY_VERSION,
    check: Callable[[dict[str, Any]], None] | None = None,
    on_malformed: Callable[[str], None] | None = None,
    identity: Identity | _FromEnvironment | None = FROM_ENVIRONMENT,
    policy: Policy | None = None,
    extra: Mapping[str, Any] | None = None,
) -> WriteResult:
    """Merge ``patch`` into ``flag``'s record (``None`` deletes the record), attributed to ``actor`` with
    ``reason``, recorded in the audit stream as ``op``.

    ``patch`` holds record fields (``enabled``, ``rollout``, ``weights``); per-rule maps merge into the
    stored ones, so a controller setting one rule's rollout keeps an operator's ``enabled = false``.
    A stored record that is malformed is replaced whole (``on_malformed`` is told why). ``check``
    gets the merged content and may raise to refuse it. Raises :class:`VersionConflict` when
    ``expect_version`` is given (an int, or None for a malformed record: ``current_version``) and the
    record is at another version, and ``redis.RedisError`` when
    Redis fails.

    ``identity`` signs the record and its audit entry (default: the token in the environment, if any;
    docs/overrides.md, "Access control"); a signed write is attributed to the key's identity (``actor``
    is kept in the record as ``agent``). With an enforced ``policy`` the write is refused, audited and
    :class:`AccessRefused` raised when the identity may not make it; ``extra`` (an approval) goes into
    the signed record.
    """
    if isinstance(identity, _FromEnvironment):
        identity = identity_from_environment()
    if identity is not None and identity.entry.identity != actor:
        extra = {**(extra or {}), "agent": actor}
        actor = identity.entry.identity
    signer = identity.signer if identity is not None else None
    if policy is not None and policy.enforced:
        refusal = policy.authorise(identity.entry if identity else None, flag, approved="approval" in (extra or {}))
        if refusal is not None:
            code, why = refusal
            attempted = None if patch is None else merge(None, patch)
            version = store.refuse(
                flag, attempted, op=op, actor=actor, reason=f"{reason} [refused: {why}]", signer=signer
            )
            raise AccessRefused(flag, code, why, version)

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(expect_version, _Any):
            found = _found_version(store, flag, current, None)
            if found != expect_version:
                raise VersionConflict(flag, expect_version, found)
        if patch is None:
            return None
        if current is not None and (problem := check_record(current)) is not None:
            if on_malformed is not None:
                on_malformed(problem)
            current = None
        elif current is None and on_malformed is not None and store.exists(flag):
            on_malformed("the stored record is not a JSON object")  # undecodable: it reads as none
        content = merge(current, patch)
        if check is not None:
            check(content)
        return content

    return store.write(flag, change, op=op, actor=actor, reason=reason, signer=signer, extra=extra)


def find_write(store: OverrideStore, flag: str, reason: str, after_version: int | None = None) -> AuditEntry | None:
    """The newest audit entry of ``flag`` carrying exactly ``reason``, looking back only as far as
    ``after_version`` (entries are in version order); None when there is none.

    How a writer that may have died after its write learns whether the write happened: the reason
    it writes is unique to the change (the controller tags it with its decision), so finding it in the
    audit stream means the write was applied, whatever was written to the flag since.
    """
    last = "+"
    seen = 0
    while seen < _SCAN_LIMIT:
        page = store.client.xrevrange(store.audit_key, max=last, min="-", count=_PAGE)
        if not page:
            return None
        for entry_id, fields in page:
            entry = audit_entry(entry_id, fields)
            if after_version is not None and entry.version <= after_version:
                return None
            if entry.flag == flag and entry.reason == reason and entry.outcome == "applied":
                return entry
        seen += len(page)
        last = "(" + audit_entry(page[-1][0], {}).id  # exclusive: continue below the oldest entry of this page
    raise redis.ResponseError(f"audit stream longer than {_SCAN_LIMIT} entries since the decision; trim it")
