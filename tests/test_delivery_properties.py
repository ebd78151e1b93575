"""Properties of the canary state machine over arbitrary metric streams (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tusklang.delivery import Action, CanaryController, Sample, Status, load_policy

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SEED = json.loads((Path(__file__).parent.parent / "fixtures/delivery/seed_policy.json").read_text())
POLICY = load_policy(SEED["progressive_delivery"])
PERIOD = timedelta(minutes=5)

# One interval = for each metric either silence or a few values around (and across) its threshold.
metric_values = {
    "error_rate": st.floats(0, 0.2),
    "response_time": st.floats(0, 4000),
    "throughput": st.floats(0, 300),
}
interval = st.fixed_dictionaries({name: st.lists(values, max_size=4) for name, values in metric_values.items()})


@settings(max_examples=150, deadline=None)
@given(st.lists(interval, min_size=1, max_size=25), st.integers(1, 4), st.booleans())
def test_split_stays_in_bounds_and_rollbacks_end_at_zero(
    intervals: list[dict[str, list[float]]], failure_limit: int, automatic: bool
) -> None:
    block = json.loads(json.dumps(SEED["progressive_delivery"]))
    block["canary_deployments"]["rollback"].update(failure_limit=failure_limit, automatic=automatic)
    controller = CanaryController(load_policy(block))
    state, _ = controller.start("p", T0)
    for index, values in enumerate(intervals):
        start = T0 + index * PERIOD
        samples = [
            Sample(start + timedelta(seconds=10 * (i + 1)), "canary", metric, value)
            for metric, series in values.items()
            for i, value in enumerate(series)
        ]
        before = state
        state, decision = controller.step(state, samples, start + PERIOD)
        if before.status is not Status.PROGRESSING:
            assert decision is None and state == before
            continue
        assert decision is not None
        assert 0 <= state.canary_percent <= 100
        assert decision.canary_percent == state.canary_percent
        failing = any(c.verdict.value == "fail" for c in decision.checks)
        silent = any(c.verdict.value == "no_data" for c in decision.checks)
        if failing or silent:
            assert decision.action in {Action.HOLD, Action.ROLLBACK}
            assert state.canary_percent <= before.canary_percent
        if decision.action is Action.ROLLBACK:
            assert failing and state.canary_percent == 0 and state.status is Status.ROLLED_BACK
            assert state.consecutive_failures >= failure_limit
        if decision.action in {Action.ADVANCE, Action.PROMOTE}:
            assert not failing and not silent and state.canary_percent > before.canary_percent
