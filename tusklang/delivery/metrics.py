"""Metric samples and where they come from.

The controller only knows :class:`MetricSource`; a Prometheus reader is one more class with a
``fetch`` method, with no change to the controller.

SQL schema (SQLite or PostgreSQL, optional table prefix)::

    CREATE TABLE metric_samples (
        time   TEXT | TIMESTAMPTZ NOT NULL,   -- ISO 8601 in SQLite; naive times are UTC
        target TEXT NOT NULL,                 -- 'canary' or 'stable'
        metric TEXT NOT NULL,                 -- e.g. 'error_rate'
        value  DOUBLE PRECISION NOT NULL
    );
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..diagnostics import Diagnostic, TuskError
from .db import Database, as_utc

TARGETS = ("canary", "stable")


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation, or (``count`` > 1) an aggregate of ``count`` observations whose mean is ``value``:
    the event store's per-side metrics are one aggregate per window (docs/delivery.md)."""

    time: datetime
    target: str
    metric: str
    value: float
    count: int = 1


@runtime_checkable
class MetricSource(Protocol):
    def fetch(self, target: str, metrics: Sequence[str], start: datetime, end: datetime) -> list[Sample]:
        """Samples of ``target`` for ``metrics`` with ``start <= time < end``, oldest first."""
        ...


class InMemoryMetricSource:
    """A fixed list of samples: the simulation's source, and handy for embedding."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self.samples = sorted(samples, key=lambda s: s.time)
        self.times = [s.time for s in self.samples]

    def fetch(self, target: str, metrics: Sequence[str], start: datetime, end: datetime) -> list[Sample]:
        wanted = set(metrics)
        # Binary search keeps a long replay linear rather than quadratic in the number of samples.
        window = self.samples[bisect_left(self.times, start) : bisect_left(self.times, end)]
        return [s for s in window if s.target == target and s.metric in wanted]


def canary_samples(samples: Iterable[Sample], start: datetime, end: datetime) -> list[Sample]:
    """The canary's samples with ``start <= time < end``: one evaluation window."""
    return window_samples(samples, "canary", start, end)


def window_samples(samples: Iterable[Sample], target: str, start: datetime, end: datetime) -> list[Sample]:
    """One side's samples with ``start <= time < end``."""
    return [s for s in samples if s.target == target and start <= s.time < end]


class CombinedMetricSource:
    """Each metric from the source named for it, the rest from ``default`` (e.g. event-store metrics
    beside the metric_samples table)."""

    def __init__(self, default: MetricSource, by_metric: dict[str, MetricSource]) -> None:
        self.default = default
        self.by_metric = by_metric

    def fetch(self, target: str, metrics: Sequence[str], start: datetime, end: datetime) -> list[Sample]:
        groups: dict[int, tuple[MetricSource, list[str]]] = {}
        for metric in metrics:
            source = self.by_metric.get(metric, self.default)
            groups.setdefault(id(source), (source, []))[1].append(metric)
        out = [s for source, names in groups.values() for s in source.fetch(target, names, start, end)]
        return sorted(out, key=lambda s: s.time)


def validate_sample(target: str, metric: str, value: float) -> None:
    problems = []
    if target not in TARGETS:
        problems.append(f"target {target!r} is not one of {', '.join(TARGETS)}")
    if not metric:
        problems.append("metric name is empty")
    if not math.isfinite(value):
        problems.append(f"value {value!r} is not a finite number")
    if problems:
        raise TuskError([Diagnostic("TSK811", p) for p in problems])


class SqlMetricSource:
    """Reads and writes the ``metric_samples`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.name = db.table("metric_samples")

    def ensure_schema(self) -> None:
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.name} (time {self.db.time_type} NOT NULL, "
            "target TEXT NOT NULL, metric TEXT NOT NULL, value DOUBLE PRECISION NOT NULL)"
        )
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {self.name}_lookup ON {self.name} (target, metric, time)")

    def record(self, sample: Sample) -> None:
        validate_sample(sample.target, sample.metric, sample.value)
        self.db.execute(
            f"INSERT INTO {self.name} (time, target, metric, value) VALUES (?, ?, ?, ?)",
            (self.db.to_db_time(sample.time), sample.target, sample.metric, float(sample.value)),
        )

    def fetch(self, target: str, metrics: Sequence[str], start: datetime, end: datetime) -> list[Sample]:
        if not metrics:
            return []
        marks = ", ".join("?" for _ in metrics)
        if self.db.dialect == "sqlite":
            # julianday() compares instants, so rows written with other ISO spellings still match.
            window = "julianday(time) >= julianday(?) AND julianday(time) < julianday(?)"
        else:
            window = "time >= ? AND time < ?"
        rows = self.db.execute(
            f"SELECT time, target, metric, value FROM {self.name} "
            f"WHERE target = ? AND metric IN ({marks}) AND {window} ORDER BY time",
            (target, *metrics, self.db.to_db_time(start), self.db.to_db_time(end)),
        ).fetchall()
        return [Sample(self.db.from_db_time(t), tg, m, float(v)) for t, tg, m, v in rows]


def sample(time: datetime, target: str, metric: str, value: float) -> Sample:
    return Sample(as_utc(time), target, metric, float(value))
