"""Runtime overrides of a compiled snapshot, kept in Redis (``tusk flags ...``; docs/overrides.md)."""

from __future__ import annotations

from .overlay import DEFAULT_PREFIX, DEFAULT_TTL, apply_overrides, storage_settings
from .store import AuditEntry, OverrideState, OverrideStore, WriteResult
from .watcher import OverrideSource, RedisOverrides, StaticOverrides, attach

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TTL",
    "AuditEntry",
    "OverrideSource",
    "OverrideState",
    "OverrideStore",
    "RedisOverrides",
    "StaticOverrides",
    "WriteResult",
    "apply_overrides",
    "attach",
    "storage_settings",
]
