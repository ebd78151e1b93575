"""Consent for analytics (`security_config.compliance.consent_tracking`): which context values allow it.

Consent must be given, so anything not clearly a yes is a no: a context without the attribute, `false`,
`"denied"`, an unknown word or a number records nothing. The forms accepted are the ones consent
tools hand over:

- `true`;
- the strings `"granted"`, `"analytics"` or `"all"` (any case, surrounding blanks ignored);
- a list of purposes containing `"analytics"` or `"all"` (a consent-management platform's categories);
- an object whose `analytics` or `analytics_storage` key (Google Consent Mode) holds `true` or
  `"granted"`.

The evaluation never depends on this: the tracker only decides whether to record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DEFAULT_ATTRIBUTE: Final = "consent"
_WORDS: Final = frozenset({"granted", "analytics", "all"})
_PURPOSES: Final = frozenset({"analytics", "all"})
_KEYS: Final = ("analytics", "analytics_storage")
_MAX_ITEMS: Final = 64  # a purpose list longer than this is not a consent record; bounded work per event


def allows_analytics(value: object) -> bool:
    """Whether a context's consent attribute value allows recording analytics events."""
    if value is True:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _WORDS
    if isinstance(value, list | tuple):
        if len(value) > _MAX_ITEMS:
            return False
        return any(isinstance(item, str) and item.strip().lower() in _PURPOSES for item in value)
    if isinstance(value, Mapping):
        for key in _KEYS:
            found = value.get(key)
            if found is True or (isinstance(found, str) and found.strip().lower() == "granted"):
                return True
        return False
    return False


__all__ = ["DEFAULT_ATTRIBUTE", "allows_analytics"]
