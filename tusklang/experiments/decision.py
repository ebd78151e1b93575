"""Winner detection: turn an experiment's counts and its `analysis` config into one decision.

The rule (documented in docs/statistics.md, "Winner detection"):
1. a sample ratio mismatch against the configured weights makes every number untrustworthy: "problem";
2. `winner_detection = false`, an arm without units, or an arm under `minimum_sample_size`: "no_winner_yet";
3. Bayesian (`bayesian_analysis` on): the arm with the highest probability to be best wins when that
   probability reaches 1 - (1 - confidence) / arms (the error budget shared among the arms, so an A/A
   test rarely names a winner) AND its expected loss is within the loss threshold;
4. frequentist (off): a variant wins when it beats control with a corrected (Holm by default) p-value
   below 1 - confidence; control wins when every variant is significantly worse.
Otherwise "no_winner_yet", with an estimate of the units per arm still needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from . import stats
from .stats import Prior, SrmResult, StatsInputError

Status = Literal["winner", "no_winner_yet", "problem"]
Method = Literal["bayesian", "frequentist"]

# GrowthBook's default risk threshold: shipping may cost at most 0.25% of the control's rate.
DEFAULT_LOSS_THRESHOLD = 0.0025


class ArmCounts(NamedTuple):
    units: int
    conversions: int


@dataclass(frozen=True, slots=True)
class DecisionConfig:
    """The parts of an experiment's `analysis` config that winner detection honours."""

    minimum_sample_size: int = 100
    confidence_level: float = 0.95
    bayesian: bool = True
    winner_detection: bool = True
    prior: Prior = stats.UNIFORM_PRIOR
    power: float = 0.8
    correction: str = "holm"
    loss_threshold: float = DEFAULT_LOSS_THRESHOLD
    srm_threshold: float = stats.SRM_THRESHOLD

    def __post_init__(self) -> None:
        if isinstance(self.minimum_sample_size, bool) or not isinstance(self.minimum_sample_size, int):
            raise StatsInputError(f"minimum_sample_size must be a whole number, got {self.minimum_sample_size!r}")
        if self.minimum_sample_size < 1:
            raise StatsInputError(f"minimum_sample_size must be at least 1, got {self.minimum_sample_size}")
        stats.check_confidence(self.confidence_level)
        stats.check_prior(self.prior)
        stats.check_probability(self.power, "power")
        stats.check_probability(self.srm_threshold, "SRM threshold")
        if self.correction not in stats.CORRECTIONS:
            raise StatsInputError(f"unknown correction {self.correction!r}: use one of {', '.join(stats.CORRECTIONS)}")
        if not (math.isfinite(self.loss_threshold) and self.loss_threshold > 0):
            raise StatsInputError(f"loss threshold must be > 0, got {self.loss_threshold}")

    @classmethod
    def from_config(
        cls,
        experiment_analysis: Mapping[str, Any] | None = None,
        global_analysis: Mapping[str, Any] | None = None,
    ) -> DecisionConfig:
        """Read the seed's two shapes; the experiment's own `analysis` wins over the global one.

        experiment: `analysis = { statistical_significance, minimum_sample_size, bayesian_analysis = bool }`
        global:     `analysis = { bayesian_analysis = { enabled, prior_belief, confidence_level },
                                  frequentist_analysis = { enabled, significance_level, power },
                                  reporting = { winner_detection } }`
        """
        options: dict[str, Any] = {}
        glob = dict(global_analysis or {})
        bayes = glob.get("bayesian_analysis")
        freq = glob.get("frequentist_analysis")
        if isinstance(bayes, Mapping):
            if "enabled" in bayes:
                options["bayesian"] = _flag(bayes["enabled"], "bayesian_analysis.enabled")
            if "confidence_level" in bayes:
                options["confidence_level"] = _confidence(bayes["confidence_level"], "confidence_level")
            if "prior_belief" in bayes:
                options["prior"] = _prior_from_belief(bayes["prior_belief"])
        elif bayes is not None:
            options["bayesian"] = _flag(bayes, "bayesian_analysis")
        if isinstance(freq, Mapping):
            if "significance_level" in freq and not options.get("bayesian", True):
                options["confidence_level"] = _confidence(freq["significance_level"], "significance_level")
            if "power" in freq:
                options["power"] = _number(freq["power"], "power")
        reporting = glob.get("reporting")
        if isinstance(reporting, Mapping) and "winner_detection" in reporting:
            options["winner_detection"] = _flag(reporting["winner_detection"], "winner_detection")

        local = dict(experiment_analysis or {})
        if "statistical_significance" in local:
            options["confidence_level"] = _confidence(local["statistical_significance"], "statistical_significance")
        if "confidence_level" in local:
            options["confidence_level"] = _confidence(local["confidence_level"], "confidence_level")
        if "minimum_sample_size" in local:
            options["minimum_sample_size"] = local["minimum_sample_size"]
        if "bayesian_analysis" in local:
            options["bayesian"] = _flag(local["bayesian_analysis"], "bayesian_analysis")
        if "winner_detection" in local:
            options["winner_detection"] = _flag(local["winner_detection"], "winner_detection")
        if "correction" in local:
            options["correction"] = local["correction"]
        return cls(**options)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise StatsInputError(f"{key} must be true or false, got {value!r}")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StatsInputError(f"{key} must be a number, got {value!r}")
    return float(value)


