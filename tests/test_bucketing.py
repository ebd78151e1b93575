"""Bucketing: exact encoding, uniformity, monotone growth and independence of salts."""

from __future__ import annotations

import cbor2
import mmh3
import pytest
from scipy.stats import chi2_contingency

from tusklang.evaluate.bucketing import bucket, bucket_hash, cbor_text, make_hasher, pick_variant, unit_id

SCALE = 100_000
IDS = [f"user-{i}" for i in range(200_000)]


@pytest.mark.parametrize("length", [0, 1, 22, 23, 24, 25, 254, 255, 256, 257, 65_535, 65_536, 70_000])
def test_cbor_header_matches_cbor2_canonical_encoding(length: int) -> None:
    text = ("é" * length)[:length]  # 2-byte UTF-8 chars push byte lengths over the boundaries too
    for s in (text, "a" * length):
        assert cbor_text(s.encode()) == cbor2.dumps(s, canonical=True)


def test_fast_hasher_equals_reference_hash() -> None:
    for salt in ("s", "new_checkout_flow/rollout", "x" * 40):
        fast = make_hasher(salt)
        for uid in ["", "1", "user-42", "ü" * 30, "z" * 300]:
            expected = mmh3.hash(cbor2.dumps(f"{salt}:{uid}", canonical=True), 0, signed=False)
            assert fast(uid) == bucket_hash(salt, uid) == expected


def test_25_percent_rollout_admits_25_percent() -> None:
    admitted = sum(1 for uid in IDS if bucket("quarter/rollout", uid, SCALE) < 25_000)
    assert abs(admitted / len(IDS) - 0.25) <= 0.005


def test_50_30_20_split_within_half_a_point() -> None:
    weights = [("a", 50_000), ("b", 30_000), ("c", 20_000)]
    counts = {"a": 0, "b": 0, "c": 0}
    for uid in IDS:
        counts[pick_variant(bucket("exp/split", uid, SCALE), weights)] += 1
    for name, weight in weights:
        assert abs(counts[name] / len(IDS) - weight / SCALE) <= 0.005, counts


def test_growing_25_to_50_percent_keeps_every_admitted_unit() -> None:
    at_25 = {uid for uid in IDS[:50_000] if bucket("grow/rollout", uid, SCALE) < 25_000}
    at_50 = {uid for uid in IDS[:50_000] if bucket("grow/rollout", uid, SCALE) < 50_000}
    assert at_25 and at_25 <= at_50 and len(at_50) > len(at_25)


def _independence_p(salt_a: str, salt_b: str) -> float:
    table = [[0, 0, 0], [0, 0, 0]]
    weights = [("a", 50_000), ("b", 30_000), ("c", 20_000)]
    index = {"a": 0, "b": 1, "c": 2}
    for uid in IDS[:100_000]:
        gate = 0 if bucket(salt_a, uid, SCALE) < 25_000 else 1
        table[gate][index[pick_variant(bucket(salt_b, uid, SCALE), weights)]] += 1
    return float(chi2_contingency(table)[1])


def test_rollout_and_split_of_one_flag_are_independent() -> None:
    assert _independence_p("f/rollout", "f/split") > 0.001
    # The same salt for both is exactly the correlation the seed had: the test must see it.
    assert _independence_p("f/rollout", "f/rollout") < 1e-12


def test_two_flags_rollouts_are_independent() -> None:
    table = [[0, 0], [0, 0]]
    for uid in IDS[:100_000]:
        a = bucket("flag_a/rollout", uid, SCALE) < 25_000
        b = bucket("flag_b/rollout", uid, SCALE) < 25_000
        table[a][b] += 1
    assert chi2_contingency(table)[1] > 0.001


def test_sub_percent_resolution() -> None:
    # 0.5% is expressible (500 on the 100000 scale); the seed's `% 100` could not.
    admitted = sum(1 for uid in IDS if bucket("tiny/rollout", uid, SCALE) < 500)
    assert 0.004 <= admitted / len(IDS) <= 0.006


def test_zero_weight_variant_never_picked() -> None:
    weights = [("a", 0), ("b", 70), ("c", 30)]
    picked = {pick_variant(bucket("z", uid, 100), weights) for uid in IDS[:5_000]}
    assert picked == {"b", "c"}


def test_unit_id_accepts_strings_and_integers_only() -> None:
    assert unit_id("u1") == "u1"
    assert unit_id(42) == "42"
    for bad in (None, True, 1.5, ["u"], {"id": 1}):
        assert unit_id(bad) is None
