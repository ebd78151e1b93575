"""Blue/green: verify the idle colour, switch all traffic at once, flip back inside the window.

States (docs/delivery.md): ``progressing`` = verifying the new colour with 0% of production traffic;
``switched`` = 100% on the new colour while ``rollback_window`` runs; ``promoted`` = the window closed
without a failure; ``rolled_back`` = traffic is (back) on the old colour.

A failing sample *timed inside* the rollback window flips traffic back, however late the controller
ticks; samples after the window never do. One failing judgement is enough here (no consecutive count):
the whole of production is exposed, and the window is short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from .controller import Action, Decision, RolloutState, Status, _explain, _problem
from .db import as_utc
from .gates import Verdict, judge_health, overall
from .metrics import Sample, canary_samples
from .policy import CanaryPolicy, DeliveryPolicy, format_duration


class BlueGreenController:
    def __init__(self, policy: DeliveryPolicy) -> None:
        self.policy = policy
        self.bluegreen = policy.require_blue_green()
        # The seed has one set of health checks (under canary_deployments); blue/green reuses them.
        self.health: CanaryPolicy | None = policy.canary_deployments
        if self.health is None:
            raise _problem("blue/green needs canary_deployments.health_checks to know what healthy means")

    @property
    def metrics(self) -> list[str]:
        assert self.health is not None
        return [c.metric for c in self.health.checks]

    def window_end(self, state: RolloutState) -> datetime:
        assert state.switched_at is not None
        return state.switched_at + self.bluegreen.rollback_window

    def start(self, name: str, now: datetime, previous: RolloutState | None = None) -> tuple[RolloutState, Decision]:
        now = as_utc(now)
        if previous is not None and previous.status not in {Status.ROLLED_BACK, Status.PROMOTED}:
            raise _problem(f"deployment {name!r} is already {previous.status.value}; abort it first")
        assert self.health is not None
        cooldown = self.health.rollback.cooldown_period
        if previous is not None and previous.cooldown_until is not None and now < previous.cooldown_until:
            raise _problem(
                f"deployment {name!r} was rolled back; its cooldown lasts until "
                f"{previous.cooldown_until.isoformat()} ({format_duration(cooldown)})"
            )
        state = RolloutState(
            name=name,
            kind="bluegreen",
            status=Status.PROGRESSING,
            step_index=0,
            canary_percent=0.0,
            consecutive_failures=0,
            window_start=now,
            started_at=now,
            version=previous.version if previous is not None else 0,
        )
        if not self.bluegreen.health_verification:
            switched = replace(state, status=Status.SWITCHED, canary_percent=100.0, switched_at=now)
            return switched, Decision(
                now, Action.START, 100.0, "started; health_verification is off: switched at once", manual=True
            )
        return state, Decision(now, Action.START, 0.0, "started: verifying the new colour", manual=True)

    def due(self, state: RolloutState, now: datetime) -> bool:
        assert self.health is not None
        if state.status is Status.SWITCHED:
            return True
        return state.status is Status.PROGRESSING and now - state.window_start >= self.health.evaluation_period

    def step(
        self, state: RolloutState, samples: Sequence[Sample], now: datetime
    ) -> tuple[RolloutState, Decision | None]:
        now = as_utc(now)
        if not self.due(state, now):
            return state, None
        assert self.health is not None
        if state.status is Status.SWITCHED:
            return self._watch(state, samples, now)
        window = canary_samples(samples, state.window_start, now)
        checks = judge_health(
            self.health.checks, window, self.health.health_checks.min_samples, self.health.rollback.threshold
        )
        verdict = overall(checks)
        if verdict is Verdict.NO_DATA:
            new = replace(state, window_start=now)
            reason = "hold: verification has too little data (" + _explain(checks, Verdict.NO_DATA) + ")"
            return new, Decision(now, Action.HOLD, 0.0, reason, tuple(checks))
        if verdict is Verdict.FAIL:
            new = self._back(state, now)
            reason = "rollback: verification failed, traffic never switched (" + _explain(checks, verdict) + ")"
            return new, Decision(now, Action.ROLLBACK, 0.0, reason, tuple(checks), consecutive_failures=1)
        new = replace(state, status=Status.SWITCHED, canary_percent=100.0, switched_at=now, window_start=now)
        window_text = format_duration(self.bluegreen.rollback_window)
        reason = (
            f"advance: verification passed ({_explain(checks, Verdict.PASS)}); switched all traffic, "
            f"rollback window {window_text} open"
        )
        return new, Decision(now, Action.ADVANCE, 100.0, reason, tuple(checks))

    def _watch(self, state: RolloutState, samples: Sequence[Sample], now: datetime) -> tuple[RolloutState, Decision]:
        assert self.health is not None and state.switched_at is not None
        end = self.window_end(state)
        inside = canary_samples(samples, state.switched_at, min(now, end))
        checks = judge_health(
            self.health.checks, inside, self.health.health_checks.min_samples, self.health.rollback.threshold
        )
        verdict = overall(checks)
        if verdict is Verdict.FAIL:
            new = self._back(state, now)
            reason = (
                "rollback: failure inside the rollback window, traffic flipped back (" + _explain(checks, verdict) + ")"
            )
            return new, Decision(now, Action.ROLLBACK, 0.0, reason, tuple(checks), consecutive_failures=1)
        if now >= end:
            new = replace(state, status=Status.PROMOTED, window_start=now)
            reason = "promote: rollback window closed without a failure; no automatic flip back from here"
            return new, Decision(now, Action.PROMOTE, 100.0, reason, tuple(checks))
        new = replace(state, window_start=now)
        reason = f"hold: inside the rollback window until {end.isoformat()}, no failure so far"
        return new, Decision(now, Action.HOLD, 100.0, reason, tuple(checks))

    def _back(self, state: RolloutState, now: datetime) -> RolloutState:
        assert self.health is not None
        return replace(
            state,
            status=Status.ROLLED_BACK,
            canary_percent=0.0,
            consecutive_failures=1,
            window_start=now,
            cooldown_until=now + self.health.rollback.cooldown_period,
        )

    def pause(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        raise _problem("blue/green deployments cannot be paused; abort flips traffic back")

    def resume(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        raise _problem("blue/green deployments cannot be paused or resumed")

    def promote(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status not in {Status.PROGRESSING, Status.SWITCHED}:
            raise _problem(f"deployment {state.name!r} is {state.status.value}; nothing to promote")
        new = replace(state, status=Status.PROMOTED, canary_percent=100.0, switched_at=state.switched_at or now)
        return new, Decision(as_utc(now), Action.PROMOTE, 100.0, "promoted by operator", manual=True)

    def abort(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status in {Status.ROLLED_BACK, Status.PROMOTED}:
            raise _problem(f"deployment {state.name!r} is already {state.status.value}")
        new = self._back(state, as_utc(now))
        return new, Decision(
            as_utc(now), Action.ABORT, 0.0, "aborted by operator: traffic on the old colour", manual=True
        )
