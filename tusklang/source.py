"""A source file: text plus the offset <-> line/column arithmetic every stage needs.

Offsets are code-point indexes into ``text``. Lines and columns are 1-based and counted in code
points (as Lark does); ``utf16_column`` converts for the language server, which counts UTF-16 units.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from functools import cached_property


class SourceFile:
    __slots__ = ("__dict__", "path", "text")

    def __init__(self, text: str, path: str | None = None) -> None:
        self.text = text
        self.path = path

    def __reduce__(self) -> tuple[type[SourceFile], tuple[str, str | None]]:
        # Only the text and path: the rest of __dict__ is derived (line starts, the Span class).
        return (SourceFile, (self.text, self.path))

    @property
    def name(self) -> str:
        return self.path if self.path is not None else "<string>"

    @cached_property
    def line_starts(self) -> array[int]:
        # An array, not a list: a list held an int object per line (32 bytes each, 48 MB for a file of
        # 1.2 million lines, alive from the first position asked for until the end of a compile).
        starts = array("q", [0])
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column), both 1-based, for a code-point offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def offset(self, line: int, column: int) -> int:
        """Inverse of ``position`` (clamped to the text)."""
        starts = self.line_starts
        line = max(1, min(line, len(starts)))
        return min(starts[line - 1] + column - 1, len(self.text))

    def line_text(self, line: int) -> str:
        starts = self.line_starts
        if line < 1 or line > len(starts):
            return ""
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def utf16_column(self, line: int, column: int) -> int:
        """0-based UTF-16 column (LSP) for a 1-based code-point column."""
        prefix = self.line_text(line)[: column - 1]
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in prefix)
