"""PII masking of unit ids: a keyed hash (HMAC-SHA256), so ids stay joinable but cannot be reversed.

A plain hash of a user id is not masking: ids are guessable (`u123`, e-mail addresses) and a dictionary
attack recovers them. With a secret key only its holder can compute the mapping. The key comes from the
constructor or the environment variable TUSK_PII_KEY; there is no default, and masking refuses to start
without one. Exposures and conversions use the same key, so the report's join on unit_id still works;
rotating the key splits every unit in two, so rotate between experiments.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from ..db.errors import MASKING_KEY_CODE, CodedError

ENV_KEY: Final = "TUSK_PII_KEY"
MIN_KEY_BYTES: Final = 16
_CACHE_LIMIT: Final = 65_536


class MaskingKeyError(CodedError, ValueError):
    """pii_masking is on but no usable key was given (TSK257; also a ValueError, as it always was)."""

    def __init__(self, message: str) -> None:
        super().__init__(
            MASKING_KEY_CODE, message, hint=f"set {ENV_KEY}, e.g. `export {ENV_KEY}=$(openssl rand -hex 32)`"
        )


class Masker:
    """`mask(unit_id)` -> hex HMAC-SHA256 of the id under the key, cached for the hot path."""

    def __init__(self, key: str | bytes | None = None) -> None:
        if key is None:
            key = os.environ.get(ENV_KEY) or None
        if key is None:
            raise MaskingKeyError(
                f"pii_masking is on but there is no key: set the environment variable {ENV_KEY} "
                "(at least 16 bytes, e.g. `openssl rand -hex 32`) or pass pii_key="
            )
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < MIN_KEY_BYTES:
            raise MaskingKeyError(f"the pii_masking key must be at least {MIN_KEY_BYTES} bytes, got {len(raw)}")
        self._key = raw
        self._cache: dict[str, str] = {}

    def mask(self, unit_id: str) -> str:
        cache = self._cache
        found = cache.get(unit_id)
        if found is None:
            found = hmac.new(self._key, unit_id.encode("utf-8"), hashlib.sha256).hexdigest()
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # bounded memory; a refill costs one HMAC per unit
            cache[unit_id] = found
        return found

    def __repr__(self) -> str:
        return "Masker(key=***)"
