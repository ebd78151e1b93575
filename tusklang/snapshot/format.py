"""The snapshot's format name and default scale, and the value rules the compiler shares with the loader.

Plain Python, no pydantic: the compiler's checks (a variant's type, a semver operand, a regex that must
compile) import these without the snapshot models, so `tusk check` never builds those (issue 19).
``validate.py`` applies the same rules to a snapshot it loads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

FORMAT = "tusklang.snapshot/1"
DEFAULT_SCALE = 100_000


def percent_on_scale(percent: float, scale: int) -> tuple[int, bool]:
    """``percent`` (0..100) in units of ``scale``, rounded, and whether that is exact (to 1e-6 of a unit).
    Where a person writes a percentage, a finer one is an error: the compiler's TSK311, `tusk flags`' TSK701."""
    exact = percent * scale / 100
    rounded = round(exact)
    return rounded, math.isclose(exact, rounded, abs_tol=1e-6)


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    # a JSON object or array: what OpenFeature's object getters return (structure / list)
    "object": lambda v: isinstance(v, dict | list),
}
TYPE_NAMES = {"boolean": "a boolean", "string": "a string", "number": "a number", "object": "an object or a list"}


def value_type(value: Any) -> str | None:
    """The flag type a variant value has (``boolean``, ``string``, ``number``, ``object``), None for null."""
    for name, check in TYPE_CHECKS.items():
        if check(value):
            return name
    return None


def is_semver(text: str) -> bool:
    """Whether ``text`` is a version the ``semver_*`` conditions accept (SemVer 2.0; a leading ``v`` and a
    missing minor/patch allowed)."""
    return _SEMVER.match(text) is not None


def clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a ``matches`` condition (Python ``re`` syntax), or None when it compiles."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression {clip(repr(pattern))}: {exc}"
    except (RecursionError, OverflowError, ValueError, MemoryError):
        # sre's parser recurses once per group: ~1000 nested parentheses overflow it.
        return f"regular expression {clip(repr(pattern))} is too deeply nested to compile"
    return None
