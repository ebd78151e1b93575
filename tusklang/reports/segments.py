"""`tusk experiment report NAME --by ATTRIBUTE`: the experiment's results per value of one recorded attribute.

A unit's slice is the attribute's value on its FIRST exposure row (the row that also decides its variant,
per the event-store contract), so a unit is counted in exactly one slice and one variant; conversions are
counted as in the whole report. The attribute is one the tracker stores (`EventTracker(attributes=...)`,
kept as a JSON object in `tusk_events.attributes`); a unit whose first exposure lacks it is in the slice
`(not recorded)`.

Statistics are `tusklang.experiments.stats` (the whole report's): per slice and variant, the difference
from that slice's control with its Wald interval and the two-sided z-test. Slicing multiplies the
comparisons, so every judged comparison is one family for the correction (Holm by default): a slice that
looks significant on its own p-value but not after correction is named in a warning. A slice where any arm
has fewer units than `min_units`, or fewer than 5 conversions or 5 non-conversions (the normal
approximation behind the interval does not hold), is too small to judge: its counts are shown, no test is
run on it, and it is left out of the family.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from ..db import Database, dialect_of
from ..experiments import stats
from .report import ExperimentSpec, ReportError, interval_chart, losses_warning, window_losses

NOT_RECORDED: Final = "(not recorded)"
OTHERS: Final = "(other values)"
MAX_SLICES: Final = 50  # the largest slices are shown; the rest are merged into OTHERS
MIN_OUTCOMES: Final = 5  # conversions and non-conversions per arm for the normal approximation
_LABELS: Final = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def valid_attribute(name: str) -> bool:
    return bool(_NAME.match(name))


def _slice_expression(url: str) -> str:
    # The attribute's JSON text (`"DE"`, `true`, `42`), NULL when absent; the same text on both databases,
    # so labels do not depend on where the events are stored. The path is a bound parameter.
    if dialect_of(url) == "sqlite":
        return "CASE WHEN json_valid(attributes) THEN attributes -> ? END"
    return "(CAST(attributes AS jsonb) -> CAST(? AS TEXT))::text"


def _sql(url: str) -> str:
    return f"""
