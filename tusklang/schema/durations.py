"""Durations ("5 minutes", "30 days") and sizes ("100MB"): one strict grammar each.

A duration is ``<whole number> <unit>`` with unit second(s), minute(s), hour(s), day(s) or week(s).
A size is ``<whole number><unit>`` with unit B, KB, MB, GB (powers of 1024; a space is allowed).
Nothing else is accepted (no "5m", no fractions, no bare numbers) so a typo cannot silently become a
different period.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)\s*(second|seconds|minute|minutes|hour|hours|day|days|week|weeks)")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_SIZE = re.compile(r"(\d+)\s*(B|KB|MB|GB)", re.IGNORECASE)
_SIZE_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f'a duration is a string like "5 minutes", not {type(value).__name__} {value!r}')
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration; write <whole number> <unit> with unit seconds, minutes, "
            'hours, days or weeks, e.g. "30 seconds", "5 minutes", "90 days"'
        )
    count, unit = int(match.group(1)), match.group(2).removesuffix("s")
    return timedelta(seconds=count * _UNIT_SECONDS[unit])


def parse_size(value: object) -> int:
    """Bytes of ``"100MB"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f'a size is a string like "100MB", not {type(value).__name__} {value!r}')
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a size; write <whole number><unit> with unit B, KB, MB or GB")
    return int(match.group(1)) * _SIZE_BYTES[match.group(2).upper()]
