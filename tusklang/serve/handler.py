"""The two OFREP evaluation routes as plain functions of bytes: no request or response objects.

Both ways into the server use this: the ASGI app (``ofrep.create_app``, for any ASGI server and the
test client) and ``tusk serve``'s fast path, which answers these routes straight from the HTTP protocol
(``protocol.py``). So both give the same answers, statuses and access-log fields.

Where the time goes, and what this does about it (docs/serve.md#performance):

- bodies are parsed by orjson; only what orjson refuses, or what it would read differently from the
  ``json`` module (integers beyond 64 bits, which it turns into floats), goes through ``safejson``,
  which words the 400;
- a success body depends only on the flag and (variant, reason, rule, prerequisite): it is encoded once
  per snapshot and reused, so a bulk answer is a join of cached fragments;
- which attributes the targeting key stands in for is decided per group of flags sharing their unit
  attributes, not per flag.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import orjson

from .. import safejson
from ..evaluate import Client
from ..evaluate import reasons as r
from ..evaluate.result import EvaluationResult
from ..limits import MAX_DEPTH
from ..openfeature.mapping import TargetingKey, fill, flag_metadata
from ..openfeature.mapping import definition as definition_of
from ..snapshot import Snapshot

FLAG_PREFIX = "/ofrep/v1/evaluate/flags/"
BULK_PATH = "/ofrep/v1/evaluate/flags"
BULK = "\x00bulk"  # the route of a bulk request (no flag key can be this: keys never hold NUL)

# A JSON integer literal orjson would read as a float (beyond 64 bits): parsed by the json module instead.
_LONG_INTEGER = re.compile(rb"\d{19,}")
_STATUS_OF_ERROR = {r.FLAG_NOT_FOUND: 404, r.GENERAL: 500}
_CACHE_LIMIT = 100_000


class RequestProblem(Exception):
    """A request the server cannot evaluate: rendered as an OFREP error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def json_bytes(data: Any) -> bytes:
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the json module writes it exactly
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def is_json_media_type(header: str | None) -> bool:
    """No Content-Type (an empty body), ``application/json`` or any ``+json`` type, with any parameters.

    Anything else is refused: a browser may send ``text/plain`` cross-origin without a preflight, so
    accepting it would let any web page evaluate flags from a visitor's network."""
    if header is None or header == "application/json":
        return True
    media = header.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _shallow(context: dict[str, Any]) -> bool | None:
    """For a context orjson parsed: True when it holds no float (so no integer beyond 64 bits read as a
    float) and nests no deeper than a list of scalars, None when it holds a float but nests no deeper,
    False when it nests deeper. (orjson itself refuses lone surrogates, NaN and infinities.)"""
    plain: bool | None = True
    for value in context.values():
        kind = type(value)
        if kind is float:
            plain = None
        elif kind is dict:
            return False
        elif kind is list:
            for item in value:
                kind = type(item)
                if kind is dict or kind is list:
                    return False
                if kind is float:
                    plain = None
    return plain


