"""Clock times ("18:00") as minute offsets from local midnight.

Only ``HH:MM`` on a 24-hour clock (00:00 to 23:59) is accepted: "18:30" is minute 1110, not hour 18.
A window ``[start, end)`` excludes its end ("06:00" stops at 05:59) and crosses midnight when
start > end. The zone is the window's ``time_zone`` (IANA, default UTC), overridden per evaluation by
a valid IANA ``timezone`` attribute in the context (docs/config.md, "Time windows").
"""

from __future__ import annotations

import re
import zoneinfo

_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def minute_of_day(text: object) -> int:
    if not isinstance(text, str):
        raise ValueError(f'a time of day is a string like "18:00", not {type(text).__name__} {text!r}')
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f'{text!r} is not a time of day; write HH:MM on a 24-hour clock, "00:00" to "23:59"')
    return int(match.group(1)) * 60 + int(match.group(2))


def check_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'{name!r} is not an IANA time zone (e.g. "UTC", "Europe/Paris")') from None
    return name
