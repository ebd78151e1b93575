"""The reference evaluator: a snapshot in, flag values with reasons out. Never raises on bad input."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..diagnostics import Diagnostic, TuskError
from ..snapshot import Snapshot, load_snapshot
from . import reasons as r
from .compile import CompiledFlag, Gate, compile_snapshot, dependency_order
from .conditions import kind, to_epoch, value_type
from .overlay import overlay
from .result import EvaluationResult, raised
from .sources import OverrideSource, Records, as_source

log = logging.getLogger("tusklang.evaluate")

Now = datetime | str | float | int | None
_TYPES = ("boolean", "string", "number", "object")


class Tracker(Protocol):
    """What a ``Client`` reports to when built with ``tracker=`` (see ``tusklang.events``).

    Both calls must return quickly and never raise: the tracker queues, it does not write.
    """

    def evaluation(self, context: Mapping[str, Any], result: EvaluationResult) -> None: ...

    def conversion(self, event: str, context: Mapping[str, Any], value: float | None) -> None: ...


class TimedTracker(Tracker, Protocol):
    """A tracker that also records the time the caller gave (``now=``, as epoch seconds ``at``).

    It says so with ``accepts_time = True``; only then, and only when the caller passed ``now``, does the
    Client call it with ``at``. A plain ``Tracker`` never sees the keyword.
    """

    accepts_time: bool

    def evaluation(self, context: Mapping[str, Any], result: EvaluationResult, at: float | None = None) -> None: ...

    def conversion(
        self, event: str, context: Mapping[str, Any], value: float | None, at: float | None = None
    ) -> None: ...


@dataclass(frozen=True)
class _State:
    """Everything one snapshot compiles to; swapped as a whole so readers never see a mix."""

    snapshot: Snapshot
    flags: dict[str, CompiledFlag]
    experiments: dict[str, CompiledFlag]
    # key -> evaluation function, flags shadowing experiments (keys are distinct anyway): the hot path.
    functions: dict[str, Any]
    # Keys whose evaluation may read the time (here or in a prerequisite): only for them is `now` converted.
    timed: frozenset[str]
    # ``functions`` less the timed keys: the hot path when the caller passes `now` (one lookup, as without).
    untimed: dict[str, Any]
    # (key, function) for evaluate_all: flags first, then experiments, as results are returned.
    all_functions: tuple[tuple[str, Any], ...]
    # (key, function, body, gates, timed) in dependency order (every prerequisite before the flags that
    # need it), for evaluate_all with prerequisites: each is evaluated once per call.
    order: tuple[tuple[str, Any, Any, tuple[Gate, ...], bool], ...]
    # Whether any flag has a prerequisite (else evaluate_all runs `all_functions` straight).
    gated: bool


def _compile(snapshot: Snapshot, *, fused: bool = True) -> _State:
    try:
        flags, experiments = compile_snapshot(snapshot, fused=fused)
    except TuskError:
        raise
    except Exception as exc:
        # load_snapshot accepted it, so this is a compiler bug; still the caller's input, never a traceback.
        log.exception("compiling the snapshot failed")
        raise TuskError(
            [Diagnostic("snapshot-invalid", f"snapshot could not be compiled: {type(exc).__name__}: {exc}"[:300])]
        ) from exc
    every = {**experiments, **flags}
    functions = {k: c.evaluate for k, c in every.items()}
    ordered = [(k, c.evaluate) for k, c in flags.items()] + [(k, c.evaluate) for k, c in experiments.items()]
    order = tuple(
        (k, every[k].evaluate, every[k].body, every[k].gates, every[k].uses_time) for k in dependency_order(snapshot)
    )
    timed = frozenset(k for k, c in every.items() if c.uses_time)
    untimed = {k: fn for k, fn in functions.items() if k not in timed}
    gated = any(c.gates for c in every.values())
    return _State(snapshot, flags, experiments, functions, timed, untimed, tuple(ordered), order, gated)


def _error(key: Any, code: str, detail: str) -> EvaluationResult:
    return EvaluationResult(str(key), None, None, r.ERROR, None, code, detail)


def epoch(now: Now) -> float | None:
    """``now`` as epoch seconds: aware/naive (UTC) datetime, ISO-8601 string or epoch number (finite)."""
    if now is None:
        return None
    try:
        if isinstance(now, datetime):
            instant = to_epoch(now)
        elif isinstance(now, bool):
            raise ValueError("now must be a datetime, an ISO-8601 string or epoch seconds")
        elif isinstance(now, int | float):
            instant = float(now)
        elif isinstance(now, str):
            instant = to_epoch(datetime.fromisoformat(now))
        else:
            raise ValueError("now must be a datetime, an ISO-8601 string or epoch seconds")
    except OverflowError:
        raise ValueError("now is out of range") from None
    if not math.isfinite(instant):
        raise ValueError("now must be finite")
    return instant


class Client:
    """Evaluate flags and experiments of one snapshot (hot-swappable with ``reload``)."""

    def __init__(
        self,
        snapshot: str | bytes | dict[str, Any] | Snapshot,
        *,
        path: str | None = None,
        tracker: Tracker | None = None,
        overrides: OverrideSource | Records | None = None,
    ) -> None:
        """``overrides``: an override source (``tusklang.overrides.RedisOverrides(url)``, anything with
        ``start``/``status``/``close``, see ``sources.py``) or a mapping of override records, layered on
        top of the snapshot (docs/overrides.md)."""
        self._base = load_snapshot(snapshot)
        self._override_records: Mapping[str, Any] = {}
        # Override records the snapshot refused (flag -> reason), from the last apply_overrides.
        self._override_rejected: dict[str, str] = {}
        self._state = _compile(self._base)
        self._loaded_at = _now_iso()
        self._reloads = 0
        # The last snapshot file refused since the last good load ({"reason", "at"}), shown by /health.
        self._rejected: dict[str, str] | None = None
        self._tracker = tracker
        if tracker is not None:
            # An instance attribute shadows the method, so an untracked client pays nothing for tracking.
            self.evaluate = self._evaluate_tracked  # type: ignore[method-assign]
        self._path = path
        self._file_sig: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._overrides: OverrideSource | None = None
        if overrides is not None:
            source = as_source(overrides)
            source.start(self.apply_overrides, self._base)
            self._overrides = source

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        watch: bool = False,
        interval: float = 1.0,
        *,
        overrides: OverrideSource | Records | None = None,
        tracker: Tracker | None = None,
    ) -> Client:
        """Load a snapshot file; with ``watch`` a daemon thread reloads it when it changes."""
        p = Path(path)
        signature = _signature(p)
        client = cls(p.read_bytes(), path=str(p), overrides=overrides, tracker=tracker)
        client._file_sig = signature
        if watch:
            client.watch(interval)
        return client

    def reload(self, source: str | bytes | dict[str, Any] | None = None) -> bool:
        """Atomically replace the snapshot (from ``source`` or the file this client was loaded from).

        An unreadable, corrupt or invalid new snapshot is rejected with a logged diagnostic and the
        last good snapshot keeps serving; ``snapshot_status()`` shows the rejection until a good one
        loads. Returns True when the new snapshot is live. Never raises.
        """
        with self._lock:
            try:
                if source is None:
                    if self._path is None:
                        raise ValueError("reload() without a source needs a client made by from_file")
                    self._file_sig = _signature(Path(self._path))
                    source = Path(self._path).read_bytes()
                base = load_snapshot(source)
                snapshot, rejected = self._overlaid(base, self._override_records)
                state = _compile(snapshot)
            except TuskError as exc:
                more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
                self._reject(f"{exc.first.message}{more}")
                log.error("snapshot rejected, keeping the last good one:\n%s", exc.render())
                return False
            except (OSError, ValueError) as exc:
                self._reject(f"{type(exc).__name__}: {exc}")
                log.error("snapshot rejected, keeping the last good one: %s", exc)
                return False
            except Exception as exc:  # whatever the file holds, the last good snapshot keeps serving
                self._reject(f"{type(exc).__name__}: {exc}")
                log.exception("snapshot rejected, keeping the last good one")
                return False
            self._base = base
            self._override_rejected = rejected
            self._swap(state)
            self._loaded_at = _now_iso()
            self._reloads += 1
            self._rejected = None
            return True

    def _reject(self, reason: str) -> None:
        self._rejected = {"reason": reason if len(reason) <= 500 else reason[:500] + "...", "at": _now_iso()}

    def snapshot_status(self) -> dict[str, Any]:
        """The live snapshot's bookkeeping for health checks: ``status`` ("ok", or "degraded" while the
        newest file is refused), ``loaded_at`` and ``reloads`` of the live one, ``rejected``
        (``{"reason", "at"}`` of the refused file, or None)."""
        rejected = self._rejected
        return {
            "status": "ok" if rejected is None else "degraded",
            "loaded_at": self._loaded_at,
            "reloads": self._reloads,
            "rejected": dict(rejected) if rejected is not None else None,
        }

    def _overlaid(self, base: Snapshot, records: Mapping[str, Any]) -> tuple[Snapshot, dict[str, str]]:
        """``base`` with the override records on top, and the records it refused (flag -> reason)."""
        if not records:
            return base, {}
        return overlay(base, records, known=self._override_rejected)

    def apply_overrides(self, records: Mapping[str, Any]) -> bool:
        """Atomically serve the snapshot with ``records`` layered on top (replacing earlier overrides).

        Called by the overrides watcher. A record that does not fit the snapshot affects only its own
        flag: it is skipped with a log line naming the flag (see ``override_rejections``) and every
        other flag's override still applies.
        """
        with self._lock:
            try:
                snapshot, rejected = self._overlaid(self._base, records)
                state = _compile(snapshot)
            except Exception:  # the last good state keeps serving whatever the watcher delivers
                log.exception("overrides rejected, keeping the last good state")
                return False
            self._override_records = dict(records)
            self._override_rejected = rejected
            self._swap(state)
            return True

    def override_rejections(self) -> dict[str, str]:
        """Flags whose override record the live snapshot refused (flag -> reason)."""
        return dict(self._override_rejected)

    @property
    def overrides(self) -> OverrideSource | None:
        """The override source (``status()`` for health), or None."""
        return self._overrides

    def watch(self, interval: float = 1.0) -> None:
        if self._path is None or self._watcher is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    if self._path is not None and _signature(Path(self._path)) != self._file_sig:
                        self.reload()
                except Exception:  # never end the thread: a dead watcher would serve a stale snapshot forever
                    log.exception("snapshot watcher: unexpected error; still watching")

        self._watcher = threading.Thread(target=loop, name="tusk-snapshot-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        if self._overrides is not None:
            self._overrides.close()

    @property
    def snapshot(self) -> Snapshot:
        return self._state.snapshot

    # --- evaluation ----------------------------------------------------------------------------

    def evaluate(self, flag: str, context: Mapping[str, Any] | None = None, now: Now = None) -> EvaluationResult:
        """Evaluate a flag (or, when no flag has that key, an experiment). Never raises.

        ``now`` is converted only when the flag (or one of its prerequisites) reads the time: a time
        window, a duration or a rollout schedule. Other flags cost the same with or without it.
        """
        if type(context) is dict:
            # Hot path: a plain dict context, and a flag that does not need `now` converted.
            state = self._state
            try:
                fn = (state.functions if now is None else state.untimed).get(flag)
                if fn is not None:
                    return fn(context, None)
            except Exception:
                pass  # unhashable key or an evaluator bug: the checked path below reports it
        state = self._state
        try:
            compiled = state.flags.get(flag) or state.experiments.get(flag)
        except TypeError:
            compiled = None
        if compiled is None:
            return _error(flag, r.FLAG_NOT_FOUND, f"no flag or experiment `{flag}` in the snapshot")
        return self._run(compiled, context, now)

    def _evaluate_tracked(
        self, flag: str, context: Mapping[str, Any] | None = None, now: Now = None
    ) -> EvaluationResult:
        if now is None and type(context) is dict:
            # The hot path of evaluate(), repeated: one call less per tracked evaluation.
            fn = self._state.functions.get(flag) if type(flag) is str else None
            if fn is not None:
                try:
                    result = fn(context, None)
                except Exception:
                    result = Client.evaluate(self, flag, context, now)
                self._tracker.evaluation(context, result)  # type: ignore[union-attr]
                return result
        result = Client.evaluate(self, flag, context, now)
        if self._tracker is not None and isinstance(context, Mapping):
            self._report(context, (result,), now)
        return result

    def _tracker_time(self, now: Now) -> float | None:
        """``now`` in epoch seconds for a tracker that records the caller's time (``accepts_time``)."""
        if now is None or not getattr(self._tracker, "accepts_time", False):
            return None
        try:
            return epoch(now)
        except ValueError:
            return None  # the result already carries the error; the row gets the wall clock

    def _report(self, context: Mapping[str, Any], results: Iterable[EvaluationResult], now: Now) -> None:
        tracker = self._tracker
        at = self._tracker_time(now)  # once for every result of the call
        for result in results:
            if at is None:
                tracker.evaluation(context, result)  # type: ignore[union-attr]
            else:
                tracker.evaluation(context, result, at=at)  # type: ignore[union-attr, call-arg]

    def track(
        self, event: str, context: Mapping[str, Any] | None = None, value: float | None = None, now: Now = None
    ) -> None:
        """Record a conversion event for the unit in ``context`` (no-op without a tracker). Never raises.

        ``now`` (a backfill or a simulation) reaches trackers that take a time (``accepts_time``).
        """
        tracker = self._tracker
        if tracker is None or not isinstance(context, Mapping):
            return
        at = self._tracker_time(now)
        if at is None:
            tracker.conversion(event, context, value)
        else:
            tracker.conversion(event, context, value, at=at)  # type: ignore[call-arg]

    def _swap(self, state: _State) -> None:
        self._state = state
        # A tracker that maps flags to their bucketing attribute must see the snapshot now served.
        use_snapshot = getattr(self._tracker, "use_snapshot", None)
        if use_snapshot is not None:
            use_snapshot(state.snapshot)

    def evaluate_experiment(
        self, name: str, context: Mapping[str, Any] | None = None, now: Now = None
    ) -> EvaluationResult:
        result = self._evaluate_experiment(name, context, now)
        if self._tracker is not None and isinstance(context, Mapping):
            self._report(context, (result,), now)
        return result

    def _evaluate_experiment(self, name: str, context: Mapping[str, Any] | None, now: Now) -> EvaluationResult:
        try:
            compiled = self._state.experiments.get(name)
        except TypeError:
            compiled = None
        if compiled is None:
            return _error(name, r.FLAG_NOT_FOUND, f"no experiment `{name}` in the snapshot")
        return self._run(compiled, context, now)

    def _run(self, compiled: CompiledFlag, context: Any, now: Now) -> EvaluationResult:
        if context is None:
            context = {}
        elif not isinstance(context, Mapping):
            return _error(compiled.key, r.INVALID_CONTEXT, f"context must be an object, not {kind(context)}")
        instant = None
        if now is not None and compiled.uses_time:  # converted only when something reads the time
            try:
                instant = epoch(now)
            except ValueError as exc:
                return _error(compiled.key, r.GENERAL, f"invalid `now`: {exc}")
        try:
            return compiled.evaluate(context, instant)
        except Exception as exc:  # a bug, or a context it cannot hash: never take the application down
            return raised(compiled.key, exc)

    def evaluate_all(self, context: Mapping[str, Any] | None = None, now: Now = None) -> dict[str, EvaluationResult]:
        """Every flag, then every experiment, for one context; each result equals ``evaluate(key, ...)``.

        ``now`` is converted once, and only if some flag reads the time; a prerequisite is evaluated once
        per call however many flags require it. Never raises.
        """
        state = self._state
        out: dict[str, EvaluationResult] | None = None
        if context is None:
            context = {}
        if not isinstance(context, Mapping):
            detail = f"context must be an object, not {kind(context)}"
            out = {key: _error(key, r.INVALID_CONTEXT, detail) for key, _ in state.all_functions}
        else:
            instant: float | None = None
            bad_now: str | None = None
            if now is not None and state.timed:
                try:
                    instant = epoch(now)
                except ValueError as exc:
                    bad_now = f"invalid `now`: {exc}"
            if not state.gated and bad_now is None:
                try:  # the hot path: no prerequisites, a usable time
                    out = {key: fn(context, instant) for key, fn in state.all_functions}
                except Exception:
                    out = None  # an evaluator bug: the loop below reports it for its flag only
            if out is None:
                out = self._evaluate_in_order(state, context, instant, bad_now)
        if self._tracker is not None and isinstance(context, Mapping):
            self._report(context, out.values(), now)
        return out

    @staticmethod
    def _evaluate_in_order(
        state: _State, context: Mapping[str, Any], instant: float | None, bad_now: str | None
    ) -> dict[str, EvaluationResult]:
        """Every key in dependency order; a flag's prerequisites are read from the results already made."""
        done: dict[str, EvaluationResult] = {}
        for key, fn, body, gates, timed in state.order:
            if bad_now is not None and timed:
                done[key] = _error(key, r.GENERAL, bad_now)
                continue
            try:
                if gates:
                    for gate in gates:
                        served = done[gate.key]
                        if served.variant not in gate.allowed:
                            done[key] = gate.failed(served)
                            break
                    else:
                        done[key] = body(context, instant)
                else:
                    done[key] = fn(context, instant)
            except Exception as exc:  # this flag reports it, the others are evaluated
                done[key] = raised(key, exc)
        # Results in the documented order: flags, then experiments.
        return {key: done[key] for key, _ in state.all_functions}

    def is_enabled(self, flag: str, context: Mapping[str, Any] | None = None, now: Now = None) -> bool:
        """Boolean flags: the served value is True. Other types: a rule served the unit."""
        res = self.evaluate(flag, context, now)
        if isinstance(res.value, bool):
            return res.value
        return res.reason in (r.TARGETING_MATCH, r.SPLIT)

    def variant(self, flag: str, context: Mapping[str, Any] | None = None, now: Now = None) -> str | None:
        return self.evaluate(flag, context, now).variant

    def value(self, flag: str, context: Mapping[str, Any] | None = None, default: Any = None, now: Now = None) -> Any:
        """The served value, or ``default`` on an error or when the value's type differs from it."""
        if default is None:
            res = self.evaluate(flag, context, now)
            return None if res.error_code is not None else res.value
        return self.evaluate_typed(flag, value_type(default), context, default, now).value

    def evaluate_typed(
        self,
        flag: str,
        expected: str,
        context: Mapping[str, Any] | None = None,
        default: Any = None,
        now: Now = None,
    ) -> EvaluationResult:
        """``evaluate`` for a caller that needs a value of one type (OpenFeature's typed getters).

        ``expected`` is "boolean", "string", "number" or "object" ("list" is an object too). A served
        value of another type gives ``default`` with reason ERROR and error code TYPE_MISMATCH; any
        other error gives ``default`` with that error's code. Never raises.
        """
        res = self.evaluate(flag, context, now)
        if res.error_code is not None:
            return replace(res, value=default)
        got = value_type(res.value)
        want = "object" if expected == "list" else expected
        if want not in _TYPES:
            return EvaluationResult(res.flag, default, None, r.ERROR, None, r.GENERAL, f"unknown type `{expected}`")
        if got != want:
            detail = f"`{res.flag}` serves a {got} ({res.variant}), the caller asked for a {want}"
            return EvaluationResult(res.flag, default, None, r.ERROR, res.rule, r.TYPE_MISMATCH, detail)
        return res


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file: mtime, size and inode (a rename-into-place within one mtime tick still
    changes the inode), or None when it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
