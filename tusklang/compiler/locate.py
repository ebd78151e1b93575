"""From a pydantic error location to the .tsk span of the bad value, with "did you mean" for keys.

The source map itself (Locator) is the project loader's (tusklang/project/sourcemap.py); its names are
re-exported here for the compiler's modules.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .._annotations import unwrap
from ..diagnostics import Diagnostic
from ..project.sourcemap import Locator, Path, data_path, dotted
from ..suggest import MAX_CANDIDATES, did_you_mean
from .peer_names import flag_key_hint, operator_for

__all__ = [
    "Locator",
    "Path",
    "allowed_keys",
    "data_path",
    "dotted",
    "suggest",
    "validation_diagnostics",
]


def _model_in(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return None


def _step(tp: Any, part: str | int) -> Any:
    for option in unwrap(tp):
        model = _model_in(option)
        if model is not None and isinstance(part, str):
            for name, info in model.model_fields.items():
                if part in (name, info.alias):  # `not` is the field `not_`
                    return info.annotation
        origin = typing.get_origin(option)
        if origin is dict:
            return typing.get_args(option)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(option)[0]
    return None


def allowed_keys(root: type[BaseModel], parent: Path) -> list[str]:
    tp: Any = root
    for part in parent:
        tp = _step(tp, part)
        if tp is None:
            return []
    for option in unwrap(tp):
        model = _model_in(option)
        if model is not None:
            return [info.alias or name for name, info in model.model_fields.items()]
    return []


def suggest(name: str, candidates: Sequence[str]) -> str | None:
    return _suggest(name, tuple(candidates))


@functools.lru_cache(maxsize=4096)
def _suggest(name: str, candidates: tuple[str, ...]) -> str | None:
    # Cached: thousands of flags name the same few application-computed segments. A schema's keys
    # (a handful) keep difflib's ratio, which also offers completions of a cut-off key (`pii_mask` ->
    # `pii_masking`, beyond an edit distance of a third); a long list (segment names from a database)
    # gets the bounded search (tusklang.suggest), so one miss never scans thousands of names.
    if len(candidates) > MAX_CANDIDATES:
        return did_you_mean(name, candidates)
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return close[0] if close else None


_RANGE = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "too_short": "at least {min_length} item(s) long",
}
_TYPES = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list [...]",
    "dict_type": "an object { ... }",
    "model_type": "an object { ... }",
    "model_attributes_type": "an object { ... }",
    "int_from_float": "a whole number",
    "timedelta_type": 'a duration like "5 minutes"',
}


def _describe(value: Any) -> str:
    from ..values import DirectiveCall

    if isinstance(value, DirectiveCall):
        return f"an unresolved @{value.name}(...)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def validation_diagnostics(
    exc: ValidationError,
    data: Any,
    locator: Locator,
    root: type[BaseModel],
    prefix: Path = (),
    rename: Mapping[str, str] | None = None,
) -> list[Diagnostic]:
    """One TSK30x diagnostic per pydantic error, at the span of the offending value or key."""
    diagnostics: list[Diagnostic] = []
    paths: list[Path] = []
    typo_fixes: set[Path] = set()
    seen: set[tuple[Path, str]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        local = data_path(data, loc)
        if rename and local and isinstance(local[0], str):
            local = (rename.get(local[0], local[0]), *local[1:])
        path = (*prefix, *local)
        kind = error["type"]
        if (path, kind) in seen:
            continue
        seen.add((path, kind))
        where = dotted(path)
        hint = None
        if kind == "extra_forbidden":
            key = str(path[-1])
            known = allowed_keys(root, tuple(p for p in local[:-1]))
            close = suggest(key, known)
            code, message = (
                "TSK301",
                (
                    f"unknown key `{key}` in `{dotted(path[:-1])}`"
                    if len(path) > 1
                    else f"unknown top-level block `{key}`"
                ),
            )
            if close:
                hint = f"did you mean `{close}`?"
            elif peer := flag_key_hint(key, known):
                hint = peer
            elif known:
                hint = "allowed keys: " + ", ".join(f"`{k}`" for k in known)
            span = locator.key(path)
        elif kind == "missing":
            code, message = "TSK305", f"`{where}` is required"
            hint = "add it to the object"
            span = locator.value(path[:-1])
        elif kind in _TYPES:
            code = "TSK302"
            message = f"`{where}` must be {_TYPES[kind]}, not {_describe(error.get('input'))}"
            span = locator.value(path)
        elif kind in _RANGE:
            code = "TSK303"
            ctx = {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in (error.get("ctx") or {}).items()}
            bound = _RANGE[kind].format(**ctx)
            message = f"`{where}` must be {bound}, got {_describe(error.get('input'))}"
            span = locator.value(path)
        elif kind == "literal_error":
            code = "TSK304"
            expected = (error.get("ctx") or {}).get("expected", "")
            message = f"`{where}` is {_describe(error.get('input'))}; expected one of {expected}"
            value = error.get("input")
            options = [s.strip().strip("'") for s in str(expected).replace(" or ", ", ").split(",")]
            close = None
            if isinstance(value, str):  # another system's name for one of ours first: difflib cannot see those
                close = operator_for(value, options) or suggest(value, options)
            hint = f"did you mean '{close}'?" if close else None
            span = locator.value(path)
        else:
            code = "TSK304"
            text = str(error["msg"]).removeprefix("Value error, ")
            message = f"`{where}`: {text}"
            span = locator.value(path)
        diagnostics.append(Diagnostic(code, message, span, hint=hint))
        paths.append(path)
        if kind == "extra_forbidden" and hint and hint.startswith("did you mean"):
            typo_fixes.add((*path[:-1], str(close)))
    # A required key reported missing because it was misspelt: the typo's diagnostic says it all.
    return [d for d, p in zip(diagnostics, paths, strict=True) if not (d.code == "TSK305" and p in typo_fixes)]
