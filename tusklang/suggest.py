"""Did-you-mean suggestions with bounded work, as rustc bounds them.

A suggestion is a courtesy; it must never make a run slow. Each lookup examines at most
`MAX_CANDIDATES` names (the caller passes the most relevant first, e.g. the innermost scope), skips
names whose length alone rules them out, and computes an edit distance that stops as soon as it
exceeds the allowed distance. With n unknown names and n definitions that is O(n), not O(n^2).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Final

MAX_CANDIDATES: Final = 500


def did_you_mean(word: str, candidates: Iterable[str], *, max_candidates: int = MAX_CANDIDATES) -> str | None:
    """The closest candidate within an edit distance of about a third of `word`'s length, or None."""
    if not word or len(word) > 200:
        return None
    limit = max(1, len(word) // 3)
    lowered = word.lower()
    letters = set(lowered)
    best: str | None = None
    best_distance = limit + 1
    for candidate in islice(candidates, max_candidates):
        if candidate == word or abs(len(candidate) - len(word)) >= best_distance or len(candidate) > 200:
            continue
        other = candidate.lower()
        if other == lowered:
            return candidate
        # A cheap lower bound first (set operations run in C): every letter one name has and the
        # other lacks costs at least one edit. It rejects most candidates for ~1 us instead of ~50.
        other_letters = set(other)
        if len(letters - other_letters) >= best_distance or len(other_letters - letters) >= best_distance:
            continue
        distance = bounded_distance(lowered, other, best_distance - 1)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def bounded_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance with transpositions counted as one edit, or `limit + 1` once it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        row_min = i
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
            row_min = min(row_min, value)
        if row_min > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1] if previous[-1] <= limit else limit + 1
