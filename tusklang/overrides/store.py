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

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import safejson

# KEYS: hash, version counter, audit stream.
# ARGV: flag, expected stored record ('' = none), new record tail ('' = delete), op, actor, at, reason,
#       channel, flag as a JSON string.
_WRITE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then current = '' end
if current ~= ARGV[2] then return {0, current} end
local version = redis.call('INCR', KEYS[2])
local new = ''
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  new = '{"version":' .. version .. ARGV[3]
  redis.call('HSET', KEYS[1], ARGV[1], new)
end
redis.call('XADD', KEYS[3], '*', 'version', version, 'flag', ARGV[1], 'op', ARGV[4], 'actor', ARGV[5],
  'at', ARGV[6], 'reason', ARGV[7], 'old', current, 'new', new)
redis.call('PUBLISH', ARGV[8], '{"flag":' .. ARGV[9] .. ',"version":' .. version .. '}')
return {version, current}
"""

_MAX_ATTEMPTS = 1000


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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
        }


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
            data = {_text(k): _text(v) for k, v in (fields or {}).items()}
            if flag is not None and data.get("flag") != flag:
                continue
            entries.append(
                AuditEntry(
                    _text(entry_id),
                    _version(data.get("version")) or 0,
                    data.get("flag", ""),
                    data.get("op", ""),
                    data.get("actor", ""),
                    data.get("at", ""),
                    data.get("reason", ""),
                    _record(data.get("old")),
                    _record(data.get("new")),
                )
            )
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
    ) -> WriteResult:
        """Set the flag's record to ``change(current record)`` (None deletes it), atomically.

        ``change`` gets the record as stored and returns the new content (without bookkeeping fields);
        it is called again if another writer got in first.
        """
        # The stored bytes as they are: the script compares them exactly, even when they are not UTF-8.
        raw = self.client.hget(self.hash_key, flag)
        current: bytes | str = raw if raw is not None else ""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            content = change(_record(current))
            at = now_iso()
            if content is None:
                tail = ""
            else:
                body = _dumps({**content, "updated_at": at, "updated_by": actor, "reason": reason})
                tail = "," + body[1:] if body != "{}" else "}"
            result = self._write(
                keys=[self.hash_key, self.version_key, self.audit_key],
                args=[flag, current, tail, op, actor, at, reason, self.channel, json.dumps(flag)],
            )
            version, seen = int(result[0]), result[1]
            if version:
                return WriteResult(flag, version, _record(current), self.get_written(tail, version), attempt)
            current = seen
            # Another writer won; a tiny pause keeps two hot writers from lock-stepping forever.
            time.sleep(0.0005 * min(attempt, 20))
        raise redis.WatchError(f"override of {flag!r}: gave up after {_MAX_ATTEMPTS} conflicting writes")

    @staticmethod
    def get_written(tail: str, version: int) -> dict[str, Any] | None:
        return _record(f'{{"version":{version}{tail}') if tail else None
