"""Experiment statistics for conversion metrics: pure functions over (conversions, units) counts.

Every formula here is written out, with its source, in docs/statistics.md; the test vectors come
from /work/shared/spec/statistics.md. Nothing here does I/O or keeps state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import integrate, special
from scipy import stats as sps

from ..diagnostics import Diagnostic, TuskError

STATS_INPUT_CODE = "TSK901"

Prior = tuple[float, float]
UNIFORM_PRIOR: Prior = (1.0, 1.0)
Correction = Literal["holm", "bonferroni", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh")

# The closed form sums one term per unit of the posterior alpha; beyond this many terms the
# quadrature is as accurate and much cheaper.
_MAX_CLOSED_FORM_TERMS = 2_000_000
# Quantile range that bounds every integral: the mass left outside is far below test tolerance.
_TAIL = 1e-15


class StatsInputError(TuskError, ValueError):
    """Counts, probabilities or options that no statistic can be computed from."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__([Diagnostic(STATS_INPUT_CODE, message)])


# --------------------------------------------------------------------------- validation


def check_counts(conversions: int, units: int, label: str = "arm") -> None:
    """Reject counts that cannot describe a conversion metric."""
    for value, what in ((conversions, "conversions"), (units, "units")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise StatsInputError(f"{label}: {what} must be a whole number, got {value!r}")
        if value < 0:
            raise StatsInputError(f"{label}: {what} must not be negative, got {value}")
    if units == 0:
        raise StatsInputError(f"{label}: units must be greater than 0")
    if conversions > units:
        raise StatsInputError(f"{label}: {conversions} conversions is more than its {units} units")


def check_prior(prior: Prior) -> None:
    a0, b0 = prior
    if not (math.isfinite(a0) and math.isfinite(b0) and a0 > 0 and b0 > 0):
        raise StatsInputError(f"prior Beta({a0}, {b0}): both parameters must be finite and > 0")


def check_confidence(confidence: float) -> None:
    if not (0.0 < confidence < 1.0):
        raise StatsInputError(f"confidence level must be between 0 and 1 (exclusive), got {confidence}")


def check_probability(value: float, what: str) -> None:
    if not (0.0 < value < 1.0):
        raise StatsInputError(f"{what} must be between 0 and 1 (exclusive), got {value}")


# --------------------------------------------------------------------------- Bayesian


def posterior(conversions: int, units: int, prior: Prior = UNIFORM_PRIOR) -> tuple[float, float]:
    """Beta(s + a0, n - s + b0): the conjugate posterior of a Binomial rate under a Beta prior.

    Impossible counts raise StatsInputError (a negative alpha or beta is no distribution); no data at
    all, posterior(0, 0), is the prior itself.
    """
    if conversions != 0 or units != 0:
        check_counts(conversions, units)
    check_prior(prior)
    return conversions + prior[0], units - conversions + prior[1]


def _is_whole(x: float) -> bool:
    return float(x).is_integer()


def _evan_miller(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), whole a1; summed in log space."""
    i = np.arange(int(a1), dtype=np.float64)
    log_terms = special.betaln(a2 + i, b2 + b1) - np.log(b1 + i) - special.betaln(1.0 + i, b1) - special.betaln(a2, b2)
    return float(np.exp(special.logsumexp(log_terms)))


def _support(a: float, b: float) -> tuple[float, float]:
    lo, hi = sps.beta.ppf([_TAIL, 1.0 - _TAIL], a, b)
    return float(lo), float(hi)


# The integrands below call a Beta density and distribution function tens of thousands of times per
# answer, with scalars: scipy.stats' frozen-distribution machinery (argument checks, broadcasting) cost
# ~100 us a call and 0.26 s per `decide` of a two-arm experiment; the ufuncs it ends in cost ~1 us.
# `betainc` is the regularized incomplete beta function, i.e. the Beta CDF (Boost's ibeta, as
# scipy.stats.beta.cdf uses); the density is written in log space (a Beta's parameters run to millions).
def _beta_cdf(x: float, a: float, b: float) -> float:
    return float(special.betainc(a, b, x))


def _beta_density(a: float, b: float) -> Callable[[float], float]:
    """The Beta(a, b) density, its normalising constant computed once (per integral, not per point)."""
    log_norm = float(special.betaln(a, b))

    def pdf(x: float) -> float:
        if x <= 0.0 or x >= 1.0:
            return float(sps.beta.pdf(x, a, b))  # the edges' limits (0, a finite value or inf), as scipy gives
        return math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_norm)

    return pdf


def _quad(func: Callable[[float], float], lo: float, hi: float) -> float:
    """Adaptive quadrature; its round-off warnings fire far below the accuracy we report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(func, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=500)
    return float(value)


def _integrate_greater(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) = integral of f1(x) F2(x) over the support of X1.

    A Beta with b < 1 piles mass against 1, where doubles are too coarse to resolve it; mirrored
    (X -> 1 - X, so Beta(a, b) -> Beta(b, a)) that mass sits near 0, where they are fine.
    """
    if min(b1, b2) < min(a1, a2) and min(b1, b2) < 1:
        a1, b1, a2, b2 = b2, a2, b1, a1
    lo, hi = _support(a1, b1)
    pdf = _beta_density(a1, b1)
    return _quad(lambda x: pdf(x) * _beta_cdf(x, a2, b2), lo, hi)


def prob_greater(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) for independent Beta variables (exact closed form when an alpha is whole)."""
    if _is_whole(a1) and a1 <= _MAX_CLOSED_FORM_TERMS:
        p = _evan_miller(a1, b1, a2, b2)
    elif _is_whole(a2) and a2 <= _MAX_CLOSED_FORM_TERMS:
        p = 1.0 - _evan_miller(a2, b2, a1, b1)
    else:
        p = _integrate_greater(a1, b1, a2, b2)
    return min(1.0, max(0.0, p))


def prob_beats_control(
    control_conversions: int,
    control_units: int,
    variant_conversions: int,
    variant_units: int,
    prior: Prior = UNIFORM_PRIOR,
) -> float:
    """P(p_variant > p_control) under independent Beta posteriors."""
    check_counts(control_conversions, control_units, "control")
    check_counts(variant_conversions, variant_units, "variant")
    check_prior(prior)
    a_c, b_c = posterior(control_conversions, control_units, prior)
    a_v, b_v = posterior(variant_conversions, variant_units, prior)
    return prob_greater(a_v, b_v, a_c, b_c)


def expected_loss_vs_control(
    control_conversions: int,
    control_units: int,
    variant_conversions: int,
    variant_units: int,
    prior: Prior = UNIFORM_PRIOR,
) -> tuple[float, float]:
    """(loss of shipping the variant, loss of keeping control): E[max(pC - pV, 0)], E[max(pV - pC, 0)].

    Uses E[pA 1(pA > pB)] = mean_A * P(Beta(aA + 1, bA) > Beta(aB, bB)), so both losses are exact
    whenever the probabilities are.
    """
    check_counts(control_conversions, control_units, "control")
    check_counts(variant_conversions, variant_units, "variant")
    check_prior(prior)
    a_c, b_c = posterior(control_conversions, control_units, prior)
    a_v, b_v = posterior(variant_conversions, variant_units, prior)
    mean_c, mean_v = a_c / (a_c + b_c), a_v / (a_v + b_v)
    ship_variant = mean_c * prob_greater(a_c + 1, b_c, a_v, b_v) - mean_v * prob_greater(a_c, b_c, a_v + 1, b_v)
    keep_control = mean_v * prob_greater(a_v + 1, b_v, a_c, b_c) - mean_c * prob_greater(a_v, b_v, a_c + 1, b_c)
    return max(0.0, ship_variant), max(0.0, keep_control)


def _posteriors(arms: Sequence[tuple[int, int]], prior: Prior) -> list[tuple[float, float]]:
    if len(arms) < 2:
        raise StatsInputError("need at least two arms to compare")
    check_prior(prior)
    for index, (conversions, units) in enumerate(arms):
        check_counts(conversions, units, f"arm {index + 1}")
    return [posterior(s, n, prior) for s, n in arms]


def prob_best(arms: Sequence[tuple[int, int]], prior: Prior = UNIFORM_PRIOR) -> list[float]:
    """P(arm j has the highest rate) = integral of f_j(x) * prod_{i != j} F_i(x) dx, per arm.

    Deterministic quadrature rather than Monte Carlo: same answer every run, error far below 0.005.
    `arms` is a sequence of (conversions, units).
    """
    params = _posteriors(arms, prior)
    result = []
    for j, (a_j, b_j) in enumerate(params):
        others = [p for i, p in enumerate(params) if i != j]
        lo, hi = _support(a_j, b_j)
        density = _beta_density(a_j, b_j)

        def integrand(x: float, pdf: Callable[[float], float] = density, others: list = others) -> float:
            value = pdf(x)
            for a_i, b_i in others:
                value *= _beta_cdf(x, a_i, b_i)
            return value

        value = _quad(integrand, lo, hi)
        result.append(min(1.0, max(0.0, value)))
    return result


def expected_loss_all(arms: Sequence[tuple[int, int]], prior: Prior = UNIFORM_PRIOR) -> list[float]:
    """E[max_i p_i - p_j] per arm j: the expected rate given up by shipping j instead of the best.

    E[max_i p_i] = integral over [0, 1] of (1 - prod_i F_i(x)) dx.
    """
    params = _posteriors(arms, prior)
    supports = [_support(a, b) for a, b in params]
    lo = min(s[0] for s in supports)
    hi = max(s[1] for s in supports)

    def below_max(x: float) -> float:
        value = 1.0
        for a_i, b_i in params:
            value *= _beta_cdf(x, a_i, b_i)
        return 1.0 - value

    # Below `lo` every CDF is ~0 so the integrand is 1; above `hi` every CDF is ~1 so it is 0.
    middle = _quad(below_max, lo, hi)
    expected_max = lo + middle
    return [max(0.0, expected_max - a / (a + b)) for a, b in params]


def prob_best_monte_carlo(
    arms: Sequence[tuple[int, int]],
    prior: Prior = UNIFORM_PRIOR,
    draws: int = 200_000,
    seed: int = 20240601,
) -> list[float]:
    """P(best) by simulation with a fixed seed; a cross-check for `prob_best` (error ~0.001)."""
    params = _posteriors(arms, prior)
    rng = np.random.default_rng(seed)
    samples = np.column_stack([rng.beta(a, b, size=draws) for a, b in params])
    winners = np.bincount(np.argmax(samples, axis=1), minlength=len(params))
    return [float(w) / draws for w in winners]


# --------------------------------------------------------------------------- frequentist


@dataclass(frozen=True, slots=True)
class ZTest:
    """Two-proportion z-test of variant vs control plus a Wald interval of the difference."""

    difference: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float


def two_proportion_ztest(
    control_conversions: int,
    control_units: int,
    variant_conversions: int,
    variant_units: int,
    confidence: float = 0.95,
) -> ZTest:
    """Pooled-SE z statistic, two-sided p = 2(1 - Phi(|z|)), unpooled-SE (Wald) CI of pV - pC."""
    check_counts(control_conversions, control_units, "control")
    check_counts(variant_conversions, variant_units, "variant")
    check_confidence(confidence)
    p_c = control_conversions / control_units
    p_v = variant_conversions / variant_units
    diff = p_v - p_c
    pooled = (control_conversions + variant_conversions) / (control_units + variant_units)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / control_units + 1 / variant_units))
    # Both arms all-zero or all-one: no variation, no evidence of a difference.
    z = diff / se0 if se0 > 0 else 0.0
    p_value = float(2 * sps.norm.sf(abs(z)))
    se = math.sqrt(p_c * (1 - p_c) / control_units + p_v * (1 - p_v) / variant_units)
    half = float(sps.norm.ppf(0.5 + confidence / 2)) * se
    return ZTest(diff, z, min(1.0, p_value), diff - half, diff + half, confidence)


