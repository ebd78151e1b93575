"""`tusk report flags`: how each flag is used, from the event store (reporting.flag_performance).

Per flag, over a window of the last `days` days: evaluations over time (per hour or day), the share of each
variant and each reason (how often ERROR, DEFAULT, TARGETING_MATCH, ...), the units exposed, and, over all
recorded time, when it was last evaluated. A flag not evaluated for `stale_days` days, or never, while the
project still defines it, is a stale candidate; the caller passes the TSK403 (stale-flag) lint findings so
they are shown next to it.

Evaluation rows may be sampled (`sampling_rate`): counts and shares are estimates that weigh each row by
1 / its `sample_rate` (`rows` is what is stored); exposures are never sampled. Units are distinct unit ids
in evaluation and exposure rows (a lower bound when evaluations are sampled). Every statement is portable
and read-only, run through `tusklang.db` (bound parameters, a timeout); the time bucket is the only
dialect-specific expression.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ..db import Database, QueryError, dialect_of
from .common import LOSSES_SQL, LOSSES_V1_SQL, ReportError

BUCKETS: Final = {"hour": 3600.0, "day": 86400.0}
MAX_BUCKETS: Final = 2000  # days x buckets per day: bounds the series (and the page)
_SEEN = "kind IN ('evaluation', 'exposure')"

TOTALS_SQL = """
SELECT flag, variant, reason, COUNT(*) AS n, SUM(1.0 / sample_rate) AS estimated
FROM tusk_events
WHERE kind = 'evaluation' AND flag IS NOT NULL AND occurred_at >= ? AND occurred_at < ?
GROUP BY flag, variant, reason
"""
EXPOSURES_SQL = """
SELECT flag, COUNT(*) AS n FROM tusk_events
WHERE kind = 'exposure' AND flag IS NOT NULL AND occurred_at >= ? AND occurred_at < ?
GROUP BY flag
"""
# DISTINCT in a subquery, not COUNT(DISTINCT ...): PostgreSQL hashes the pairs instead of sorting every
# group (1.8 s -> 1.0 s for a million rows in the window, PostgreSQL 15 on the 2-core development machine).
UNITS_SQL = f"""
SELECT flag, COUNT(*) AS units FROM (
    SELECT DISTINCT flag, unit_id FROM tusk_events
    WHERE {_SEEN} AND flag IS NOT NULL AND unit_id <> '' AND occurred_at >= ? AND occurred_at < ?
) seen
GROUP BY flag
"""
LAST_SQL = f"""
SELECT flag, MAX(occurred_at) AS last FROM tusk_events
WHERE {_SEEN} AND flag IS NOT NULL AND occurred_at < ?
GROUP BY flag
"""


def _series_sql(url: str) -> str:
    # Bucket index from the window's start: occurred_at >= start, so truncation is the floor on SQLite;
    # PostgreSQL's CAST to an integer would round, hence FLOOR there.
    if dialect_of(url) == "sqlite":
        bucket = "CAST((occurred_at - ?) / ? AS INTEGER)"
    else:
        bucket = "CAST(FLOOR((occurred_at - ?) / ?) AS BIGINT)"
    return f"""
