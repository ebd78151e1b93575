"""The rollout status page: `tusk rollout status NAME --format html` and `tusk rollout simulate --format html`.

One self-contained HTML page (inline CSS and SVG, no script, no external resource): the canary
percentage over time as a step line with a marker per decision (its reason in the marker's tooltip and
in the table below), and per health metric the canary's value at each judged decision against its
threshold, or against the stable side and the bound a comparison allows. The geometry is computed
here, so the template only places what it is given and a test can read the numbers back from the DOM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import environment

WIDTH = 860
LEFT, RIGHT = 64, 24
SPLIT_HEIGHT = 240
METRIC_HEIGHT = 170
TOP, BOTTOM = 16, 30

ACTION_COLOURS = {
    "start": "#4a6fa5",
    "advance": "#1f8a43",
    "promote": "#126b2f",
    "hold": "#b08900",
    "rollback": "#c0392b",
    "abort": "#c0392b",
    "pause": "#7a5a00",
    "resume": "#4a6fa5",
}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def _label(value: float) -> str:
    return f"{value:.4g}"


def _bound(stable: float, direction: str, max_ratio: float | None, max_difference: float | None) -> float | None:
    """The worst canary value a comparison allows against this stable value."""
    bounds = []
    if direction == "lower":
        if max_ratio is not None:
            bounds.append(stable * max_ratio)
        if max_difference is not None:
            bounds.append(stable + max_difference)
        return min(bounds) if bounds else None
    if max_ratio is not None:
        bounds.append(stable / max_ratio)
    if max_difference is not None:
        bounds.append(stable - max_difference)
    return max(bounds) if bounds else None


def status_chart(
    decisions: Sequence[Mapping[str, Any]], thresholds: Mapping[str, Mapping[str, Any]], width: int = WIDTH
) -> dict[str, Any]:
    """Geometry of the page's SVG: the split panel and one panel per metric, stacked."""
    times = [_time(d["time"]) for d in decisions]
    t0 = min(times) if times else None
    t1 = max(times) if times else None
    span = max((t1 - t0).total_seconds(), 1.0) if t0 is not None and t1 is not None else 1.0
    inner = width - LEFT - RIGHT

    def x(when: datetime) -> float:
        assert t0 is not None
        return round(LEFT + inner * (when - t0).total_seconds() / span, 2)

    unit, suffix = (3600.0, "h") if span >= 3 * 3600 else (60.0, "min") if span >= 180 else (1.0, "s")
    time_ticks = [
        {"x": round(LEFT + inner * value * unit / span, 2), "label": f"{value:g} {suffix}"}
        for value in _ticks(0, span / unit)
    ]

    # The split: a step line through every decision's percentage.
    top, bottom = TOP, SPLIT_HEIGHT - BOTTOM

    def y_split(percent: float) -> float:
        return round(bottom - (bottom - top) * percent / 100, 2)

    points: list[tuple[float, float]] = []
    markers = []
    previous: float | None = None
    for index, (decision, when) in enumerate(zip(decisions, times)):
        percent = float(decision["canary_percent"])
        if previous is not None:
            points.append((x(when), y_split(previous)))
        points.append((x(when), y_split(percent)))
        previous = percent
        override = decision.get("override") or {}
        markers.append(
            {
                "index": index,
                "id": decision.get("id", index),
                "x": x(when),
                "y": y_split(percent),
                "action": decision["action"],
                "percent": percent,
                "colour": ACTION_COLOURS.get(decision["action"], "#1d232b"),
                "title": f"{decision['time']}  {decision['action']} {percent:g}%: {decision['reason']}"
                + (f" (override version {override['version']})" if override.get("version") else ""),
            }
        )
    split = {
        "top": top,
        "bottom": bottom,
        "height": SPLIT_HEIGHT,
        "line": " ".join(f"{px},{py}" for px, py in points),
        "data": " ".join(f"{d['time']}={float(d['canary_percent']):g}" for d in decisions),
        "markers": markers,
        "y_ticks": [{"y": y_split(p), "label": f"{p:g}%"} for p in (0, 25, 50, 75, 100)],
    }

    metrics = _metric_panels(decisions, times, thresholds, x)
    offset = SPLIT_HEIGHT
    for panel in metrics:
        panel["offset"] = offset
        offset += METRIC_HEIGHT
    return {
        "width": width,
        "height": offset,
        "left": LEFT,
        "right": width - RIGHT,
        "time_ticks": time_ticks,
        "split": split,
        "metrics": metrics,
        "empty": not decisions,
    }


