"""Judging one interval's samples: health checks (breach fraction) and feature gates (mean).

Both return one :class:`CheckResult` per metric so every decision can say which value, against which
threshold, in which direction, caused it. A metric with fewer than ``min_samples`` samples is
``no_data``: it is neither a pass nor a failure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .metrics import Sample
from .policy import Check, Gate


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class CheckResult:
    metric: str
    direction: str
    threshold: float
    samples: int
    mean: float | None
    breach_fraction: float | None
    verdict: Verdict

    def explain(self) -> str:
        op = "<=" if self.direction == "lower" else ">="
        if self.verdict is Verdict.NO_DATA:
            return f"{self.metric}: {self.samples} sample(s), too few to judge"
        assert self.mean is not None
        text = f"{self.metric} mean {self.mean:g} (want {op} {self.threshold:g}, n={self.samples}"
        if self.breach_fraction is not None:
            text += f", {self.breach_fraction:.0%} of samples breach"
        return text + f"): {self.verdict.value}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data


def _values(samples: Iterable[Sample], metric: str) -> list[float]:
    return [s.value for s in samples if s.metric == metric]


def judge_health(
    checks: Sequence[Check], samples: Sequence[Sample], min_samples: int, tolerance: float
) -> list[CheckResult]:
    """A metric fails when more than ``tolerance`` (a fraction) of its samples breach the threshold.

    Counting breaching samples rather than comparing a mean keeps one outlier from failing an
    interval when a tolerance is configured, and with tolerance 0 any breach fails.
    """
    results = []
    for check in checks:
        values = _values(samples, check.metric)
        if len(values) < min_samples or not values:
            results.append(_no_data(check, len(values)))
            continue
        breaches = sum(1 for v in values if not check.passes(v))
        fraction = breaches / len(values)
        verdict = Verdict.FAIL if fraction > tolerance else Verdict.PASS
        mean = sum(values) / len(values)
        results.append(
            CheckResult(check.metric, check.direction.value, check.threshold, len(values), mean, fraction, verdict)
        )
    return results


def _no_data(check: Check, count: int) -> CheckResult:
    """Too few samples to judge: neither pass nor fail."""
    return CheckResult(check.metric, check.direction.value, check.threshold, count, None, None, Verdict.NO_DATA)


def judge_gate(gate: Gate, samples: Sequence[Sample]) -> list[CheckResult]:
    """A gate metric passes when the mean of its samples meets the threshold in its direction."""
    results = []
    for check in gate.checks:
        values = _values(samples, check.metric)
        if len(values) < gate.min_samples or not values:
            results.append(_no_data(check, len(values)))
            continue
        mean = sum(values) / len(values)
        verdict = Verdict.PASS if check.passes(mean) else Verdict.FAIL
        results.append(
            CheckResult(check.metric, check.direction.value, check.threshold, len(values), mean, None, verdict)
        )
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
