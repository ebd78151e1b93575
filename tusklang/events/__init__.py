"""Event store for evaluations, exposures and conversions (SQLite or PostgreSQL). See docs/events.md."""

from __future__ import annotations

from .consent import allows_analytics
from .counts import ExperimentCounts, experiment_counts
from .masking import ENV_KEY, Masker, MaskingKeyError
from .privacy import UNIT_TABLES, Erasure, erase_units, export_units
from .schema import SCHEMA_VERSION, Connection, EventStoreError, ddl, init_schema, purge
from .store import EventStore, StoreStats
from .tracker import EventTracker, TrackingConfig, tracking_config

__all__ = [
    "ENV_KEY",
    "SCHEMA_VERSION",
    "UNIT_TABLES",
    "Connection",
    "Erasure",
    "EventStore",
    "EventStoreError",
    "EventTracker",
    "ExperimentCounts",
    "Masker",
    "MaskingKeyError",
    "StoreStats",
    "TrackingConfig",
    "allows_analytics",
    "ddl",
    "erase_units",
    "experiment_counts",
    "export_units",
    "init_schema",
    "purge",
    "tracking_config",
]
