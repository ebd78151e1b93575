"""An OpenFeature Remote Evaluation Protocol (OFREP) server over the reference evaluator.

Endpoints: ``POST /ofrep/v1/evaluate/flags/{key}``, ``POST /ofrep/v1/evaluate/flags`` (bulk, with an
ETag), ``GET /ofrep/v1/configuration``, ``GET /health`` and ``GET /metrics`` (Prometheus). Evaluation is
delegated to ``tusklang.evaluate.Client`` unchanged, so a remote answer equals a local one. The two
evaluation routes are ``service.Service`` (lean, shared with ``tusk serve``'s HTTP protocol); the
others are this module's Starlette app.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..evaluate import Client
from ..evaluate import reasons as r
from ..snapshot import Snapshot
from .accesslog import AccessLog
from .auth import TokenAuth
from .handler import OfrepHandler, json_bytes
from .metrics import Metrics
from .service import Service, ServiceApp

DEFAULT_MAX_BODY_BYTES = 64 * 1024
ACCESS_LOGGER = "tusklang.serve.access"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Key under which handlers leave loggable (never context-valued) facts for the access log.
_ACCESS_FIELDS = "tusk.access"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(data), status_code=status, media_type="application/json", headers=headers)


class _SnapshotDigest:
    """sha256 of the live snapshot, recomputed only when a reload swapped it."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._digest = ""

    def of(self, snapshot: Snapshot) -> str:
        if snapshot is not self._snapshot:
            self._digest = hashlib.sha256(snapshot.model_dump_json().encode("utf-8")).hexdigest()
            self._snapshot = snapshot
        return self._digest


