"""`tusk dashboard`: the seed's `real_time_feature_dashboard`, each widget's SQL run read-only and drawn.

The config is read by the project loader (tusklang.project.load_project) like any TuskLang file, with the
run's Settings (the same environment, `--env-file` and limits as every command), then validated through
`tusklang.schema.dashboard` (positions on every error). Queries go through `tusklang.db`, the layer
behind `@query`: read-only, bound `?` parameters, a timeout and a row limit. A widget whose query fails
shows the error in its card and becomes a diagnostic at its `query`; the other widgets still render.
Charts are inline SVG computed here, so the page needs no script, stylesheet or font from anywhere.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..compiler.locate import Locator, validation_diagnostics
from ..db import Database, QueryError
from ..db.errors import CodedError
from ..diagnostics import Diagnostic, Severity, Span, TuskError
from ..project import Settings, load_project
from ..schema._base import ConfigModel
from ..schema.analytics import FeatureAnalyticsConfig
from ..schema.dashboard import Dashboard, DashboardPanel, Widget

NO_DASHBOARD = "TSK940"
DASHBOARD_DISABLED = "TSK941"
UNKNOWN_SELECTION = "TSK942"
REFRESH_NOT_USED = "TSK943"
WIDGET_FAILED = "TSK944"
WIDGET_DATA = "TSK946"
BAD_PARAM = "TSK947"

Path_ = tuple[str | int, ...]


class _DashboardFile(ConfigModel):
    """The two blocks `tusk dashboard` reads; the rest of a project file is `tusk compile`'s business."""

    real_time_feature_dashboard: Dashboard
    feature_analytics_config: FeatureAnalyticsConfig | None = None


@dataclass(frozen=True)
class WidgetSpec:
    panel: str
    name: str
    config: Widget
    query_span: Span | None

    @property
    def key(self) -> str:
        return f"{self.panel}.{self.name}"


@dataclass(frozen=True)
class PanelSpec:
    name: str
    refresh: timedelta
    widgets: tuple[WidgetSpec, ...]


@dataclass(frozen=True)
class DashboardSpec:
    title: str
    panels: tuple[PanelSpec, ...]
    diagnostics: tuple[Diagnostic, ...] = ()  # warnings and notes found while loading

    def widget(self, key: str) -> WidgetSpec | None:
        for panel in self.panels:
            for widget in panel.widgets:
                if widget.key == key or (widget.name == key and self._unique(widget.name)):
                    return widget
        return None

    def _unique(self, name: str) -> bool:
        return sum(1 for p in self.panels for w in p.widgets if w.name == name) == 1


