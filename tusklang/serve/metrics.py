"""Prometheus metrics for ``tusk serve``: ``GET /metrics`` in the text exposition format.

Requests are counted in plain dicts and lists on the request path (a bulk answer counts 100
evaluations: one ``prometheus_client`` child per increment would cost more than the evaluations);
a custom collector turns them into metric families when ``/metrics`` is scraped, together with the
state read at that moment (snapshot, override watcher, event store, request deadlines).

With ``tusk serve --workers N`` every worker counts its own requests; each publishes its counts to a
shared directory once a second (and when it stops), and whichever worker answers a scrape adds the
other workers' latest counts to its own, after publishing its own. So counters and histograms are for the
whole server (other workers' part at most a second old) and never go backwards from one scrape to the
next, whichever worker answers; gauges carry a ``worker`` label. docs/serve.md#metrics lists every metric.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..evaluate import Client
from ..evaluate.result import EvaluationResult
from ..snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. A single-flag answer takes tens of microseconds on the server, a 100-flag bulk answer a few
# hundred: the low buckets resolve those, the high ones show a stalled process.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTES = ("flag", "bulk", "configuration", "health", "metrics", "other")
_SEP = "\x1f"  # joins label values in the published JSON (never in a flag key, variant or reason)


def route_of(path: str) -> str:
    if path.startswith("/ofrep/v1/evaluate/flags/"):
        return "flag"
    return {
        "/ofrep/v1/evaluate/flags": "bulk",
        "/ofrep/v1/configuration": "configuration",
        "/health": "health",
        "/metrics": "metrics",
    }.get(path, "other")


class Counts:
    """What one process has served: plain containers, merged across workers as numbers."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}  # "route<SEP>status" -> n
        self.latency: dict[str, list[float]] = {}  # route -> per-bucket counts (+Inf last), then the sum
        self.evaluations: dict[str, int] = {}  # "flag<SEP>variant<SEP>reason" -> n
        self.totals: dict[str, int] = {}  # reload failures, event store and deadline counters

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            # dict() first: copying a dict is atomic, iterating one another thread grows is not.
            "latency": {route: list(values) for route, values in dict(self.latency).items()},
            "evaluations": dict(self.evaluations),
            "totals": dict(self.totals),
        }

    def add(self, other: dict[str, Any]) -> None:
        for key, n in other.get("requests", {}).items():
            self.requests[key] = self.requests.get(key, 0) + n
        for route, values in other.get("latency", {}).items():
            mine = self.latency.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            if len(values) == len(mine):
                for i, value in enumerate(values):
                    mine[i] += value
        for key, n in other.get("evaluations", {}).items():
            self.evaluations[key] = self.evaluations.get(key, 0) + n
        for key, n in other.get("totals", {}).items():
            self.totals[key] = self.totals.get(key, 0) + n


