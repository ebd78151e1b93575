"""The prerequisite graph of a snapshot: cycles and chain lengths, found without recursion.

One definition for the compiler (which reports a cycle at the `requires` that closes it) and for the
snapshot loader (which refuses a hand-edited snapshot with one): a flag whose prerequisites lead back
to itself could never be evaluated, and a chain longer than ``MAX_CHAIN`` would make every evaluator
recurse that deep.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ..limits import MAX_DEPTH

MAX_CHAIN = MAX_DEPTH
"""The longest chain of prerequisites (a -> b -> ... counted in links): the one documented nesting limit."""


def cycles(graph: Mapping[str, Sequence[str]]) -> Iterator[list[str]]:
    """One cycle per group of flags that require each other, as ``[a, b, ..., a]``.

    ``graph`` maps a key to the keys it requires (unknown keys are ignored: they are reported apart).
    Roots are visited in sorted order, so the cycle reported is the same on every run.
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        trail: list[str] = [root]
        pending: list[Iterator[str]] = [iter(_known(graph, root))]
        state[root] = 1
        found: list[str] | None = None
        while pending and found is None:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[trail.pop()] = 2
                pending.pop()
            elif state.get(nxt) == 1:
                found = [*trail[trail.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                trail.append(nxt)
                pending.append(iter(_known(graph, nxt)))
        if found is not None:
            for name in trail:  # the rest of this group is not reported again
                state[name] = 2
            yield found


def too_long(graph: Mapping[str, Sequence[str]], limit: int = MAX_CHAIN) -> Iterator[list[str]]:
    """The chains longer than ``limit`` links, one per flag at the top of one (no flag with a chain that
    long requires it), as ``[top, p1, p2, ...]``. The graph must be acyclic: call ``cycles`` first.
    Iterative post-order, so a chain of thousands never overflows the stack."""
    links: dict[str, int] = {}  # key -> links in its longest chain
    nxt: dict[str, str] = {}
    entered: set[str] = set()  # a key met again before it is finished is on a cycle: not followed
    for root in sorted(graph):
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in links:
                continue
            deps = _known(graph, key)
            if not expanded:
                if key in entered:
                    continue
                entered.add(key)
                stack.append((key, True))
                stack.extend((dep, False) for dep in deps if dep not in links)
                continue
            links[key] = 0
            for dep in deps:
                if links.get(dep, 0) + 1 > links[key]:
                    links[key], nxt[key] = links.get(dep, 0) + 1, dep
    required_by_long = {nxt[k] for k, n in links.items() if n > limit}
    for key in sorted(links):
        if links[key] > limit and key not in required_by_long:
            chain = [key]
            while chain[-1] in nxt:
                chain.append(nxt[chain[-1]])
            yield chain


def _known(graph: Mapping[str, Sequence[str]], key: str) -> list[str]:
    return sorted({dep for dep in graph.get(key, ()) if dep in graph})
