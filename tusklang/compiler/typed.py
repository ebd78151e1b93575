"""A flag's variants and its one value type (docs/config.md, "Variants and value types").

A flag serves values of one type (`boolean`, `string`, `number`, `object`: a JSON object or list), so a
typed getter either always or never gets a value of its type. The type is declared (`type = "object"`)
or inferred from the first value written; the fallback, `value` and every variant must agree with it,
or the compile fails at the value that does not (TSK340). A variant whose value is not written serves
its name, as a split variant always has.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..schema._weights import WeightedVariant
from ..schema.feature_flags import FlagConfig, StructuredFallback
from ..schema.rules import VariantSpec
from ..snapshot.format import TYPE_NAMES, value_type
from .locate import Path, suggest

if TYPE_CHECKING:
    from .normalise import Normaliser

At = Callable[..., Path]


@dataclass
class Typed:
    """What the rest of the flag's lowering needs from its variants."""

    values: dict[str, Any]
    type: str
    off: str
    # variant -> weight of the flag's own split (`variants` weights or `a_b_testing`), None without one
    weights: Mapping[str, float | WeightedVariant] | None
    weights_path: Path | None = None
    # the split's descriptions from `variants = { x = { description = ... } }`
    descriptions: dict[str, str] | None = None
    # false when a value disagrees with the type (reported): the rules are still checked, for their own
    # errors, but the flag is not lowered
    ok: bool = True


PLURAL = {"boolean": "booleans", "string": "strings", "number": "numbers", "object": "objects or lists"}


def same_value(a: Any, b: Any) -> bool:
    """JSON equality with JSON's types: `true` is not `1`, `1` is `1.0`, objects compare key by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind(value: Any) -> str:
    """`a string`, `an object`...: the value's JSON kind for messages."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    found = value_type(value)
    return TYPE_NAMES[found].split(" or ")[0] if found else type(value).__name__


def resolve(values: Mapping[str, Any], want: Any) -> list[str]:
    """The variants ``want`` names: a variant's name, else every variant whose value equals it."""
    if isinstance(want, str) and want in values:
        return [want]
    return [name for name, value in values.items() if same_value(value, want)]


def typed_variants(norm: Normaliser, key: str, cfg: FlagConfig, at: At) -> Typed | None:
    """The flag's variants, type and off variant; None (with the diagnostics) when it cannot have them."""
    if cfg.variants is not None:
        return _declared(norm, key, cfg, at)
    return _legacy(norm, key, cfg, at)


def _check_types(norm: Normaliser, key: str, flag_type: str, origin: str, values: list[tuple[str, Any, Path]]) -> bool:
    ok = True
    for what, value, path in values:
        if value is None:
            norm.error(
                "TSK340", f"{what} of flag `{key}` is null", path, f"write a value of the flag's type, {flag_type}"
            )
            ok = False
        elif value_type(value) != flag_type:
            norm.error(
                "TSK340",
                f"{what} of flag `{key}` is {kind(value)} ({shown(value)}), but the flag serves "
                f"{PLURAL[flag_type]} ({origin})",
                path,
                "a flag serves values of one type, so a typed getter always gets one: make this value "
                f"{TYPE_NAMES[flag_type]}" + ("" if "declared" in origin else ", or declare the type: `type = ...`"),
            )
            ok = False
    return ok


def _declared(norm: Normaliser, key: str, cfg: FlagConfig, at: At) -> Typed | None:
    assert cfg.variants is not None
    ok = True
    if "value" in cfg.model_fields_set:
        norm.error(
            "TSK319",
            f"flag `{key}` has both `variants` and `value`",
            at("value"),
            "with `variants`, each variant holds its value; remove `value`",
            key=True,
        )
        ok = False
    values: dict[str, Any] = {}
    written: list[tuple[str, Any, Path]] = []
    weights: dict[str, float | WeightedVariant] = {}
    descriptions: dict[str, str] = {}
    for name, spec in cfg.variants.items():
        if isinstance(spec, VariantSpec):
            if "value" in spec.model_fields_set:
                values[name] = spec.value
                written.append((f"variant `{name}`", spec.value, at("variants", name, "value")))
            else:
                values[name] = name  # not written: the variant serves its name
            if spec.weight is not None:
                weights[name] = spec.weight
            if spec.description:
                descriptions[name] = spec.description
        else:
            values[name] = spec
            written.append((f"variant `{name}`", spec, at("variants", name)))
    flag_type, origin = _flag_type(cfg, written, at, default="string")
    if flag_type is None:
        return None
    derived = [(f"variant `{n}`", values[n], at("variants", n)) for n in values if not _written(n, written)]
    if derived and flag_type != "string":
        for what, _, path in derived:
            norm.error(
                "TSK340",
                f"{what} of flag `{key}` has no `value`, so it would serve its name (a string), but the flag "
                f"serves {PLURAL[flag_type]} ({origin})",
                path,
                "give it a value: `{ value = ..., weight = ... }`",
            )
        ok = False
    ok = _check_types(norm, key, flag_type, origin, written) and ok
    weights_path: Path | None = at("variants")
    ab = cfg.a_b_testing if cfg.a_b_testing is not None and cfg.a_b_testing.enabled else None
    if ab is not None:
        if weights:
            norm.error(
                "TSK319",
                f"flag `{key}` gives variant weights in both `variants` and `a_b_testing`",
                at("a_b_testing", "variants"),
                "keep the weights in one place",
            )
            ok = False
        for name in ab.variants:
            if name not in values:
                close = suggest(name, list(values))
                norm.error(
                    "TSK319",
                    f"a_b_testing names variant `{name}`, which flag `{key}` does not declare",
                    at("a_b_testing", "variants", name),
                    f"did you mean `{close}`?" if close else "declared variants: " + ", ".join(values),
                    key=True,
                )
                ok = False
        weights = dict(ab.variants)
        weights_path = at("a_b_testing", "variants")
    off = _off_variant(norm, key, cfg, values, at)
    return Typed(
        values,
        flag_type,
        off or next(iter(values)),
        weights or None,
        weights_path,
        descriptions or None,
        ok and bool(off),
    )


