"""Experiment reports and widget dashboards rendered from the database (see docs/reports.md)."""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment() -> jinja2.Environment:
    """Templates ship inside the package; autoescape is on for every template, whatever its name."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tusklang.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env
