"""Bit-exact bucketing: murmur3_x86_32 (seed 0, unsigned) over the canonical CBOR text string
``salt + ":" + unit``, then ``bucket = (h * W) >> 32``.

This is flagd's ``fractional`` v3 with the bucketing expression ``{"cat": [salt + ":", {"var": bucket_by}]}``,
so a flagd export of a snapshot assigns every unit the same variant. The CBOR header is built directly
(cbor2 per call costs ~6 us; ``unit_hasher`` costs ~0.1 us). Test vectors: fixtures/conformance/bucketing.json.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import mmh3

_hash = mmh3.hash


def cbor_head(n: int) -> bytes:
    """The canonical CBOR head (major type 3) of a text string of ``n`` UTF-8 bytes."""
    if n < 24:
        return bytes((0x60 + n,))
    if n < 0x100:
        return b"\x78" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\x79" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x7a" + n.to_bytes(4, "big")
    return b"\x7b" + n.to_bytes(8, "big")


def cbor_text(data: bytes) -> bytes:
    """Canonical CBOR encoding (major type 3) of a text string given as its UTF-8 bytes."""
    return cbor_head(len(data)) + data


def hash_bound(bound: int, total: int) -> int:
    """The least unsigned 32-bit hash ``h`` with ``(h * total) >> 32 >= bound``: ``bucket < bound`` is
    ``h < hash_bound(bound, total)``, a comparison where the bucket needs a multiplication and a shift."""
    return -((-bound << 32) // total)


def bucket_hash(salt: str, unit: str) -> int:
    """Unsigned 32-bit murmur3 of the CBOR text ``salt:unit``."""
    return _hash(cbor_text(f"{salt}:{unit}".encode()), 0, False)


def bucket(salt: str, unit: str, total: int) -> int:
    """The unit's bucket in ``[0, total)``."""
    return (bucket_hash(salt, unit) * total) >> 32


def pick_variant(bucket_value: int, weights: Sequence[tuple[str, int]]) -> str:
    """The first variant whose cumulative weight exceeds the bucket."""
    cumulative = 0
    for variant, weight in weights:
        cumulative += weight
        if bucket_value < cumulative:
            return variant
    raise ValueError(f"bucket {bucket_value} outside total weight {cumulative}")


def admits(salt: str, unit: str, percentage: int, scale: int) -> bool:
    """Monotone gate: a unit admitted at p stays admitted at any p' > p."""
    return bucket(salt, unit, scale) < percentage


def unit_id(value: object) -> str | None:
    """The unit id string bucketed for a context value: strings as-is, integers in decimal; anything
    else (missing, null, bool, float, list) is not a usable unit id."""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is int:
        return str(value)
    return None


# Shared by a flag's closure and its generated code, and by the flags of one snapshot using one salt.
@functools.lru_cache(maxsize=1024)
def unit_hasher(salt: str) -> tuple[list[str | None], Callable[[str], int]]:
    """(``heads``, ``hasher``) for one salt: ``hasher(unit)`` is ``bucket_hash(salt, unit)``.

    ``heads[k]``, once a unit of ``k`` ASCII characters has been hashed, is the CBOR head of the text
    ``salt:unit`` followed by ``salt:``, as a str. Below 128 bytes a CBOR head's bytes are ASCII, so
    ``heads[k] + unit`` encodes to exactly the CBOR bytes, and mmh3 hashes an ASCII str's bytes in place:
    one concatenation and one murmur3 per call, no ``encode()`` (the generated code inlines this; see
    fused.py). The list has one slot per length that stays under 128 bytes (none for a salt that is not
    ASCII) and is filled on demand: a table built ahead for every length cost 100 MB for a 5,000-flag
    snapshot's 10,000 salts, where units come in a few lengths. Two threads filling one slot write the
    same str. Other units (not ASCII, or longer) take ``bucket_hash``.
    """
    prefix = f"{salt}:"
    plen = len(prefix)
    heads: list[str | None] = [None] * (128 - plen) if salt.isascii() and plen < 128 else []
    limit = len(heads)
    hash_ = _hash

    def hasher(unit: str) -> int:
        if unit.isascii():
            k = len(unit)
            if k < limit:
                head = heads[k]
                if head is None:
                    head = heads[k] = cbor_head(plen + k).decode("ascii") + prefix
                return hash_(head + unit, 0, False)
        return bucket_hash(salt, unit)

    return heads, hasher


def make_hasher(salt: str) -> Callable[[str], int]:
    """A fast ``unit -> unsigned hash`` function for one salt (``unit_hasher``)."""
    return unit_hasher(salt)[1]