def _written(name: str, written: list[tuple[str, Any, Path]]) -> bool:
    return any(what == f"variant `{name}`" for what, _, _ in written)


def _flag_type(
    cfg: FlagConfig, written: list[tuple[str, Any, Path]], at: At, default: str | None
) -> tuple[str | None, str]:
    """The declared type, else that of the first value written (and where it came from, for messages)."""
    if cfg.type is not None:
        return cfg.type, f'declared `type = "{cfg.type}"`'
    for what, value, _ in written:
        found = value_type(value)
        if found is not None:
            return found, f"its first value, {what}, is {kind(value)}"
    return default, "its variants serve their names"


def _off_variant(norm: Normaliser, key: str, cfg: FlagConfig, values: dict[str, Any], at: At) -> str | None:
    """With `variants`, `fallback` names the variant served when the flag is off (or its value)."""
    if "fallback" not in cfg.model_fields_set:
        if "off" in values:
            return "off"
        norm.error(
            "TSK305",
            f"flag `{key}` declares variants but not which one it serves when off",
            at("variants"),
            f'add `fallback = "{next(iter(values))}"` (a variant name), or name a variant `off`',
            key=True,
        )
        return None
    raw = cfg.fallback.value if isinstance(cfg.fallback, StructuredFallback) else cfg.fallback
    found = resolve(values, raw)
    if len(found) == 1:
        return found[0]
    close = suggest(raw, list(values)) if isinstance(raw, str) else None
    norm.error(
        "TSK319",
        f"the fallback of flag `{key}` is {shown(raw)}, "
        + ("which several variants serve" if found else "which is neither a variant's name nor its value"),
        at("fallback"),
        f"did you mean `{close}`?" if close else "with `variants`, `fallback` names one: " + ", ".join(values),
    )
    return None


def _legacy(norm: Normaliser, key: str, cfg: FlagConfig, at: At) -> Typed | None:
    """The seed's form: a fallback, optionally `value` (served when on) or `a_b_testing` variants."""
    fallback = cfg.fallback.value if isinstance(cfg.fallback, StructuredFallback) else cfg.fallback
    written_fallback = "fallback" in cfg.model_fields_set
    if fallback is None:
        norm.error("TSK319", f"flag `{key}` has a null fallback", at("fallback"), "give a value")
        return None
    ab = cfg.a_b_testing if cfg.a_b_testing is not None and cfg.a_b_testing.enabled else None
    if "value" in cfg.model_fields_set:
        if ab is not None:
            norm.error(
                "TSK319",
                f"flag `{key}` has `value` and a_b_testing variants",
                at("value"),
                "declare each variant's value in `variants = { name = { value = ..., weight = ... } }` instead",
                key=True,
            )
            return None
        written = [("the value served when on (`value`)", cfg.value, at("value"))]
        flag_type, origin = _flag_type(cfg, written, at, default=None)
        if flag_type is None:  # `value = null`: said by the type check
            _check_types(norm, key, "boolean", "", written)
            return None
        off = "off" if flag_type == "boolean" else "fallback"
        if not written_fallback and flag_type != "boolean":
            norm.error(
                "TSK305",
                f"flag `{key}` serves {PLURAL[flag_type]} when on but has no fallback",
                at("value"),
                f"add `fallback = ...` ({TYPE_NAMES[flag_type]}): what it serves when off",
                key=True,
            )
            return None
        written.append(("the fallback", fallback, at("fallback")))
        if not _check_types(norm, key, flag_type, origin, written):
            return None
        return Typed({"on": cfg.value, off: fallback}, flag_type, off, None)
    if ab is not None:
        off = "fallback"
        if off in ab.variants:
            norm.error("TSK319", f"flag `{key}` has a variant named `fallback`", at("a_b_testing", "variants"))
        if cfg.type is not None and cfg.type != "string":
            norm.error(
                "TSK340",
                f"flag `{key}` is declared {cfg.type}, but its a_b_testing variants serve their names (strings)",
                at("type"),
                "declare the variants' values in `variants = { name = { value = ..., weight = ... } }`",
            )
            return None
        # A split variant serves its name, so the flag is a string flag and its fallback a string.
        values = {name: name for name in ab.variants}
        values[off] = norm.derived_fallback(key, fallback, written_fallback, at("fallback"))
        return Typed(values, "string", off, dict(ab.variants), at("a_b_testing", "variants"))
    if isinstance(fallback, bool):
        if cfg.type is not None and cfg.type != "boolean":
            norm.error(
                "TSK340",
                f"flag `{key}` is declared {cfg.type}, but its fallback is {kind(fallback)}"
                + ("" if written_fallback else " (the default, false)"),
                at("fallback") if written_fallback else at("type"),
                f"write `fallback = ...` ({TYPE_NAMES[cfg.type]}) and `value = ...` for when it is on",
            )
            return None
        return Typed({"on": True, "off": fallback}, "boolean", "off", None)
    if cfg.type is not None and value_type(fallback) != cfg.type:
        _check_types(
            norm, key, cfg.type, f'declared `type = "{cfg.type}"`', [("the fallback", fallback, at("fallback"))]
        )
        return None
    on_value = norm.derived_on(key, fallback, at("fallback"))
    if on_value is None:
        return None
    return Typed({"on": on_value, "fallback": fallback}, value_type(fallback) or "object", "fallback", None)