class _HeaderLimit:
    """431 for a request whose line and headers exceed ``limit`` bytes.

    h11 (``h11_max_incomplete_event_size``) refuses headers that are still incomplete past that size,
    but parses any size that arrives in one read (up to 256 KiB); this check makes the limit exact."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 32
            for name, value in scope["headers"]:
                size += len(name) + len(value) + 4
            if size > self.limit:
                body = json_bytes(
                    {"errorCode": r.GENERAL, "errorDetails": f"request headers exceed {self.limit} bytes"}
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class _AccessLog:
    """One JSON line per request: method, path, status, latency and what handlers chose to add."""

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        fields: dict[str, Any] = {}
        scope[_ACCESS_FIELDS] = fields
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if self.logger.isEnabledFor(logging.INFO):
                line = {
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    **fields,
                }
                self.logger.info(json.dumps(line, ensure_ascii=False, default=str))


def health_body(client: Client, digest: _SnapshotDigest, event_store: Any = None) -> dict[str, Any]:
    """What ``GET /health`` answers (docs/serve.md#health): always HTTP 200, ``status`` "ok" or "degraded".

    Degraded means the answers are still correct for the last good state, but something needs a look:
    the newest snapshot file was refused, Redis is unreachable, or an override record was refused. A
    503 would make a load balancer pull every replica at once for what is a control-plane problem.
    """
    snapshot = client.snapshot
    body: dict[str, Any] = {
        "status": "ok",
        "format": snapshot.format,
        "flags": len(snapshot.flags),
        "experiments": len(snapshot.experiments),
        "snapshot_sha256": digest.of(snapshot),
        "provenance": snapshot.provenance,
        "snapshot": client.snapshot_status(),
    }
    if body["snapshot"]["status"] != "ok":
        body["status"] = "degraded"
    source = getattr(client, "overrides", None)
    if source is not None:
        overrides = dict(source.status())
        # Records the watcher accepted but the snapshot refused (a removed rule, an unknown variant).
        rejected = dict(overrides.get("rejected") or {})
        for flag, reason in client.override_rejections().items():
            rejected.setdefault(flag, {"reason": reason, "serving": "the snapshot's definition"})
        overrides["rejected"] = rejected
        overrides["flags"] = [flag for flag in overrides.get("flags", []) if flag not in rejected]
        if rejected:
            overrides["status"] = "degraded"
        body["overrides"] = overrides
        if overrides.get("status") != "ok":
            body["status"] = "degraded"
    if event_store is not None:
        stats = event_store.stats()
        # Counts since the server started; `dropped` and `failed` events are also recorded in the store.
        body["events"] = {
            "queued": stats.queued,
            "written": stats.written,
            "dropped": stats.dropped,
            "failed": stats.failed,
        }
    return body


def create_app(
    client_or_path: Client | str | os.PathLike[str],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_header_bytes: int | None = None,
    watch_interval: float = 1.0,
    logger: logging.Logger | None = None,
    overrides: Any = None,
    tracker: Any = None,
    event_store: Any = None,
    timeout_stats: Any = None,
    auth: TokenAuth | None = None,
    queue_access_log: bool = False,
    metrics_worker: int = 0,
    metrics_dir: str | os.PathLike[str] | None = None,
) -> ServiceApp:
    """The OFREP ASGI app for a ``Client`` or a snapshot file (watched and hot-reloaded).

    A path is loaded now (raising ``TuskError``/``OSError`` on a bad file) and watched every
    ``watch_interval`` seconds; a bad replacement is rejected, the last good snapshot keeps serving and
    ``/health`` says ``degraded`` until a good file loads. ``overrides`` (a path only; a ``Client``
    brings its own) layers runtime overrides on top, see docs/overrides.md. ``tracker`` (a path only)
    records every evaluation served, e.g. an ``tusklang.events.EventTracker``, so experiments evaluated
    remotely get their exposures. ``event_store`` (the tracker's ``EventStore``) has its counters shown
    by ``/health`` and ``/metrics`` and is closed, which writes what is still queued, when the app shuts
    down: after the last request, whatever stopped the server (SIGTERM included). ``timeout_stats`` (a
    ``tusklang.serve.protocol.TimeoutStats`` shared with the server's protocol) adds the connections
    closed by the request deadlines to ``/health`` and ``/metrics``. ``max_header_bytes``: larger request
    lines plus headers get 431. ``auth``: bearer tokens required on the OFREP routes and ``/metrics``.
    ``queue_access_log``: write access lines from a thread (``tusk serve``). ``metrics_worker`` and
    ``metrics_dir``: this process's number and the directory where workers share their counts.
    The app's ``service`` is what ``tusk serve``'s protocol answers the evaluation routes with.
    """
    owned = not isinstance(client_or_path, Client)
    client = (
        client_or_path
        if isinstance(client_or_path, Client)
        else Client.from_file(client_or_path, watch=True, interval=watch_interval, overrides=overrides, tracker=tracker)
    )
    access_logger = logger or logging.getLogger(ACCESS_LOGGER)
    digest = _SnapshotDigest()
    service = Service(
        OfrepHandler(client, max_body_bytes),
        AccessLog(access_logger, queued=queue_access_log),
        metrics=Metrics(
            client, event_store=event_store, timeout_stats=timeout_stats, worker=metrics_worker, shared_dir=metrics_dir
        ),
        auth=auth,
        max_header_bytes=max_header_bytes,
    )

    async def configuration(request: Request) -> Response:
        return _json(
            {
                "name": "tusklang",
                "capabilities": {
                    "cacheInvalidation": {
                        "polling": {"enabled": True, "minPollingIntervalMs": max(1, int(watch_interval * 1000))}
                    },
                    "flagEvaluation": {"supportedTypes": ["boolean", "string", "integer", "float", "object"]},
                },
            }
        )

    async def health(request: Request) -> Response:
        body = health_body(client, digest, event_store)
        if timeout_stats is not None:
            body["http"] = timeout_stats.as_dict()
        return _json(body)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            try:
                if owned:
                    client.close()  # the watchers first: nothing is evaluated after this
            finally:
                try:
                    if event_store is not None:
                        event_store.close()  # flushes what is queued
                finally:
                    service.close()  # the access lines still queued, this worker's final counts

    async def evaluate(scope: Scope, receive: Receive, send: Send) -> None:
        # Reached only past ServiceApp (a request whose headers are over the limit gets 431 before it):
        # the routes are declared so that other methods get 405.
        method, path = scope["method"], scope["path"]
        route = Service.fast_route(method, path)
        assert route is not None  # the two routes below, POST only
        await outer.evaluate(route, method, path, scope["headers"], receive, send)

    inner = Starlette(
        routes=[
            Route("/ofrep/v1/evaluate/flags/{key:path}", evaluate, methods=["POST"]),
            Route("/ofrep/v1/evaluate/flags", evaluate, methods=["POST"]),
            Route("/ofrep/v1/configuration", configuration, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    if max_header_bytes is not None:
        inner.add_middleware(_HeaderLimit, limit=max_header_bytes)
    inner.add_middleware(_AccessLog, logger=access_logger)
    inner.state.client = client
    outer = ServiceApp(service, inner)
    return outer
