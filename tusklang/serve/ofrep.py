"""An OpenFeature Remote Evaluation Protocol (OFREP) server over the reference evaluator.

Endpoints: ``POST /ofrep/v1/evaluate/flags/{key}``, ``POST /ofrep/v1/evaluate/flags`` (bulk, with an
ETag), ``GET /ofrep/v1/configuration`` and ``GET /health``. Evaluation is delegated to
``tusklang.evaluate.Client`` unchanged, so a remote answer equals a local one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .. import safejson
from ..evaluate import Client
from ..evaluate import reasons as r
from ..evaluate.result import EvaluationResult
from ..openfeature.mapping import TargetingKey, fill, flag_metadata
from ..openfeature.mapping import definition as definition_of
from ..snapshot import Snapshot

DEFAULT_MAX_BODY_BYTES = 64 * 1024
ACCESS_LOGGER = "tusklang.serve.access"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Key under which handlers leave loggable (never context-valued) facts for the access log.
_ACCESS_FIELDS = "tusk.access"


class _RequestProblem(Exception):
    """A request the server cannot evaluate: rendered as an OFREP error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_json_bytes(data), status_code=status, media_type="application/json", headers=headers)


def _success(result: EvaluationResult, found: Any) -> dict[str, Any]:
    metadata = flag_metadata(found, result.rule, result.prerequisite)
    return {
        "key": result.flag,
        "value": result.value,
        "reason": result.reason,
        "variant": result.variant,
        "metadata": metadata,
    }


