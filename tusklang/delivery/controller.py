"""The canary state machine (docs/delivery.md): a pure ``step`` plus manual transitions.

``CanaryController(policy).step(state, samples, now) -> (state, decision | None)`` never reads a clock,
a database or a metric source, so the live controller (``tusk rollout run``) and the simulation
(``tusk rollout simulate``) drive exactly the same code with a real or a simulated clock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ..diagnostics import Diagnostic, TuskError
from .db import as_utc, parse_time
from .gates import CheckResult, Verdict, judge_compare, judge_gate, judge_health, overall
from .metrics import MetricSource, Sample, canary_samples, window_samples
from .policy import CanaryPolicy, DeliveryPolicy, format_duration


class Status(enum.StrEnum):
    PROGRESSING = "progressing"  # canary: stepping up; blue/green: verifying before the switch
    PAUSED = "paused"  # a human (or a failure with automatic rollback off) stopped the clock
    SWITCHED = "switched"  # blue/green: all traffic on the new version, inside the rollback window
    PROMOTED = "promoted"  # terminal: 100% on the new version
    ROLLED_BACK = "rolled_back"  # terminal until the cooldown ends: 0% on the new version


class Action(enum.StrEnum):
    ADVANCE = "advance"
    HOLD = "hold"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    # Manual transitions appear in the audit log only.
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class RolloutState:
    name: str
    kind: str  # "canary" | "bluegreen"
    status: Status
    step_index: int
    canary_percent: float
    consecutive_failures: int
    window_start: datetime
    started_at: datetime
    cooldown_until: datetime | None = None
    switched_at: datetime | None = None
    version: int = 0  # optimistic lock: two controllers cannot both write the same step
    # The flag this rollout moves (binding.Binding.to_dict()), resolved at start; None: nothing moves.
    binding: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        values = dict(data)
        for key in ("window_start", "started_at", "cooldown_until", "switched_at"):
            if values.get(key) is not None:
                values[key] = parse_time(values[key])
        values["status"] = Status(values["status"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Decision:
    time: datetime
    action: Action
    canary_percent: float
    reason: str
    checks: tuple[CheckResult, ...] = ()
    gate: str | None = None
    gate_checks: tuple[CheckResult, ...] = ()
    consecutive_failures: int = 0
    manual: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "action": self.action.value,
            "canary_percent": self.canary_percent,
            "reason": self.reason,
            "checks": [c.to_dict() for c in self.checks],
            "gate": self.gate,
            "gate_checks": [c.to_dict() for c in self.gate_checks],
            "consecutive_failures": self.consecutive_failures,
            "manual": self.manual,
        }


def _problem(message: str) -> TuskError:
    return TuskError([Diagnostic("TSK820", message)])


def _explain(results: Sequence[CheckResult], verdict: Verdict) -> str:
    return "; ".join(r.explain() for r in results if r.verdict is verdict)


class CanaryController:
    """Canary transitions for one policy. Every method is pure: state in, state (and decision) out."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self.policy = policy
        self.canary: CanaryPolicy = policy.require_canary()
        self.ladder = self.canary.ladder

    @property
    def metrics(self) -> list[str]:
        names = list(self.canary.health_checks.metrics)
        for gate in self.canary.gates:
            names += [c.metric for c in self.policy.gate(gate).checks if c.metric not in names]
        return names

    @property
    def compared_metrics(self) -> list[str]:
        """Metrics whose stable side is needed too (canary-vs-stable comparisons)."""
        return [c.metric for c in self.canary.comparisons]

    def start(self, name: str, now: datetime, previous: RolloutState | None = None) -> tuple[RolloutState, Decision]:
        now = as_utc(now)
        if previous is not None and previous.status not in {Status.ROLLED_BACK, Status.PROMOTED}:
            raise _problem(
                f"rollout {name!r} is already {previous.status.value} at {previous.canary_percent:g}%; abort it first"
            )
        if previous is not None and previous.cooldown_until is not None and now < previous.cooldown_until:
            raise _problem(
                f"rollout {name!r} was rolled back; its cooldown lasts until "
                f"{previous.cooldown_until.isoformat()} "
                f"({format_duration(self.canary.rollback.cooldown_period)})"
            )
        state = RolloutState(
            name=name,
            kind="canary",
            status=Status.PROGRESSING,
            step_index=0,
            canary_percent=self.ladder[0],
            consecutive_failures=0,
            window_start=now,
            started_at=now,
            version=previous.version if previous is not None else 0,
        )
        return state, Decision(now, Action.START, state.canary_percent, "rollout started", manual=True)

    def due(self, state: RolloutState, now: datetime) -> bool:
        return state.status is Status.PROGRESSING and now - state.window_start >= self.canary.evaluation_period

    def step(
        self, state: RolloutState, samples: Sequence[Sample], now: datetime
    ) -> tuple[RolloutState, Decision | None]:
        """Judge the window ``[state.window_start, now)`` once it is an evaluation period long."""
        now = as_utc(now)
        if not self.due(state, now):
            return state, None
        window = canary_samples(samples, state.window_start, now)
        checks = judge_health(
            self.canary.checks,
            window,
            self.canary.health_checks.min_samples,
            self.canary.rollback.threshold,
        )
        # Canary against stable over the same window (docs/delivery.md, "Canary versus stable").
        checks += judge_compare(
            self.canary.comparisons,
            window,
            window_samples(samples, "stable", state.window_start, now),
            self.canary.health_checks.min_samples,
        )
        verdict = overall(checks)
        fresh = replace(state, window_start=now)
        if verdict is Verdict.NO_DATA:
            # Silence neither counts against the canary nor resets a streak of failures.
            reason = "hold: not enough data (" + _explain(checks, Verdict.NO_DATA) + ")"
            return fresh, self._decision(now, Action.HOLD, fresh, reason, checks)
        if verdict is Verdict.FAIL:
            return self._fail(fresh, now, checks)
        return self._advance(replace(fresh, consecutive_failures=0), now, checks, window)

    def _fail(self, state: RolloutState, now: datetime, checks: list[CheckResult]) -> tuple[RolloutState, Decision]:
        failures = state.consecutive_failures + 1
        limit = self.canary.rollback.failure_limit
        why = _explain(checks, Verdict.FAIL)
        if failures < limit:
            new = replace(state, consecutive_failures=failures)
            reason = f"hold: failing interval {failures} of {limit} before rollback ({why})"
            return new, self._decision(now, Action.HOLD, new, reason, checks)
        if not self.canary.rollback.automatic:
            new = replace(state, consecutive_failures=failures, status=Status.PAUSED)
            reason = (
                f"hold and pause: {failures} consecutive failing intervals ({why}); automatic rollback "
                "is off, run `tusk rollout abort` or `resume`"
            )
            return new, self._decision(now, Action.HOLD, new, reason, checks)
        new = self._rolled_back(state, now, failures)
        reason = f"rollback: {failures} consecutive failing intervals ({why})"
        return new, self._decision(now, Action.ROLLBACK, new, reason, checks)

    def _rolled_back(self, state: RolloutState, now: datetime, failures: int) -> RolloutState:
        return replace(
            state,
            status=Status.ROLLED_BACK,
            canary_percent=0.0,
            consecutive_failures=failures,
            cooldown_until=now + self.canary.rollback.cooldown_period,
        )

    def _advance(
        self, state: RolloutState, now: datetime, checks: list[CheckResult], window: Sequence[Sample]
    ) -> tuple[RolloutState, Decision]:
        index = min(state.step_index + 1, len(self.ladder) - 1)
        target = self.ladder[index]
        healthy = "healthy (" + _explain(checks, Verdict.PASS) + ")"
        opened: list[tuple[str, float, list[CheckResult]]] = []
        for gate_name, percent in self.canary.gates.items():
            if state.canary_percent < percent <= target:
                gate_checks = judge_gate(self.policy.gate(gate_name), window)
                gate_verdict = overall(gate_checks)
                if gate_verdict is not Verdict.PASS:
                    what = "has too little data" if gate_verdict is Verdict.NO_DATA else "fails"
                    detail = _explain(gate_checks, gate_verdict)
                    reason = f"hold: {healthy}, but gate {gate_name} guarding {percent:g}% {what} ({detail})"
                    decision = self._decision(now, Action.HOLD, state, reason, checks)
                    return state, replace(decision, gate=gate_name, gate_checks=tuple(gate_checks))
                opened.append((gate_name, percent, gate_checks))
        # A gate that passed is named in the decision too: the audit log shows it open, not just absent.
        gate_text = "".join(
            f"; gate {name} guarding {percent:g}% passes ({_explain(results, Verdict.PASS)})"
            for name, percent, results in opened
        )
        if target >= 100:
            new = replace(state, status=Status.PROMOTED, canary_percent=100.0, step_index=index)
            decision = self._decision(now, Action.PROMOTE, new, f"promote to 100%: {healthy}{gate_text}", checks)
        else:
            new = replace(state, canary_percent=target, step_index=index)
            reason = f"advance {state.canary_percent:g}% -> {target:g}%: {healthy}{gate_text}"
            decision = self._decision(now, Action.ADVANCE, new, reason, checks)
        if opened:
            name, _, results = opened[-1]
            decision = replace(decision, gate=name, gate_checks=tuple(results))
        return new, decision

    def _decision(
        self, now: datetime, action: Action, state: RolloutState, reason: str, checks: Sequence[CheckResult]
    ) -> Decision:
        return Decision(
            now,
            action,
            state.canary_percent,
            reason,
            tuple(checks),
            consecutive_failures=state.consecutive_failures,
        )

    # Manual transitions -------------------------------------------------------------------------

    def pause(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status is not Status.PROGRESSING:
            raise _problem(f"rollout {state.name!r} is {state.status.value}; only a progressing one pauses")
        new = replace(state, status=Status.PAUSED)
        return new, Decision(as_utc(now), Action.PAUSE, new.canary_percent, "paused by operator", manual=True)

    def resume(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status is not Status.PAUSED:
            raise _problem(f"rollout {state.name!r} is {state.status.value}; only a paused one resumes")
        # A fresh window: samples from the paused time were not collected under a decision.
        new = replace(state, status=Status.PROGRESSING, window_start=as_utc(now), consecutive_failures=0)
        return new, Decision(as_utc(now), Action.RESUME, new.canary_percent, "resumed by operator", manual=True)

    def promote(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status not in {Status.PROGRESSING, Status.PAUSED}:
            raise _problem(f"rollout {state.name!r} is {state.status.value}; nothing to promote")
        new = replace(state, status=Status.PROMOTED, canary_percent=100.0, step_index=len(self.ladder) - 1)
        return new, Decision(as_utc(now), Action.PROMOTE, 100.0, "promoted by operator", manual=True)

    def abort(self, state: RolloutState, now: datetime) -> tuple[RolloutState, Decision]:
        if state.status in {Status.ROLLED_BACK, Status.PROMOTED}:
            raise _problem(f"rollout {state.name!r} is already {state.status.value}")
        new = self._rolled_back(state, as_utc(now), state.consecutive_failures)
        return new, Decision(as_utc(now), Action.ABORT, 0.0, "aborted by operator: traffic back to stable", manual=True)


def drive(
    controller: Any, state: RolloutState, source: MetricSource, now: datetime
) -> tuple[RolloutState, Decision | None]:
    """One tick of either clock: fetch the window's samples from ``source`` and call ``step``."""
    now = as_utc(now)
    if not controller.due(state, now):
        return state, None
    samples = source.fetch("canary", controller.metrics, state.window_start, now)
    compared = getattr(controller, "compared_metrics", [])
    if compared:
        samples += source.fetch("stable", compared, state.window_start, now)
    return controller.step(state, samples, now)
