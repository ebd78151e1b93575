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
_quote = json.encoder.encode_basestring  # ensure_ascii=False, as _compact's


def canonical_pieces(snapshot: dict[str, Any]) -> list[str]:
    """The one byte layout of a snapshot (sorted keys, UTF-8, no NaN, nested objects below depth 3 inline),
    in pieces of about one flag each: joined, they are the snapshot's text (``CompileResult.text``);
    `tusk compile` writes them one by one, with no joined copy."""
    # Pieces of one list: a string per level (the `flags` section, then the whole) was three copies
    # of the text at once.
    out: list[str] = []
    _write(snapshot, 0, out)
    out.append("\n")
    return out


def _write(value: Any, depth: int, out: list[str]) -> None:
    kind = type(value)
    if kind is dict and value and depth < PRETTY_DEPTH:
        inner = "\n" + "  " * (depth + 1)
        keys = _sorted_keys(value)
        if depth + 1 < PRETTY_DEPTH:
            out.append("{")
            for index, key in enumerate(keys):
                out.append(("," + inner if index else inner) + _quote(key) + ": ")
                _write(value[key], depth + 1, out)
            out.append("\n" + "  " * depth + "}")
            return
        # A flag, the bulk of a snapshot: one string, its common values without a call of their own.
        members: list[str] = []
        append = members.append
        for key in keys:
            item = value[key]
            kind = type(item)
            if kind is str:
                append(_quote(key) + ": " + _quote(item))
            elif kind is bool:
                append(_quote(key) + (": true" if item else ": false"))
            elif kind is list and item and all(type(row) is dict for row in item):
                append(_quote(key) + ": " + _rows(item, depth + 1))
            else:
                append(_quote(key) + ": " + _compact(item))
        out.append("{" + inner + ("," + inner).join(members) + "\n" + "  " * depth + "}")
    elif kind is list and value and depth <= PRETTY_DEPTH and all(type(item) is dict for item in value):
        out.append(_rows(value, depth))
    else:
        out.append(_compact(value))


def _sorted_keys(value: dict[Any, Any]) -> list[str]:
    keys = sorted(value)
    for key in keys:
        if type(key) is not str:
            raise TypeError(f"snapshot keys must be strings, not {type(key).__name__}")
    return keys


def _rows(value: list[dict[str, Any]], depth: int) -> str:
    """A list of objects (a flag's `rules`): one per line."""
    inner = "\n" + "  " * (depth + 1)
    return "[" + inner + ("," + inner).join(map(_compact, value)) + "\n" + "  " * depth + "]"