def load(
    path: str,
    text: str,
    *,
    database: Database | None,
    settings: Settings | None = None,
    env: Mapping[str, str] | None = None,
    allow_outside_root: bool = False,
) -> DashboardSpec:
    """Parse, resolve and validate a CONFIG; TuskError (with positions) for every problem.

    ``settings`` are the run's (the CLI's); without them, ``env`` (default: the process environment)
    and ``allow_outside_root`` build them. `@query` in the config runs on ``database``.
    """
    if settings is None:
        settings = Settings.from_environment(environ=env, allow_outside_root=allow_outside_root)
    if database is not None:
        settings = replace(settings, database=database)
    project = load_project([path], settings, execute=True, overlays={path: text})
    if project.has_errors:
        raise TuskError(project.diagnostics)
    merged = project.merge()
    data = merged.data
    locator = merged.locator
    if "real_time_feature_dashboard" not in data:
        raise TuskError(
            [
                Diagnostic(
                    NO_DASHBOARD,
                    f"{path} has no `real_time_feature_dashboard` block",
                    None,
                    hint='add `real_time_feature_dashboard = { panel = { refresh_interval = "30 seconds", '
                    "widgets = { ... } } }` (docs/reports.md)",
                )
            ]
        )
    picked = {key: data[key] for key in ("real_time_feature_dashboard", "feature_analytics_config") if key in data}
    try:
        config = _DashboardFile.model_validate(picked)
    except ValidationError as exc:
        raise TuskError(validation_diagnostics(exc, picked, locator, _DashboardFile)) from None

    notes: list[Diagnostic] = []
    panels = config.real_time_feature_dashboard
    selection: list[str] | None = None
    reporting = (
        config.feature_analytics_config.reporting.real_time_dashboard if config.feature_analytics_config else None
    )
    if reporting is not None:
        base = ("feature_analytics_config", "reporting", "real_time_dashboard")
        if not reporting.enabled:
            raise TuskError(
                [
                    Diagnostic(
                        DASHBOARD_DISABLED,
                        "the real-time dashboard is turned off (`real_time_dashboard.enabled = false`)",
                        locator.value((*base, "enabled")),
                        hint="set enabled = true to render it",
                    )
                ]
            )
        if reporting.refresh_interval is not None:
            notes.append(
                Diagnostic(
                    REFRESH_NOT_USED,
                    "`reporting.real_time_dashboard.refresh_interval` is not used: each panel of "
                    "`real_time_feature_dashboard` refreshes at its own `refresh_interval`",
                    locator.value((*base, "refresh_interval")),
                    Severity.INFO,
                )
            )
        if "widgets" in (
            data.get("feature_analytics_config", {}).get("reporting", {}).get("real_time_dashboard") or {}
        ):
            selection = list(reporting.widgets)
            names = set(panels) | {w for panel in panels.values() for w in panel.widgets}
            for index, name in enumerate(selection):
                if name not in names:
                    notes.append(
                        Diagnostic(
                            UNKNOWN_SELECTION,
                            f"`{name}` in `reporting.real_time_dashboard.widgets` is neither a panel nor a widget "
                            "of `real_time_feature_dashboard`; nothing is shown for it",
                            locator.value((*base, "widgets", index)),
                            Severity.WARNING,
                            hint="known: " + ", ".join(sorted(names)),
                        )
                    )
    return DashboardSpec(
        Path(path).stem,
        tuple(_panels(panels, locator, selection)),
        tuple(notes),
    )


def _panels(panels: Mapping[str, DashboardPanel], locator: Locator, selection: list[str] | None) -> list[PanelSpec]:
    out = []
    for panel_name, panel in panels.items():
        widgets = []
        for widget_name, widget in panel.widgets.items():
            # `reporting.real_time_dashboard.widgets` names panels (all their widgets) or single widgets.
            if selection is not None and panel_name not in selection and widget_name not in selection:
                continue
            path = ("real_time_feature_dashboard", panel_name, "widgets", widget_name, "query")
            widgets.append(WidgetSpec(panel_name, widget_name, widget, locator.value(path)))
        if widgets:
            out.append(PanelSpec(panel_name, panel.refresh_interval, tuple(widgets)))
    return out


def override_params(spec: DashboardSpec, assignments: Sequence[str]) -> DashboardSpec:
    """`--param WIDGET=VALUE` (repeatable, in order) replaces that widget's configured `params`."""
    given: dict[str, list[str]] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise DashboardParamError(f"--param: expected WIDGET=VALUE or PANEL.WIDGET=VALUE, got {text!r}")
        widget = spec.widget(name)
        if widget is None:
            known = ", ".join(w.key for p in spec.panels for w in p.widgets)
            raise DashboardParamError(f"--param: no widget {name!r} (widgets: {known})")
        given.setdefault(widget.key, []).append(value)
    panels = []
    for panel in spec.panels:
        widgets = tuple(
            WidgetSpec(w.panel, w.name, w.config.model_copy(update={"params": given[w.key]}), w.query_span)
            if w.key in given
            else w
            for w in panel.widgets
        )
        panels.append(PanelSpec(panel.name, panel.refresh, widgets))
    return DashboardSpec(spec.title, tuple(panels), spec.diagnostics)


