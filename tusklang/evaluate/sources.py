"""The override-source protocol: what a ``Client`` accepts as ``overrides=``.

A source is started once with the Client's ``apply`` callback and its snapshot, hands it records (the
format is ``overlay.py``'s) whenever they change, reports ``status()`` for /health, and is closed with
the Client. The Client knows only this protocol; ``tusklang.overrides.RedisOverrides`` implements it
over Redis, ``StaticOverrides`` (here, as it needs nothing else) over fixed records. Defining it here
keeps evaluation free of any source's imports (docs/architecture.md): the runtime's callers (``tusk
serve``, the OpenFeature provider, an application) choose and build the source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..snapshot import Snapshot

# The Client's callback: serve the snapshot with these records on top; False if it kept the last state.
Apply = Callable[[Mapping[str, Mapping[str, Any]]], bool]
Records = Mapping[str, Mapping[str, Any]]


@runtime_checkable
class OverrideSource(Protocol):
    """What a ``Client`` holds as its ``overrides``: started once, asked for status, closed."""

    def start(self, apply: Apply, snapshot: Snapshot) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class StaticOverrides:
    """Fixed override records (tests, offline use): applied once, always ``ok``."""

    def __init__(self, records: Records) -> None:
        self.records = {k: dict(v) for k, v in records.items()}

    def start(self, apply: Apply, snapshot: Snapshot) -> None:
        apply(self.records)

    def status(self) -> dict[str, Any]:
        return {"source": "static", "status": "ok", "flags": sorted(self.records)}

    def close(self) -> None:
        pass


def as_source(overrides: OverrideSource | Records) -> OverrideSource:
    """A Client's ``overrides=`` argument as a source: a mapping of records becomes ``StaticOverrides``.

    A Redis URL is not accepted here: this module cannot build a Redis source without importing
    ``tusklang.overrides``, which is the point. Pass ``tusklang.overrides.RedisOverrides(url)``.
    """
    if isinstance(overrides, str | bytes):
        raise TypeError(
            "overrides= takes an override source or a mapping of records, not a URL: "
            "pass tusklang.overrides.RedisOverrides(url) (docs/overrides.md)"
        )
    if isinstance(overrides, Mapping):
        return StaticOverrides(overrides)
    if not isinstance(overrides, OverrideSource):
        raise TypeError(
            f"overrides= takes an override source (start, status, close) or a mapping of records, "
            f"not {type(overrides).__name__}"
        )
    return overrides