class Metrics:
    """The server's counters, and the collector that renders them with the live state."""

    def __init__(
        self,
        client: Client,
        *,
        event_store: Any = None,
        timeout_stats: Any = None,
        worker: int = 0,
        shared_dir: str | os.PathLike[str] | None = None,
        publish_every: float = 1.0,
    ) -> None:
        self.client = client
        self.event_store = event_store
        self.timeout_stats = timeout_stats
        self.worker = worker
        self.counts = Counts()
        self.reload_failures = 0
        self._digest: tuple[Snapshot | None, str] = (None, "")
        self._shared = Path(shared_dir) if shared_dir is not None else None
        self._stop = threading.Event()
        self._publishing = threading.Lock()
        self._publisher: threading.Thread | None = None
        self._count_reload_failures(client)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        if self._shared is not None:
            self._shared.mkdir(parents=True, exist_ok=True)
            self._publisher = threading.Thread(
                target=self._publish_loop, args=(publish_every,), name="tusk-metrics", daemon=True
            )
            self._publisher.start()

    # --- the request path ------------------------------------------------------------------------

    def request(self, route: str, status: int, seconds: float) -> None:
        key = f"{route}{_SEP}{status}"
        requests = self.counts.requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self.counts.latency.get(route)
        if histogram is None:
            histogram = self.counts.latency[route] = [0.0] * (len(BUCKETS) + 2)
        histogram[bisect.bisect_left(BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def evaluated(self, results: Iterable[EvaluationResult]) -> None:
        evaluations = self.counts.evaluations
        for result in results:
            key = f"{result.flag}{_SEP}{result.variant or ''}{_SEP}{result.reason}"
            evaluations[key] = evaluations.get(key, 0) + 1

    # --- state -------------------------------------------------------------------------------------

    def _count_reload_failures(self, client: Client) -> None:
        """Every refused snapshot file, however soon a good one follows (the watcher calls ``reload``)."""
        reload = client.reload

        def counted(source: Any = None) -> bool:
            ok = reload(source)
            if not ok:
                self.reload_failures += 1
            return ok

        client.reload = counted  # type: ignore[method-assign]

    def snapshot_digest(self, snapshot: Snapshot) -> str:
        known, digest = self._digest
        if known is not snapshot:
            digest = hashlib.sha256(snapshot.model_dump_json().encode("utf-8")).hexdigest()
            self._digest = (snapshot, digest)
        return digest

    def own_totals(self) -> dict[str, int]:
        totals = {"snapshot_reload_failures": self.reload_failures}
        if self.event_store is not None:
            stats = self.event_store.stats()
            totals.update(events_written=stats.written, events_dropped=stats.dropped, events_failed=stats.failed)
        if self.timeout_stats is not None:
            totals.update(
                header_timeouts=self.timeout_stats.header_timeouts, body_timeouts=self.timeout_stats.body_timeouts
            )
        return totals

    def gauges(self) -> dict[str, Any]:
        client = self.client
        snapshot = client.snapshot
        status = client.snapshot_status()
        out: dict[str, Any] = {
            "snapshot_sha256": self.snapshot_digest(snapshot),
            "snapshot_format": snapshot.format,
            "snapshot_flags": len(snapshot.flags),
            "snapshot_experiments": len(snapshot.experiments),
            "snapshot_degraded": int(status["status"] != "ok"),
            "snapshot_reloads": status["reloads"],
            "snapshot_loaded": _epoch(status["loaded_at"]),
        }
        source = client.overrides
        if source is not None:
            state = dict(source.status())
            rejected = set(state.get("rejected") or {}) | set(client.override_rejections())
            out.update(
                overrides_up=int(state.get("status") == "ok" and not rejected),
                overrides_version=state.get("version"),
                overrides_flags=len([f for f in state.get("flags", []) if f not in rejected]),
                overrides_rejected=len(rejected),
                overrides_syncs=state.get("syncs"),
            )
        if self.event_store is not None:
            out["events_queued"] = self.event_store.stats().queued
        return out

    # --- workers -----------------------------------------------------------------------------------

    def published(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "counts": self.counts.as_dict() | {"totals": self.own_totals()},
            "gauges": self.gauges(),
        }

    def publish(self, view: dict[str, Any] | None = None) -> None:
        if self._shared is None:
            return
        data = json.dumps(view if view is not None else self.published())
        target = self._shared / f"worker-{self.worker}.json"
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        with self._publishing:  # the thread and a scrape: one temporary file at a time
            temporary.write_text(data, encoding="utf-8")
            os.replace(temporary, target)

    def _publish_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(Exception):  # a full disk must not stop serving; the next try may work
                self.publish()

    def others(self) -> Iterator[dict[str, Any]]:
        if self._shared is None:
            return
        for path in sorted(self._shared.glob("worker-*.json")):
            if path.name == f"worker-{self.worker}.json":
                continue
            with contextlib.suppress(OSError, ValueError):
                yield json.loads(path.read_text(encoding="utf-8"))

    def close(self) -> None:
        self._stop.set()
        if self._publisher is not None:
            self._publisher.join(timeout=5)
            with contextlib.suppress(Exception):
                self.publish()  # the final counts: they stay in the sum after this worker is gone

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    return None


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        own = metrics.published()
        # Published first: a later scrape answered by another worker then reads at least these counts,
        # so the sums never go backwards from one scrape to the next, whichever worker answers.
        with contextlib.suppress(Exception):
            metrics.publish(own)
        views = [own, *metrics.others()]
        counts = Counts()
        for view in views:
            counts.add(view.get("counts", {}))
        yield from _counters(counts)
        yield from _gauges(views)


def _counters(counts: Counts) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "tusk_http_requests", "HTTP requests answered, by route and status", labels=["route", "status"]
    )
    for key, n in sorted(counts.requests.items()):
        requests.add_metric(key.split(_SEP), n)
    yield requests
    latency = HistogramMetricFamily(
        "tusk_http_request_duration_seconds",
        "Time from the request's headers to its answer, by route",
        labels=["route"],
    )
    for route, values in sorted(counts.latency.items()):
        cumulative, buckets = 0.0, []
        for bound, in_bucket in zip([*map(str, BUCKETS), "+Inf"], values[:-1], strict=True):
            cumulative += in_bucket
            buckets.append((bound, cumulative))
        latency.add_metric([route], buckets, values[-1])
    yield latency
    evaluations = CounterMetricFamily(
        "tusk_evaluations",
        "Flag and experiment evaluations served, by flag, variant and reason",
        labels=["flag", "variant", "reason"],
    )
    for key, n in sorted(counts.evaluations.items()):
        evaluations.add_metric(key.split(_SEP), n)
    yield evaluations
    totals = counts.totals
    for name, key, text in (
        ("tusk_snapshot_reload_failures", "snapshot_reload_failures", "Snapshot files refused by the watcher"),
        ("tusk_events_written", "events_written", "Events committed to the event store"),
        ("tusk_events_dropped", "events_dropped", "Events refused because the event queue was full"),
        ("tusk_events_failed", "events_failed", "Events lost because a write to the event store failed"),
        ("tusk_http_header_timeouts", "header_timeouts", "Connections closed by --header-timeout"),
        ("tusk_http_body_timeouts", "body_timeouts", "Connections closed by --body-timeout"),
    ):
        if key in totals:
            family = CounterMetricFamily(name, text)
            family.add_metric([], totals[key])
            yield family


_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("snapshot_flags", "tusk_snapshot_flags", "Flags in the live snapshot"),
    ("snapshot_experiments", "tusk_snapshot_experiments", "Experiments in the live snapshot"),
    ("snapshot_degraded", "tusk_snapshot_degraded", "1 while the newest snapshot file is refused"),
    ("snapshot_reloads", "tusk_snapshot_reloads", "Successful snapshot reloads since start"),
    ("snapshot_loaded", "tusk_snapshot_loaded_timestamp_seconds", "When the live snapshot was loaded"),
    ("overrides_up", "tusk_overrides_up", "1 when Redis answers and every override record applies"),
    ("overrides_version", "tusk_overrides_version", "The override version counter last read"),
    ("overrides_flags", "tusk_overrides_flags", "Flags with an override in force"),
    ("overrides_rejected", "tusk_overrides_rejected", "Override records refused"),
    ("overrides_syncs", "tusk_overrides_syncs", "Full re-reads of the overrides since start"),
    ("events_queued", "tusk_events_queued", "Events waiting in memory for the event store"),
)


def _gauges(views: list[dict[str, Any]]) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "tusk_snapshot_info",
        "The live snapshot: sha256 of its content and its format",
        labels=["worker", "sha256", "format"],
    )
    for view in views:
        gauges = view.get("gauges", {})
        if "snapshot_sha256" in gauges:
            info.add_metric([str(view.get("worker")), gauges["snapshot_sha256"], gauges["snapshot_format"]], 1)
    yield info
    for key, name, text in _GAUGES:
        family = GaugeMetricFamily(name, text, labels=["worker"])
        for view in views:
            value = view.get("gauges", {}).get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                family.add_metric([str(view.get("worker"))], value)
        if family.samples:
            yield family
