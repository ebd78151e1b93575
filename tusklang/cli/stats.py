"""`tusk stats`: compare arms, check a sample ratio, plan a sample size (formulas: docs/statistics.md)."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from ._common import EXIT_OK, UsageError, add_command, add_format, missing_subcommand, print_json

_COUNTS = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "stats",
        "Experiment statistics: compare arms, sample ratio mismatch, sample size.",
        "tusk stats compare --control 100/1000 --variant B=120/1000",
    )
    nested = parser.add_subparsers(dest="stats_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: missing_subcommand(parser))

    compare = add_command(
        nested,
        "compare",
        "Bayesian and frequentist comparison of variants against control (conversions/units)",
        "tusk stats compare --control 100/1000 --variant B=120/1000 --variant C=130/1000 --format json",
    )
    compare.add_argument("--control", required=True, metavar="CONV/UNITS", help="control counts, e.g. 100/1000")
    compare.add_argument("--control-name", default="control", metavar="NAME", help="default: control")
    compare.add_argument(
        "--variant",
        action="append",
        required=True,
        metavar="NAME=CONV/UNITS",
        help="a variant's counts, e.g. B=120/1000 (repeat for several variants)",
    )
    compare.add_argument("--confidence", default="0.95", help="confidence level (default 0.95)")
    compare.add_argument(
        "--correction",
        default="holm",
        metavar="holm|bonferroni|bh",
        help="multiple-comparison correction of the p-values (default holm)",
    )
    compare.add_argument("--prior", default="1,1", metavar="A,B", help="Beta prior (default 1,1 = uniform)")
    compare.add_argument(
        "--sequential",
        action="store_true",
        help="also give the always-valid confidence sequence (safe to check at every look)",
    )
    add_format(compare)
    compare.set_defaults(func=_run_compare)

    srm = add_command(
        nested,
        "srm",
        "sample ratio mismatch: chi-square of observed units against the configured weights",
        "tusk stats srm --observed 5000,5400 --weights 50,50",
    )
    srm.add_argument("--observed", required=True, metavar="N,N,...", help="units per arm")
    srm.add_argument("--weights", required=True, metavar="W,W,...", help="configured weights per arm")
    srm.add_argument("--threshold", default="0.001", help="alert when p is below this (default 0.001)")
    add_format(srm)
    srm.set_defaults(func=_run_srm)

    size = add_command(
        nested,
        "sample-size",
        "units needed per arm to detect an absolute change in a conversion rate",
        "tusk stats sample-size --baseline 0.10 --mde 0.02 --alpha 0.05 --power 0.8 --arms 2",
    )
    size.add_argument("--baseline", required=True, help="control conversion rate, e.g. 0.10")
    size.add_argument("--mde", required=True, help="minimum detectable absolute difference, e.g. 0.02")
    size.add_argument("--alpha", default="0.05", help="false positive rate (default 0.05)")
    size.add_argument("--power", default="0.8", help="chance to detect a true effect (default 0.8)")
    size.add_argument("--arms", default="2", help="arms including control; alpha is split (default 2)")
    size.add_argument("--one-sided", action="store_true", help="test only for an improvement")
    add_format(size)
    size.set_defaults(func=_run_sample_size)


# --------------------------------------------------------------------------- argument parsing


def _counts(text: str, label: str) -> tuple[int, int]:
    match = _COUNTS.match(text)
    if not match:
        raise UsageError(f"{label}: expected CONVERSIONS/UNITS as whole numbers >= 0 (like 120/1000), got {text!r}")
    conversions, units = int(match[1]), int(match[2])
    if units == 0:
        raise UsageError(f"{label}: units must be greater than 0 in {text!r}")
    if conversions > units:
        raise UsageError(f"{label}: {conversions} conversions is more than its {units} units")
    return conversions, units


def _variant(text: str) -> tuple[str, tuple[int, int]]:
    name, sep, counts = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise UsageError(f"--variant: expected NAME=CONVERSIONS/UNITS (like B=120/1000), got {text!r}")
    return name, _counts(counts, f"--variant {name}")


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option}: expected a finite number, got {text!r}")
    return value


def _fraction(text: str, option: str) -> float:
    value = _number(text, option)
    if not 0 < value < 1:
        raise UsageError(f"{option}: must be between 0 and 1 (exclusive), got {text}")
    return value


def _number_list(text: str, option: str) -> list[float]:
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise UsageError(f"{option}: expected comma-separated numbers, got {text!r}")
    return [_number(part, option) for part in parts]


# --------------------------------------------------------------------------- compare


def _run_compare(args: argparse.Namespace) -> int:
    from ..experiments import stats

    control = _counts(args.control, "--control")
    variants: dict[str, tuple[int, int]] = {}
    for text in args.variant:
        name, counts = _variant(text)
        if name in variants or name == args.control_name:
            raise UsageError(f"--variant: the name {name!r} is used twice")
        variants[name] = counts
    confidence = _fraction(args.confidence, "--confidence")
    if args.correction not in stats.CORRECTIONS:
        raise UsageError(f"--correction: use one of {', '.join(stats.CORRECTIONS)}, got {args.correction!r}")
    prior_values = _number_list(args.prior, "--prior")
    if len(prior_values) != 2 or min(prior_values) <= 0:
        raise UsageError(f"--prior: expected two numbers > 0 like 1,1, got {args.prior!r}")
    prior = (prior_values[0], prior_values[1])

    names = list(variants)
    arms = [control, *(variants[name] for name in names)]
    p_best = stats.prob_best(arms, prior)
    tests = [stats.two_proportion_ztest(*control, *variants[name], confidence=confidence) for name in names]
    adjusted = stats.adjust_p_values([t.p_value for t in tests], args.correction)
    control_rate = control[0] / control[1]
    out_variants: dict[str, Any] = {}
    for index, name in enumerate(names):
        conversions, units = variants[name]
        rate = conversions / units
        test = tests[index]
        entry: dict[str, Any] = {
            "conversions": conversions,
            "units": units,
            "rate": rate,
            "uplift": (rate - control_rate) / control_rate if control_rate > 0 else None,
            "p_beat_control": stats.prob_beats_control(*control, conversions, units, prior),
            "p_best": p_best[index + 1],
            "expected_loss": stats.expected_loss_vs_control(*control, conversions, units, prior)[0],
            "z": test.z,
            "p_value": test.p_value,
            "p_value_adjusted": adjusted[index],
            "ci": [test.ci_low, test.ci_high],
        }
        if args.sequential:
            entry["ci_sequential"] = list(stats.sequential_interval(*control, conversions, units, confidence))
        out_variants[name] = entry
    result = {
        "control": {
            "name": args.control_name,
            "conversions": control[0],
            "units": control[1],
            "rate": control_rate,
            "p_best": p_best[0],
        },
        "variants": out_variants,
        "confidence": confidence,
        "correction": args.correction,
        "prior": list(prior),
    }
    if args.format == "json":
        print_json(result)
    else:
        _print_compare(result, args.sequential)
    return EXIT_OK


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _print_compare(result: dict[str, Any], sequential: bool) -> None:
    level = f"{result['confidence']:.0%}"
    correction = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "BH"}[result["correction"]]
    header = ["arm", "conv/units", "rate", "uplift", "P(beat ctrl)", "P(best)", "exp. loss"]
    header += ["p", f"p ({correction})", f"{level} CI of diff"]
    if sequential:
        header.append(f"{level} sequential CI")
    control = result["control"]
    rows = [
        [
            control["name"] if control["name"] == "control" else f"{control['name']} (control)",
            f"{control['conversions']}/{control['units']}",
            _pct(control["rate"]),
            "-",
            "-",
            f"{control['p_best']:.4f}",
            "-",
            "-",
            "-",
            "-",
        ]
        + (["-"] if sequential else [])
    ]
    for name, v in result["variants"].items():
        row = [
            name,
            f"{v['conversions']}/{v['units']}",
            _pct(v["rate"]),
            _pct(v["uplift"], signed=True),
            f"{v['p_beat_control']:.4f}",
            f"{v['p_best']:.4f}",
            f"{v['expected_loss']:.6f}",
            f"{v['p_value']:.4f}",
            f"{v['p_value_adjusted']:.4f}",
            f"[{_pct(v['ci'][0], True)}, {_pct(v['ci'][1], True)}]",
        ]
        if sequential:
            row.append(f"[{_pct(v['ci_sequential'][0], True)}, {_pct(v['ci_sequential'][1], True)}]")
        rows.append(row)
    _print_table(header, rows)
    prior = result["prior"]
    print(
        f"\nBeta({prior[0]:g}, {prior[1]:g}) prior; P(best) by numerical integration; p-values from a "
        "two-sided two-proportion z-test; exp. loss = expected rate lost by shipping the variant "
        "instead of control."
    )


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(cell.ljust(w) for cell, w in zip(header, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


# --------------------------------------------------------------------------- srm


def _run_srm(args: argparse.Namespace) -> int:
    from ..experiments import stats

    observed_values = _number_list(args.observed, "--observed")
    if any(v < 0 or not v.is_integer() for v in observed_values):
        raise UsageError(f"--observed: expected whole numbers >= 0, got {args.observed!r}")
    weights = _number_list(args.weights, "--weights")
    if any(w < 0 for w in weights):
        raise UsageError(f"--weights: weights must not be negative, got {args.weights!r}")
    if len(weights) != len(observed_values):
        raise UsageError(f"--weights: {len(weights)} weights for {len(observed_values)} observed counts")
    if sum(1 for w in weights if w > 0) < 2:
        raise UsageError("--weights: at least two arms need a positive weight")
    threshold = _fraction(args.threshold, "--threshold")
    result = stats.srm_test([int(v) for v in observed_values], weights, threshold=threshold)
    total_weight = sum(weights)
    total = sum(int(v) for v, w in zip(observed_values, weights) if w > 0)
    expected = [total * w / total_weight for w in weights]
    if args.format == "json":
        print_json(
            {
                "chi2": result.chi2,
                "df": result.df,
                "p": result.p,
                "mismatch": result.mismatch,
                "checked": result.checked,
                "threshold": threshold,
                "expected": expected,
                "reason": result.reason,
            }
        )
    else:
        rows = [
            [f"arm {i + 1}", f"{w:g}", str(int(o)), f"{e:.1f}"]
            for i, (o, w, e) in enumerate(zip(observed_values, weights, expected))
        ]
        _print_table(["arm", "weight", "observed", "expected"], rows)
        verdict = "MISMATCH" if result.mismatch else "ok"
        print(f"\nchi2 = {result.chi2:.6f}, df = {result.df}, p = {result.p:.6g}: {verdict} ({result.reason})")
    return EXIT_OK


# --------------------------------------------------------------------------- sample size


def _run_sample_size(args: argparse.Namespace) -> int:
    from ..experiments import stats

    baseline = _fraction(args.baseline, "--baseline")
    mde = _number(args.mde, "--mde")
    if mde == 0 or not 0 < baseline + mde < 1:
        raise UsageError(f"--mde: baseline + mde must be a rate between 0 and 1 and mde non-zero, got {args.mde}")
    alpha = _fraction(args.alpha, "--alpha")
    power = _fraction(args.power, "--power")
    try:
        arms = int(args.arms)
    except ValueError:
        raise UsageError(f"--arms: expected a whole number >= 2, got {args.arms!r}") from None
    if arms < 2:
        raise UsageError(f"--arms: expected a whole number >= 2, got {args.arms!r}")
    per_arm = stats.sample_size_per_arm(baseline, mde, alpha, power, arms, two_sided=not args.one_sided)
    result = {
        "per_arm": per_arm,
        "total": per_arm * arms,
        "baseline": baseline,
        "mde": mde,
        "alpha": alpha,
        "power": power,
        "arms": arms,
        "two_sided": not args.one_sided,
    }
    if args.format == "json":
        print_json(result)
    else:
        sides = "one-sided" if args.one_sided else "two-sided"
        split = f", alpha split over {arms - 1} comparisons" if arms > 2 else ""
        print(
            f"{per_arm} units per arm ({per_arm * arms} in total) to detect {baseline:.2%} -> "
            f"{baseline + mde:.2%} with {power:.0%} power at alpha {alpha:g} ({sides}{split})."
        )
    return EXIT_OK