def relative_uplift_interval(
    control_conversions: int,
    control_units: int,
    variant_conversions: int,
    variant_units: int,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Interval for the relative uplift pV / pC - 1 by the delta method on log(pV / pC).

    log(pV / pC) has standard error sqrt((1 - pV) / (nV pV) + (1 - pC) / (nC pC)); the interval is
    computed on that scale and mapped back, so it is asymmetric and never goes below -100%. None when
    either arm has no conversions (the log ratio is undefined).
    """
    check_counts(control_conversions, control_units, "control")
    check_counts(variant_conversions, variant_units, "variant")
    check_confidence(confidence)
    if control_conversions == 0 or variant_conversions == 0:
        return None
    p_c = control_conversions / control_units
    p_v = variant_conversions / variant_units
    se = math.sqrt((1 - p_v) / (variant_units * p_v) + (1 - p_c) / (control_units * p_c))
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    centre = math.log(p_v / p_c)
    return math.exp(centre - z * se) - 1, math.exp(centre + z * se) - 1


def sequential_interval(
    control_conversions: int,
    control_units: int,
    variant_conversions: int,
    variant_units: int,
    confidence: float = 0.95,
    tuning: float = 5000.0,
) -> tuple[float, float]:
    """Asymptotic confidence sequence for pV - pC (Waudby-Smith et al.; GrowthBook's tuning N*).

    Valid at every look, so a monitor may check it after each interval without inflating errors.
    """
    check_counts(control_conversions, control_units, "control")
    check_counts(variant_conversions, variant_units, "variant")
    check_confidence(confidence)
    if tuning <= 0:
        raise StatsInputError(f"sequential tuning N* must be > 0, got {tuning}")
    alpha = 1 - confidence
    p_c = control_conversions / control_units
    p_v = variant_conversions / variant_units
    diff = p_v - p_c
    variance = p_c * (1 - p_c) / control_units + p_v * (1 - p_v) / variant_units
    n = control_units + variant_units
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    half = math.sqrt(variance * n) * math.sqrt(
        2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha) / (n * n * rho2)
    )
    return diff - half, diff + half


def _check_pvalues(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise StatsInputError("p-values must be numbers between 0 and 1")
    return p


def bonferroni(p_values: Sequence[float]) -> list[float]:
    p = _check_pvalues(p_values)
    return np.minimum(1.0, p * len(p)).tolist()


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down: sorted p_(i) * (m - i), made monotone by a running max, capped at 1."""
    p = _check_pvalues(p_values)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH step-up: sorted p_(i) * m / i, made monotone by a running min from the top, capped at 1."""
    p = _check_pvalues(p_values)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    return adjusted.tolist()


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise (holm, bonferroni) or false-discovery-rate (bh) adjusted p-values."""
    if method == "holm":
        return holm(p_values)
    if method == "bonferroni":
        return bonferroni(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise StatsInputError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")


# --------------------------------------------------------------------------- sample ratio mismatch

SRM_THRESHOLD = 0.001
SRM_MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Pearson chi-square of observed units against the configured split."""

    chi2: float
    df: int
    p: float
    mismatch: bool
    checked: bool
    reason: str


def srm_test(
    observed: Sequence[int],
    weights: Sequence[float],
    threshold: float = SRM_THRESHOLD,
    min_expected: float = SRM_MIN_EXPECTED,
) -> SrmResult:
    """Chi-square goodness of fit; arms with weight 0 are left out, df = (arms with weight) - 1.

    The test is only trusted (`checked`) when every weighted arm expects at least `min_expected`
    units, the usual condition for the chi-square approximation; below that it never alerts.
    """
    if len(observed) != len(weights):
        raise StatsInputError(f"{len(observed)} observed counts but {len(weights)} weights")
    for count in observed:
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
            raise StatsInputError(f"observed counts must be whole numbers >= 0, got {count!r}")
    for weight in weights:
        if not (math.isfinite(weight) and weight >= 0):
            raise StatsInputError(f"weights must be finite numbers >= 0, got {weight!r}")
    kept = [(o, w) for o, w in zip(observed, weights) if w > 0]
    if len(kept) < 2:
        raise StatsInputError("need at least two arms with a positive weight")
    total_weight = sum(w for _, w in kept)
    total = sum(o for o, _ in kept)
    df = len(kept) - 1
    if total == 0:
        return SrmResult(0.0, df, 1.0, False, False, "no units yet")
    expected = [total * w / total_weight for _, w in kept]
    chi2 = sum((o - e) ** 2 / e for (o, _), e in zip(kept, expected))
    p = float(sps.chi2.sf(chi2, df))
    smallest = min(expected)
    if smallest < min_expected:
        reason = f"too few units to test (an arm expects {smallest:.1f} < {min_expected:g})"
        return SrmResult(chi2, df, p, False, False, reason)
    mismatch = p < threshold
    reason = (
        f"sample ratio mismatch: p = {p:.3g} < {threshold:g}"
        if mismatch
        else f"split matches the weights (p = {p:.3g})"
    )
    return SrmResult(chi2, df, p, mismatch, True, reason)


# --------------------------------------------------------------------------- planning


def sample_size_per_arm(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    two_sided: bool = True,
) -> int:
    """Units per arm to detect an absolute change `mde` from `baseline` (normal approximation).

    n = [z_a sqrt(2 pbar qbar) + z_b sqrt(p1 q1 + p2 q2)]^2 / (p2 - p1)^2, pooled variance under H0,
    unpooled under H1; alpha is split (Bonferroni) across the arms - 1 comparisons with control.
    """
    check_probability(baseline, "baseline rate")
    check_probability(alpha, "alpha")
    check_probability(power, "power")
    if isinstance(arms, bool) or not isinstance(arms, int) or arms < 2:
        raise StatsInputError(f"arms must be a whole number >= 2, got {arms!r}")
    if not math.isfinite(mde) or mde == 0:
        raise StatsInputError(f"minimum detectable effect must be a non-zero difference, got {mde}")
    p1, p2 = baseline, baseline + mde
    if not (0.0 < p2 < 1.0):
        raise StatsInputError(f"baseline + mde = {p2:g} is not a rate between 0 and 1")
    per_test_alpha = alpha / (arms - 1)
    tail = per_test_alpha / 2 if two_sided else per_test_alpha
    z_alpha = float(sps.norm.isf(tail))
    z_beta = float(sps.norm.ppf(power))
    p_bar = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    # Guard against 3841.0000000001 becoming 3842 through float noise.
    return math.ceil(root**2 / (p2 - p1) ** 2 - 1e-9)
