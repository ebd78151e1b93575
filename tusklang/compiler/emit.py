"""Canonical snapshot JSON: sorted keys, fixed layout, so identical inputs give identical bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Objects this deep (top level, sections such as `flags`, each flag) are laid out one member per line,
# and a list of objects there (a flag's `rules`) one item per line, so a review diff shows which rule
# of which flag changed; anything deeper is one line. Below that
# depth json's C encoder does the work: the pure-Python indenting encoder took ~1 s on 5,000 flags.
PRETTY_DEPTH = 3

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(", ", ": "), check_circular=False
)


def _make_compact() -> Callable[[Any], str]:
    """``_ENCODER.encode``, minus the C encoder it builds afresh on every call (a snapshot of 5,000
    flags makes ~100,000 calls): the same C encoder, made once, with the same settings."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython without the _json accelerator
        return _ENCODER.encode
    quote = json.encoder.encode_basestring  # ensure_ascii=False
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
    encode = make(None, _ENCODER.default, quote, None, ": ", ", ", True, False, False)

    def compact(value: Any) -> str:
        if type(value) is str:
            return quote(value)
        return "".join(encode(value, 0))

    return compact


_compact = _make_compact()


def canonical_json(snapshot: dict[str, Any]) -> str:
    """The one byte layout of a snapshot: sorted keys, UTF-8, no NaN, nested objects below depth 3 inline."""
    out: list[str] = []
    _write(snapshot, 0, out)
    out.append("\n")
    return "".join(out)


def _write(value: Any, depth: int, out: list[str]) -> None:
    if depth <= PRETTY_DEPTH and type(value) is list and value and all(type(item) is dict for item in value):
        inner = ",\n" + "  " * (depth + 1)
        out.append("[\n" + "  " * (depth + 1))
        out.append(inner.join(map(_compact, value)))
        out.append("\n" + "  " * depth + "]")
        return
    if depth >= PRETTY_DEPTH or type(value) is not dict or not value:
        out.append(_compact(value))
        return
    inner = "\n" + "  " * (depth + 1)
    out.append("{")
    first = True
    for key in sorted(value):
        if type(key) is not str:
            raise TypeError(f"snapshot keys must be strings, not {type(key).__name__}")
        out.append(inner if first else "," + inner)
        first = False
        out.append(_compact(key))
        out.append(": ")
        _write(value[key], depth + 1, out)
    out.append("\n" + "  " * depth + "}")
