"""Winner detection: what an experiment owner is told, and why, for each situation."""

from __future__ import annotations

import dataclasses

import pytest

from tusklang.experiments import stats
from tusklang.experiments.decision import ArmCounts, DecisionConfig, decide
from tusklang.experiments.stats import StatsInputError

FOUR = {
    "control": (10000, 1000),
    "B": (10000, 1100),
    "C": (10000, 1120),
    "D": (10000, 1030),
}


def _one_sentence(text: str) -> None:
    assert text.endswith(".") and "\n" not in text


def test_sample_ratio_mismatch_is_a_problem_whatever_the_rates():
    result = decide(
        {"control": (5000, 500), "B": (5400, 700)},
        "control",
        {"control": 50, "B": 50},
        DecisionConfig(minimum_sample_size=1000),
    )
    assert result.status == "problem" and result.winner is None
    assert result.srm is not None and result.srm.mismatch
    assert "sample ratio mismatch" in result.why.lower()
    _one_sentence(result.why)


def test_too_little_data_says_how_many_more_units():
    result = decide({"control": (600, 60), "B": (450, 80)}, "control", None, DecisionConfig(minimum_sample_size=1000))
    assert result.status == "no_winner_yet"
    assert result.more_units_per_arm == 1000 - 450
    assert "B has 450 units" in result.why and "1000" in result.why


def test_an_arm_without_units_is_not_an_error():
    result = decide({"control": (0, 0), "B": (0, 0)}, "control", {"control": 1, "B": 1})
    assert result.status == "no_winner_yet"
    assert result.srm is not None and result.srm.p == 1.0


def test_bayesian_waits_while_beating_control_is_not_being_best():
    result = decide(FOUR, "control", None, DecisionConfig(minimum_sample_size=1000))
    assert result.status == "no_winner_yet"
    p_best = {arm.name: arm.p_best for arm in result.arms}
    assert p_best["C"] == pytest.approx(0.669, abs=0.01)
    # B beats control with 0.989 but is not the winner: the leader C is not best with 0.95.
    assert "C" in result.why and result.more_units_per_arm and result.more_units_per_arm > 0
    _one_sentence(result.why)


def test_bayesian_winner_needs_probability_to_be_best_and_small_loss():
    arms = {**FOUR, "C": (10000, 1250)}
    result = decide(arms, "control", {name: 25 for name in arms}, DecisionConfig(minimum_sample_size=1000))
    assert result.status == "winner" and result.winner == "C"
    winner = next(arm for arm in result.arms if arm.name == "C")
    assert winner.p_best >= 1 - 0.05 / 4
    assert "ship C" in result.why
    _one_sentence(result.why)


def test_high_probability_with_a_large_expected_loss_is_not_a_winner():
    # 3/20 vs 9/20: P(best) 0.978 >= 0.975 (95% shared by two arms), but shipping B still risks 0.0011 of rate.
    result = decide({"control": (20, 3), "B": (20, 9)}, "control", None, DecisionConfig(minimum_sample_size=20))
    assert result.status == "no_winner_yet"
    assert "expected loss" in result.why
    looser = DecisionConfig(minimum_sample_size=20, loss_threshold=0.05)
    assert decide({"control": (20, 3), "B": (20, 9)}, "control", None, looser).winner == "B"


def test_bayesian_bar_is_shared_among_the_arms():
    from tusklang.experiments.decision import bayesian_threshold

    assert bayesian_threshold(0.95, 2) == pytest.approx(0.975)
    assert bayesian_threshold(0.95, 4) == pytest.approx(0.9875)
    # 3/20 vs 8/20: P(best) 0.957 clears 0.95 but not the two-arm bar of 0.975.
    loose = DecisionConfig(minimum_sample_size=20, loss_threshold=1.0)
    result = decide({"control": (20, 3), "B": (20, 8)}, "control", None, loose)
    assert result.status == "no_winner_yet" and "0.975" in result.why


def test_frequentist_winner_uses_holm_adjusted_p_value():
    config = DecisionConfig(minimum_sample_size=1000, bayesian=False)
    result = decide(FOUR, "control", None, config)
    assert result.status == "winner" and result.winner == "C"
    c = next(arm for arm in result.arms if arm.name == "C")
    raw = [arm.p_value for arm in result.arms[1:]]
    assert c.p_value_adjusted == pytest.approx(stats.holm(raw)[1])
    assert c.p_value_adjusted < 0.05
    assert "Holm-adjusted" in result.why


