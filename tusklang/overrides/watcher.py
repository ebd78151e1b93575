"""Keep a ``Client``'s overrides in step with Redis: pub/sub for speed, polling as the safety net.

The watcher subscribes to the change channel first and reads every record second, so a write landing
between the two is never missed; each change message (or every ``poll_interval`` seconds, whichever
comes first) triggers a consistent re-read. Any Redis error marks the watcher ``degraded``: the client
keeps serving the snapshot with the last overrides it saw, the watcher retries every
``retry_interval`` seconds, and on reconnecting re-reads everything, so nothing written meanwhile is
lost (Redis, not the message stream, is the source of truth). A closed connection is noticed at once;
a silent one (a partition, a stalled server) by the heartbeat, a version read every
``heartbeat_interval`` seconds that must answer within ``timeout`` and that also catches a lost message.

Records are screened one by one: a record that is not JSON, nests too deep or has the wrong shape (a
version that is not an integer, a NaN or out-of-range percentage, weights that are not pairs summing to
100) is refused for its own flag only. That flag keeps its last good override (or the snapshot's
definition if it never had one), the refusal is logged once with the flag and the reason and shown by
``status()["rejected"]``, and every other flag's override applies as usual.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis

from .. import safejson
from ..db.urls import redact_text
from ..evaluate.sources import Apply, OverrideSource, StaticOverrides
from ..snapshot import Snapshot
from .access import Policy
from .keys import KeyError_, Keyring, keyring_path
from .overlay import DEFAULT_PREFIX, DEFAULT_TTL, check_record, storage_settings
from .store import OverrideState, OverrideStore, connect, now_iso

log = logging.getLogger("tusklang.overrides")

# Error messages are logged and served: credentials in any URL inside them are stripped first.
redact = redact_text


class RedisOverrides:
    """Overrides from Redis under ``prefix`` (default: the snapshot's storage ``key_prefix``, else
    ``feature_flags:``), re-read on every change message and at least every ``poll_interval`` seconds
    (default: the snapshot's storage ``ttl``, else 300)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        poll_interval: float | None = None,
        retry_interval: float = 1.0,
        timeout: float = 2.0,
        heartbeat_interval: float = 5.0,
        keyring: Keyring | str | None = None,
    ) -> None:
        if poll_interval is not None and poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if retry_interval <= 0 or heartbeat_interval <= 0 or timeout <= 0:
            raise ValueError("retry_interval, heartbeat_interval and timeout must be positive")
        try:
            redis.connection.parse_url(url)
        except ValueError as exc:
            # A malformed URL will never connect: say so now instead of retrying forever.
            raise ValueError(f"not a Redis URL: {redact(str(exc))}") from None
        self._url = url
        # Access control (docs/overrides.md): the keyring records are checked with when the snapshot
        # enforces it; a path (or $TUSK_KEYRING) is read at start.
        self._keyring_arg = keyring
        self._keyring: Keyring | None = keyring if isinstance(keyring, Keyring) else None
        self._policy = Policy(None)
        self.prefix = prefix
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.heartbeat_interval = heartbeat_interval
        self.timeout = timeout
        self._apply: Apply | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version: int | None = None
        self._flags: list[str] = []
        # The records last handed to ``apply`` (None before the first): a re-read that finds the same
        # ones applies nothing. Also each flag's last good record, kept when its new one is refused.
        self._applied: dict[str, dict[str, Any]] | None = None
        # flag -> {"reason", "at", "serving"} for records refused by the last read.
        self._rejected: dict[str, dict[str, str]] = {}
        # Set when the version counter holds something that is not an integer.
        self._counter_problem: str | None = None
        self._healthy = False
        self._error: str | None = None
        self._last_sync: str | None = None
        self._down_since: float | None = None
        self._syncs = 0
        # Shown by CLIENT LIST, so an operator can tell (and a test can kill) this watcher's connections.
        self.client_name = f"tusk-overrides-{os.getpid()}-{id(self):x}"

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, apply: Apply, snapshot: Snapshot) -> None:
        if self._apply is not None:
            raise RuntimeError("a RedisOverrides instance serves one client; make another")
        prefix, ttl = storage_settings(snapshot)
        self.prefix = self.prefix or prefix or DEFAULT_PREFIX
        self.poll_interval = self.poll_interval or float(ttl or DEFAULT_TTL)
        self._apply = apply
        self._policy = Policy.of(snapshot)
        if self._policy.enforced and self._keyring is None:
            path = self._keyring_arg if isinstance(self._keyring_arg, str) else keyring_path()
            try:
                self._keyring = Keyring.load(path) if path else None
            except KeyError_ as exc:
                log.error("overrides: %s", exc)
            if self._keyring is None:
                log.error(
                    "overrides: access control is on but there is no keyring to check signatures with: "
                    "no override is applied (give --keyring or $TUSK_KEYRING)"
                )
        # A first read now, so a client made while Redis is up starts with its overrides.
        try:
            store = OverrideStore(connect(self._url, timeout=self.timeout), self.prefix)
            try:
                self._sync(store)
            finally:
                store.close()
        except (redis.RedisError, OSError) as exc:
            self._degraded(exc)
        except Exception as exc:  # whatever Redis holds, the client is made and serves its snapshot
            log.exception("overrides: the first read failed; the watcher retries")
            self._degraded(exc, unavailable=False)
        self._thread = threading.Thread(target=self._run, name="tusk-overrides-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- state ---------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        return not self._healthy

    @property
    def version(self) -> int | None:
        return self._version

    def status(self) -> dict[str, Any]:
        """``status`` is "ok" only when Redis answers and every record was applied; "degraded" comes with
        ``error`` (Redis unreachable, or the version counter unreadable) and/or ``rejected`` entries."""
        with self._lock:
            ok = self._healthy and not self._rejected and self._counter_problem is None
            out: dict[str, Any] = {
                "source": "redis",
                "status": "ok" if ok else "degraded",
                "prefix": self.prefix,
                "version": self._version,
                "flags": list(self._flags),
                "rejected": {flag: dict(entry) for flag, entry in self._rejected.items()},
                "last_sync": self._last_sync,
                "poll_interval": self.poll_interval,
                # Consistent reads so far (the first at start, one per reconnect, change or poll).
                "syncs": self._syncs,
                # Whether records must be signed by an authorised writer (runtime.access) to apply.
                "access": "enforced" if self._policy.enforced else "off",
            }
            if not self._healthy:
                out["error"] = self._error
                if self._down_since is not None:
                    out["degraded_for_s"] = round(time.monotonic() - self._down_since, 3)
            elif self._counter_problem is not None:
                out["error"] = self._counter_problem
            return out

    def _degraded(self, exc: BaseException, *, unavailable: bool = True) -> None:
        message = redact(f"{type(exc).__name__}: {exc}").replace(self._url, "<redis>")
        if not unavailable:
            message = f"watcher error (see log): {message}"
        with self._lock:
            was_healthy = self._healthy or self._down_since is None
            self._healthy = False
            self._error = message
            if self._down_since is None:
                self._down_since = time.monotonic()
        if was_healthy and unavailable:
            log.warning("overrides: Redis unavailable, serving the last overrides seen (%s)", message)

    def _sync(self, store: OverrideStore, seen: int | None = None) -> None:
        """Re-read every record and apply them if they changed; skipped when ``seen`` (a version from a
        message or the heartbeat) is the one already read. Any difference counts, not only a newer one:
        a Redis restarted without persistence starts counting again from 0."""
        if seen is not None and seen == self._version:
            return
        state: OverrideState = store.read()
        records, rejected = self._screen(state)
        if records != self._applied:
            assert self._apply is not None
            self._apply(records)
        counter_problem = (
            None if state.version is not None else f"version counter {store.version_key!r} is not an integer"
        )
        if counter_problem is not None and counter_problem != self._counter_problem:
            log.error(
                "overrides: %s; records still apply, but `tusk flags` cannot write until it is fixed", counter_problem
            )
        with self._lock:
            recovered = not self._healthy and self._down_since is not None
            self._applied = records
            self._version = state.version
            self._flags = sorted(records)
            self._rejected = rejected
            self._counter_problem = counter_problem
            self._healthy = True
            self._error = None
            self._down_since = None
            self._last_sync = now_iso()
            self._syncs += 1
        if recovered:
            log.warning("overrides: Redis reachable again, resynced at version %s", state.version)

    def _screen(self, state: OverrideState) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
        """The records to apply and the refused ones: a malformed record is refused for its own flag,
        which keeps its last good record (if any) rather than lose, say, a kill switch to a typo."""
        refused = dict(state.malformed)
        records: dict[str, dict[str, Any]] = {}
        for flag, record in state.records.items():
            problem = check_record(record)
            if problem is None and self._policy.enforced:
                problem = self._authorised(flag, record)
            if problem is None:
                records[flag] = record
            else:
                refused[flag] = problem
        rejected: dict[str, dict[str, str]] = {}
        for flag, reason in sorted(refused.items()):
            last_good = (self._applied or {}).get(flag)
            if last_good is not None:
                records[flag] = last_good
                serving = f"its last good override (version {last_good.get('version')})"
            else:
                serving = "the snapshot's definition"
            before = self._rejected.get(flag)
            if before is not None and before["reason"] == reason:
                rejected[flag] = before  # the same refusal: keep its first time, log it once
                continue
            rejected[flag] = {"reason": reason, "at": now_iso(), "serving": serving}
            log.error(
                "overrides: record of `%s` rejected (%s); `%s` keeps %s, other flags are unaffected",
                flag,
                reason,
                flag,
                serving,
            )
        return dict(sorted(records.items())), rejected

    def _authorised(self, flag: str, record: dict[str, Any]) -> str | None:
        """Why a well-formed record may not be applied under access control (None: it may)."""
        why = self._policy.verify_record(self._keyring, flag, record)
        if why is not None:
            return f"ignored: {why}"
        last_good = (self._applied or {}).get(flag)
        if last_good is not None and _number(record.get("version")) < _number(last_good.get("version")):
            # A signed record cannot be forged, but an older one can be put back: not by this client.
            return f"ignored: version {record.get('version')} is older than the applied {last_good.get('version')}"
        return None

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        assert self.prefix is not None and self.poll_interval is not None
        while not self._stop.is_set():
            store: OverrideStore | None = None
            pubsub: Any = None
            try:
                store = OverrideStore(
                    connect(self._url, timeout=self.timeout, client_name=self.client_name), self.prefix
                )
                pubsub = store.client.pubsub()
                pubsub.subscribe(store.channel)
                self._await_subscription(pubsub)
                self._sync(store)
                next_poll = time.monotonic() + self.poll_interval
                next_beat = time.monotonic() + min(self.heartbeat_interval, self.poll_interval)
                while not self._stop.is_set():
                    wait = max(0.0, min(0.25, next_poll - time.monotonic(), next_beat - time.monotonic()))
                    message = pubsub.get_message(timeout=wait)
                    if message is not None and message.get("type") == "message":
                        self._sync(store, seen=_message_version(message.get("data")))
                    now = time.monotonic()
                    if now >= next_poll:
                        self._sync(store)
                        next_poll = time.monotonic() + self.poll_interval
                    elif now >= next_beat:
                        self._sync(store, seen=store.version())
                    if now >= next_beat:
                        next_beat = time.monotonic() + min(self.heartbeat_interval, self.poll_interval)
            except (redis.RedisError, OSError) as exc:
                self._degraded(exc)
            except Exception as exc:  # nothing may end the thread: the client would silently go stale
                log.exception("overrides watcher: unexpected error; retrying")
                self._degraded(exc, unavailable=False)
            finally:
                for closable in (pubsub, store):
                    try:
                        if closable is not None:
                            closable.close()
                    except Exception:
                        pass
            self._stop.wait(self.retry_interval)

    def _await_subscription(self, pubsub: Any) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message.get("type") == "subscribe":
                return
        raise redis.TimeoutError("no subscription confirmation from Redis")


def _number(value: Any) -> int:
    return value if type(value) is int else 0


def _message_version(data: Any) -> int | None:
    try:
        version = safejson.loads(data)["version"]
    except Exception:
        return None  # unknown message shape (anyone can publish): re-read to be safe
    return version if type(version) is int else None


def attach(
    overrides: OverrideSource | str | Mapping[str, Mapping[str, Any]], apply: Apply, snapshot: Snapshot
) -> OverrideSource:
    """A started source from a Redis URL (all defaults), a mapping of records, or a source.

    For callers that take any of the three (the Client itself takes a source or records only: it
    does not import this package, see docs/architecture.md).
    """
    source: OverrideSource
    if isinstance(overrides, str):
        source = RedisOverrides(overrides)
    elif isinstance(overrides, Mapping):
        source = StaticOverrides(overrides)
    else:
        source = overrides
    source.start(apply, snapshot)
    return source