SELECT flag, {bucket} AS bucket, COUNT(*) AS n, SUM(1.0 / sample_rate) AS estimated
FROM tusk_events
WHERE kind = 'evaluation' AND flag IS NOT NULL AND occurred_at >= ? AND occurred_at < ?
GROUP BY flag, bucket
"""


@dataclass(frozen=True)
class Window:
    start: float
    end: float  # "now"
    bucket: str  # hour | day
    stale_days: float

    @property
    def size(self) -> float:
        return BUCKETS[self.bucket]

    @property
    def buckets(self) -> int:
        return max(1, math.ceil((self.end - self.start) / self.size))


def window(now: float, days: float, bucket: str, stale_days: float) -> Window:
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    if not (days > 0 and stale_days > 0):
        raise ValueError("days and stale days must be positive")
    result = Window(now - days * 86400.0, now, bucket, stale_days)
    if result.buckets > MAX_BUCKETS:
        raise ValueError(f"{result.buckets} {bucket}s in the window: at most {MAX_BUCKETS} (use --bucket day)")
    return result


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def _shares(counts: Mapping[str | None, float], total: float, key: str) -> list[dict[str, Any]]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return [
        {key: name, "estimated": round(value, 3), "share": value / total if total else None} for name, value in ordered
    ]


def collect(
    db: Database,
    win: Window,
    *,
    known: Iterable[str] = (),
    lint: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The report as plain data (JSON shape in docs/reports.md)."""
    span = [win.start, win.end]
    variants: dict[str, dict[str | None, float]] = {}
    reasons: dict[str, dict[str | None, float]] = {}
    rows: dict[str, int] = {}
    for row in db.query(TOTALS_SQL, span):
        flag, estimated = str(row["flag"]), _float(row["estimated"])
        variant = str(row["variant"]) if row["variant"] is not None else None
        reason = str(row["reason"]) if row["reason"] is not None else None
        per_variant = variants.setdefault(flag, {})
        per_variant[variant] = per_variant.get(variant, 0.0) + estimated
        per_reason = reasons.setdefault(flag, {})
        per_reason[reason] = per_reason.get(reason, 0.0) + estimated
        rows[flag] = rows.get(flag, 0) + int(row["n"])  # type: ignore[call-overload]
    exposures = {str(r["flag"]): int(r["n"]) for r in db.query(EXPOSURES_SQL, span)}  # type: ignore[call-overload]
    units = {str(r["flag"]): int(r["units"]) for r in db.query(UNITS_SQL, span)}  # type: ignore[call-overload]
    last = {str(r["flag"]): _float(r["last"]) for r in db.query(LAST_SQL, [win.end])}
    series: dict[str, list[list[float]]] = {}
    for row in db.query(_series_sql(db.url), [win.start, win.size, *span]):
        flag, index = str(row["flag"]), int(row["bucket"])  # type: ignore[call-overload]
        points = series.setdefault(flag, [[0, 0.0] for _ in range(win.buckets)])
        if 0 <= index < win.buckets:
            points[index] = [int(row["n"]), round(_float(row["estimated"]), 3)]  # type: ignore[call-overload]

    known_set = set(known)
    lint = lint or {}
    names = sorted(known_set | set(rows) | set(exposures) | set(last) | set(lint))
    if not names:
        raise ReportError(
            "no flag evaluations in the event store and no flags known",
            hint="record evaluations with an EventTracker, or pass --snapshot / --config to list the defined flags",
        )
    stale_before = win.end - win.stale_days * 86400.0
    flags: list[dict[str, Any]] = []
    for name in names:
        total = sum(variants.get(name, {}).values())
        per_reason = reasons.get(name, {})
        seen = last.get(name)
        # A flag the project no longer defines is not a cleanup candidate; without a project, every flag is.
        defined = not known_set or name in known_set or name in lint
        stale = defined and (seen is None or seen < stale_before)
        flags.append(
            {
                "flag": name,
                "defined": name in known_set if known_set else None,
                "evaluations": {"rows": rows.get(name, 0), "estimated": round(total, 3)},
                "exposures": exposures.get(name, 0),
                "units": units.get(name, 0),
                "variants": _shares(variants.get(name, {}), total, "variant"),
                "reasons": _shares(per_reason, total, "reason"),
                "error_share": per_reason.get("ERROR", 0.0) / total if total else None,
                "over_time": [
                    {"start": iso(win.start + i * win.size), "rows": n, "estimated": est}
                    for i, (n, est) in enumerate(series.get(name, [[0, 0.0] for _ in range(win.buckets)]))
                ],
                "last_evaluated": iso(seen),
                "days_since_last": round((win.end - seen) / 86400.0, 2) if seen is not None else None,
                "stale": stale,
                "lint": [dict(item) for item in lint.get(name, ())],
            }
        )
    warnings: list[str] = []
    losses = _losses(db, win.start)
    if losses:
        warnings.append(f"{losses} events were lost (dropped or failed writes) in the window: counts may be low")
    unknown = sorted(set(rows) - known_set) if known_set else []
    if unknown:
        warnings.append(f"evaluated but not defined in the given project or snapshot: {', '.join(unknown)}")
    return {
        "window": {
            "start": iso(win.start),
            "end": iso(win.end),
            "bucket": win.bucket,
            "days": round((win.end - win.start) / 86400.0, 3),
        },
        "stale_days": win.stale_days,
        "flags": flags,
        "stale": [f["flag"] for f in flags if f["stale"]],
        "lost_events": losses,
        "warnings": warnings,
    }


