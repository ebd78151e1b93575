"""Replaying a metric history through a canary policy with a simulated clock.

The simulation calls :func:`tusklang.delivery.controller.drive`, the same function the live
controller calls, with an in-memory metric source and a clock that jumps one evaluation period at a
time from the first sample.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..diagnostics import Diagnostic, Span, TuskError
from ..project import Settings, load_project
from ..project.loader import policy_defined_twice
from ..project.sourcemap import Locator, data_path
from ..safejson import JSONInputError
from ..safejson import loads as json_loads
from ..source import SourceFile
from .controller import CanaryController, Decision, RolloutState, Status, drive
from .db import parse_time
from .metrics import TARGETS, InMemoryMetricSource, Sample
from .policy import DeliveryPolicy

CSV_COLUMNS = ("timestamp", "target", "metric", "value")


def read_samples_csv(text: str, path: str = "<metrics>") -> list[Sample]:
    """Parse ``timestamp,target,metric,value`` rows; every bad row is a TSK812 naming its line."""
    source = SourceFile(text, path)
    reader = csv.reader(io.StringIO(text))
    problems: list[Diagnostic] = []
    samples: list[Sample] = []

    def bad(line: int, message: str) -> None:
        start = source.offset(line, 1)
        span = Span(source, start, start + len(source.line_text(line)))
        problems.append(Diagnostic("TSK812", f"{path}:{line}: {message}", span))

    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != CSV_COLUMNS:
        raise TuskError([Diagnostic("TSK812", f"{path}:1: the header must be {','.join(CSV_COLUMNS)}, got {header}")])
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 4:
            bad(line, f"expected 4 columns ({','.join(CSV_COLUMNS)}), got {len(row)}")
            continue
        stamp, target, metric, raw = (cell.strip() for cell in row)
        try:
            time = parse_time(stamp)
        except ValueError:
            bad(line, f"bad time {stamp!r}: use ISO 8601, e.g. 2024-05-01T12:00:00Z")
            continue
        if target not in TARGETS:
            bad(line, f"unknown target {target!r}: use canary or stable")
            continue
        if not metric:
            bad(line, "empty metric name")
            continue
        try:
            value = float(raw)
        except ValueError:
            bad(line, f"value {raw!r} is not a number")
            continue
        if not math.isfinite(value):
            bad(line, f"value {raw!r} is not a finite number")
            continue
        samples.append(Sample(time, target, metric, value))
    if problems:
        raise TuskError(problems)
    return samples


def _block_path(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Where the ``progressive_delivery`` block is: its data path (() for the file itself)."""
    if "progressive_delivery" in data:
        return ("progressive_delivery",)
    flags = data.get("feature_flags")
    if isinstance(flags, Mapping) and "progressive_delivery" in flags:
        return ("feature_flags", "progressive_delivery")
    if {"canary_deployments", "blue_green_deployments", "feature_gates"} & set(data):
        return ()
    raise TuskError([Diagnostic("TSK801", "no progressive_delivery block (top level or under feature_flags)")])


def _at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def parse_config_text(
    text: str, path: str, settings: Settings | None = None
) -> tuple[Mapping[str, Any], Locator | None]:
    """JSON for ``.json`` files; anything else is TuskLang, read by the project loader with ``settings``
    (default: from the process environment) so `@env`, `@file` and `@query` mean what `tusk compile`
    makes of them. The data and, for TuskLang, its source map."""
    if Path(path).suffix.lower() == ".json":
        try:
            data = json_loads(text)
        except JSONInputError as exc:
            raise TuskError([Diagnostic("TSK802", f"{path}: invalid JSON: {exc}")]) from None
        if not isinstance(data, Mapping):
            raise TuskError([Diagnostic("TSK802", f"{path}: the config is not a mapping")])
        return data, None
    project = load_project([path], settings or Settings.from_environment(), execute=True, overlays={path: text})
    if project.has_errors:
        raise TuskError(project.diagnostics)
    merged = project.merge()
    return merged.data, merged.locator


def policy_from_text(text: str, path: str, settings: Settings | None = None) -> tuple[DeliveryPolicy, dict[str, Any]]:
    """The validated policy and the plain block it came from (stored with a rollout's state).

    Every problem is a TSK800 at the offending value's line (for TuskLang files).
    """
    data, locator = parse_config_text(text, path, settings)
    twice = policy_defined_twice(data, locator) if locator is not None else None
    if twice is not None:  # as check and compile refuse it
        raise TuskError([twice])
    where = _block_path(data)
    block = _at(data, where)
    plain = json.loads(json.dumps(block, default=str))
    try:
        return DeliveryPolicy.model_validate(dict(plain)), plain
    except ValidationError as exc:
        raise TuskError(_policy_diagnostics(exc, plain, where, locator)) from None


def _policy_diagnostics(
    exc: ValidationError, plain: Mapping[str, Any], where: tuple[str, ...], locator: Locator | None
) -> list[Diagnostic]:
    """TSK800 as ``load_policy`` words them, each at the span of the value it is about."""
    out = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        span = locator.value((*where, *data_path(plain, error["loc"]))) if locator is not None else None
        named = f"progressive_delivery.{loc}" if loc else "progressive_delivery"
        out.append(Diagnostic("TSK800", f"{named}: {message}", span))
    return out


@dataclass(frozen=True)
class SimulationResult:
    decisions: list[Decision]
    final: RolloutState
    started: Decision | None = None  # the start (not a judged decision: not in ``decisions``)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": [
                {
                    "time": d.time.isoformat(),
                    "action": d.action.value,
                    "canary_percent": d.canary_percent,
                    "reason": d.reason,
                }
                for d in self.decisions
            ],
            "final": {
                "status": self.final.status.value,
                "canary_percent": self.final.canary_percent,
                "step_index": self.final.step_index,
                "consecutive_failures": self.final.consecutive_failures,
                "cooldown_until": self.final.cooldown_until.isoformat() if self.final.cooldown_until else None,
                "intervals": len(self.decisions),
            },
        }


def simulate(
    policy: DeliveryPolicy, samples: list[Sample], start: datetime | None = None, name: str = "simulation"
) -> SimulationResult:
    """Start at ``start`` (default: the first sample) and tick every evaluation period until the
    rollout ends or the period after the last sample has been judged."""
    controller = CanaryController(policy)
    source = InMemoryMetricSource(samples)
    times = [s.time for s in samples]
    begin = start or (min(times) if times else None)
    if begin is None:
        raise TuskError([Diagnostic("TSK812", "no samples to replay")])
    last = max(times, default=begin)
    period = controller.canary.evaluation_period
    state, started = controller.start(name, begin)
    decisions: list[Decision] = []
    tick = 1
    while state.status is Status.PROGRESSING and begin + (tick - 1) * period <= last:
        now = begin + tick * period
        state, decision = drive(controller, state, source, now)
        if decision is not None:
            decisions.append(decision)
        tick += 1
    return SimulationResult(decisions, state, started)
