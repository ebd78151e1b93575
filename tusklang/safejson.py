"""JSON from outside (snapshots, OFREP bodies, override records, query results) read without surprises.

`json.loads` raises RecursionError on deep nesting and a bare ValueError on integers longer than
CPython's 4,300-digit limit; every reader of untrusted JSON would have to know both. `loads` turns
every failure into one `JSONInputError` with a plain message, and refuses documents nested deeper
than `limits.MAX_DEPTH`, so no later recursive walk of the value can fail either.
"""

from __future__ import annotations

import json
from typing import Any

from .limits import MAX_DEPTH

__all__ = ["JSONInputError", "depth_exceeds", "loads"]


class JSONInputError(ValueError):
    """The text is not JSON we accept; the message says why, without echoing the input."""


def loads(text: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise JSONInputError("not valid JSON: the bytes are not UTF-8") from None
    except ValueError as exc:  # integer literals beyond CPython's digit limit, lone surrogates
        raise JSONInputError(f"not valid JSON: {exc}") from None
    if depth_exceeds(value, max_depth):
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
    return value


def depth_exceeds(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in `value` nest deeper than `max_depth` (iterative: safe at any depth)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False
