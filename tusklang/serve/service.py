"""The server around the OFREP handler: bearer-token auth, metrics, the access log, and a lean ASGI app.

``Service.answer`` is the one implementation of the two evaluation routes, whichever way a request
came in: ``ServiceApp`` (ASGI: any server, the test client) or ``tusk serve``'s HTTP protocol, which
calls it directly from its parser callbacks (``protocol.py``), without an ASGI task, scope or
messages per request. Every other route (``/health``, ``/ofrep/v1/configuration``, 404s and 405s) goes
to the Starlette app of ``ofrep.create_app``; ``/metrics`` is answered here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .accesslog import AccessLog
from .auth import UNAUTHORIZED_BODY, TokenAuth
from .handler import BULK, BULK_PATH, FLAG_PREFIX, OfrepHandler, RequestProblem, problem_body
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics, route_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
_UNAUTHORIZED_HEADERS: Headers = [(b"www-authenticate", b'Bearer realm="tusk serve"')]


class Service:
    def __init__(
        self,
        handler: OfrepHandler,
        access_log: AccessLog,
        *,
        metrics: Metrics | None = None,
        auth: TokenAuth | None = None,
        max_header_bytes: int | None = None,
    ) -> None:
        self.handler = handler
        self.access_log = access_log
        self.metrics = metrics
        self.auth = auth
        self.max_header_bytes = max_header_bytes
        if metrics is not None:
            handler.observe = metrics.evaluated

    @staticmethod
    def fast_route(method: str, path: str) -> str | None:
        """The flag key (or ``BULK``) of an evaluation request; None for every other request."""
        if method != "POST":
            return None
        if path.startswith(FLAG_PREFIX):
            return path[len(FLAG_PREFIX) :]
        if path == BULK_PATH:
            return BULK
        return None

    def headers_too_large(self, raw_path: bytes, query: bytes, headers: Headers) -> bool:
        """Whether the request line and headers exceed ``max_header_bytes`` (then ``ofrep`` answers 431)."""
        if self.max_header_bytes is None:
            return False
        size = len(raw_path) + len(query) + 32
        for name, value in headers:
            size += len(name) + len(value) + 4
        return size > self.max_header_bytes

    def authorized(self, headers: Headers) -> bool:
        if self.auth is None:
            return True
        for name, value in headers:
            if name == b"authorization":
                return self.auth.allowed(value)
        return self.auth.allowed(None)

    def answer(
        self, route: str, headers: Headers, body: bytes, too_large: bool, fields: dict[str, Any]
    ) -> tuple[int, Headers, bytes]:
        """(status, extra headers, body) of an evaluation request; ``fields`` gets the access-log facts."""
        content_type = if_none_match = None
        authorization: bytes | None = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        if self.auth is not None and not self.auth.allowed(authorization):
            return 401, _UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY
        handler = self.handler
        if route is BULK:
            status, payload, etag = handler.bulk(content_type, body, if_none_match, fields, too_large)
            return status, ([(b"etag", etag.encode("ascii"))] if etag is not None else []), payload
        status, payload = handler.flag(route, content_type, body, fields, too_large)
        return status, [], payload

    def finish(
        self, method: str, path: str, status: int, started: float, fields: dict[str, Any], route: str | None = None
    ) -> None:
        """After an answer: metrics and the access log. ``route``: the metrics route, when the caller knows it."""
        latency = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.request(route or route_of(path), status, latency)
        self.access_log.record(method, path, status, latency, fields)

    def metrics_response(self, headers: Headers) -> tuple[int, Headers, bytes]:
        if not self.authorized(headers):
            return 401, [(b"content-type", JSON), *_UNAUTHORIZED_HEADERS], UNAUTHORIZED_BODY
        assert self.metrics is not None
        return 200, [(b"content-type", METRICS_CONTENT_TYPE.encode("ascii"))], self.metrics.render()

    def close(self) -> None:
        try:
            if self.metrics is not None:
                self.metrics.close()
        finally:
            self.access_log.close()


class ServiceApp:
    """ASGI: the evaluation routes and ``/metrics`` here, everything else to ``inner`` (Starlette)."""

    def __init__(self, service: Service, inner: Any) -> None:
        self.service = service
        self.inner = inner
        self.state = inner.state  # `app.state.client`, as create_app's Starlette app has it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        service = self.service
        method, path = scope["method"], scope["path"]
        route = service.fast_route(method, path)
        headers = scope["headers"]
        if route is not None and not service.headers_too_large(
            scope.get("raw_path") or b"", scope.get("query_string") or b"", headers
        ):
            await self.evaluate(route, method, path, headers, receive, send)
            return
        started = time.perf_counter()
        if path == "/metrics" and method == "GET" and service.metrics is not None:
            status, extra, payload = service.metrics_response(headers)
            await _respond(send, status, extra, payload)
            service.finish(method, path, status, started, {})
            return
        if path == "/ofrep/v1/configuration" and not service.authorized(headers):
            await _respond(send, 401, [(b"content-type", JSON), *_UNAUTHORIZED_HEADERS], UNAUTHORIZED_BODY)
            service.finish(method, path, 401, started, {})
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, capture)  # logs its own access line
        finally:
            if service.metrics is not None:
                service.metrics.request(route_of(path), status, time.perf_counter() - started)

    async def evaluate(
        self, route: str, method: str, path: str, headers: Headers, receive: Receive, send: Send
    ) -> None:
        service = self.service
        started = time.perf_counter()
        limit = service.handler.max_body_bytes
        fields: dict[str, Any] = {}
        too_large = False
        chunks: list[bytes] = []
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            too_large = True  # refused without reading it
        else:
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    # The client went away, or the server closed a body that did not arrive in time
                    # (--body-timeout): nobody reads this answer, but the access log records it.
                    problem = RequestProblem(408, "GENERAL", "the request body did not arrive")
                    payload = problem_body(problem, None if route is BULK else route)
                    await _respond(send, 408, [(b"content-type", JSON)], payload)
                    service.finish(method, path, 408, started, fields if route is BULK else {"flag": route})
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:  # a chunked body has no Content-Length: count while reading
                    too_large = True
                    break
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        status, extra, payload = service.answer(route, headers, b"".join(chunks), too_large, fields)
        await _respond(send, status, [(b"content-type", JSON), *extra] if payload else extra, payload)
        service.finish(method, path, status, started, fields)


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    if status != 304:
        headers = [*headers, (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
