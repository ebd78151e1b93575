"""The precomputed CBOR heads (tusklang/evaluate/bucketing.py) give the hash the plain encoding gives, at
every unit length around each CBOR size step and the end of the table, in the closure and the generated code."""

from __future__ import annotations

import pytest

from tusklang.evaluate import Client
from tusklang.evaluate.bucketing import PRECOMPUTED_UNIT_BYTES, bucket_hash, make_hasher, salted_heads

LENGTHS = sorted(
    {0, 1, 22, 23, 24, 25, 254, 255, 256, 257, 65535, 65536, PRECOMPUTED_UNIT_BYTES - 1, PRECOMPUTED_UNIT_BYTES}
    | {PRECOMPUTED_UNIT_BYTES + 1, 2 * PRECOMPUTED_UNIT_BYTES}
)


@pytest.mark.parametrize("salt", ["f", "flag_00001", "s" * 300, "é√-ß"])
def test_every_unit_length_hashes_as_the_plain_encoding(salt: str) -> None:
    hasher = make_hasher(salt)
    for length in LENGTHS:
        for unit in ("u" * length, ("é" * length)[:length]):
            assert hasher(unit) == bucket_hash(salt, unit), (salt, length)


def test_a_salt_used_by_many_flags_has_one_table() -> None:
    assert salted_heads("shared") is salted_heads("shared")
    prefix, heads = salted_heads("shared")
    assert len(heads) == len(prefix) + PRECOMPUTED_UNIT_BYTES


def test_generated_code_buckets_long_units_as_the_closures_do() -> None:
    flag = {
        "key": "f",
        "type": "boolean",
        "enabled": True,
        "bucket_by": "user_id",
        "variants": {"on": True, "off": False},
        "default_variant": "off",
        "off_variant": "off",
        "rules": [{"id": "r", "conditions": [], "rollout": {"percentage": 50_000, "salt": "f"}, "serve": "on"}],
    }
    snapshot = {"format": "tusklang.snapshot/1", "scale": 100_000, "flags": {"f": flag}}
    client = Client(snapshot)
    for length in LENGTHS:
        unit = "u" * length
        bucket = (bucket_hash("f", unit) * 100_000) >> 32
        want = "on" if bucket < 50_000 else "off"
        assert client.evaluate("f", {"user_id": unit}).variant == want, length