WITH firsts AS (
    SELECT unit_id, variant, occurred_at, slice FROM (
        SELECT unit_id, variant, occurred_at, {_slice_expression(url)} AS slice,
               ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY occurred_at, id) AS position
        FROM tusk_events
        WHERE kind = 'exposure' AND flag = ?
    ) ranked
    WHERE position = 1
),
converted AS (
    SELECT DISTINCT f.unit_id AS unit_id
    FROM firsts f
    JOIN tusk_events c ON c.unit_id = f.unit_id
    WHERE c.kind = 'conversion' AND c.event = ? AND c.occurred_at >= f.occurred_at
)
SELECT f.slice AS slice, f.variant AS variant, COUNT(*) AS units, COUNT(cv.unit_id) AS conversions
FROM firsts f LEFT JOIN converted cv ON cv.unit_id = f.unit_id
GROUP BY f.slice, f.variant
ORDER BY f.slice, f.variant
"""


def _label(raw: object) -> str:
    if raw is None:
        return NOT_RECORDED
    try:
        value = json.loads(str(raw))
    except ValueError:
        return str(raw)
    if value is None:
        return NOT_RECORDED
    return value if isinstance(value, str) else json.dumps(value)


SliceCounts = dict[str, dict[str, tuple[int, int]]]  # slice label -> variant -> (units, conversions)


def count_slices(db: Database, experiment: str, metric: str, attribute: str) -> SliceCounts:
    if not valid_attribute(attribute):
        raise ValueError(f"not an attribute name: {attribute!r}")
    # SQLite takes a JSON path (quoted: names may hold `.` or `-`; valid names hold no `"`), PostgreSQL a key.
    path = f'$."{attribute}"' if dialect_of(db.url) == "sqlite" else attribute
    slices: SliceCounts = {}
    for row in db.query(_sql(db.url), [path, experiment, metric]):
        label = _label(row["slice"])
        arms = slices.setdefault(label, {})
        units, conversions = arms.get(str(row["variant"]), (0, 0))
        arms[str(row["variant"])] = (units + int(row["units"]), conversions + int(row["conversions"]))  # type: ignore[call-overload]
    return slices


def _merge_small(slices: SliceCounts) -> SliceCounts:
    if len(slices) <= MAX_SLICES:
        return slices
    ranked = sorted(slices, key=lambda s: (-sum(u for u, _ in slices[s].values()), s))
    kept = {s: slices[s] for s in ranked[: MAX_SLICES - 1]}
    merged: dict[str, tuple[int, int]] = {}
    for label in ranked[MAX_SLICES - 1 :]:
        for variant, (units, conversions) in slices[label].items():
            u, c = merged.get(variant, (0, 0))
            merged[variant] = (u + units, c + conversions)
    kept[OTHERS] = merged
    return kept


def _too_small(arms: Mapping[str, tuple[int, int]], min_units: int) -> str | None:
    for name, (units, conversions) in arms.items():
        if units < min_units:
            return f"{name} has {units} units (fewer than {min_units})"
        if conversions < MIN_OUTCOMES or units - conversions < MIN_OUTCOMES:
            return f"{name} has {conversions} conversions of {units} (fewer than {MIN_OUTCOMES} of each outcome)"
    return None


def analyse_slices(
    spec: ExperimentSpec,
    metric: str,
    attribute: str,
    slices: SliceCounts,
    *,
    min_units: int | None = None,
    losses: Any = None,
) -> dict[str, Any]:
    """The per-slice report as plain data (JSON shape in docs/reports.md)."""
    if not slices:
        raise ReportError(f"no exposures of experiment {spec.name!r} in the event store")
    config = spec.config
    minimum = min_units if min_units is not None else config.minimum_sample_size
    seen = {variant for arms in slices.values() for variant in arms}
    if spec.weights is not None:
        names = [spec.control, *(v for v in spec.weights if v != spec.control)]
    else:
        if spec.control not in seen:
            raise ReportError(
                f"no exposures of the control {spec.control!r}; variants seen: {', '.join(sorted(seen))} "
                "(name the control with --control, or pass --snapshot)"
            )
        names = [spec.control, *sorted(v for v in seen if v != spec.control)]
    if len(names) < 2:
        raise ReportError(f"experiment {spec.name!r} has only the variant {names[0]!r}: nothing to compare")
    unknown = sorted(seen - set(names))
    merged = _merge_small(slices)

    out: list[dict[str, Any]] = []
    family: list[tuple[int, int, float]] = []  # (slice index, arm index, p-value) of every judged comparison
    for label in sorted(merged, key=lambda s: (s in (NOT_RECORDED, OTHERS), -sum(u for u, _ in merged[s].values()), s)):
        arms = {name: merged[label].get(name, (0, 0)) for name in names}
        reason = _too_small(arms, minimum)
        control_units, control_conv = arms[spec.control]
        entries: list[dict[str, Any]] = []
        for name in names:
            units, conversions = arms[name]
            entry: dict[str, Any] = {
                "name": name,
                "control": name == spec.control,
                "units": units,
                "conversions": conversions,
                "rate": conversions / units if units else None,
                "difference": None,
                "ci": None,
                "p_value": None,
                "p_value_adjusted": None,
                "significant": None,
            }
            if name != spec.control and units and control_units:
                test = stats.two_proportion_ztest(
                    control_conv, control_units, conversions, units, config.confidence_level
                )
                entry["difference"] = test.difference
                if reason is None:  # an interval from a normal approximation that does not hold is not shown
                    entry["ci"] = [test.ci_low, test.ci_high]
                    entry["p_value"] = test.p_value
                    family.append((len(out), len(entries), test.p_value))
            entries.append(entry)
        out.append(
            {
                "value": label,
                "units": sum(units for units, _ in arms.values()),
                "judged": reason is None,
                "too_small": reason,
                "arms": entries,
            }
        )

    alpha = 1 - config.confidence_level
    adjusted = stats.adjust_p_values([p for _, _, p in family], config.correction) if family else []
    lost_by_correction: list[str] = []
    significant: list[str] = []
    for (slice_index, arm_index, p_value), p_adj in zip(family, adjusted):
        entry = out[slice_index]["arms"][arm_index]
        entry["p_value_adjusted"] = p_adj
        entry["significant"] = p_adj < alpha
        where = f"{out[slice_index]['value']}: {entry['name']}"
        if p_adj < alpha:
            significant.append(where)
        elif p_value < alpha:
            lost_by_correction.append(where)

    label = _LABELS[config.correction]
    too_small = [s["value"] for s in out if not s["judged"]]
    warnings: list[str] = []
    if len(family) > 1:
        warnings.append(
            f"{len(family)} comparisons across {sum(1 for s in out if s['judged'])} slices: p-values are "
            f"{label}-corrected over all of them; a difference found only in some slices is a hypothesis to "
            "test in a new experiment, not a result"
        )
    if lost_by_correction:
        warnings.append(
            f"significant at {alpha:g} before the {label} correction but not after it: " + ", ".join(lost_by_correction)
        )
    if too_small:
        warnings.append(f"too small to judge (no test run): {', '.join(too_small)}")
    if unknown:
        warnings.append(f"exposures of variants the snapshot does not have were left out: {', '.join(unknown)}")
    if OTHERS in merged:
        warnings.append(f"{len(slices)} values: the {MAX_SLICES - 1} largest are shown, the rest merged into {OTHERS}")
    lost = losses_warning(losses) if losses is not None else None
    if lost is not None:
        warnings.append(lost)
    return {
        "experiment": spec.name,
        "metric": metric,
        "control": spec.control,
        "by": attribute,
        "config": {
            "confidence_level": config.confidence_level,
            "correction": config.correction,
            "min_slice_units": minimum,
            "min_outcomes": MIN_OUTCOMES,
        },
        "slices": out,
        "comparisons": len(family),
        "significant": significant,
        "significant_before_correction_only": lost_by_correction,
        "too_small": too_small,
        "warnings": warnings,
    }


def count_and_analyse(
    db: Database, spec: ExperimentSpec, metric: str, attribute: str, *, min_units: int | None = None
) -> dict[str, Any]:
    slices = count_slices(db, spec.name, metric, attribute)
    return analyse_slices(
        spec, metric, attribute, slices, min_units=min_units, losses=window_losses(db, spec.name) if slices else None
    )


# --------------------------------------------------------------------------- renderers


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_text(report: Mapping[str, Any]) -> str:
    cfg = report["config"]
    level = f"{cfg['confidence_level']:.0%}"
    lines = [
        f"experiment {report['experiment']}, metric {report['metric']}, by {report['by']} "
        f"({level} confidence, {_LABELS[cfg['correction']]} correction over {report['comparisons']} comparisons; "
        f"a slice needs {cfg['min_slice_units']} units per arm)",
    ]
    header = ["arm", "units", "conv", "rate", f"diff [{level} CI]", "p", "p adjusted", ""]
    for piece in report["slices"]:
        lines += ["", f"{report['by']} = {piece['value']}: {piece['units']} units"]
        if not piece["judged"]:
            lines[-1] += f" (too small to judge: {piece['too_small']})"
        rows = []
        for arm in piece["arms"]:
            ci = arm["ci"]
            diff = "-" if ci is None else f"{_pct(arm['difference'], True)} [{_pct(ci[0], True)}, {_pct(ci[1], True)}]"
            mark = {True: "significant", False: "", None: ""}[arm["significant"]]
            rows.append(
                [
                    arm["name"] + (" (control)" if arm["control"] else ""),
                    str(arm["units"]),
                    str(arm["conversions"]),
                    _pct(arm["rate"]),
                    diff,
                    _num(arm["p_value"], ".4f"),
                    _num(arm["p_value_adjusted"], ".4f"),
                    mark,
                ]
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip())
        lines.extend("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
    lines.append("")
    for warning in report["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_html(report: Mapping[str, Any]) -> str:
    from . import environment

    charts = {}
    for piece in report["slices"]:
        if piece["judged"]:
            charts[piece["value"]] = interval_chart(piece["arms"])
    template = environment().get_template("segments.html.j2")
    return template.render(report=report, charts=charts, pct=_pct, num=_num)
