"""Identities of override writers: HMAC keys, the keyring, and tokens (``tusk keys``; docs/overrides.md).

- The **keyring** (a JSON file, ``tusklang.keyring/1``, mode 0600) holds per key: its id, the identity
  it belongs to, that identity's roles (names of `security_config.access_control.roles`), the HMAC-SHA256
  secret, and its status (``active``, ``retired`` by a rotation, ``revoked``). Writers (`tusk flags`,
  `tusk rollout`) and verifiers (`RedisOverrides`, `tusk serve --keyring`) read it from ``--keyring``
  or ``$TUSK_KEYRING``. It is secret: whoever reads it can sign as anyone in it. Redis never holds it,
  so an attacker with Redis access alone can neither forge a signature nor add a key.
- A **token** holds one key: ``tusk-token:1:<kid>:<base64url secret>``. It is printed once when the
  key is made (or written to a new 0600 file); its holder gives it to ``tusk flags`` as ``$TUSK_TOKEN``
  or ``--token-file``. A token is accepted only when it matches its keyring entry and that is active.

Why HMAC (stdlib, no dependency) and what it costs: every verifier holds the secrets, so a leaked
serving host's keyring lets its thief sign as any writer. A signature scheme would keep only public
keys on serving hosts; docs/overrides.md ("Threat model") says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import safejson
from .store import now_iso

FORMAT = "tusklang.keyring/1"
TOKEN_PREFIX = "tusk-token:1:"
TOKEN_ENV = "TUSK_TOKEN"
TOKEN_FILE_ENV = "TUSK_TOKEN_FILE"
KEYRING_ENV = "TUSK_KEYRING"
STATUSES = ("active", "retired", "revoked")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_KID = re.compile(r"^k-[0-9a-f]{16}$")


class KeyError_(ValueError):
    """A keyring or token problem; the message never holds key material."""


def valid_name(name: str) -> bool:
    """Identity and role names: 1-64 of letters, digits and ``._@+-``, starting with a letter or digit."""
    return bool(_NAME.match(name))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(secret: bytes, data: bytes) -> str:
    """HMAC-SHA256 of ``data``, base64url."""
    return _b64(hmac.new(secret, data, hashlib.sha256).digest())


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    identity: str
    roles: tuple[str, ...]
    secret: bytes = field(repr=False)
    created_at: str
    status: str = "active"
    retired_at: str | None = None
    revoked_at: str | None = None

    def to_dict(self, *, with_secret: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kid": self.kid,
            "identity": self.identity,
            "roles": list(self.roles),
            "created_at": self.created_at,
            "status": self.status,
            "retired_at": self.retired_at,
            "revoked_at": self.revoked_at,
        }
        if with_secret:
            out["secret"] = _b64(self.secret)
        return out

    def verify(self, signature: str, data: bytes) -> bool:
        """Whether ``signature`` is this key's HMAC of ``data`` (constant-time comparison)."""
        return hmac.compare_digest(mac(self.secret, data), signature)

    def valid_at(self, at: str) -> bool:
        """Whether a signature dated ``at`` (ISO 8601 UTC, as written) counts: active keys always,
        retired keys for what they signed before their rotation, revoked keys never."""
        if self.status == "active":
            return True
        return self.status == "retired" and self.retired_at is not None and at <= self.retired_at