def _metric_panels(
    decisions: Sequence[Mapping[str, Any]],
    times: Sequence[datetime],
    thresholds: Mapping[str, Mapping[str, Any]],
    x: Any,
) -> list[dict[str, Any]]:
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for decision, when in zip(decisions, times):
        for check in [*decision.get("checks", []), *decision.get("gate_checks", [])]:
            if check.get("mean") is None:
                continue
            kind = check.get("kind", "threshold")
            point = {
                "x": x(when),
                "time": decision["time"],
                "value": float(check["mean"]),
                "verdict": check["verdict"],
                "threshold": check.get("threshold"),
                "samples": check.get("samples"),
                "action": decision["action"],
            }
            if kind == "compare" and check.get("stable_mean") is not None:
                point["stable"] = float(check["stable_mean"])
                point["bound"] = _bound(
                    point["stable"], check["direction"], check.get("max_ratio"), check.get("max_difference")
                )
            series.setdefault((check["metric"], kind), []).append(point)
    panels = []
    for (metric, kind), points in series.items():
        spec = thresholds.get(metric, {})
        threshold = spec.get("threshold") if kind == "threshold" else None
        if threshold is None and kind == "threshold":
            threshold = next((p["threshold"] for p in points if p["threshold"] is not None), None)
        values = [p["value"] for p in points]
        values += [p[k] for p in points for k in ("stable", "bound") if p.get(k) is not None]
        if threshold is not None:
            values.append(float(threshold))
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
        top, bottom = TOP, METRIC_HEIGHT - BOTTOM

        def y(value: float, low: float = low, high: float = high, top: int = top, bottom: int = bottom) -> float:
            return round(bottom - (bottom - top) * (value - low) / (high - low), 2)

        for p in points:
            p["y"] = y(p["value"])
            if p.get("stable") is not None:
                p["y_stable"] = y(p["stable"])
            if p.get("bound") is not None:
                p["y_bound"] = y(p["bound"])
        panels.append(
            {
                "metric": metric,
                "kind": kind,
                "direction": spec.get("direction") or "",
                "title": (
                    f"{metric}: canary against threshold {threshold:g}"
                    if threshold is not None
                    else f"{metric}: canary against stable ({_compare_text(spec)})"
                ),
                "threshold": threshold,
                "y_threshold": y(float(threshold)) if threshold is not None else None,
                "points": points,
                "line": " ".join(f"{p['x']},{p['y']}" for p in points),
                "stable_line": " ".join(f"{p['x']},{p['y_stable']}" for p in points if "y_stable" in p),
                "bound_line": " ".join(f"{p['x']},{p['y_bound']}" for p in points if "y_bound" in p),
                "y_ticks": [{"y": y(v), "label": _label(v)} for v in _ticks(low, high, 4)],
                "top": top,
                "bottom": bottom,
            }
        )
    return panels


def _compare_text(spec: Mapping[str, Any]) -> str:
    parts = []
    if spec.get("max_ratio") is not None:
        parts.append(f"at most {spec['max_ratio']:g}x")
    if spec.get("max_difference") is not None:
        parts.append(f"at most {spec['max_difference']:g}")
    return (" and ".join(parts) + " worse") if parts else "comparison"


def render_status_html(data: Mapping[str, Any], thresholds: Mapping[str, Mapping[str, Any]], *, title: str = "") -> str:
    """The page for a rollout's stored state and decisions (``tusk rollout status --format html``)."""
    state = data["state"]
    decisions = list(data["decisions"])
    template = environment().get_template("rollout.html.j2")
    return template.render(
        title=title or f"Rollout {state['name']}",
        state=state,
        binding=state.get("binding"),
        override=data.get("override"),
        live=data.get("live_override"),
        decisions=decisions,
        chart=status_chart(decisions, thresholds),
        simulated=bool(title),
    )


def render_simulation_html(result: Any, thresholds: Mapping[str, Mapping[str, Any]]) -> str:
    """The same page for a replay (``tusk rollout simulate --format html``): the start and every decision."""
    decisions = [d.to_dict() for d in ([result.started] if result.started is not None else []) + result.decisions]
    for index, decision in enumerate(decisions):
        decision["id"] = index
        decision["override"] = None  # a replay writes nothing
    state = result.final.to_dict()
    return render_status_html(
        {"state": state, "decisions": decisions}, thresholds, title=f"Simulated rollout ({state['status']})"
    )
