"""``real_time_feature_dashboard``: panels of widgets, each a SQL query shown one way."""

from __future__ import annotations

from typing import Literal

from ._base import ConfigModel, Duration


class Widget(ConfigModel):
    type: Literal["counter", "gauge", "line_chart", "bar_chart", "pie_chart", "list", "table"]
    query: str
    time_range: Duration | None = None


class DashboardPanel(ConfigModel):
    refresh_interval: Duration
    widgets: dict[str, Widget] = {}


Dashboard = dict[str, DashboardPanel]
