"""`tusk dashboard --serve`: the dashboard over HTTP on loopback, each section re-run at its refresh interval.

`/` renders every section; `/panel/NAME` renders one section, which the page's small inline script
fetches every `refresh_interval`. A section's results are cached for its interval, so any number of
open tabs costs the database one run per section per interval. Queries run in Starlette's thread pool
(tusklang.db serialises them on its one connection).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..db import Database
from .dashboard import DashboardSpec, PanelSpec, PanelView, render_page, render_panel, run_panel

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class PanelCache:
    """The latest run of each section, reused until its refresh interval has passed."""

    def __init__(self, db: Database, spec: DashboardSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.spec = spec
        self.clock = clock
        self._views: dict[str, tuple[float, PanelView]] = {}
        self._locks = {panel.name: threading.Lock() for panel in spec.panels}
        self.runs = 0

    def panel(self, panel: PanelSpec) -> PanelView:
        # One lock per section: concurrent requests for a stale section wait for one run, not start many.
        with self._locks[panel.name]:
            cached = self._views.get(panel.name)
            now = self.clock()
            if cached is not None and now - cached[0] < panel.refresh.total_seconds():
                return cached[1]
            view = run_panel(self.db, panel)
            self.runs += 1
            self._views[panel.name] = (now, view)
            return view


def create_app(db: Database, spec: DashboardSpec, cache: PanelCache | None = None) -> Starlette:
    cache = cache or PanelCache(db, spec)
    panels = {panel.name: panel for panel in spec.panels}

    def page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        views = [cache.panel(panel) for panel in spec.panels]
        headers = {
            **_HEADERS,
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
        }
        return HTMLResponse(render_page(spec, views, live=True, nonce=nonce), headers=headers)

    def panel(request: Request) -> Response:
        found = panels.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("no such section", status_code=404, headers=_HEADERS)
        return HTMLResponse(render_panel(cache.panel(found)), headers=_HEADERS)

    return Starlette(routes=[Route("/", page), Route("/panel/{name}", panel)])
