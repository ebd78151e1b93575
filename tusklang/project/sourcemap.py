"""The source map: the span of every value and key of a project's data, by data path.

Built by the interpreter as it walks each file (tusklang/interpret.py) and grafted across `@file`
includes, so a path inside included data points into the included file. Every later stage (schema
diagnostics, normalising, lint, secrets, the dashboard and delivery loaders) asks it where a value
came from. The tables leave out what the text around a stored span tells (a bare key before its
value, a literal array's items: tusklang/derived_spans.py), so they are read through ``Locator``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..derived_spans import derive_item, derive_key
from ..diagnostics import Span

Path = tuple[str | int, ...]


class Locator:
    """Spans of every value and key, by data path; falls back to the nearest enclosing value."""

    def __init__(
        self,
        spans: Mapping[Path, Span],
        key_spans: Mapping[Path, Span],
        display: Mapping[str, str] | None = None,
    ) -> None:
        self.spans = spans
        self.key_spans = key_spans
        # file name as spans carry it -> path relative to the project, for text that lands in the snapshot
        self.display = display or {}

    def origin(self, path: Path) -> str | None:
        span = self.key(path)
        if span is None:
            return None
        return f"{self.display.get(span.file, span.file)}:{span.line}"

    def value(self, path: Path) -> Span | None:
        for end in range(len(path), 0, -1):
            span = self.spans.get(path[:end])
            if span is not None:
                if end < len(path) and type(path[end]) is int:  # an item of a literal array is not stored
                    return derive_item(span, path[end]) or span
                return span
        return None

    def key(self, path: Path) -> Span | None:
        """The key's span, else the value's (an array item has no key)."""
        return self.written_key(path) or self.value(path)

    def written_key(self, path: Path) -> Span | None:
        """The span of the key written for ``path`` itself, with no fallback."""
        span = self.key_spans.get(path)
        if span is None and path and type(path[-1]) is str:
            value = self.spans.get(path)
            if value is not None:  # a bare key before its value is not stored
                span = derive_key(value, path[-1])
        return span


def data_path(data: Any, loc: Sequence[str | int]) -> Path:
    """The loc parts that name real keys/indexes of ``data`` (union tags and validator names dropped)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, Mapping) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif index == len(loc) - 1 and isinstance(node, Mapping) and isinstance(part, str):
            path.append(part)  # a missing or an unknown key
        # anything else is a union tag or a validator name, not a place in the data
    return tuple(path)


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
