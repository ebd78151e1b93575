"""`tusk experiment report`: count an experiment's units and conversions in the event store, then analyse.

Counting follows the event-store contract (docs/reports.md): a unit belongs to the variant of its FIRST
exposure to the experiment; it converts when it has a conversion of the metric event at or after that
first exposure. Statistics come from `tusklang.experiments` (stats.py, decision.py), never re-derived.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..db import Database, QueryError
from ..experiments import stats
from ..experiments.decision import Decision, DecisionConfig, decide
from .common import LOSSES_SQL, LOSSES_V1_SQL, ReportError
from .common import REPORT_ERROR_CODE as REPORT_ERROR_CODE  # re-exported: its home before common.py

# Each unit's first exposure (ties at the same instant broken by row id, i.e. insertion order).
_FIRST_EXPOSURES = """
    SELECT unit_id, variant, occurred_at FROM (
        SELECT unit_id, variant, occurred_at,
               ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY occurred_at, id) AS position
        FROM tusk_events
        WHERE kind = 'exposure' AND flag = ?
    ) ranked
    WHERE position = 1
"""

COUNTS_SQL = f"""
WITH firsts AS ({_FIRST_EXPOSURES}),
converted AS (
    SELECT DISTINCT f.unit_id AS unit_id
    FROM firsts f
    JOIN tusk_events c ON c.unit_id = f.unit_id
    WHERE c.kind = 'conversion' AND c.event = ? AND c.occurred_at >= f.occurred_at
)
SELECT f.variant AS variant, COUNT(*) AS units, COUNT(cv.unit_id) AS conversions
FROM firsts f LEFT JOIN converted cv ON cv.unit_id = f.unit_id
GROUP BY f.variant
ORDER BY f.variant
"""

SWITCHED_SQL = """
SELECT COUNT(*) AS units FROM (
    SELECT unit_id FROM tusk_events WHERE kind = 'exposure' AND flag = ?
    GROUP BY unit_id HAVING COUNT(DISTINCT variant) > 1
) switched
"""

EVENTS_SQL = """
SELECT event, COUNT(*) AS n FROM tusk_events
WHERE kind = 'conversion' AND event IS NOT NULL
GROUP BY event ORDER BY event
"""

# The report's window starts at the experiment's first recorded exposure and runs to now (the report
# reads everything recorded since). A loss row covers `since` .. `occurred_at` (when it was recorded),
# so it overlaps the window when it was recorded at or after the window's start; this also catches a
# loss that swallowed every event after the last recorded one.
WINDOW_SQL = "SELECT MIN(occurred_at) AS start FROM tusk_events WHERE kind = 'exposure' AND flag = ?"


@dataclass(frozen=True)
class ExperimentSpec:
    """What the report needs to know about the experiment, from the snapshot or the command line."""

    name: str
    control: str
    weights: dict[str, float] | None = None
    config: DecisionConfig = field(default_factory=DecisionConfig)
    primary_metric: str | None = None


def spec_from_snapshot(snapshot: Any, name: str) -> ExperimentSpec:
    """The experiment's control, split weights, analysis config and first primary metric."""
    experiments = snapshot.experiments
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or "none"
        raise ReportError(f"the snapshot has no experiment {name!r} (experiments: {known})")
    experiment = experiments[name]
    weights: dict[str, float] | None = None
    for rule in experiment.rules:
        if rule.split is not None:
            weights = {variant: float(weight) for variant, weight in rule.split.weights}
            break
    if weights is not None:
        # A variant the split never serves still belongs in the report, with weight 0.
        for variant in experiment.variants:
            weights.setdefault(variant, 0.0)
    analysis = dict(experiment.analysis or {})
    # The compiler puts the global defaults under `bayesian` / `frequentist` and the experiment's own keys
    # next to them; DecisionConfig reads the seed's two shapes, the experiment's own keys winning.
    global_analysis: dict[str, Any] = {}
    if "bayesian" in analysis:
        global_analysis["bayesian_analysis"] = analysis.pop("bayesian")
    if "frequentist" in analysis:
        global_analysis["frequentist_analysis"] = analysis.pop("frequentist")
    if "reporting" in analysis:
        global_analysis["reporting"] = analysis.pop("reporting")
    config = DecisionConfig.from_config(analysis, global_analysis)
    metrics = experiment.metrics or {}
    primary = metrics.get("primary") if isinstance(metrics, Mapping) else None
    first_metric = primary[0] if isinstance(primary, list) and primary and isinstance(primary[0], str) else None
    return ExperimentSpec(name, experiment.default_variant, weights, config, first_metric)


