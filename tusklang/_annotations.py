"""Reading pydantic field annotations: the compiler (positions, allowed keys) and the language server
(hover, completion) walk the same config models."""

from __future__ import annotations

import types
import typing
from typing import Any


def unwrap(annotation: Any) -> list[Any]:
    """The plain types an annotation allows: ``Annotated`` unwrapped, unions flattened."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(unwrap(arg))
        return out
    return [annotation]