# --------------------------------------------------------------------------- running the queries


class WidgetDataError(CodedError):
    """The rows came back but do not fit the widget (no number for a counter, ...): TSK946.

    Shown in the widget and reported as its TSK944 failure at the widget's `query`."""

    def __init__(self, message: str) -> None:
        super().__init__(WIDGET_DATA, message)


class DashboardParamError(CodedError, ValueError):
    """A `--param` that names no widget or is not WIDGET=VALUE: TSK947 (also a ValueError, as before)."""

    def __init__(self, message: str) -> None:
        super().__init__(BAD_PARAM, message)


@dataclass
class WidgetView:
    spec: WidgetSpec
    rows: list[dict[str, object]] = field(default_factory=list)
    error: str | None = None
    view: dict[str, Any] = field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return "w-" + _slug(self.spec.key)


@dataclass
class PanelView:
    spec: PanelSpec
    widgets: list[WidgetView]
    updated: float

    @property
    def dom_id(self) -> str:
        return "p-" + _slug(self.spec.name)

    @property
    def refresh_seconds(self) -> float:
        return self.spec.refresh.total_seconds()


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)


def run_panel(db: Database, panel: PanelSpec, clock: float | None = None) -> PanelView:
    views = []
    for widget in panel.widgets:
        view = WidgetView(widget)
        try:
            view.rows = db.query(widget.config.query, widget.config.params)
            view.view = shape(widget.config, view.rows)
        except QueryError as exc:
            view.error = f"query failed ({exc.kind.replace('_', ' ')}): {exc.message}"
        except WidgetDataError as exc:
            view.error = str(exc)
        views.append(view)
    return PanelView(panel, views, time.time() if clock is None else clock)


def run_all(db: Database, spec: DashboardSpec) -> list[PanelView]:
    return [run_panel(db, panel) for panel in spec.panels]


def failures(panels: Sequence[PanelView]) -> list[Diagnostic]:
    """One error per failed widget, at its `query`, naming it."""
    out = []
    for panel in panels:
        for widget in panel.widgets:
            if widget.error is None:
                continue
            params = widget.spec.config.params
            hint = None
            if "?" in widget.spec.config.query and not params:
                hint = "the query has `?` placeholders: bind them with `params = [...]` or `--param WIDGET=VALUE`"
            out.append(
                Diagnostic(
                    WIDGET_FAILED,
                    f"widget `{widget.spec.key}` ({widget.spec.config.type}): {widget.error}",
                    widget.spec.query_span,
                    hint=hint,
                )
            )
    return out


# --------------------------------------------------------------------------- shaping rows for a widget


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: object) -> str:
    """Numbers for people: whole numbers as such, others to 2 decimals (4 significant digits below 1)."""
    if value is None:
        return "no data"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"


def raw(value: object) -> str:
    """The exact value for a data attribute (tests and scripts read it back with JSON)."""
    return json.dumps(value, ensure_ascii=False)


def _single(rows: list[dict[str, object]], kind: str) -> object:
    if not rows:
        return None
    row = rows[0]
    if len(rows) > 1:
        raise WidgetDataError(f"a {kind} shows one value, but the query returned {len(rows)} rows")
    if "value" in row:
        value = row["value"]
    elif "count" in row:
        value = row["count"]
    elif len(row) == 1:
        value = next(iter(row.values()))
    else:
        raise WidgetDataError(
            f"a {kind} shows one value, but the query returned the columns {', '.join(row)}; "
            "select one column (or name it `value`)"
        )
    if value is not None and not _is_number(value):
        raise WidgetDataError(f"a {kind} shows a number, but the query returned {value!r}")
    return value


