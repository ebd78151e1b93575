"""Documented limits on untrusted input, shared by every stage that reads it.

One nesting limit for TuskLang documents, snapshot JSON, OFREP bodies and override records: far above
any real file (flag configs nest 5-10 levels deep), and far enough below Python's recursion limit that
every later stage (interpreter, validation, JSON encoding, the evaluator, the language server) can walk
a value recursively without a RecursionError. docs/syntax.md states it.
"""

from __future__ import annotations

from typing import Final

MAX_DEPTH: Final = 128
"""Deepest nesting of brackets, parentheses, dotted keys and expression operators in one value."""

MAX_INT_DIGITS: Final = 4_000
"""Longest integer literal accepted (CPython refuses to convert more than 4,300 digits)."""