def _confidence(value: Any, key: str) -> float:
    """0.95 and 0.05 both mean "95%": a value below one half is read as alpha, not confidence."""
    number = _number(value, key)
    if not (0.0 < number < 1.0) or number == 0.5:
        raise StatsInputError(f"{key} must be a confidence level like 0.95 or an alpha like 0.05, got {value!r}")
    return number if number > 0.5 else 1.0 - number


def _prior_from_belief(value: Any) -> Prior:
    """`prior_belief = m`: a Beta prior with mean m worth two pseudo-units (m = 0.5 is uniform)."""
    mean = _number(value, "prior_belief")
    if not (0.0 < mean < 1.0):
        raise StatsInputError(f"prior_belief must be a rate between 0 and 1, got {value!r}")
    return (2.0 * mean, 2.0 * (1.0 - mean))


@dataclass(frozen=True, slots=True)
class ArmSummary:
    name: str
    units: int
    conversions: int
    rate: float
    p_best: float | None = None
    expected_loss: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    status: Status
    winner: str | None
    why: str
    method: Method
    more_units_per_arm: int | None = None
    srm: SrmResult | None = None
    arms: tuple[ArmSummary, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "winner": self.winner,
            "why": self.why,
            "method": self.method,
            "more_units_per_arm": self.more_units_per_arm,
            "srm": asdict(self.srm) if self.srm is not None else None,
            "arms": {arm.name: asdict(arm) for arm in self.arms},
        }


