"""Override records in Redis: atomic, versioned writes with an audit trail and a change message.

Keys, all under the storage ``key_prefix`` P (default ``feature_flags:``):

| key | type | holds |
|---|---|---|
| ``P overrides`` | hash | flag key -> override record JSON (carrying its ``version``) |
| ``P overrides:version`` | string | the last version handed out (one counter for all flags) |
| ``P overrides:audit`` | stream | one entry per write: version, flag, op, actor, at, reason, old, new |
| ``P overrides:changes`` | pub/sub channel | ``{"flag": ..., "version": ...}`` after every write |

A write is one Lua script: compare the flag's stored record with the one the writer read, and only if
it is unchanged bump the counter, store the new record with that version, append the audit entry and
publish. A writer that lost the race re-reads and retries, so concurrent writers serialise: the record
always carries the version of the write that produced it, versions only grow, and every audit entry's
``old`` is the previous entry's ``new``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import safejson

# KEYS: hash, version counter, audit stream.
# ARGV: 1 flag, 2 expected stored record ('' = none), 3 new record ('' = delete), 4 version (counter + 1),
#       5 expected chain head (the last entry's hash, '' = none), 6 mode ('write' or 'refuse': audit only),
#       7 channel, 8 change message, 9.. the audit entry's fields (name, value, ...) but `old`.
# The writer builds (and signs) the record and the entry, so the script only checks that nothing moved
# since it read them: the record, the counter and the chain head. Anything moved: {0, record, counter,
# head} and the writer rebuilds on those.
_WRITE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then current = '' end
local counter = redis.call('GET', KEYS[2])
if not counter then counter = '0' end
local head = ''
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if last[1] then
  local f = last[1][2]
  for i = 1, #f, 2 do if f[i] == 'hash' then head = f[i + 1] end end
end
if current ~= ARGV[2] or counter ~= tostring(tonumber(ARGV[4]) - 1) or head ~= ARGV[5] then
  return {0, current, counter, head}
end
redis.call('SET', KEYS[2], ARGV[4])
if ARGV[6] == 'write' then
  if ARGV[3] == '' then
    redis.call('HDEL', KEYS[1], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  end
end
local fields = {'old', current}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[3], '*', unpack(fields))
if ARGV[6] == 'write' then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
return {tonumber(ARGV[4]), current, counter, head}
"""

# The chain head as the script reads it, for a writer's first attempt (one round trip with the rest).
_HEAD = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] then
  local f = last[1][2]
  for i = 1, #f, 2 do if f[i] == 'hash' then return f[i + 1] end end
end
return ''
"""

_MAX_ATTEMPTS = 1000


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class Signs(Protocol):
    """What signs a write (``keys.Signer``): its key id and an HMAC of bytes."""

    @property
    def kid(self) -> str: ...

    def sign(self, data: bytes) -> str: ...


def record_bytes(flag: str, record: Mapping[str, Any]) -> bytes:
    """What a record's ``signature`` signs: the flag and every field of the record but the signature
    (version included, so a signed record cannot be replayed under another version unnoticed)."""
    body = {k: v for k, v in record.items() if k != "signature"}
    return f"tusk-override:1\n{flag}\n".encode() + _dumps(body).encode("utf-8")


def audit_bytes(entry_hash: str) -> bytes:
    """What an audit entry's ``sig`` signs: its hash, which covers its predecessor's."""
    return f"tusk-audit:1\n{entry_hash}".encode()


# The audit entry fields the chain hash covers, in this order (`old` and `new` as stored, as text).
CHAINED = ("version", "flag", "op", "actor", "at", "reason", "old", "new", "kid", "outcome")


def entry_hash(prev: str, fields: Mapping[str, str]) -> str:
    """An audit entry's hash: SHA-256 over the previous entry's hash and this entry's fields."""
    body = _dumps([fields.get(name, "") for name in CHAINED])
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def _text(value: Any) -> str:
    # Anything can be stored in Redis by hand: shown with replacement characters rather than failing.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RecordError(ValueError):
    """A stored override record that is not a JSON object (the message says why, never echoing it)."""


def decode_record(raw: Any) -> dict[str, Any] | None:
    """A stored record as a dict (None for no record); ``RecordError`` when it is not a JSON object,
    whatever the bytes: not UTF-8, not JSON, nested too deep, numbers beyond the digit limit."""
    if raw is None or raw == b"" or raw == "":
        return None
    try:
        value = safejson.loads(raw if isinstance(raw, bytes | str) else str(raw))
    except safejson.JSONInputError as exc:
        raise RecordError(str(exc)) from None
    if not isinstance(value, dict):
        raise RecordError("not a JSON object")
    return value


