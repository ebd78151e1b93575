"""`requires = { other_flag = "on" }`: prerequisites, resolved once every flag of the project is lowered.

A prerequisite names a flag (or an experiment) of the same project and the variants it must serve: by
name, or by value (`requires = { other = true }` means every variant of `other` whose value is `true`),
or a list of either. An unknown flag or a value no variant has is TSK343; a cycle (or a chain longer
than the snapshot allows) is TSK344 at the `requires` entry that closes it, with the whole cycle in the
message and every link as a related span.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Related
from ..snapshot.prerequisites import MAX_CHAIN, cycles, too_long
from .locate import Path, suggest
from .typed import resolve, shown

if TYPE_CHECKING:
    from .normalise import FlagSource, Normaliser


def link(
    norm: Normaliser,
    sources: Mapping[str, FlagSource],
    flags: dict[str, dict[str, Any]],
    experiments: Mapping[str, dict[str, Any]],
    declared: set[str],
) -> None:
    """Add `prerequisites` to the lowered flags that have `requires`.

    ``declared`` holds every key defined anywhere (a flag that failed to lower is not "unknown": its own
    error says what is wrong).
    """
    targets: dict[str, dict[str, Any]] = {**experiments, **flags}
    graph: dict[str, list[str]] = {k: [] for k in targets}  # every key: a chain ends at one without requires
    places: dict[tuple[str, str], Path] = {}
    for key, source in sources.items():
        requires = source.config.requires
        if not requires:
            continue
        path: Path = (*source.path, "requires")
        prerequisites: list[dict[str, Any]] = []
        for other, want in requires.items():
            where = (*path, other)
            places[(key, other)] = where
            target = targets.get(other)
            if target is None:
                if other not in declared:
                    close = suggest(other, sorted(set(targets) | declared))
                    norm.error(
                        "TSK343",
                        f"flag `{key}` requires `{other}`, which is not a flag or experiment of this project",
                        where,
                        f"did you mean `{close}`?" if close else None,
                        key=True,
                    )
                continue
            variants = _variants(norm, key, other, want, target["variants"], where)
            if variants:
                prerequisites.append({"flag": other, "variants": variants})
        graph[key] = [str(p["flag"]) for p in prerequisites]
        if prerequisites and key in flags:  # a flag that failed to lower has its own error
            flags[key]["prerequisites"] = prerequisites
    found = list(cycles(graph))
    for cycle in found:
        _cycle(norm, cycle, places)
    for chain in [] if found else too_long(graph):  # chain lengths exist only without cycles
        norm.error(
            "TSK344",
            f"flag `{chain[0]}` starts a chain of {len(chain) - 1} prerequisites "
            f"({' -> '.join(chain[:3])} -> ... -> {chain[-1]}); at most {MAX_CHAIN} are allowed",
            places[(chain[0], chain[1])],
            "require the flag at the end of the chain directly",
            key=True,
        )


def _variants(norm: Normaliser, key: str, other: str, want: Any, variants: dict[str, Any], where: Path) -> list[str]:
    """The variants of ``other`` that ``want`` names (a name, a value, or a list of either), in its order."""
    wanted = want if isinstance(want, list) else [want]
    chosen: set[str] = set()
    for index, item in enumerate(wanted):
        found = resolve(variants, item)
        if not found:
            close = suggest(item, list(variants)) if isinstance(item, str) else None
            norm.error(
                "TSK343",
                f"flag `{key}` requires `{other}` to serve {shown(item)}, which is neither a variant of "
                f"`{other}` nor the value of one",
                (*where, index) if isinstance(want, list) else where,
                f"did you mean `{close}`?"
                if close
                else f"variants of `{other}`: " + ", ".join(f"{n} = {shown(v)}" for n, v in variants.items()),
            )
        chosen.update(found)
    if isinstance(want, list) and not want:
        norm.error("TSK343", f"flag `{key}` requires `{other}` to serve one of no variants", where)
    return [name for name in variants if name in chosen]


def _cycle(norm: Normaliser, cycle: list[str], places: Mapping[tuple[str, str], Path]) -> None:
    links = list(itertools.pairwise(cycle))
    # reported at the last link, the one that closes the cycle; every link is a related span
    last = places[links[-1]]
    related = tuple(
        Related(span, f"`{a}` requires `{b}`")
        for a, b in links[:-1]
        if (span := norm.locator.key(places[(a, b)])) is not None
    )
    text = " -> ".join(cycle)
    norm.diagnostics.append(
        Diagnostic(
            "TSK344",
            f"prerequisites form a cycle: {text}",
            norm.locator.key(last),
            hint="a flag cannot depend on itself, directly or through others: remove one `requires` of the cycle",
            related=related,
        )
    )