def decide(
    arms: Mapping[str, ArmCounts | tuple[int, int]],
    control: str,
    weights: Mapping[str, float] | None = None,
    config: DecisionConfig | None = None,
) -> Decision:
    """Decide an experiment from per-arm (units, conversions), the control's name and the weights."""
    config = config or DecisionConfig()
    method: Method = "bayesian" if config.bayesian else "frequentist"
    counts = {name: ArmCounts(*value) for name, value in arms.items()}
    if control not in counts:
        raise StatsInputError(f"control arm {control!r} is not among the arms ({', '.join(counts)})")
    if len(counts) < 2:
        raise StatsInputError("an experiment needs a control and at least one variant")
    for name, arm in counts.items():
        # An arm with no units yet is normal early on (the minimum sample check reports it).
        if arm != (0, 0):
            stats.check_counts(arm.conversions, arm.units, name)
    names = [control, *(name for name in counts if name != control)]
    basic = tuple(_summary(name, counts[name]) for name in names)

    srm = None
    if weights is not None:
        missing = [name for name in names if name not in weights]
        extra = [name for name in weights if name not in counts]
        if missing or extra:
            raise StatsInputError(
                f"weights and arms differ (no weight for {missing or 'none'}, no counts for {extra or 'none'})"
            )
        srm = stats.srm_test(
            [counts[name].units for name in names],
            [weights[name] for name in names],
            threshold=config.srm_threshold,
        )
        if srm.mismatch:
            split = ", ".join(f"{name} {counts[name].units}" for name in names)
            why = (
                f"Sample ratio mismatch: units ({split}) do not match the configured weights "
                f"(chi-square p = {srm.p:.2g} < {config.srm_threshold:g}), so assignment or logging is "
                "broken and no result can be trusted."
            )
            return Decision("problem", None, why, method, None, srm, basic)

    if not config.winner_detection:
        why = "Winner detection is turned off for this experiment (winner_detection = false)."
        return Decision("no_winner_yet", None, why, method, None, srm, basic)

    smallest = min(names, key=lambda name: counts[name].units)
    if counts[smallest].units < config.minimum_sample_size:
        more = config.minimum_sample_size - counts[smallest].units
        why = (
            f"Too little data: {smallest} has {counts[smallest].units} units and every arm needs at least "
            f"{config.minimum_sample_size} (minimum_sample_size) before a winner can be called."
        )
        return Decision("no_winner_yet", None, why, method, more, srm, basic)

    if config.bayesian:
        return _bayesian(counts, names, config, srm)
    return _frequentist(counts, names, config, srm)


def _summary(name: str, arm: ArmCounts) -> ArmSummary:
    rate = arm.conversions / arm.units if arm.units else 0.0
    return ArmSummary(name, arm.units, arm.conversions, rate)


def bayesian_threshold(confidence: float, arms: int) -> float:
    """The P(best) an arm needs: 1 - (1 - confidence) / arms.

    Any of the ``arms`` may cross the bar, so with identical arms the chance that one does is about
    ``arms`` times the chance for a single arm; dividing the error budget among them (as Bonferroni
    does) keeps false winners of an A/A test near 1 - confidence. With P(best) >= confidence alone, a
    two-arm A/A test declared a false winner in ~9% of runs at 95% (measured in tests/test_simulation.py).
    """
    return 1 - (1 - confidence) / max(arms, 1)


def _bayesian(
    counts: Mapping[str, ArmCounts], names: list[str], config: DecisionConfig, srm: SrmResult | None
) -> Decision:
    pairs = [(counts[name].conversions, counts[name].units) for name in names]
    p_best = stats.prob_best(pairs, config.prior)
    losses = stats.expected_loss_all(pairs, config.prior)
    summaries = tuple(
        ArmSummary(name, counts[name].units, counts[name].conversions, s / n, pb, loss)
        for name, (s, n), pb, loss in zip(names, pairs, p_best, losses)
    )
    a_c, b_c = stats.posterior(*pairs[0], config.prior)
    max_loss = config.loss_threshold * a_c / (a_c + b_c)
    best = max(range(len(names)), key=lambda i: p_best[i])
    leader = names[best]
    needed = bayesian_threshold(config.confidence_level, len(names))
    if p_best[best] >= needed and losses[best] <= max_loss:
        verb = "keep control" if best == 0 else f"ship {leader}"
        why = (
            f"{leader} is the best arm with probability {p_best[best]:.3f} (>= {needed:.4g}) "
            f"and its expected loss {losses[best]:.2g} is within {max_loss:.2g}: {verb}."
        )
        return Decision("winner", leader, why, "bayesian", None, srm, summaries)
    # P(best) is limited by how well the leader separates from the runner-up, not from control.
    more, note = _more_units(counts, names, config, versus_runner_up=True)
    if p_best[best] < needed:
        reason = f"no arm is best with probability >= {needed:.4g} yet (leader {leader} at {p_best[best]:.3f})"
    else:
        reason = (
            f"{leader} leads with probability {p_best[best]:.3f} but its expected loss "
            f"{losses[best]:.2g} exceeds {max_loss:.2g}"
        )
    return Decision("no_winner_yet", None, f"No winner yet: {reason}; {note}.", "bayesian", more, srm, summaries)