def _record(raw: Any) -> dict[str, Any] | None:
    """``decode_record`` for the CLI's own reads: a corrupt record reads as none, so a write replaces it
    (the compare-and-set still compares the stored text) and ``show``/``history`` still work."""
    try:
        return decode_record(raw)
    except RecordError:
        return None


def _version(raw: Any) -> int | None:
    """The version counter, None when it holds something that is not a non-negative integer."""
    if raw is None:
        return 0
    try:
        text = _text(raw).strip()
    except UnicodeDecodeError:
        return None
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


def connect(url: str, *, timeout: float = 2.0, client_name: str | None = None) -> redis.Redis:
    """A client that fails fast: no silent reconnect-and-retry, so callers see outages and resync."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        client_name=client_name,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class OverrideState:
    """Every override record and the version they were read at (one consistent read).

    ``version`` is None when the counter holds garbage. ``malformed`` maps each flag whose stored
    record could not be decoded to the reason (those flags are not in ``records``)."""

    version: int | None
    records: dict[str, dict[str, Any]]
    malformed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    flag: str
    version: int
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    attempts: int


@dataclass(frozen=True)
class AuditEntry:
    id: str
    version: int
    flag: str
    op: str
    actor: str
    at: str
    reason: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    # "applied" or "refused" (a write access control turned down: nothing changed); the key that signed
    # it ("" = unsigned); the hash chain (``prev``: the previous entry's ``hash``) and its signature.
    outcome: str = "applied"
    kid: str = ""
    prev: str = ""
    hash: str = ""
    sig: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "flag": self.flag,
            "op": self.op,
            "actor": self.actor,
            "at": self.at,
            "reason": self.reason,
            "old": self.old,
            "new": self.new,
            "outcome": self.outcome,
            "kid": self.kid,
            "prev": self.prev,
            "hash": self.hash,
            "sig": self.sig,
        }


def audit_entry(entry_id: Any, fields: Mapping[Any, Any] | None) -> AuditEntry:
    """An audit stream entry as read (``raw_fields`` keeps the text the chain hash covers)."""
    data = {_text(k): _text(v) for k, v in (fields or {}).items()}
    return AuditEntry(
        _text(entry_id),
        _version(data.get("version")) or 0,
        data.get("flag", ""),
        data.get("op", ""),
        data.get("actor", ""),
        data.get("at", ""),
        data.get("reason", ""),
        _record(data.get("old")),
        _record(data.get("new")),
        data.get("outcome") or "applied",
        data.get("kid", ""),
        data.get("prev", ""),
        data.get("hash", ""),
        data.get("sig", ""),
    )


def raw_fields(fields: Mapping[Any, Any] | None) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (fields or {}).items()}


class OverrideStore:
    """Reads and writes the override records under one key prefix."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.hash_key = f"{prefix}overrides"
        self.version_key = f"{prefix}overrides:version"
        self.audit_key = f"{prefix}overrides:audit"
        self.channel = f"{prefix}overrides:changes"
        self._write = client.register_script(_WRITE)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout: float = 2.0) -> OverrideStore:
        return cls(connect(url, timeout=timeout), prefix)

    def close(self) -> None:
        self.client.close()

    # --- reading -------------------------------------------------------------------------------

    def read(self) -> OverrideState:
        """All records and the counter in one MULTI, so the version matches the records."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.hash_key)
            pipe.get(self.version_key)
            raw, version = pipe.execute()
        records: dict[str, dict[str, Any]] = {}
        malformed: dict[str, str] = {}
        for key, value in raw.items():
            flag = _text(key) if not isinstance(key, bytes) else key.decode("utf-8", "replace")
            try:
                record = decode_record(value)
            except RecordError as exc:
                malformed[flag] = str(exc)
                continue
            if record is not None:
                records[flag] = record
        return OverrideState(_version(version), dict(sorted(records.items())), dict(sorted(malformed.items())))

    def version(self) -> int | None:
        """The version counter (None when it is not an integer)."""
        return _version(self.client.get(self.version_key))

    def get(self, flag: str) -> dict[str, Any] | None:
        return _record(self.client.hget(self.hash_key, flag))

    def exists(self, flag: str) -> bool:
        """Whether the flag has a stored record, decodable or not (so ``clear`` removes a corrupt one)."""
        return bool(self.client.hexists(self.hash_key, flag))

    def audit(self, flag: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Audit entries, oldest first (the last ``limit`` of them when given)."""
        entries: list[AuditEntry] = []
        for entry_id, fields in self.client.xrange(self.audit_key) or []:
            entry = audit_entry(entry_id, fields)
            if flag is None or entry.flag == flag:
                entries.append(entry)
        return entries[-limit:] if limit else entries

    # --- writing -------------------------------------------------------------------------------

    def write(
        self,
        flag: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any] | None],
        *,
        op: str,
        actor: str,
        reason: str = "",
        signer: Signs | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Set the flag's record to ``change(current record)`` (None deletes it), atomically.

        ``change`` gets the record as stored and returns the new content (without bookkeeping fields);
        it is called again if another writer got in first. ``signer`` signs the record and its audit
        entry; ``extra`` fields (an approval) go into the record as they are, under the signature.
        """
        raw, counter, head = self._heads(flag)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            content = change(_record(raw))
            version = self._next(counter)
            at = now_iso()
            text = ""
            if content is not None:
                body: dict[str, Any] = {
                    **content,
                    **(extra or {}),
                    "version": version,
                    "updated_at": at,
                    "updated_by": actor,
                    "reason": reason,
                }
                if signer is not None:
                    body["signature"] = {"kid": signer.kid, "sig": signer.sign(record_bytes(flag, body))}
                text = _dumps(body)
            done, raw, counter, head = self._append(
                flag, raw, text, version, head, "write", op=op, actor=actor, at=at, reason=reason, signer=signer
            )
            if done:
                return WriteResult(flag, version, _record(raw), _record(text), attempt)
            # Another writer won; a tiny pause keeps two hot writers from lock-stepping forever.
            time.sleep(0.0005 * min(attempt, 20))
        raise redis.WatchError(f"override of {flag!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")

    def refuse(
        self,
        flag: str,
        attempted: Mapping[str, Any] | None,
        *,
        op: str,
        actor: str,
        reason: str,
        signer: Signs | None = None,
    ) -> int:
        """Record a refused write in the audit stream (nothing else changes); returns its version.
        ``attempted``: the content the writer asked for (None: a clear)."""
        raw, counter, head = self._heads(flag)
        text = _dumps(dict(attempted)) if attempted is not None else ""
        for _ in range(_MAX_ATTEMPTS):
            version = self._next(counter)
            done, raw, counter, head = self._append(
                flag, raw, text, version, head, "refuse", op=op, actor=actor, at=now_iso(), reason=reason, signer=signer
            )
            if done:
                return version
        raise redis.WatchError(f"refusal of {flag!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")

    def _heads(self, flag: str) -> tuple[Any, Any, str]:
        """The flag's stored bytes, the counter and the chain head, in one round trip."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(self.hash_key, flag)
            pipe.get(self.version_key)
            pipe.eval(_HEAD, 1, self.audit_key)
            raw, counter, head = pipe.execute()
        return (raw if raw is not None else ""), (counter if counter is not None else "0"), _text(head or "")

    @staticmethod
    def _next(counter: Any) -> int:
        current = _version(counter)
        if current is None:
            raise redis.ResponseError("the override version counter is not an integer: fix or delete it")
        return current + 1

    def _append(
        self,
        flag: str,
        raw: Any,
        text: str,
        version: int,
        head: str,
        mode: str,
        *,
        op: str,
        actor: str,
        at: str,
        reason: str,
        signer: Signs | None,
    ) -> tuple[bool, Any, Any, str]:
        fields = {
            "version": str(version),
            "flag": flag,
            "op": op,
            "actor": actor,
            "at": at,
            "reason": reason,
            "old": _text(raw),
            "new": text,
            "kid": signer.kid if signer is not None else "",
            "outcome": "applied" if mode == "write" else "refused",
        }
        digest = entry_hash(head, fields)
        chained = {**fields, "prev": head, "hash": digest, "sig": signer.sign(audit_bytes(digest)) if signer else ""}
        del chained["old"]  # the script stores the record it compared, byte for byte
        message = '{"flag":' + json.dumps(flag) + ',"version":' + str(version) + "}"
        argv: list[Any] = [flag, raw, text, version, head, mode, self.channel, message]
        for name, value in chained.items():
            argv += [name, value]
        result = self._write(keys=[self.hash_key, self.version_key, self.audit_key], args=argv)
        ok = bool(int(result[0]))
        return ok, result[1], result[2], _text(result[3])

    @staticmethod
    def get_written(tail: str, version: int) -> dict[str, Any] | None:
        return _record(f'{{"version":{version}{tail}') if tail else None