def _failure(key: str, code: str, detail: str) -> dict[str, Any]:
    return {"key": key, "errorCode": code, "errorDetails": detail}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _RequestProblem(413, r.GENERAL, f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # a chunked body has no Content-Length: count while reading
                raise _RequestProblem(413, r.GENERAL, f"request body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client went away, or the server closed a body that did not arrive in time (--body-timeout):
        # nobody reads this answer, but the access log records it.
        raise _RequestProblem(408, r.GENERAL, "the request body did not arrive") from None
    return b"".join(chunks)


def _is_json_media_type(header: str | None) -> bool:
    """No Content-Type (an empty body), ``application/json`` or any ``+json`` type, with any parameters.

    Anything else is refused: a browser may send ``text/plain`` cross-origin without a preflight, so
    accepting it would let any web page evaluate flags from a visitor's network."""
    if header is None:
        return True
    media = header.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _unrepresentable(value: Any) -> str | None:
    """Why a parsed body cannot be evaluated or logged, else None: a number that is NaN or out of range
    (1e999 parses as infinity), or a string with a lone surrogate (``"\\ud800"`` parses, but can be
    neither logged nor stored as UTF-8). Iterative, and bounded by the depth safejson allowed."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return "a number is NaN or out of range"
        elif isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "a string holds a lone UTF-16 surrogate"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


async def _read_context(request: Request, limit: int) -> dict[str, Any]:
    if not _is_json_media_type(request.headers.get("content-type")):
        raise _RequestProblem(415, r.PARSE_ERROR, "request body must be JSON (Content-Type: application/json)")
    raw = await _read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        # JSON is UTF-8 (RFC 8259); a byte-order mark is tolerated, UTF-16 guessing is not.
        body = safejson.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise _RequestProblem(400, r.PARSE_ERROR, "request body is not valid JSON: the bytes are not UTF-8") from None
    except safejson.JSONInputError as exc:
        raise _RequestProblem(400, r.PARSE_ERROR, f"request body is {exc}") from None
    if not isinstance(body, dict):
        raise _RequestProblem(400, r.PARSE_ERROR, "request body must be a JSON object")
    problem = _unrepresentable(body)
    if problem is not None:
        raise _RequestProblem(400, r.PARSE_ERROR, f"request body is not valid JSON: {problem}")
    context = body.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise _RequestProblem(400, r.INVALID_CONTEXT, "`context` must be a JSON object")
    key = context.get("targetingKey")
    if key is not None and not isinstance(key, str):
        # OpenFeature's targeting key is a string; a list or an object would be bucketed as garbage.
        raise _RequestProblem(400, r.INVALID_CONTEXT, "`context.targetingKey` must be a string")
    request.scope[_ACCESS_FIELDS]["context_keys"] = sorted(context)
    return context


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


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
                body = _json_bytes(
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
) -> Starlette:
    """The OFREP ASGI app for a ``Client`` or a snapshot file (watched and hot-reloaded).

    A path is loaded now (raising ``TuskError``/``OSError`` on a bad file) and watched every
    ``watch_interval`` seconds; a bad replacement is rejected, the last good snapshot keeps serving and
    ``/health`` says ``degraded`` until a good file loads. ``overrides`` (a path only; a ``Client``
    brings its own) layers runtime overrides on top, see docs/overrides.md. ``tracker`` (a path only)
    records every evaluation served, e.g. an ``tusklang.events.EventTracker``, so experiments evaluated
    remotely get their exposures. ``event_store`` (the tracker's ``EventStore``) has its counters shown
    by ``/health`` and is closed, which writes what is still queued, when the app shuts down: after the
    last request, whatever stopped the server (SIGTERM included). ``timeout_stats`` (a
    ``tusklang.serve.protocol.TimeoutStats`` shared with the server's protocol) adds the connections
    closed by the request deadlines to ``/health``. ``max_header_bytes``: larger request lines plus
    headers get 431.
    """
    owned = not isinstance(client_or_path, Client)
    client = (
        client_or_path
        if isinstance(client_or_path, Client)
        else Client.from_file(client_or_path, watch=True, interval=watch_interval, overrides=overrides, tracker=tracker)
    )
    access_logger = logger or logging.getLogger(ACCESS_LOGGER)
    digest = _SnapshotDigest()
    targeting = TargetingKey()

    async def evaluate_flag(request: Request) -> Response:
        key = request.path_params["key"]
        request.scope[_ACCESS_FIELDS]["flag"] = key
        try:
            context = await _read_context(request, max_body_bytes)
        except _RequestProblem as problem:
            return _json(_failure(key, problem.code, problem.detail), problem.status)
        snapshot = client.snapshot
        definition = definition_of(snapshot, key)
        result = client.evaluate(key, targeting.context(snapshot, key, context))
        request.scope[_ACCESS_FIELDS]["reason"] = result.reason
        if result.error_code is None:
            return _json(_success(result, definition))
        request.scope[_ACCESS_FIELDS]["error_code"] = result.error_code
        status = {r.FLAG_NOT_FOUND: 404, r.GENERAL: 500}.get(result.error_code, 400)
        return _json(_failure(key, result.error_code, result.detail or result.error_code), status)

    async def evaluate_bulk(request: Request) -> Response:
        try:
            context = await _read_context(request, max_body_bytes)
        except _RequestProblem as problem:
            return _json({"errorCode": problem.code, "errorDetails": problem.detail}, problem.status)
        snapshot = client.snapshot
        keys = [*snapshot.flags, *snapshot.experiments]
        missing = {key: targeting.missing(snapshot, key, context) for key in keys}
        kinds = set(missing.values())
        if len(kinds) <= 1:
            # One context for every flag (the common case: they all bucket by the same attribute): one
            # evaluate_all, so a prerequisite shared by many flags is evaluated once.
            results = client.evaluate_all(fill(context, kinds.pop() if kinds else ()))
            pairs = [(key, results[key]) for key in keys if key in results]
        else:
            pairs = [(key, client.evaluate(key, fill(context, missing[key]))) for key in keys]
        flags: list[dict[str, Any]] = []
        for key, result in pairs:
            if result.error_code is None:
                flags.append(_success(result, definition_of(snapshot, key)))
            else:
                flags.append(_failure(key, result.error_code, result.detail or result.error_code))
        body = _json_bytes({"flags": flags})
        # The ETag hashes the answer itself, so it changes exactly when a reload or the clock changes it.
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        request.scope[_ACCESS_FIELDS]["flags"] = len(flags)
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})

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
                if event_store is not None:
                    event_store.close()  # flushes what is queued

    app = Starlette(
        routes=[
            Route("/ofrep/v1/evaluate/flags/{key:path}", evaluate_flag, methods=["POST"]),
            Route("/ofrep/v1/evaluate/flags", evaluate_bulk, methods=["POST"]),
            Route("/ofrep/v1/configuration", configuration, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    if max_header_bytes is not None:
        app.add_middleware(_HeaderLimit, limit=max_header_bytes)
    app.add_middleware(_AccessLog, logger=access_logger)
    app.state.client = client
    return app