def _frequentist(
    counts: Mapping[str, ArmCounts], names: list[str], config: DecisionConfig, srm: SrmResult | None
) -> Decision:
    control = counts[names[0]]
    alpha = 1 - config.confidence_level
    tests = [
        stats.two_proportion_ztest(
            control.conversions,
            control.units,
            counts[name].conversions,
            counts[name].units,
            config.confidence_level,
        )
        for name in names[1:]
    ]
    adjusted = stats.adjust_p_values([t.p_value for t in tests], config.correction)
    summaries = (
        _summary(names[0], control),
        *(
            ArmSummary(
                name,
                counts[name].units,
                counts[name].conversions,
                counts[name].conversions / counts[name].units,
                p_value=t.p_value,
                p_value_adjusted=adj,
            )
            for name, t, adj in zip(names[1:], tests, adjusted)
        ),
    )
    label = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "BH"}[config.correction]
    better = [i for i, (t, adj) in enumerate(zip(tests, adjusted)) if adj < alpha and t.difference > 0]
    if better:
        # Several significant winners: the highest observed rate is the natural pick, but the test only
        # shows each beats control, not that it beats the others (docs/statistics.md says so).
        i = max(better, key=lambda k: tests[k].difference)
        name = names[i + 1]
        why = (
            f"{name} converts better than {names[0]} "
            f"({summaries[i + 1].rate:.2%} vs {summaries[0].rate:.2%}, "
            f"{label}-adjusted p = {adjusted[i]:.3g} < {alpha:.3g}): ship {name}."
        )
        return Decision("winner", name, why, "frequentist", None, srm, summaries)
    if all(adj < alpha and t.difference < 0 for t, adj in zip(tests, adjusted)):
        why = (
            f"Every variant converts significantly worse than {names[0]} "
            f"({label}-adjusted p < {alpha:.3g}): keep {names[0]}."
        )
        return Decision("winner", names[0], why, "frequentist", None, srm, summaries)
    smallest = min(adjusted)
    reason = f"no variant differs from {names[0]} with {label}-adjusted p < {alpha:.3g} yet (smallest {smallest:.3g})"
    more, note = _more_units(counts, names, config, versus_runner_up=False)
    why = f"No winner yet: {reason}; {note}."
    return Decision("no_winner_yet", None, why, "frequentist", more, srm, summaries)


def _more_units(
    counts: Mapping[str, ArmCounts], names: list[str], config: DecisionConfig, versus_runner_up: bool
) -> tuple[int | None, str]:
    """Units per arm still needed to detect the deciding difference, and a clause saying so.

    The deciding difference is leader vs runner-up (Bayesian, P(best)) or the largest variant vs
    control (frequentist). Planned with `sample_size_per_arm` at this confidence and power; rates are
    posterior means so a zero-conversion arm still gives a usable baseline.
    """
    means = []
    for name in names:
        a, b = stats.posterior(counts[name].conversions, counts[name].units, config.prior)
        means.append(a / (a + b))
    if versus_runner_up:
        runner_up, leader = sorted(means)[-2:]
        base, effect = runner_up, leader - runner_up
    else:
        base = means[0]
        effect = max((m - base for m in means[1:]), key=abs)
    if abs(effect) < 1e-12:
        return None, "the arms look identical so far, so no amount of extra data can be promised"
    needed = stats.sample_size_per_arm(
        base, effect, alpha=1 - config.confidence_level, power=config.power, arms=len(names)
    )
    have = min(counts[name].units for name in names)
    if needed <= have:
        return None, (
            f"the observed difference ({effect:+.2%}) is at the edge of what {have} units per arm can "
            "detect; keep collecting"
        )
    more = needed - have
    return more, f"about {more} more units per arm (to {needed}) should settle it"