def unrepresentable(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a parsed body cannot be evaluated or logged, else None: nested deeper than ``max_depth``, a
    number that is NaN or out of range (1e999 parses as infinity), or a string with a lone surrogate
    (``"\\ud800"`` parses, but can be neither logged nor stored as UTF-8). Iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "a string holds a lone UTF-16 surrogate"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "a number is NaN or out of range"
        elif isinstance(item, dict):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels"
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels"
            stack.extend((child, depth + 1) for child in item)
    return None


def parse_body(raw: bytes) -> Any:
    """The request body as JSON, or RequestProblem(400) saying why not."""
    if raw[:3] == b"\xef\xbb\xbf":  # JSON is UTF-8 (RFC 8259); a byte-order mark is tolerated
        raw = raw[3:]
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _parse_slowly(raw)
    # orjson refused lone surrogates, NaN and infinities. Left to check: the nesting limit, and integer
    # literals beyond 64 bits, which orjson reads as floats where the json module keeps them exact.
    if type(body) is dict and len(body) == 1 and type(context := body.get("context")) is dict:
        plain = _shallow(context)
        if plain:
            return body
        if plain is None and _LONG_INTEGER.search(raw) is None:
            return body
    if _LONG_INTEGER.search(raw) is not None or safejson.depth_exceeds(body):
        return _parse_slowly(raw)
    return body


def _parse_slowly(raw: bytes) -> Any:
    """What orjson refused (or would misread): the json module decides, and words the error."""
    try:
        body = safejson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestProblem(400, r.PARSE_ERROR, "request body is not valid JSON: the bytes are not UTF-8") from None
    except safejson.JSONInputError as exc:
        raise RequestProblem(400, r.PARSE_ERROR, f"request body is {exc}") from None
    problem = unrepresentable(body)
    if problem is not None:
        raise RequestProblem(400, r.PARSE_ERROR, f"request body is not valid JSON: {problem}")
    return body


def read_context(
    content_type: str | None, raw: bytes, fields: dict[str, Any], too_large: int | None = None
) -> dict[str, Any]:
    """The evaluation context of an OFREP request body; RequestProblem for anything else. ``too_large``:
    the body was refused unread for exceeding that many bytes."""
    if not is_json_media_type(content_type):
        raise RequestProblem(415, r.PARSE_ERROR, "request body must be JSON (Content-Type: application/json)")
    if too_large is not None:
        raise RequestProblem(413, r.GENERAL, f"request body exceeds {too_large} bytes")
    if not raw or raw.isspace():
        return {}
    body = parse_body(raw)
    if not isinstance(body, dict):
        raise RequestProblem(400, r.PARSE_ERROR, "request body must be a JSON object")
    context = body.get("context", {})
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise RequestProblem(400, r.INVALID_CONTEXT, "`context` must be a JSON object")
    key = context.get("targetingKey")
    if key is not None and not isinstance(key, str):
        # OpenFeature's targeting key is a string; a list or an object would be bucketed as garbage.
        raise RequestProblem(400, r.INVALID_CONTEXT, "`context.targetingKey` must be a string")
    fields["context_keys"] = sorted(context)
    return context


def etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def success(result: EvaluationResult, found: Any) -> dict[str, Any]:
    return {
        "key": result.flag,
        "value": result.value,
        "reason": result.reason,
        "variant": result.variant,
        "metadata": flag_metadata(found, result.rule, result.prerequisite),
    }


def failure(key: str, code: str, detail: str) -> dict[str, Any]:
    return {"key": key, "errorCode": code, "errorDetails": detail}


def problem_body(problem: RequestProblem, key: str | None) -> bytes:
    if key is None:
        return json_bytes({"errorCode": problem.code, "errorDetails": problem.detail})
    return json_bytes(failure(key, problem.code, problem.detail))


class _PerSnapshot:
    """What is derived from one snapshot: encoded success bodies, and flags grouped by unit attributes."""

    def __init__(self, snapshot: Snapshot, targeting: TargetingKey) -> None:
        self.snapshot = snapshot
        self.keys = [*snapshot.flags, *snapshot.experiments]
        groups: dict[tuple[str, ...], list[str]] = {}
        for key in self.keys:
            groups.setdefault(targeting.attributes(snapshot, key), []).append(key)
        self.groups = list(groups.items())
        # key -> the attributes the targeting key may stand in for (TargetingKey.attributes), as asked.
        self.unit_attributes: dict[str, tuple[str, ...]] = {}
        self.bodies: dict[tuple[Any, ...], bytes] = {}
        # The evaluator hands out one result object for each outcome that does not depend on the unit
        # (disabled, a default, a whole rule): found here by identity. The entry holds the object, so
        # its id cannot be reused while it is cached; bounded, as fresh results pass through it too.
        self.by_identity: dict[int, tuple[EvaluationResult, bytes]] = {}
        self.identity_limit = 4 * len(self.keys) + 64

    def body(self, result: EvaluationResult) -> bytes:
        hit = self.by_identity.get(id(result))
        if hit is not None and hit[0] is result:
            return hit[1]
        found = self._body(result)
        if len(self.by_identity) >= self.identity_limit:
            self.by_identity.clear()
        self.by_identity[id(result)] = (result, found)
        return found

    def _body(self, result: EvaluationResult) -> bytes:
        value = result.value
        if isinstance(value, dict | list):  # not hashable; rare enough to encode each time
            return json_bytes(success(result, definition_of(self.snapshot, result.flag)))
        # The value is part of the key (with its type: True and 1 are equal keys, but not equal JSON).
        cache_key = (result.flag, result.variant, result.reason, result.rule, result.prerequisite, type(value), value)
        found = self.bodies.get(cache_key)
        if found is None:
            found = json_bytes(success(result, definition_of(self.snapshot, result.flag)))
            if len(self.bodies) >= _CACHE_LIMIT:
                self.bodies.clear()
            self.bodies[cache_key] = found
        return found


class OfrepHandler:
    """Answers the evaluation routes: ``flag()`` and ``bulk()`` return (status, body[, etag])."""

    def __init__(self, client: Client, max_body_bytes: int, observe: Any = None) -> None:
        self.client = client
        self.max_body_bytes = max_body_bytes
        self.targeting = TargetingKey()
        self._state: _PerSnapshot | None = None
        # Called with each result served (metrics); None when nobody listens.
        self.observe = observe

    def _current(self) -> _PerSnapshot:
        snapshot = self.client.snapshot
        state = self._state
        if state is None or state.snapshot is not snapshot:
            state = self._state = _PerSnapshot(snapshot, self.targeting)
        return state

    def flag(
        self, key: str, content_type: str | None, raw: bytes, fields: dict[str, Any], too_large: bool = False
    ) -> tuple[int, bytes]:
        fields["flag"] = key
        try:
            context = read_context(content_type, raw, fields, self.max_body_bytes if too_large else None)
        except RequestProblem as problem:
            return problem.status, problem_body(problem, key)
        state = self._current()
        if "targetingKey" in context:
            # The targeting key under each unit attribute of the flag (and its prerequisites) it lacks,
            # as TargetingKey.context does; the attributes looked up once per flag and snapshot.
            attributes = state.unit_attributes.get(key)
            if attributes is None:
                attributes = self.targeting.attributes(state.snapshot, key)
                if len(state.unit_attributes) < _CACHE_LIMIT:
                    state.unit_attributes[key] = attributes
            if len(attributes) == 1:
                if context.get(attributes[0]) is None:
                    context = {**context, attributes[0]: context["targetingKey"]}
            elif attributes:
                context = fill(context, tuple(name for name in attributes if context.get(name) is None))
        result = self.client.evaluate(key, context)
        fields["reason"] = result.reason
        if self.observe is not None:
            self.observe((result,))
        if result.error_code is None:
            return 200, state.body(result)
        fields["error_code"] = result.error_code
        status = _STATUS_OF_ERROR.get(result.error_code, 400)
        return status, json_bytes(failure(key, result.error_code, result.detail or result.error_code))

    def bulk(
        self,
        content_type: str | None,
        raw: bytes,
        if_none_match: str | None,
        fields: dict[str, Any],
        too_large: bool = False,
    ) -> tuple[int, bytes, str | None]:
        try:
            context = read_context(content_type, raw, fields, self.max_body_bytes if too_large else None)
        except RequestProblem as problem:
            return problem.status, problem_body(problem, None), None
        state = self._current()
        client = self.client
        if "targetingKey" in context:
            unit = context["targetingKey"]
            kinds = {
                group: tuple(name for name in attributes if context.get(name) is None)
                for group, (attributes, _) in enumerate(state.groups)
            }
        else:
            unit, kinds = None, {}
        distinct = set(kinds.values())
        if len(distinct) <= 1:
            # One context for every flag (the common case: they all bucket by the same attribute): one
            # evaluate_all, so a prerequisite shared by many flags is evaluated once.
            missing = distinct.pop() if distinct else ()
            everything = client.evaluate_all({**context, **dict.fromkeys(missing, unit)} if missing else context)
            results = [everything[key] for key in state.keys if key in everything]
        else:
            by_key: dict[str, EvaluationResult] = {}
            for group, (_, keys) in enumerate(state.groups):
                filled = fill(context, kinds[group])
                for key in keys:
                    by_key[key] = client.evaluate(key, filled)
            results = [by_key[key] for key in state.keys]
        if self.observe is not None:
            self.observe(results)
        parts = [
            state.body(result)
            if result.error_code is None
            else json_bytes(failure(result.flag, result.error_code, result.detail or result.error_code))
            for result in results
        ]
        body = b'{"flags":[' + b",".join(parts) + b"]}"
        # The ETag hashes the answer itself, so it changes exactly when a reload or the clock changes it.
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        fields["flags"] = len(parts)
        if etag_matches(if_none_match, etag):
            return 304, b"", etag
        return 200, body, etag
