"""The salt's table of CBOR heads (``unit_hasher`` in tusklang/evaluate/bucketing.py, filled on demand) gives
the hash the plain encoding gives, at every unit length around each CBOR size step and where the table ends
(ASCII texts under 128 bytes), before and after the slot is filled, in the closure and the generated code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tusklang.evaluate import Client
from tusklang.evaluate.bucketing import (
    bucket_hash,
    hash_bound,
    make_hasher,
    pick_variant,
    unit_hasher,
)

LENGTHS = [0, 1, 13, 14, 22, 23, 24, 25, *range(100, 131), 254, 255, 256, 257, 1023, 1024, 65535, 65536]


@pytest.mark.parametrize("salt", ["f", "flag_00001", "s" * 300, "é√-ß"])
def test_every_unit_length_hashes_as_the_plain_encoding(salt: str) -> None:
    hasher = make_hasher(salt)
    for _ in range(2):  # the first call fills the length's slot, the second reads it
        for length in LENGTHS:
            for unit in ("u" * length, ("é" * length)[:length]):
                assert hasher(unit) == bucket_hash(salt, unit), (salt, length)


def test_a_salt_used_by_many_flags_has_one_table() -> None:
    assert unit_hasher("shared") is unit_hasher("shared")
    heads, _ = unit_hasher("shared")
    assert len(heads) == 128 - len("shared:")


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


SALTS = ["f", "flag_00001/split", "s" * 126, "s" * 300, "é√-ß"]
UNITS = [
    *("u" * n for n in (0, 1, 20, 100, 108, 109, 110, 111, 126, 127, 128, 200)),
    "ü",
    "user-ü-7",
    "日本" * 40,
    "\x7f",
]


def _flag(salt: str, weights: list[int], pct: int | None) -> dict[str, object]:
    rule: dict[str, object] = {
        "id": "r",
        "split": {"salt": f"{salt}/split", "weights": [[f"v{i}", w] for i, w in enumerate(weights)]},
    }
    if pct is not None:
        rule["rollout"] = {"percentage": pct, "salt": salt}
    return {
        "key": "f",
        "type": "string",
        "bucket_by": "user_id",
        "variants": {f"v{i}": f"v{i}" for i in range(len(weights))} | {"off": "off"},
        "default_variant": "off",
        "off_variant": "off",
        "rules": [rule],
    }


@pytest.mark.parametrize("weights", [[50, 30, 20], [1, 0, 0, 2, 3, 0, 4], [100_000], [0, 1]])
@pytest.mark.parametrize("pct", [None, 1, 33_333, 99_999])
def test_generated_splits_and_rollouts_bucket_every_unit_as_the_plain_encoding(
    weights: list[int], pct: int | None
) -> None:
    """Chained (up to four variants) and bisected splits behind a fixed rollout, for ASCII units on both
    sides of the 128-byte text where the str heads end, non-ASCII units, and salts the str table cannot
    serve (too long, not ASCII)."""
    total = sum(weights)
    for salt in SALTS:
        snapshot = {"format": "tusklang.snapshot/1", "scale": 100_000, "flags": {"f": _flag(salt, weights, pct)}}
        client = Client(snapshot)
        for unit in [*UNITS, 7, 2**70]:
            text = str(unit)
            if pct is not None and (bucket_hash(salt, text) * 100_000) >> 32 >= pct:
                want = "off"
            else:
                want = pick_variant(
                    (bucket_hash(f"{salt}/split", text) * total) >> 32, [(f"v{i}", w) for i, w in enumerate(weights)]
                )
            assert client.evaluate("f", {"user_id": unit}).variant == want, (salt, unit)


def test_the_table_holds_ascii_heads_of_the_lengths_seen_and_stops_where_cbor_heads_stop_being_ascii() -> None:
    heads, hasher = unit_hasher("ab-table")
    assert len(heads) == 128 - len("ab-table:") and not any(heads)
    hasher("u" * 7)
    hasher("ü" * 7)  # not ASCII: no slot
    assert [k for k, head in enumerate(heads) if head] == [7]
    assert heads[7] is not None and heads[7].isascii() and heads[7].endswith("ab-table:")
    assert unit_hasher("é")[0] == [] and unit_hasher("s" * 127)[0] == []


@given(st.integers(0, 2**32 - 1), st.integers(1, 2**31), st.data())
def test_comparing_the_hash_with_hash_bound_is_comparing_the_bucket(h: int, total: int, data: st.DataObject) -> None:
    bound = data.draw(st.integers(0, total))
    least = hash_bound(bound, total)
    assert (((h * total) >> 32) < bound) == (h < least)
    # and at the edge itself, where an off-by-one would show
    for edge in (least - 1, least):
        if 0 <= edge < 2**32:
            assert (((edge * total) >> 32) < bound) == (edge < least)
