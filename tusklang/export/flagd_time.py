"""Time windows in flagd: the UTC offset of the context's zone as JsonLogic over `$flagd.timestamp`.

A time window needs the UTC offset of the context's `timezone` (else the flag's zone) at the evaluation
instant. Zones are grouped by identical offset history over a fixed horizon; each group gets a binary
search over its transitions, and the zone name a binary search over the names (docs/flagd.md).
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from .jsonlogic import is_str

HORIZON = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
"""Zone offsets are exact between these instants; outside, the boundary offset is kept."""

TS = {"var": "$flagd.timestamp"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- time windows -------------------------------------------------------------------------------


def _offset(tz: zoneinfo.ZoneInfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


@functools.cache
def zone_offsets(name: str) -> tuple[tuple[int, int], ...]:
    """(from, utc offset seconds) steps of a zone over the horizon; the first step's `from` is 0.

    Sampled weekly, each change located to the second by bisection: no zone changes its offset twice
    within a week (transitions are months apart)."""
    tz = zoneinfo.ZoneInfo(name)
    start, end = (int(h.timestamp()) for h in HORIZON)
    week = 7 * 86400
    current = _offset(tz, start)
    steps = [(0, current)]
    t = start
    while t < end:
        nxt = min(t + week, end)
        o = _offset(tz, nxt)
        if o != current:
            lo, hi = t, nxt
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == current:
                    lo = mid
                else:
                    hi = mid
            current = _offset(tz, hi)
            steps.append((hi, current))
            t = hi  # re-scan from the change, so a second change within the same week is found too
            continue
        t = nxt
    return tuple(steps)


@functools.cache
def zone_groups() -> tuple[tuple[tuple[tuple[int, int], ...], tuple[str, ...]], ...]:
    """Every loadable IANA zone, grouped by identical offset history over the horizon."""
    groups: dict[tuple[tuple[int, int], ...], list[str]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        try:
            groups.setdefault(zone_offsets(name), []).append(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return tuple(sorted(((k, tuple(v)) for k, v in groups.items()), key=lambda g: g[1][0]))


_DAY = 86400


def _offset_tree(steps: tuple[tuple[int, int], ...], ts: Any) -> Any:
    """The zone's UTC offset in seconds at `ts`: a binary search over its steps."""
    if len(steps) == 1:
        return steps[0][1]
    mid = len(steps) // 2
    return {"if": [{"<": [ts, steps[mid][0]]}, _offset_tree(steps[:mid], ts), _offset_tree(steps[mid:], ts)]}


def _search(keys: list[Any], leaf: Any, probe: Any) -> Any:
    """Binary search over sorted keys with `<` on `probe`; `leaf(i)` is the node for keys[i]."""
    if len(keys) == 1:
        return leaf(0)
    mid = len(keys) // 2
    left = _search(keys[:mid], leaf, probe)
    right = _search(keys[mid:], lambda i: leaf(mid + i), probe)
    return {"if": [{"<": [probe, keys[mid]]}, left, right]}


_ZONE = {"var": "timezone"}


@functools.cache
def _utc_offset_json(time_zone: str, zone_json: str = json.dumps(_ZONE)) -> str:
    """Two binary searches instead of a scan of ~600 names on every evaluation: the context's zone name
    -> its offset group (-1: the fallback zone's offsets), then the group -> an offset tree over the
    timestamp. `reduce` over one item binds [group, timestamp] to `current` between the two."""
    try:
        fallback = zone_offsets(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        fallback = zone_offsets("UTC")  # our evaluator: an invalid flag zone means UTC
    groups = [(steps, names) for steps, names in zone_groups() if steps != fallback]
    if not groups:
        return json.dumps(_offset_tree(fallback, TS))
    index = sorted((name, i) for i, (_, names) in enumerate(groups) for name in names)
    zone = json.loads(zone_json)
    # the name is read by every node of its search: anything but a plain `var` is bound once
    tz = zone if zone == _ZONE else {"var": "current"}
    names = [n for n, _ in index]
    # `<` only steers the search; the leaf's `===` decides, so a non-string zone ends at -1
    by_name = _search(names, lambda i: {"if": [{"===": [tz, index[i][0]]}, index[i][1], -1]}, tz)
    # flagd's TypeScript JsonLogic raises on `<` between a number (or list, or boolean) and a string:
    # only a string zone enters the search
    by_name = {"if": [is_str(tz), by_name, -1]}
    if tz is not zone:
        by_name = {"reduce": [[zone], by_name, -1]}
    trees = [_offset_tree(fallback, {"var": "current.1"})]
    trees += [_offset_tree(steps, {"var": "current.1"}) for steps, _ in groups]
    by_group = _search(list(range(-1, len(groups))), lambda i: trees[i], {"var": "current.0"})
    return json.dumps({"reduce": [[[by_name, TS]], by_group, 0]})


def utc_offset(time_zone: str, zone: Any = None) -> Any:
    """UTC offset (seconds) of the context's `timezone` if it is a valid IANA name, else of `time_zone`.

    `zone`: JsonLogic reading the context's zone name, when not `{"var": "timezone"}` (the targeting key
    standing in for it)."""
    return json.loads(_utc_offset_json(time_zone, json.dumps(_ZONE if zone is None else zone)))


def time_window(start: int, end: int, days: tuple[str, ...], offset: Any) -> Any:
    """Local minute in [start, end) (crossing midnight when start > end), optionally on given weekdays.

    With sod the local second of the day, the window holds iff (sod - 60 start) mod 86400 <
    (60 end - 60 start) mod 86400, one comparison for both window shapes; the local time feeds it once,
    so the offset table is evaluated once."""
    s = start * 60
    width = (end * 60 - s) % _DAY
    if not days:
        return {"<": [{"%": [{"+": [TS, offset, _DAY - s]}, _DAY]}, width]}
    # `reduce` over a one-item list binds the local time to `current` for the two tests below
    local = {"var": "current"}
    sod = {"%": [local, _DAY]}
    weekday = {"%": [{"+": [{"/": [{"-": [local, sod]}, _DAY]}, 3]}, 7]}  # 1970-01-01 was a Thursday
    body = {
        "and": [
            {"in": [weekday, sorted(_DAYS.index(d) for d in days)]},
            {"<": [{"%": [{"+": [local, _DAY - s]}, _DAY]}, width]},
        ]
    }
    return {"reduce": [[{"+": [TS, offset]}], body, False]}
