"""Event store for evaluations, exposures and conversions (SQLite or PostgreSQL). See docs/events.md."""

from __future__ import annotations

from .counts import ExperimentCounts, experiment_counts
from .masking import ENV_KEY, Masker, MaskingKeyError
from .schema import SCHEMA_VERSION, Connection, EventStoreError, ddl, init_schema, purge
from .store import EventStore, StoreStats
from .tracker import EventTracker, TrackingConfig, tracking_config

__all__ = [
    "ENV_KEY",
    "SCHEMA_VERSION",
    "Connection",
    "EventStore",
    "EventStoreError",
    "EventTracker",
    "ExperimentCounts",
    "Masker",
    "MaskingKeyError",
    "StoreStats",
    "TrackingConfig",
    "ddl",
    "experiment_counts",
    "init_schema",
    "purge",
    "tracking_config",
]