def _entry(data: Any, where: str) -> KeyEntry:
    if not isinstance(data, Mapping):
        raise KeyError_(f"{where}: not an object")
    try:
        entry = KeyEntry(
            kid=str(data["kid"]),
            identity=str(data["identity"]),
            roles=tuple(str(r) for r in data.get("roles") or ()),
            secret=_unb64(str(data["secret"])),
            created_at=str(data.get("created_at") or ""),
            status=str(data.get("status") or "active"),
            retired_at=data.get("retired_at"),
            revoked_at=data.get("revoked_at"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyError_(f"{where}: missing or malformed field ({type(exc).__name__})") from None
    if len(entry.secret) < 32:
        raise KeyError_(f"{where}: the secret is shorter than 32 bytes")
    if not _KID.match(entry.kid):
        raise KeyError_(f"{where}: kid must be k- and 16 hex digits")
    if entry.status not in STATUSES:
        raise KeyError_(f"{where}: status must be one of {', '.join(STATUSES)}, not {entry.status!r}")
    if not valid_name(entry.identity) or not all(valid_name(r) for r in entry.roles):
        raise KeyError_(f"{where}: identity and role names are 1-64 of letters, digits and ._@+-")
    return entry


@dataclass(frozen=True)
class Keyring:
    """Every writer's key, by key id (a value: edits return a new keyring)."""

    keys: dict[str, KeyEntry] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | bytes) -> Keyring:
        try:
            data = safejson.loads(text)
        except safejson.JSONInputError as exc:
            raise KeyError_(f"keyring: {exc}") from None
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise KeyError_(f"keyring: not a {FORMAT} document")
        raw = data.get("keys")
        if not isinstance(raw, list):
            raise KeyError_("keyring: `keys` must be a list")
        keys: dict[str, KeyEntry] = {}
        for index, item in enumerate(raw):
            entry = _entry(item, f"keyring key #{index + 1}")
            if entry.kid in keys:
                raise KeyError_(f"keyring: key {entry.kid} is listed twice")
            keys[entry.kid] = entry
        return cls(keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> Keyring:
        try:
            return cls.from_json(Path(path).read_bytes())
        except FileNotFoundError:
            if missing_ok:
                return cls()
            raise KeyError_(f"{path}: no keyring there (create one with `tusk keys create`)") from None
        except OSError as exc:
            raise KeyError_(f"{path}: cannot read the keyring ({exc.strerror or type(exc).__name__})") from None

    def to_json(self) -> str:
        body = {"format": FORMAT, "keys": [e.to_dict() for e in sorted(self.keys.values(), key=_order)]}
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Replace the keyring file (readable by its owner only: it holds the secrets)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json())
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise KeyError_(f"{path}: cannot write the keyring ({exc.strerror or type(exc).__name__})") from None

    def get(self, kid: str) -> KeyEntry | None:
        return self.keys.get(kid)

    def of(self, identity: str) -> list[KeyEntry]:
        return sorted((e for e in self.keys.values() if e.identity == identity), key=_order)

    def with_entry(self, entry: KeyEntry) -> Keyring:
        return Keyring({**self.keys, entry.kid: entry})

    def check(self, signer: Signer) -> KeyEntry:
        """The active keyring entry a token's key belongs to; ``KeyError_`` when none (unknown,
        revoked, retired, or a secret that does not match)."""
        entry = self.keys.get(signer.kid)
        if entry is None or not hmac.compare_digest(entry.secret, signer.secret):
            raise KeyError_(f"the token's key {signer.kid} is not in the keyring (or its secret differs)")
        if entry.status != "active":
            raise KeyError_(f"the token's key {signer.kid} is {entry.status}")
        return entry


def _order(entry: KeyEntry) -> tuple[str, str, str]:
    return (entry.identity, entry.created_at, entry.kid)


@dataclass(frozen=True)
class Signer:
    """A key's secret with its id: what a token holds."""

    kid: str
    secret: bytes = field(repr=False)

    def sign(self, data: bytes) -> str:
        return mac(self.secret, data)

    def token(self) -> str:
        return f"{TOKEN_PREFIX}{self.kid}:{_b64(self.secret)}"

    def __repr__(self) -> str:  # never the secret, whatever prints a signer
        return f"Signer(kid={self.kid!r})"

    @classmethod
    def from_token(cls, token: str) -> Signer:
        """A signer from a token; ``KeyError_`` (never echoing the token) when it is malformed."""
        text = token.strip()
        if not text.startswith(TOKEN_PREFIX):
            raise KeyError_("the token is not a tusk token (it must start with tusk-token:1:)")
        kid, _, secret_text = text[len(TOKEN_PREFIX) :].partition(":")
        try:
            secret = _unb64(secret_text)
        except ValueError:
            secret = b""
        if not _KID.match(kid) or len(secret) < 32:
            raise KeyError_("the token is malformed (a key id and a 32-byte secret are expected)")
        return cls(kid, secret)


def _new_key(identity: str, roles: tuple[str, ...], at: str) -> tuple[KeyEntry, Signer]:
    signer = Signer("k-" + secrets.token_hex(8), secrets.token_bytes(32))
    return KeyEntry(signer.kid, identity, roles, signer.secret, at), signer


def create(keyring: Keyring, identity: str, roles: Iterable[str]) -> tuple[Keyring, Signer]:
    """A new active key for ``identity`` with ``roles``; refused while the identity has an active key
    (a second live key is a rotation: ``rotate``)."""
    roles = tuple(dict.fromkeys(roles))
    _check_names(identity, roles)
    if any(e.status == "active" for e in keyring.of(identity)):
        raise KeyError_(f"identity {identity!r} already has an active key: rotate or revoke it")
    entry, signer = _new_key(identity, roles, now_iso())
    return keyring.with_entry(entry), signer


def rotate(keyring: Keyring, identity: str, roles: Iterable[str] | None = None) -> tuple[Keyring, Signer, list[str]]:
    """A new key for ``identity`` (same roles unless given); its active keys become ``retired``: what
    they signed before stays valid, nothing they sign after now is accepted. Returns the retired ids."""
    current = [e for e in keyring.of(identity) if e.status == "active"]
    if not current and roles is None:
        raise KeyError_(f"identity {identity!r} has no active key to rotate (create one, with --role)")
    new_roles = tuple(dict.fromkeys(roles)) if roles is not None else current[-1].roles
    _check_names(identity, new_roles)
    at = now_iso()
    for entry in current:
        keyring = keyring.with_entry(replace(entry, status="retired", retired_at=at))
    entry, signer = _new_key(identity, new_roles, at)
    return keyring.with_entry(entry), signer, [e.kid for e in current]


def revoke(keyring: Keyring, kid_or_identity: str) -> tuple[Keyring, list[str]]:
    """Revoke a key (by id) or every key of an identity: nothing they ever signed is accepted again."""
    targets = [keyring.keys[kid_or_identity]] if kid_or_identity in keyring.keys else keyring.of(kid_or_identity)
    targets = [e for e in targets if e.status != "revoked"]
    if not targets:
        raise KeyError_(f"no key or identity {kid_or_identity!r} with a key to revoke")
    at = now_iso()
    for entry in targets:
        keyring = keyring.with_entry(replace(entry, status="revoked", revoked_at=at))
    return keyring, [e.kid for e in targets]


def _check_names(identity: str, roles: tuple[str, ...]) -> None:
    if not valid_name(identity):
        raise KeyError_(f"identity {identity!r}: use 1-64 of letters, digits and ._@+-")
    if not roles:
        raise KeyError_("give at least one role (--role NAME), as declared in security_config.access_control.roles")
    for role in roles:
        if not valid_name(role):
            raise KeyError_(f"role {role!r}: use 1-64 of letters, digits and ._@+-")


def keyring_path(given: str | None = None) -> str | None:
    """The keyring file: ``given`` (``--keyring``), else ``$TUSK_KEYRING``; None when neither is set."""
    return given or os.environ.get(KEYRING_ENV) or None


def signer_from_environment(token_file: str | None = None) -> Signer | None:
    """The writer's signer: ``token_file``, else ``$TUSK_TOKEN``, else ``$TUSK_TOKEN_FILE``; None when
    none is set. ``KeyError_`` when the one given is unreadable or malformed."""
    path = token_file or (None if os.environ.get(TOKEN_ENV) else os.environ.get(TOKEN_FILE_ENV))
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyError_(f"{path}: cannot read the token ({type(exc).__name__})") from None
        return Signer.from_token(text)
    token = os.environ.get(TOKEN_ENV)
    return Signer.from_token(token) if token else None


def write_token(path: str | os.PathLike[str], signer: Signer) -> None:
    """Write a token to a new file readable by its owner only (never over an existing file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyError_(f"{path}: cannot create the token file ({exc.strerror or type(exc).__name__})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(signer.token() + "\n")