def _series(rows: list[dict[str, object]], kind: str) -> tuple[str, list[str], list[tuple[object, list[float]]]]:
    """(label column, value columns, [(label, values)]): first column labels, the others are numbers."""
    if not rows:
        return "", [], []
    columns = list(rows[0])
    if len(columns) < 2:
        raise WidgetDataError(f"a {kind} needs a label column and at least one number column")
    label, values = columns[0], columns[1:]
    points = []
    for row in rows:
        numbers = []
        for column in values:
            cell = row[column]
            if cell is None:
                cell = 0
            if not _is_number(cell):
                raise WidgetDataError(f"a {kind} plots numbers, but column `{column}` holds {cell!r}")
            numbers.append(float(cell))  # type: ignore[arg-type]
        points.append((row[label], numbers))
    return label, values, points


CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 420, 230, 76, 16, 12, 70
LABEL_CHARS = 14
COLOURS = ("#4a6fa5", "#d98c3f", "#3f9d6b", "#b5484f", "#7b5ea7", "#8a6d3b")


def _scale(points: list[tuple[object, list[float]]]) -> tuple[float, float]:
    values = [v for _, vs in points for v in vs]
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1
    return low, high


def shape(widget: Widget, rows: list[dict[str, object]]) -> dict[str, Any]:
    """What the template draws for this widget type, geometry included."""
    kind = widget.type
    if kind == "counter":
        value = _single(rows, kind)
        return {"value": value, "text": fmt(value)}
    if kind == "gauge":
        value = _single(rows, kind)
        return {"value": value, "text": fmt(value), **_gauge(value, widget.min, widget.max)}
    if kind in ("list", "table"):
        columns = list(rows[0]) if rows else []
        return {"columns": columns, "rows": [[row[c] for c in columns] for row in rows]}
    label, columns, points = _series(rows, kind)
    if kind == "pie_chart":
        return _pie(points, columns)
    if kind == "bar_chart":
        return _bars(points, label, columns)
    return _lines(points, label, columns)


def _gauge(value: object, low: float, high: float) -> dict[str, Any]:
    """A half-circle dial from `low` to `high`."""
    cx, cy, r = 110.0, 110.0, 90.0
    if high <= low:
        high = low + 1
    fraction = 0.0 if value is None else min(1.0, max(0.0, (float(value) - low) / (high - low)))  # type: ignore[arg-type]
    angle = math.pi * (1 - fraction)
    x, y = cx + r * math.cos(angle), cy - r * math.sin(angle)
    large = 0  # a half circle at most: never the large arc
    return {
        "min": low,
        "max": high,
        "min_text": fmt(low),
        "max_text": fmt(high),
        "fraction": fraction,
        "track": f"M {cx - r:.2f} {cy:.2f} A {r:.2f} {r:.2f} 0 0 1 {cx + r:.2f} {cy:.2f}",
        "arc": f"M {cx - r:.2f} {cy:.2f} A {r:.2f} {r:.2f} 0 {large} 1 {x:.2f} {y:.2f}" if fraction > 0 else "",
    }


def _y(value: float, low: float, high: float) -> float:
    return round(PAD_T + (high - value) / (high - low) * (CHART_H - PAD_T - PAD_B), 2)


def _axis(low: float, high: float) -> list[dict[str, Any]]:
    return [{"y": _y(v, low, high), "text": fmt(v)} for v in (low, (low + high) / 2, high)]


def _lines(points: list[tuple[object, list[float]]], label: str, columns: list[str]) -> dict[str, Any]:
    if not points:
        return {"empty": True}
    low, high = _scale(points)
    width = CHART_W - PAD_L - PAD_R
    step = width / max(1, len(points) - 1)
    xs = [round(PAD_L + (i * step if len(points) > 1 else width / 2), 2) for i in range(len(points))]
    series = []
    for index, column in enumerate(columns):
        dots = [
            {"x": x, "y": _y(vs[index], low, high), "label": lab, "value": vs[index], "text": fmt(vs[index])}
            for x, (lab, vs) in zip(xs, points)
        ]
        series.append(
            {
                "name": column,
                "colour": COLOURS[index % len(COLOURS)],
                "path": " ".join(f"{d['x']},{d['y']}" for d in dots),
                "dots": dots,
            }
        )
    labels = [_label(x, lab) for x, (lab, _) in zip(xs, points)]
    return {"empty": False, "series": series, "labels": labels, "axis": _axis(low, high), "zero": _y(0, low, high)}