def _losses(db: Database, start: float) -> int | None:
    for sql in (LOSSES_SQL, LOSSES_V1_SQL):
        try:
            row = db.query(sql, [start])[0]
        except QueryError as exc:
            if exc.kind == "missing_table":
                return None
            continue
        return int(row["dropped"]) + int(row["failed"])  # type: ignore[call-overload]
    return None


# --------------------------------------------------------------------------- renderers


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def render_text(report: Mapping[str, Any]) -> str:
    win = report["window"]
    lines = [
        f"flags, {win['start']} to {win['end']} (per {win['bucket']}); stale: no evaluation in "
        f"{report['stale_days']:g} days",
        "",
    ]
    header = ["flag", "evaluations", "units", "last evaluated", "variants", "reasons", "stale"]
    rows = []
    for flag in report["flags"]:
        evaluations = flag["evaluations"]
        shown = _count(evaluations["estimated"])
        if evaluations["rows"] != round(evaluations["estimated"]):
            shown += f" ({evaluations['rows']} rows)"
        rows.append(
            [
                flag["flag"],
                shown,
                str(flag["units"]),
                flag["last_evaluated"] or "never",
                ", ".join(f"{v['variant']} {_pct(v['share'])}" for v in flag["variants"]) or "-",
                ", ".join(f"{r['reason']} {_pct(r['share'])}" for r in flag["reasons"]) or "-",
                "STALE" if flag["stale"] else "",
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
    for flag in report["flags"]:
        for item in flag["lint"]:
            lines.append(f"  {flag['flag']}: {item['code']} {item['message']} ({item['file']}:{item['line']})")
    lines.append("")
    stale = report["stale"]
    lines.append(f"stale candidates: {', '.join(stale)}" if stale else "stale candidates: none")
    for warning in report["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _spark(points: Sequence[Mapping[str, Any]], width: int = 180, height: int = 36) -> dict[str, Any]:
    """Bars of the estimated evaluations per bucket, computed here so the template only places numbers."""
    peak = max((p["estimated"] for p in points), default=0) or 1
    step = width / max(1, len(points))
    bars = []
    for index, point in enumerate(points):
        tall = round(point["estimated"] / peak * (height - 2), 2)
        bars.append(
            {
                "x": round(index * step, 2),
                "y": round(height - tall, 2),
                "w": round(max(step - 1, 0.5), 2),
                "h": tall,
                "label": f"{point['start']}: {_count(point['estimated'])}",
            }
        )
    return {"width": width, "height": height, "bars": bars}


_PALETTE: Final = ["#4a6fa5", "#e0a030", "#6aa84f", "#8e63b5", "#3aa6a0", "#c27ba0", "#7f8c8d"]
_REASON_COLOURS: Final = {"ERROR": "#c0392b", "DEFAULT": "#8a929c", "TARGETING_MATCH": "#1f8a43", "SPLIT": "#4a6fa5"}


def _stack(shares: Sequence[Mapping[str, Any]], key: str, width: int = 160) -> list[dict[str, Any]]:
    x = 0.0
    parts = []
    for index, item in enumerate(shares):
        share = item["share"] or 0.0
        colour = _REASON_COLOURS.get(str(item[key]), _PALETTE[index % len(_PALETTE)])
        if key == "variant":
            colour = _PALETTE[index % len(_PALETTE)]
        w = round(share * width, 2)
        parts.append({"x": round(x, 2), "w": w, "colour": colour, "name": item[key], "share": _pct(share)})
        x += w
    return parts


def render_html(report: Mapping[str, Any]) -> str:
    from . import environment

    visuals = {
        flag["flag"]: {
            "spark": _spark(flag["over_time"]),
            "variants": _stack(flag["variants"], "variant"),
            "reasons": _stack(flag["reasons"], "reason"),
        }
        for flag in report["flags"]
    }
    template = environment().get_template("flags.html.j2")
    return template.render(report=report, visuals=visuals, pct=_pct, count=_count)
