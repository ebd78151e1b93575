"""`tusk eval`: evaluate one flag or experiment of a compiled snapshot for a context.

Exit codes: 0 evaluated (any reason except an error), 1 the result carries an error code (unknown
flag, invalid context, ...), 2 unreadable/invalid snapshot, bad JSON context or bad --now.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_format,
    invalid_snapshot,
    print_json,
    read_text,
)

if TYPE_CHECKING:
    from ..evaluate import Client
    from ..evaluate.result import EvaluationResult


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "eval",
        "Evaluate a flag or experiment of a JSON snapshot for a context.",
        'tusk eval flags.json new_checkout_flow --context \'{"user_id": "u1", "country": "US"}\' --explain',
    )
    parser.add_argument("snapshot", help="compiled snapshot JSON file ('-' for stdin)")
    parser.add_argument("flag", nargs="?", help="flag or experiment key (or --all)")
    parser.add_argument("--all", action="store_true", help="evaluate every flag and experiment for the context")
    parser.add_argument("--context", default="{}", help="evaluation context as a JSON object (or @file.json)")
    parser.add_argument("--now", default=None, help="evaluation time, ISO-8601 (default: current UTC time)")
    parser.add_argument("--explain", action="store_true", help="show every check in evaluation order")
    parser.add_argument(
        "--type",
        choices=("boolean", "string", "number", "object"),
        help="the type the caller needs: another type gives --default with error TYPE_MISMATCH",
    )
    parser.add_argument("--default", default="null", help="JSON value returned on an error (with --type)")
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import TuskError
    from ..evaluate import Client, explain
    from ..evaluate.client import epoch
    from ..openfeature.mapping import TargetingKey

    text = read_text(args.snapshot)
    try:
        client = Client(text)
    except TuskError as exc:
        raise invalid_snapshot(args.snapshot, exc) from None
    raw = read_text(args.context[1:]) if args.context.startswith("@") else args.context
    try:
        context = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--context is not valid JSON: {exc}") from None
    if not isinstance(context, dict):
        raise UsageError("--context must be a JSON object")
    if "targetingKey" in context and not isinstance(context["targetingKey"], str):
        raise UsageError("--context: `targetingKey` must be a string (OpenFeature's targeting key)")
    if args.now is not None:
        try:
            epoch(args.now)
        except ValueError:
            raise UsageError(f"--now: not an ISO-8601 date-time: {args.now!r}") from None
    if args.all:
        if args.flag is not None or args.explain or args.type is not None:
            raise UsageError("--all evaluates every flag: give no FLAG, --explain or --type with it")
        return _run_all(client, context, args)
    if args.flag is None:
        raise UsageError("give a FLAG to evaluate, or --all")
    # OpenFeature's targeting key stands in for the unit attributes the context lacks, as in `tusk serve`
    # and TuskProvider: a context copied from an OFREP request gets the answer the server gave.
    context = TargetingKey().context(client.snapshot, args.flag, context)
    result, lines = explain(client, args.flag, context, args.now)
    if args.type is not None:
        try:
            default = json.loads(args.default)
        except ValueError as exc:
            raise UsageError(f"--default is not valid JSON: {exc}") from None
        result = client.evaluate_typed(args.flag, args.type, context, default, args.now)
    if args.format == "json":
        out = result.to_dict()
        if args.explain:
            out["explain"] = lines
        print_json(out)
    else:
        if args.explain:
            for line in lines:
                print(line)
        value = json.dumps(result.value, ensure_ascii=False)
        print(f"{result.flag} = {value}  (variant {result.variant}, reason {result.reason}{_decided_by(result)})")
        if result.error_code:
            print(f"error {result.error_code}: {result.detail}", file=sys.stderr)
        elif result.detail:
            print(f"because: {result.detail}")
    return EXIT_PROBLEMS if result.error_code else EXIT_OK


def _run_all(client: Client, context: dict[str, Any], args: argparse.Namespace) -> int:
    results = _every_result(client, context, args.now)
    if args.format == "json":
        print_json({key: result.to_dict() for key, result in sorted(results.items())})
    else:
        width = max((len(key) for key in results), default=0)
        for key, result in sorted(results.items()):
            value = json.dumps(result.value, ensure_ascii=False)
            print(
                f"{key.ljust(width)}  {value}  (variant {result.variant}, reason {result.reason}{_decided_by(result)})"
            )
    return EXIT_PROBLEMS if any(r.error_code for r in results.values()) else EXIT_OK


def _every_result(client: Client, context: dict[str, Any], now: str | None) -> dict[str, EvaluationResult]:
    """``evaluate_all``, with OpenFeature's targeting key under the unit attributes each flag lacks (as
    `tusk serve`'s bulk route): one ``evaluate_all`` when every flag lacks the same ones, the usual case."""
    if "targetingKey" not in context:
        return client.evaluate_all(context, now)
    from ..openfeature.mapping import TargetingKey, fill

    targeting, snapshot = TargetingKey(), client.snapshot
    lacking = {key: targeting.missing(snapshot, key, context) for key in (*snapshot.flags, *snapshot.experiments)}
    distinct = set(lacking.values())
    if len(distinct) <= 1:
        return client.evaluate_all(fill(context, distinct.pop() if distinct else ()), now)
    return {key: client.evaluate(key, fill(context, missing), now) for key, missing in lacking.items()}


def _decided_by(result: EvaluationResult) -> str:
    """``, rule R`` for the deciding rule, ``, prerequisite P`` for the prerequisite that did not hold."""
    rule, prerequisite = result.rule, result.prerequisite
    return (f", rule {rule}" if rule else "") + (f", prerequisite {prerequisite}" if prerequisite else "")