def _label(x: float, label: object) -> dict[str, Any]:
    text = str(label)
    short = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"
    return {"x": x, "y": CHART_H - PAD_B + 14, "text": short, "full": text}


def human_duration(value: timedelta) -> str:
    """`7 days`, `1 hour 30 minutes`: how the config says it, not Python's `7 days, 0:00:00`."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'s' if amount != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def _bars(points: list[tuple[object, list[float]]], label: str, columns: list[str]) -> dict[str, Any]:
    if not points:
        return {"empty": True}
    low, high = _scale(points)
    width = CHART_W - PAD_L - PAD_R
    group = width / len(points)
    bar = group * 0.8 / len(columns)
    zero = _y(0, low, high)
    bars = []
    for i, (lab, values) in enumerate(points):
        for j, value in enumerate(values):
            top = _y(value, low, high)
            bars.append(
                {
                    "x": round(PAD_L + i * group + group * 0.1 + j * bar, 2),
                    "y": min(top, zero),
                    "w": round(bar, 2),
                    "h": round(abs(zero - top), 2),
                    "label": lab,
                    "series": columns[j],
                    "value": value,
                    "text": fmt(value),
                    "colour": COLOURS[j % len(COLOURS)],
                }
            )
    labels = [_label(round(PAD_L + (i + 0.5) * group, 2), lab) for i, (lab, _) in enumerate(points)]
    return {"empty": False, "bars": bars, "labels": labels, "axis": _axis(low, high), "zero": zero, "columns": columns}


def _pie(points: list[tuple[object, list[float]]], columns: list[str]) -> dict[str, Any]:
    total = sum(max(0.0, vs[0]) for _, vs in points)
    if not points or total <= 0:
        return {"empty": True}
    cx, cy, r = 100.0, 100.0, 90.0
    slices, start = [], 0.0
    for index, (lab, vs) in enumerate(points):
        share = max(0.0, vs[0]) / total
        end = start + share * 2 * math.pi
        x0, y0 = cx + r * math.sin(start), cy - r * math.cos(start)
        x1, y1 = cx + r * math.sin(end), cy - r * math.cos(end)
        if share >= 0.999999:
            path = f"M {cx} {cy - r} A {r} {r} 0 1 1 {cx - 0.01} {cy - r} Z"
        else:
            large = 1 if share > 0.5 else 0
            path = f"M {cx} {cy} L {x0:.2f} {y0:.2f} A {r} {r} 0 {large} 1 {x1:.2f} {y1:.2f} Z"
        slices.append(
            {
                "path": path,
                "label": lab,
                "value": vs[0],
                "text": fmt(vs[0]),
                "share": f"{share:.1%}",
                "colour": COLOURS[index % len(COLOURS)],
            }
        )
        start = end
    return {"empty": False, "slices": slices}


# --------------------------------------------------------------------------- html


def render_page(
    spec: DashboardSpec, panels: Sequence[PanelView], *, live: bool = False, nonce: str | None = None
) -> str:
    from . import environment

    return (
        environment()
        .get_template("dashboard.html.j2")
        .render(title=spec.title, panels=panels, live=live, nonce=nonce, **_helpers())
    )


def render_panel(panel: PanelView) -> str:
    from . import environment

    return environment().get_template("panel.html.j2").render(panel=panel, **_helpers())


def _helpers() -> dict[str, Any]:
    return {"raw": raw, "fmt": fmt, "stamp": _stamp, "duration": human_duration, "chart": (CHART_W, CHART_H, PAD_L)}


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