@dataclass(frozen=True)
class Losses:
    """Events the store recorded as lost within the report's window."""

    dropped: int  # refused because the recording queue was full
    failed: int  # lost to writes that failed
    first: float | None  # epoch seconds: when the first of these losses began
    last: float | None  # when the last of them was recorded


@dataclass(frozen=True)
class Counts:
    per_variant: dict[str, tuple[int, int]]  # variant -> (units, conversions)
    switched_units: int
    dropped_events: int | None
    losses: Losses | None = None  # None: the store has no tusk_event_drops table


def conversion_events(db: Database) -> list[str]:
    return [str(row["event"]) for row in db.query(EVENTS_SQL)]


def count(db: Database, experiment: str, metric: str) -> Counts:
    rows = db.query(COUNTS_SQL, [experiment, metric])
    per_variant = {str(row["variant"]): (int(row["units"]), int(row["conversions"])) for row in rows}  # type: ignore[call-overload]
    switched = int(db.query(SWITCHED_SQL, [experiment])[0]["units"])  # type: ignore[call-overload]
    losses = window_losses(db, experiment)
    return Counts(per_variant, switched, losses.dropped if losses is not None else None, losses)


def window_losses(db: Database, experiment: str) -> Losses | None:
    """Drops and failed writes recorded within the experiment's window; None without a drops table."""
    start = db.query(WINDOW_SQL, [experiment])[0]["start"]
    if start is None:
        return Losses(0, 0, None, None)
    try:
        found = db.query(LOSSES_SQL, [start])
    except QueryError as exc:
        if exc.kind == "missing_table":
            return None
        try:  # a version-1 table: no failed/since columns (`tusk db init` migrates it)
            found = db.query(LOSSES_V1_SQL, [start])
        except QueryError:
            raise exc from None
    row = found[0]
    first, last = row["first"], row["last"]
    return Losses(
        int(row["dropped"]),  # type: ignore[call-overload]
        int(row["failed"]),  # type: ignore[call-overload]
        float(first) if first is not None else None,  # type: ignore[arg-type]
        float(last) if last is not None else None,  # type: ignore[arg-type]
    )


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def losses_warning(losses: Losses) -> str | None:
    parts = []
    if losses.dropped:
        parts.append(f"{losses.dropped} dropped (the recording queue was full)")
    if losses.failed:
        parts.append(f"{losses.failed} lost to failed writes")
    if not parts:
        return None
    return (
        f"events were lost while this experiment ran: {' and '.join(parts)}, between {_iso(losses.first)} and "
        f"{_iso(losses.last)}; counts may be low"
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def analyse(spec: ExperimentSpec, metric: str, counts: Counts) -> dict[str, Any]:
    """The whole report as plain data: per-arm numbers, SRM, the decision and its sentence."""
    config = spec.config
    observed = counts.per_variant
    if not observed:
        raise ReportError(f"no exposures of experiment {spec.name!r} in the event store")
    if spec.weights is not None:
        names = [spec.control, *(v for v in spec.weights if v != spec.control)]
        unknown = sorted(set(observed) - set(spec.weights))
    else:
        names = [spec.control, *sorted(v for v in observed if v != spec.control)]
        unknown = []
    if spec.control not in observed and spec.weights is None:
        raise ReportError(
            f"no exposures of the control {spec.control!r}; variants seen: {', '.join(sorted(observed))} "
            "(name the control with --control, or pass --snapshot)"
        )
    if len(names) < 2:
        raise ReportError(f"experiment {spec.name!r} has only the variant {names[0]!r}: nothing to compare")
    arms = {name: observed.get(name, (0, 0)) for name in names}
    weights = {name: spec.weights[name] for name in names} if spec.weights is not None else None
    decision: Decision = decide(arms, spec.control, weights, config)

    control_units, control_conv = arms[spec.control]
    control_rate = control_conv / control_units if control_units else None
    everyone_has_units = all(units > 0 for units, _ in arms.values())
    p_best = stats.prob_best([(c, u) for u, c in arms.values()], config.prior) if everyone_has_units else None
    loss_all = stats.expected_loss_all([(c, u) for u, c in arms.values()], config.prior) if everyone_has_units else None
    variants = [name for name in names if name != spec.control]
    tests: dict[str, stats.ZTest] = {}
    for name in variants:
        units, conv = arms[name]
        if units and control_units:
            tests[name] = stats.two_proportion_ztest(control_conv, control_units, conv, units, config.confidence_level)
    adjusted = dict(zip(tests, stats.adjust_p_values([t.p_value for t in tests.values()], config.correction)))

    out_arms: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        units, conv = arms[name]
        rate = conv / units if units else None
        entry: dict[str, Any] = {
            "name": name,
            "control": name == spec.control,
            "weight": weights[name] if weights is not None else None,
            "units": units,
            "conversions": conv,
            "rate": rate,
            "uplift": None,
            "uplift_ci": None,
            "difference": None,
            "ci": None,
            "p_beat_control": None,
            "p_best": p_best[index] if p_best is not None else None,
            "expected_loss": loss_all[index] if loss_all is not None else None,
            "expected_loss_vs_control": None,
            "p_value": None,
            "p_value_adjusted": None,
        }
        test = tests.get(name)
        if test is not None and rate is not None:
            entry["uplift"] = (rate - control_rate) / control_rate if control_rate else None
            interval = stats.relative_uplift_interval(control_conv, control_units, conv, units, config.confidence_level)
            entry["uplift_ci"] = list(interval) if interval is not None else None
            entry["difference"] = test.difference
            entry["ci"] = [test.ci_low, test.ci_high]
            entry["p_beat_control"] = stats.prob_beats_control(control_conv, control_units, conv, units, config.prior)
            entry["expected_loss_vs_control"] = stats.expected_loss_vs_control(
                control_conv, control_units, conv, units, config.prior
            )[0]
            entry["p_value"] = test.p_value
            entry["p_value_adjusted"] = adjusted[name]
        out_arms.append(entry)

    warnings: list[str] = []
    if unknown:
        left_out = ", ".join(f"{v} ({observed[v][0]} units)" for v in unknown)
        warnings.append(f"exposures of variants the snapshot does not have were left out: {left_out}")
    if counts.switched_units:
        warnings.append(
            f"{counts.switched_units} units were exposed to more than one variant (a config change?); "
            "each is counted in its first variant"
        )
    lost = losses_warning(counts.losses) if counts.losses is not None else None
    if lost is not None:
        warnings.append(lost)
    srm = decision.srm
    return {
        "experiment": spec.name,
        "metric": metric,
        "control": spec.control,
        "config": {
            "method": decision.method,
            "confidence_level": config.confidence_level,
            "correction": config.correction,
            "prior": list(config.prior),
            "minimum_sample_size": config.minimum_sample_size,
            "winner_detection": config.winner_detection,
        },
        "arms": out_arms,
        "srm": dataclasses.asdict(srm) if srm is not None else None,
        "decision": {
            "status": decision.status,
            "winner": decision.winner,
            "why": decision.why,
            "more_units_per_arm": decision.more_units_per_arm,
        },
        "units_in_several_variants": counts.switched_units,
        "dropped_events": counts.dropped_events,
        "lost_events": _losses_json(counts.losses),
        "warnings": warnings,
    }


def _losses_json(losses: Losses | None) -> dict[str, Any] | None:
    if losses is None:
        return None
    return {
        "dropped": losses.dropped,
        "failed": losses.failed,
        "total": losses.dropped + losses.failed,
        "first": _iso(losses.first),
        "last": _iso(losses.last),
    }


# --------------------------------------------------------------------------- text


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _uplift(arm: Mapping[str, Any]) -> str:
    """Relative uplift and its interval (delta method on the log ratio; asymmetric)."""
    text = _pct(arm["uplift"], True)
    interval = arm.get("uplift_ci")
    if interval is None or arm["uplift"] is None:
        return text
    return f"{text} [{_pct(interval[0], True)}, {_pct(interval[1], True)}]"


def render_text(report: Mapping[str, Any]) -> str:
    cfg = report["config"]
    level = f"{cfg['confidence_level']:.0%}"
    label = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "BH"}[cfg["correction"]]
    lines = [
        f"experiment {report['experiment']}, metric {report['metric']} "
        f"({cfg['method']}, {level} confidence, {label} correction)",
        "",
    ]
    header = ["arm", "weight", "units", "conv", "rate", f"uplift [{level} CI]", f"diff [{level} CI]"]
    header += ["P(beat ctrl)", "P(best)"]
    header += ["exp. loss", "p", f"p ({label})"]
    rows = []
    for arm in report["arms"]:
        ci = arm["ci"]
        diff = "-" if ci is None else f"{_pct(arm['difference'], True)} [{_pct(ci[0], True)}, {_pct(ci[1], True)}]"
        rows.append(
            [
                arm["name"] + (" (control)" if arm["control"] else ""),
                _num(arm["weight"], "g"),
                str(arm["units"]),
                str(arm["conversions"]),
                _pct(arm["rate"]),
                _uplift(arm),
                diff,
                _num(arm["p_beat_control"], ".4f"),
                _num(arm["p_best"], ".4f"),
                _num(arm["expected_loss"], ".6f"),
                _num(arm["p_value"], ".4f"),
                _num(arm["p_value_adjusted"], ".4f"),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
    lines.append("")
    srm = report["srm"]
    if srm is None:
        lines.append("SRM: not checked (no configured weights: pass --snapshot)")
    else:
        verdict = "MISMATCH" if srm["mismatch"] else "ok"
        lines.append(
            f"SRM: chi2 = {srm['chi2']:.4f}, df = {srm['df']}, p = {srm['p']:.4g}: {verdict} ({srm['reason']})"
        )
    decision = report["decision"]
    lines.append(f"decision: {decision['status']}" + (f" ({decision['winner']})" if decision["winner"] else ""))
    lines.append(decision["why"])
    for warning in report["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- html


@dataclass(frozen=True)
class _Bar:
    name: str
    y: float
    x_low: float
    x_high: float
    x_point: float
    label: str
    tone: str  # up / down: the interval excludes 0 on that side; flat: it contains 0


def interval_chart(arms: Sequence[Mapping[str, Any]], width: int = 640) -> dict[str, Any]:
    """Geometry of the interval chart (difference vs control with its CI), computed here so the
    template only places numbers: no script, no external library."""
    with_ci = [arm for arm in arms if arm["ci"] is not None]
    row, left, right, top = 34, 140, 24, 28
    height = top + row * max(1, len(with_ci)) + 30
    if not with_ci:
        return {"width": width, "height": height, "bars": [], "zero": None, "ticks": []}
    extent = max(max(abs(arm["ci"][0]), abs(arm["ci"][1])) for arm in with_ci) or 0.01
    extent *= 1.1
    plot = width - left - right

    def x(value: float) -> float:
        return round(left + (value + extent) / (2 * extent) * plot, 2)

    bars = [
        _Bar(
            arm["name"],
            top + row * index + row / 2,
            x(arm["ci"][0]),
            x(arm["ci"][1]),
            x(arm["difference"]),
            f"{arm['difference']:+.2%} [{arm['ci'][0]:+.2%}, {arm['ci'][1]:+.2%}]",
            "up" if arm["ci"][0] > 0 else "down" if arm["ci"][1] < 0 else "flat",
        )
        for index, arm in enumerate(with_ci)
    ]
    ticks = [{"x": x(v), "label": f"{v:+.1%}"} for v in (-extent / 1.1, 0.0, extent / 1.1)]
    return {"width": width, "height": height, "bars": bars, "zero": x(0.0), "ticks": ticks, "bottom": height - 22}


def render_html(report: Mapping[str, Any]) -> str:
    from . import environment

    template = environment().get_template("report.html.j2")
    return template.render(report=report, chart=interval_chart(report["arms"]), pct=_pct, num=_num)
