"""``real_time_feature_dashboard``: panels of widgets, each a SQL query shown one way."""

from __future__ import annotations

from typing import Literal

from ._base import ConfigModel, Duration


class Widget(ConfigModel):
    type: Literal["counter", "gauge", "line_chart", "bar_chart", "pie_chart", "list", "table"]
    query: str
    time_range: Duration | None = None
    # Values bound, in order, to the query's `?` placeholders (`tusk dashboard --param` overrides them).
    params: list[str | int | float | bool | None] = []
    # Scale of a gauge (docs/reports.md); the value is clamped to it for the dial, shown as is.
    min: float = 0
    max: float = 100


class DashboardPanel(ConfigModel):
    refresh_interval: Duration
    widgets: dict[str, Widget] = {}


Dashboard = dict[str, DashboardPanel]
