"""`tusk rollout`: drive canary and blue/green releases, record metrics, replay histories."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_deprecated_alias,
    add_format,
    print_json,
    read_text,
    report,
)
from ._db_errors import usage_error
from ._resolve_options import add_settings_options, settings_from_args

if TYPE_CHECKING:
    from ..delivery.db import Database

DB_HELP = (
    "the delivery store (releases, decisions, metric samples): sqlite:///FILE "
    "(default sqlite:///tusk-rollout.db) or postgresql://..."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "rollout",
        "Progressive delivery: canary steps, blue/green switches, metric samples, simulations.",
        "tusk rollout simulate fixtures/delivery/seed_policy.json --metrics fixtures/delivery/healthy.csv",
    )
    commands = parser.add_subparsers(dest="rollout_command", metavar="ACTION")

    def db_options(p: argparse.ArgumentParser) -> None:
        # --rollout-db, not --db: across commands --db is the @query database and --events-db the event store
        p.add_argument("--rollout-db", default=None, metavar="URL", help=DB_HELP)
        add_deprecated_alias(p, "--db", "--rollout-db")
        p.add_argument("--table-prefix", default="", help="prefix for the three tables (default none)")

    def now_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--now", default=None, help="act as if the time were this ISO 8601 instant")

    p = add_command(
        commands,
        "record",
        "Append one metric sample.",
        "tusk rollout record --rollout-db sqlite:///r.db --target canary --metric error_rate --value 0.01",
    )
    db_options(p)
    p.add_argument("--target", required=True, choices=("canary", "stable"))
    p.add_argument("--metric", required=True)
    p.add_argument("--value", required=True, type=float)
    p.add_argument("--now", default=None, help="ISO 8601 time of the sample (default now)")
    add_deprecated_alias(p, "--time", "--now")  # the one name every command uses for "the time"
    add_format(p)
    p.set_defaults(func=run_record)

    p = add_command(
        commands,
        "start",
        "Start a canary (or blue/green) release under a policy file.",
        "tusk rollout start checkout-v2 --config delivery.tsk --rollout-db sqlite:///r.db",
    )
    p.add_argument("name")
    p.add_argument("--config", required=True, help="TuskLang or .json file with progressive_delivery")
    add_settings_options(p, database=False, limits=False)  # @env/@file in the policy, as `tusk compile` reads them
    p.add_argument("--strategy", choices=("canary", "bluegreen"), default="canary")
    db_options(p)
    now_option(p)
    add_format(p)
    p.set_defaults(func=run_start)

    p = add_command(
        commands,
        "run",
        "Run the controller: judge each evaluation period and act, until the release ends.",
        "tusk rollout run checkout-v2 --rollout-db sqlite:///r.db",
    )
    p.add_argument("name")
    db_options(p)
    now_option(p)
    p.add_argument("--once", action="store_true", help="make at most one decision and exit")
    p.add_argument("--tick", type=float, default=10.0, help="seconds between clock checks (default 10)")
    add_format(p)
    p.set_defaults(func=run_controller)

    p = add_command(
        commands,
        "status",
        "Show a release's state, split and last decisions with their reasons.",
        "tusk rollout status checkout-v2 --rollout-db sqlite:///r.db --format json",
    )
    p.add_argument("name")
    db_options(p)
    p.add_argument("--last", type=int, default=10, help="how many decisions to show (default 10)")
    add_format(p)
    p.set_defaults(func=run_status)

    for action, text in (
        ("promote", "Promote now: 100%% to the new version."),
        ("pause", "Pause a progressing canary (no decisions until resume)."),
        ("resume", "Resume a paused canary with a fresh evaluation window."),
        ("abort", "Abort: all traffic back to stable; the cooldown starts."),
    ):
        p = add_command(commands, action, text, f"tusk rollout {action} checkout-v2 --rollout-db sqlite:///r.db")
        p.add_argument("name")
        db_options(p)
        now_option(p)
        add_format(p)
        p.set_defaults(func=run_manual, manual_action=action)

    p = add_command(
        commands,
        "simulate",
        "Replay a metric history (CSV) through the canary policy with a simulated clock.",
        "tusk rollout simulate delivery.tsk --metrics samples.csv --format json",
    )
    p.add_argument("config")
    add_settings_options(p, database=False, limits=False)
    p.add_argument("--metrics", required=True, help="CSV with columns timestamp,target,metric,value")
    p.add_argument("--start", default=None, help="ISO 8601 start of the rollout (default: first sample)")
    add_format(p)
    p.set_defaults(func=run_simulate)
    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _fail(exc: Exception, fmt: str) -> int:
    from ..db.errors import DatabaseError
    from ..diagnostics import TuskError

    if isinstance(exc, DatabaseError):
        # An unreachable database, an unsupported URL, a failed write: an I/O problem (exit 2).
        raise usage_error(exc) from None
    if isinstance(exc, TuskError):
        report(exc.diagnostics, fmt)  # text on stderr, or JSON on stdout with --format json
        return EXIT_PROBLEMS
    raise exc


def _time(text: str | None, what: str) -> datetime:
    from ..delivery.db import parse_time

    if text is None:
        return datetime.now(UTC)
    try:
        return parse_time(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)") from None


def _open(args: argparse.Namespace) -> Database:
    from ..delivery.db import DEFAULT_DB_URL, Database

    return Database(args.rollout_db or DEFAULT_DB_URL, args.table_prefix)


def _controller(kind: str, policy: Any) -> Any:
    from ..delivery.bluegreen import BlueGreenController
    from ..delivery.controller import CanaryController

    return BlueGreenController(policy) if kind == "bluegreen" else CanaryController(policy)


def _stores(db: Database) -> tuple[Any, Any]:
    from ..delivery.metrics import SqlMetricSource
    from ..delivery.state import RolloutStore

    source, store = SqlMetricSource(db), RolloutStore(db)
    source.ensure_schema()
    store.ensure_schema()
    return source, store


def _print_decision(decision: Any, fmt: str) -> None:
    if fmt == "json":
        print_json(decision.to_dict())
    else:
        when, action = decision.time.isoformat(), decision.action.value
        print(f"{when}  {action:<8} {decision.canary_percent:>6g}%  {decision.reason}")


def run_record(args: argparse.Namespace) -> int:
    from ..delivery.metrics import Sample
    from ..diagnostics import TuskError

    when = _time(args.now, "--now")
    sample = Sample(when, args.target, args.metric, args.value)
    try:
        with _open(args) as db:
            source, _ = _stores(db)
            source.record(sample)
    except TuskError as exc:
        return _fail(exc, args.format)
    if args.format == "json":
        print_json(
            {"recorded": {"time": when.isoformat(), "target": args.target, "metric": args.metric, "value": args.value}}
        )
    return EXIT_OK


def run_start(args: argparse.Namespace) -> int:
    from ..delivery.simulate import policy_from_text
    from ..diagnostics import TuskError

    now = _time(args.now, "--now")
    try:
        policy, raw = policy_from_text(read_text(args.config), args.config, settings_from_args(args))
        controller = _controller(args.strategy, policy)
        with _open(args) as db:
            _, store = _stores(db)
            loaded = store.load(args.name)
            previous = loaded[0] if loaded else None
            state, decision = controller.start(args.name, now, previous)
            store.commit(state, raw, decision)
    except TuskError as exc:
        return _fail(exc, args.format)
    _print_decision(decision, args.format)
    return EXIT_OK


def _load(store: Any, name: str) -> tuple[Any, dict[str, Any], Any]:
    from ..delivery.policy import load_policy

    loaded = store.load(name)
    if loaded is None:
        raise UsageError(f"no rollout named {name!r} in this database; start it with `tusk rollout start`")
    state, raw = loaded
    return state, raw, _controller(state.kind, load_policy(raw))


def run_controller(args: argparse.Namespace) -> int:
    from ..delivery.controller import Status, drive
    from ..diagnostics import TuskError

    try:
        with _open(args) as db:
            source, store = _stores(db)
            while True:
                now = _time(args.now, "--now")
                state, raw, controller = _load(store, args.name)
                if state.status not in {Status.PROGRESSING, Status.SWITCHED}:
                    print(f"{args.name}: {state.status.value} at {state.canary_percent:g}%", file=sys.stderr)
                    return EXIT_OK
                new, decision = drive(controller, state, source, now)
                if decision is not None:
                    store.commit(new, raw, decision)
                    _print_decision(decision, args.format)
                if args.once or args.now is not None:
                    return EXIT_OK
                time.sleep(args.tick)
    except TuskError as exc:
        return _fail(exc, args.format)


def run_manual(args: argparse.Namespace) -> int:
    from ..diagnostics import TuskError

    now = _time(args.now, "--now")
    try:
        with _open(args) as db:
            _, store = _stores(db)
            state, raw, controller = _load(store, args.name)
            new, decision = getattr(controller, args.manual_action)(state, now)
            store.commit(new, raw, decision)
    except TuskError as exc:
        return _fail(exc, args.format)
    _print_decision(decision, args.format)
    return EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    from ..diagnostics import TuskError

    try:
        with _open(args) as db:
            _, store = _stores(db)
            state, _raw, _unused = _load(store, args.name)
            history = store.history(args.name, args.last)
    except TuskError as exc:
        return _fail(exc, args.format)
    data = {"state": state.to_dict(), "decisions": history}
    if args.format == "json":
        print_json(data)
        return EXIT_OK
    print(f"{state.name} ({state.kind}): {state.status.value}, canary at {state.canary_percent:g}%")
    print(f"  step {state.step_index}, consecutive failures {state.consecutive_failures}")
    if state.cooldown_until is not None:
        print(f"  cooldown until {state.cooldown_until.isoformat()}")
    for entry in history:
        who = " (manual)" if entry["manual"] else ""
        print(f"  {entry['time']}  {entry['action']:<8} {entry['canary_percent']:>6g}%  {entry['reason']}{who}")
    return EXIT_OK


def run_simulate(args: argparse.Namespace) -> int:
    from ..delivery.simulate import policy_from_text, read_samples_csv, simulate
    from ..diagnostics import TuskError

    start = _time(args.start, "--start") if args.start else None
    try:
        policy, _raw = policy_from_text(read_text(args.config), args.config, settings_from_args(args))
        samples = read_samples_csv(read_text(args.metrics), args.metrics)
        result = simulate(policy, samples, start)
    except TuskError as exc:
        return _fail(exc, args.format)
    if args.format == "json":
        print_json(result.to_dict())
        return EXIT_OK
    for decision in result.decisions:
        _print_decision(decision, "text")
    final = result.final
    print(f"final: {final.status.value} at {final.canary_percent:g}% after {len(result.decisions)} interval(s)")
    return EXIT_OK