def test_frequentist_correction_can_withhold_a_winner():
    # Each variant alone is significant at 5% (p ~ 0.034), but not after Bonferroni over 3 variants.
    arms = {"control": (3000, 300), "B": (3000, 352), "C": (3000, 300), "D": (3000, 300)}
    strict = DecisionConfig(minimum_sample_size=100, bayesian=False, correction="bonferroni")
    result = decide(arms, "control", None, strict)
    b = next(arm for arm in result.arms if arm.name == "B")
    assert b.p_value < 0.05 <= b.p_value_adjusted
    assert result.status == "no_winner_yet"


def test_frequentist_keeps_control_when_every_variant_is_worse():
    arms = {"control": (3000, 300), "B": (3000, 200)}
    result = decide(arms, "control", None, DecisionConfig(minimum_sample_size=100, bayesian=False))
    assert result.status == "winner" and result.winner == "control"
    assert "keep control" in result.why


def test_not_significant_estimates_the_remaining_units_from_the_planner():
    config = DecisionConfig(minimum_sample_size=100, bayesian=False)
    result = decide({"control": (1000, 100), "B": (1000, 120)}, "control", None, config)
    assert result.status == "no_winner_yet"
    needed = stats.sample_size_per_arm(101 / 1002, 20 / 1002, alpha=0.05, power=0.8, arms=2)
    assert result.more_units_per_arm == needed - 1000


def test_identical_arms_promise_no_estimate():
    result = decide({"control": (5000, 500), "B": (5000, 500)}, "control", None)
    assert result.status == "no_winner_yet" and result.more_units_per_arm is None


def test_winner_detection_off_never_declares():
    arms = {**FOUR, "C": (10000, 1200)}
    result = decide(arms, "control", None, DecisionConfig(winner_detection=False))
    assert result.status == "no_winner_yet" and result.winner is None
    assert "winner_detection" in result.why


def test_seed_analysis_blocks_map_to_a_config():
    config = DecisionConfig.from_config(
        {"statistical_significance": 0.95, "minimum_sample_size": 1000, "bayesian_analysis": True},
        {
            "bayesian_analysis": {"enabled": True, "prior_belief": 0.5, "confidence_level": 0.95},
            "frequentist_analysis": {"enabled": True, "significance_level": 0.05, "power": 0.8},
            "reporting": {"real_time_dashboard": True, "winner_detection": True},
        },
    )
    assert config == DecisionConfig(minimum_sample_size=1000, confidence_level=0.95, bayesian=True)
    assert config.prior == (1.0, 1.0)


def test_significance_written_as_alpha_means_the_same_confidence():
    as_alpha = DecisionConfig.from_config({"statistical_significance": 0.05})
    assert as_alpha.confidence_level == pytest.approx(0.95)
    frequentist = DecisionConfig.from_config(
        {"bayesian_analysis": False}, {"frequentist_analysis": {"significance_level": 0.01}}
    )
    assert frequentist.bayesian is False


@pytest.mark.parametrize(
    "analysis",
    [
        {"minimum_sample_size": 0},
        {"minimum_sample_size": "1000"},
        {"statistical_significance": 1.5},
        {"bayesian_analysis": "yes"},
        {"correction": "sidak"},
    ],
)
def test_invalid_analysis_config_is_a_user_error(analysis):
    with pytest.raises(StatsInputError):
        DecisionConfig.from_config(analysis)


def test_inputs_that_cannot_be_decided_are_rejected():
    with pytest.raises(StatsInputError, match="control arm"):
        decide({"A": (10, 1), "B": (10, 2)}, "control")
    with pytest.raises(StatsInputError, match="more than"):
        decide({"control": (10, 11), "B": (10, 2)}, "control")
    with pytest.raises(StatsInputError, match="weights and arms differ"):
        decide({"control": (10, 1), "B": (10, 2)}, "control", {"control": 50})


def test_result_is_frozen_and_serialisable():
    result = decide({"control": ArmCounts(2000, 200), "B": ArmCounts(2000, 260)}, "control", {"control": 1, "B": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "winner"  # type: ignore[misc]
    data = result.to_dict()
    assert set(data) == {"status", "winner", "why", "method", "more_units_per_arm", "srm", "arms"}
    assert set(data["arms"]) == {"control", "B"}
