"""Judging one interval's samples: health checks (breach fraction), canary-vs-stable comparisons (means
of both sides) and feature gates (mean).

Each returns one :class:`CheckResult` per metric so every decision can say which value, against which
threshold or which stable value, in which direction, caused it. A metric with fewer than
``min_samples`` samples (on either side, for a comparison) is ``no_data``: neither a pass nor a failure.
A sample may stand for ``count`` observations (an aggregate from the event store): it weighs that much.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .metrics import Sample
from .policy import Check, CompareCheck, Direction, Gate


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class CheckResult:
    metric: str
    direction: str
    threshold: float | None  # the absolute threshold; None for a comparison
    samples: int
    mean: float | None
    breach_fraction: float | None
    verdict: Verdict
    # A comparison (kind "compare"): the stable side and the bounds.
    kind: str = "threshold"
    stable_mean: float | None = None
    stable_samples: int | None = None
    max_ratio: float | None = None
    max_difference: float | None = None
    ratio: float | None = None  # how many times worse the canary is (1 = as good)
    difference: float | None = None  # how much worse, in the metric's unit (<= 0 = as good or better)

    def explain(self) -> str:
        if self.kind == "compare":
            return self._explain_compare()
        op = "<=" if self.direction == "lower" else ">="
        if self.verdict is Verdict.NO_DATA:
            return f"{self.metric}: {self.samples} sample(s), too few to judge"
        assert self.mean is not None and self.threshold is not None
        text = f"{self.metric} mean {self.mean:g} (want {op} {self.threshold:g}, n={self.samples}"
        if self.breach_fraction is not None:
            text += f", {self.breach_fraction:.0%} of samples breach"
        return text + f"): {self.verdict.value}"

    def _explain_compare(self) -> str:
        if self.verdict is Verdict.NO_DATA:
            return (
                f"{self.metric} canary vs stable: {self.samples} canary / {self.stable_samples or 0} stable "
                "sample(s), too few to judge"
            )
        assert self.mean is not None and self.stable_mean is not None
        wants = []
        if self.max_ratio is not None and self.ratio is not None:
            wants.append(f"{_times(self.ratio)} worse, want <= {self.max_ratio:g}x")
        if self.max_difference is not None and self.difference is not None:
            wants.append(f"{self.difference:+g} worse, want <= {self.max_difference:g}")
        return (
            f"{self.metric} canary {self.mean:g} vs stable {self.stable_mean:g} ({'; '.join(wants)}; "
            f"n={self.samples}/{self.stable_samples}): {self.verdict.value}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        if data["ratio"] is not None and math.isinf(data["ratio"]):
            data["ratio"] = None  # JSON has no infinity; `explain` says "infinitely"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        known["verdict"] = Verdict(known["verdict"])
        return cls(**known)


def _times(ratio: float) -> str:
    return "infinitely" if math.isinf(ratio) else f"{ratio:.3g}x"


def _weighted(samples: Iterable[Sample], metric: str) -> list[tuple[float, int]]:
    return [(s.value, s.count) for s in samples if s.metric == metric]


def judge_health(
    checks: Sequence[Check], samples: Sequence[Sample], min_samples: int, tolerance: float
) -> list[CheckResult]:
    """A metric fails when more than ``tolerance`` (a fraction) of its samples breach the threshold.

    Counting breaching samples rather than comparing a mean keeps one outlier from failing an
    interval when a tolerance is configured, and with tolerance 0 any breach fails. An aggregate
    sample breaches (or not) with all the observations it stands for.
    """
    results = []
    for check in checks:
        values = _weighted(samples, check.metric)
        count = sum(n for _, n in values)
        if count < min_samples or not values:
            results.append(_no_data(check, count))
            continue
        breaches = sum(n for v, n in values if not check.passes(v))
        fraction = breaches / count
        verdict = Verdict.FAIL if fraction > tolerance else Verdict.PASS
        mean = sum(v * n for v, n in values) / count
        results.append(
            CheckResult(check.metric, check.direction.value, check.threshold, count, mean, fraction, verdict)
        )
    return results


def _no_data(check: Check, count: int) -> CheckResult:
    """Too few samples to judge: neither pass nor fail."""
    return CheckResult(check.metric, check.direction.value, check.threshold, count, None, None, Verdict.NO_DATA)


def _mean(values: Sequence[tuple[float, int]]) -> tuple[float | None, int]:
    count = sum(n for _, n in values)
    return (sum(v * n for v, n in values) / count if count else None), count


def _worse(canary: float, stable: float, direction: Direction) -> tuple[float, float]:
    """(ratio, difference) by which the canary is worse than stable in ``direction``."""
    bad, good = (canary, stable) if direction is Direction.LOWER else (stable, canary)
    if good == 0:
        ratio = 1.0 if bad == 0 else (math.inf if bad > 0 else 0.0)
    else:
        ratio = bad / good
    return ratio, bad - good


def judge_compare(
    comparisons: Sequence[CompareCheck], canary: Sequence[Sample], stable: Sequence[Sample], min_samples: int
) -> list[CheckResult]:
    """Canary against stable over the same window: each side's mean (``min_samples`` per side), and
    every configured bound on how much worse the canary may be.

    A ratio needs a non-zero baseline: a lower-is-better metric at 0 on stable (no errors) makes any
    canary value above 0 infinitely worse, so pair error rates with ``max_difference``.
    """
    results = []
    for check in comparisons:
        c_mean, c_count = _mean(_weighted(canary, check.metric))
        s_mean, s_count = _mean(_weighted(stable, check.metric))
        if c_mean is None or s_mean is None or c_count < min_samples or s_count < min_samples:
            verdict, ratio, difference = Verdict.NO_DATA, None, None
        else:
            ratio, difference = _worse(c_mean, s_mean, check.direction)
            ok = (check.max_ratio is None or ratio <= check.max_ratio) and (
                check.max_difference is None or difference <= check.max_difference + 1e-12
            )
            verdict = Verdict.PASS if ok else Verdict.FAIL
        results.append(
            CheckResult(
                check.metric,
                check.direction.value,
                None,
                c_count,
                c_mean,
                None,
                verdict,
                kind="compare",
                stable_mean=s_mean if verdict is not Verdict.NO_DATA else None,
                stable_samples=s_count,
                max_ratio=check.max_ratio,
                max_difference=check.max_difference,
                ratio=ratio,
                difference=difference,
            )
        )
    return results


def judge_gate(gate: Gate, samples: Sequence[Sample]) -> list[CheckResult]:
    """A gate metric passes when the mean of its samples meets the threshold in its direction."""
    results = []
    for check in gate.checks:
        mean, count = _mean(_weighted(samples, check.metric))
        if mean is None or count < gate.min_samples:
            results.append(_no_data(check, count))
            continue
        verdict = Verdict.PASS if check.passes(mean) else Verdict.FAIL
        results.append(CheckResult(check.metric, check.direction.value, check.threshold, count, mean, None, verdict))
    return results


def overall(results: Sequence[CheckResult]) -> Verdict:
    """FAIL if any metric with enough data fails; else NO_DATA if any is silent; else PASS.

    A failure backed by data counts even when another metric is silent: silence never excuses harm.
    """
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.NO_DATA in verdicts:
        return Verdict.NO_DATA
    return Verdict.PASS
