"""`tusk rollout`: drive canary and blue/green releases, record metrics, replay histories."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_deprecated_alias,
    add_format,
    invalid_snapshot,
    io_error,
    print_json,
    read_text,
    report,
    write_atomic,
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

    def redis_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--redis",
            default=None,
            metavar="URL",
            help="the override layer a bound rollout writes its decisions to (default: $REDIS_URL)",
        )

    def actor_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--actor", default=None, help="who decides, for the audit logs (default: the OS user)")

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
    p.add_argument("--flag", default=None, help="bind the rollout to this flag (default: the policy's `flag`)")
    p.add_argument("--rule", default=None, help="the flag's rule the rollout moves (docs/delivery.md)")
    p.add_argument("--canary-variant", default=None, help="for a rule with a variant split: the canary's variant")
    p.add_argument("--stable-variant", default=None, help="for a rule with a variant split: the stable variant")
    p.add_argument("--snapshot", default=None, help="compiled snapshot the flag binding is checked against")
    p.add_argument("--prefix", default=None, help="override key prefix (default: the snapshot's, else feature_flags:)")
    redis_option(p)
    actor_option(p)
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
    # --format json prints one decision per line (JSON Lines): the loop runs for as long as the release.
    p.add_argument("--tick", type=float, default=10.0, help="seconds between clock checks (default 10)")
    redis_option(p)
    p.add_argument(
        "--events-db", default=None, metavar="URL", help="the event store, for metrics the policy reads from it"
    )
    p.add_argument(
        "--lease-ttl",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds this controller's lease outlives its last renewal (default 30)",
    )
    p.add_argument("--wait", action="store_true", help="wait for another controller's lease to end instead of refusing")
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
    p.add_argument("--last", type=int, default=10, help="how many decisions to list (default 10; html: all)")
    redis_option(p)
    add_format(p, "text", "json", "html")
    p.add_argument("-o", "--output", help="write the page (or text/JSON) to this file instead of stdout")
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
        redis_option(p)
        actor_option(p)
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
    add_format(p, "text", "json", "html")
    p.add_argument("-o", "--output", help="write the output to this file instead of stdout")
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


def _print_decision(decision: Any, fmt: str, synced: Any = None, *, stream: bool = False) -> None:
    """One decision; ``stream`` (the controller's loop): JSON Lines, one object per line, flushed."""
    if fmt == "json":
        data = decision.to_dict()
        if synced is not None:
            data["override"] = synced.to_dict()
        if stream:
            print(json.dumps(data, ensure_ascii=False), flush=True)
        else:
            print_json(data)
    else:
        when, action = decision.time.isoformat(), decision.action.value
        written = f"  [override version {synced.version}]" if synced is not None and synced.version else ""
        print(f"{when}  {action:<8} {decision.canary_percent:>6g}%  {decision.reason}{written}", flush=True)


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


# --- the override layer ------------------------------------------------------------------------------


def _redis_url(args: argparse.Namespace, why: str) -> str:
    url = getattr(args, "redis", None) or os.environ.get("REDIS_URL")
    if not url:
        raise UsageError(f"{why}: give --redis URL or set REDIS_URL")
    return url


def _overrides(url: str, prefix: str) -> Any:
    from ..overrides.store import OverrideStore

    try:
        return OverrideStore.from_url(url, prefix)
    except ValueError as exc:
        raise UsageError(f"--redis: {_redacted(exc)}") from None


def _redacted(exc: BaseException) -> str:
    from ..overrides.watcher import redact

    return redact(f"{type(exc).__name__}: {exc}")


def _redis_failure(exc: Exception, what: str) -> UsageError:
    return io_error(f"Redis: {what}: {_redacted(exc)}")


def _binding(state: Any) -> Any:
    from ..delivery.binding import Binding

    return Binding.from_dict(state.binding) if state.binding else None


def _actor(args: argparse.Namespace, name: str) -> str:
    """A person's decision through `tusk rollout`: the person, and the rollout it was about."""
    user = getattr(args, "actor", None)
    if not user:
        try:
            user = getpass.getuser()
        except Exception:  # no user name in a bare container: still record something
            user = "unknown"
    return f"{user} (tusk rollout {name})"


def _commit_and_sync(
    store: Any, overrides: Any, state: Any, raw: dict[str, Any], decision: Any, actor: str | None
) -> tuple[Any, Any]:
    """Log the decision (with its override write, for a bound rollout) and write it through."""
    import redis

    from ..delivery.traffic import intent_for, sync

    binding = _binding(state)
    if binding is None:
        return store.commit(state, raw, decision), None
    intent = intent_for(binding, state.name, decision, overrides, actor)  # Redis down: nothing recorded
    new = store.commit(state, raw, decision, intent)
    try:
        return new, sync(store, overrides, state.name, binding.flag)
    except redis.RedisError as exc:
        raise _WritePending(exc) from exc


class _WritePending(Exception):
    """The decision is recorded, its override write is not: the next sync (`tusk rollout run`, or the
    next `tusk rollout` command) writes it."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _pending_failure(exc: _WritePending, name: str) -> UsageError:
    return _redis_failure(
        exc.cause,
        f"the decision is recorded, its override write is pending; `tusk rollout run {name}` (or the next "
        "`tusk rollout` command for it) writes it",
    )


# --- commands ----------------------------------------------------------------------------------------


def _wanted_binding(args: argparse.Namespace, policy: Any) -> Any:
    """The flag binding asked for: --flag (with --rule etc.), else the policy section's `flag` with the
    options given on top; None when neither names a flag."""
    from ..delivery.policy import FlagBinding

    section = policy.blue_green_deployments if args.strategy == "bluegreen" else policy.canary_deployments
    base = section.flag if section is not None else None
    extra = {
        "rule": args.rule,
        "canary_variant": args.canary_variant,
        "stable_variant": args.stable_variant,
    }
    if args.flag is None and base is None:
        given = [f"--{k.replace('_', '-')}" for k, v in extra.items() if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} without a flag: give --flag or bind one in the policy")
        return None
    fields = base.model_dump() if base is not None and args.flag in (None, base.key) else {}
    fields["key"] = args.flag or fields["key"]
    fields.update({k: v for k, v in extra.items() if v is not None})
    return FlagBinding(**fields)


def _resolve(args: argparse.Namespace, wanted: Any) -> Any:
    from ..delivery.binding import resolve_binding
    from ..diagnostics import TuskError
    from ..overrides import DEFAULT_PREFIX, storage_settings
    from ..snapshot import load_snapshot

    if args.snapshot is None:
        raise UsageError(
            f"the rollout is bound to flag {wanted.key!r}: give --snapshot (the compiled flags) to check it"
        )
    try:
        snapshot = load_snapshot(read_text(args.snapshot))
    except TuskError as exc:
        raise invalid_snapshot(args.snapshot, exc) from None
    prefix = args.prefix or storage_settings(snapshot)[0] or DEFAULT_PREFIX
    binding = resolve_binding(snapshot, wanted, prefix)
    _authorise(snapshot, binding.flag)
    return binding


def _authorise(snapshot: Any, flag: str) -> None:
    """Under access control, refuse to start a controller whose token may not write ``flag`` (clients would
    ignore every write it makes): TSK709/TSK710/TSK711 before anything is recorded."""
    from ..diagnostics import Diagnostic, TuskError
    from ..overrides.access import NO_IDENTITY, Policy
    from ..overrides.keys import KeyError_
    from ..overrides.writer import identity_from_environment

    policy = Policy.of(snapshot)
    if not policy.enforced:
        return
    try:
        identity = identity_from_environment()
    except KeyError_ as exc:
        raise TuskError([Diagnostic(NO_IDENTITY, str(exc), hint="see `tusk keys --help`")]) from None
    refusal = policy.authorise(identity.entry if identity is not None else None, flag)
    if refusal is not None:
        code, why = refusal
        raise TuskError(
            [
                Diagnostic(
                    code,
                    f"the controller may not move `{flag}`: {why}",
                    hint="give it a token of a role "
                    "that may change the flag without approval (skip_approval), in $TUSK_TOKEN",
                )
            ]
        )


def run_start(args: argparse.Namespace) -> int:
    import redis

    from ..delivery.simulate import policy_from_text
    from ..diagnostics import Diagnostic, TuskError

    now = _time(args.now, "--now")
    overrides = None
    try:
        policy, raw = policy_from_text(read_text(args.config), args.config, settings_from_args(args))
        controller = _controller(args.strategy, policy)
        wanted = _wanted_binding(args, policy)
        binding = _resolve(args, wanted) if wanted is not None else None
        if binding is not None:
            overrides = _overrides(_redis_url(args, f"the rollout moves flag {binding.flag!r}"), binding.prefix)
        with _open(args) as db:
            _, store = _stores(db)
            if binding is not None:
                other = store.bound_elsewhere(args.name, binding.flag, binding.prefix)
                if other is not None:
                    raise TuskError(
                        [
                            Diagnostic(
                                "TSK823",
                                f"flag `{binding.flag}` is already moved by rollout {other!r}, still in flight",
                                hint=f"finish or abort {other!r} first: two controllers would fight over one flag",
                            )
                        ]
                    )
            loaded = store.load(args.name)
            previous = loaded[0] if loaded else None
            state, decision = controller.start(args.name, now, previous)
            state = replace(state, binding=binding.to_dict() if binding is not None else None)
            _, synced = _commit_and_sync(store, overrides, state, raw, decision, _actor(args, args.name))
    except TuskError as exc:
        return _fail(exc, args.format)
    except _WritePending as exc:
        raise _pending_failure(exc, args.name) from None
    except redis.RedisError as exc:
        raise _redis_failure(exc, "nothing was recorded") from None
    finally:
        if overrides is not None:
            overrides.close()
    _print_decision(decision, args.format, synced)
    if binding is not None and args.format != "json":
        print(f"bound to {binding.describe()}", file=sys.stderr)
    return EXIT_OK


def _load(store: Any, name: str) -> tuple[Any, dict[str, Any], Any]:
    from ..delivery.policy import load_policy

    loaded = store.load(name)
    if loaded is None:
        raise UsageError(f"no rollout named {name!r} in this database; start it with `tusk rollout start`")
    state, raw = loaded
    return state, raw, _controller(state.kind, load_policy(raw))


def _metric_source(args: argparse.Namespace, sql_source: Any, state: Any, controller: Any) -> tuple[Any, Any]:
    """The metric source for the controller: metric_samples, plus the event store for the metrics the
    policy reads from it (which then needs --events-db and a bound rollout). Also the event store's
    connection, to close."""
    from ..delivery.db import Database
    from ..delivery.event_metrics import EventMetricSource
    from ..delivery.metrics import CombinedMetricSource

    section = getattr(controller, "canary", None) or getattr(controller, "health", None)
    wanted = dict(section.health_checks.events) if section is not None else {}
    if not wanted:
        return sql_source, None
    binding = _binding(state)
    if binding is None:
        raise UsageError(
            f"the policy reads {', '.join(sorted(wanted))} from the event store by variant: bind the rollout "
            "to a flag (`tusk rollout start --flag`)"
        )
    if not args.events_db:
        raise UsageError(f"the policy reads {', '.join(sorted(wanted))} from the event store: give --events-db URL")
    events_db = Database(args.events_db)
    variants = {"canary": binding.canary_variant, "stable": binding.stable_variant}
    source = EventMetricSource(events_db, binding.flag, variants, wanted)
    return CombinedMetricSource(sql_source, {m: source for m in wanted}), events_db


class _Terminated(BaseException):
    """SIGTERM arrived: the controller stops as it would at the end of a release (exit 0).

    A BaseException, as KeyboardInterrupt is: raised from the signal handler wherever the controller
    happens to be, it must pass the `except Exception` of the layers below (the database layer turns
    any Exception in a statement into a database error, exit 2: seen once in CI)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def run_controller(args: argparse.Namespace) -> int:
    from ..delivery.lease import Lease
    from ..diagnostics import TuskError

    if args.tick <= 0 or args.lease_ttl <= 0:
        raise UsageError("--tick and --lease-ttl must be positive")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    overrides = None
    events_db = None
    try:
        with _open(args) as db:
            sql_source, store = _stores(db)
            state, _raw, controller = _load(store, args.name)
            binding = _binding(state)
            if binding is not None:
                url = _redis_url(args, f"rollout {args.name!r} moves flag {binding.flag!r}")
                overrides = _overrides(url, binding.prefix)
            source, events_db = _metric_source(args, sql_source, state, controller)
            lease = Lease(db, args.name, ttl=args.lease_ttl)
            lease.ensure_schema()

            def waiting(holder: str, left: float) -> None:
                print(f"{args.name}: waiting for {holder}'s lease ({max(0.0, left):.1f} s left)", file=sys.stderr)

            lease.acquire(wait=args.wait, on_wait=waiting)
            with lease:
                return _control(args, store, source, overrides, lease)
    except _Terminated:
        # SIGTERM (systemd, Kubernetes): the lease is released on the way out, so a successor need not
        # wait for it to expire; a decision whose write was cut off is finished by the next controller.
        print(f"{args.name}: stopped (SIGTERM); lease released", file=sys.stderr)
        return EXIT_OK
    except TuskError as exc:
        return _fail(exc, args.format)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if overrides is not None:
            overrides.close()
        if events_db is not None:
            events_db.close()


def _control(args: argparse.Namespace, store: Any, source: Any, overrides: Any, lease: Any) -> int:
    """The controller's loop: renew the lease, finish the last decision's override write, judge, act."""
    import redis

    from ..delivery.controller import Status, drive
    from ..delivery.traffic import sync

    trouble: str | None = None
    while True:
        lease.renew()
        now = _time(args.now, "--now")
        state, raw, controller = _load(store, args.name)
        binding = _binding(state)
        try:
            if binding is not None:
                # Reconcile first: a decision whose write did not happen (a crash, Redis down) is
                # written before anything new is judged, so the split judged is the split served.
                synced = sync(store, overrides, args.name, binding.flag)
                if synced.outcome in ("written", "found", "rewritten") and synced.write is not None:
                    done = {
                        "written": "written",
                        "found": "found already written",
                        "rewritten": "written again (the override layer had lost it)",
                    }[synced.outcome]
                    print(
                        f"{args.name}: override of decision #{synced.write.decision_id} {done} "
                        f"(version {synced.version})",
                        file=sys.stderr,
                        flush=True,
                    )
            if state.status not in {Status.PROGRESSING, Status.SWITCHED}:
                print(f"{args.name}: {state.status.value} at {state.canary_percent:g}%", file=sys.stderr)
                return EXIT_OK
            new, decision = drive(controller, state, source, now)
            if decision is not None:
                _, synced = _commit_and_sync(store, overrides, new, raw, decision, None)
                _print_decision(decision, args.format, synced, stream=True)
            if trouble is not None:
                print(f"{args.name}: the override layer answers again", file=sys.stderr)
                trouble = None
        except (redis.RedisError, _WritePending) as exc:
            # Nothing is judged while the override layer is unreachable: a decision cannot move traffic.
            # A decision already recorded stays pending; the next tick's sync writes it.
            cause = exc.cause if isinstance(exc, _WritePending) else exc
            message = _redacted(cause)
            if message != trouble:
                print(f"{args.name}: Redis: {message}; retrying every tick", file=sys.stderr, flush=True)
            trouble = message
            if args.once or args.now is not None:
                if isinstance(exc, _WritePending):
                    raise _pending_failure(exc, args.name) from None
                raise _redis_failure(cause, "no decision made") from None
        if args.once or args.now is not None:
            return EXIT_OK
        time.sleep(min(args.tick, args.lease_ttl / 3))


def run_manual(args: argparse.Namespace) -> int:
    import redis

    from ..diagnostics import TuskError

    now = _time(args.now, "--now")
    overrides = None
    try:
        with _open(args) as db:
            _, store = _stores(db)
            state, raw, controller = _load(store, args.name)
            binding = _binding(state)
            if binding is not None:
                overrides = _overrides(
                    _redis_url(args, f"rollout {args.name!r} moves flag {binding.flag!r}"), binding.prefix
                )
            new, decision = getattr(controller, args.manual_action)(state, now)
            _, synced = _commit_and_sync(store, overrides, new, raw, decision, _actor(args, args.name))
    except TuskError as exc:
        return _fail(exc, args.format)
    except _WritePending as exc:
        raise _pending_failure(exc, args.name) from None
    except redis.RedisError as exc:
        raise _redis_failure(exc, "nothing was recorded") from None
    finally:
        if overrides is not None:
            overrides.close()
    _print_decision(decision, args.format, synced)
    return EXIT_OK


def _live_override(args: argparse.Namespace, binding: Any) -> dict[str, Any] | None:
    """What the override layer holds for the bound flag right now (status with --redis/$REDIS_URL)."""
    import redis

    url = args.redis or os.environ.get("REDIS_URL")
    if binding is None or not url:
        return None
    overrides = _overrides(url, binding.prefix)
    try:
        record = overrides.get(binding.flag)
    except redis.RedisError as exc:
        return {"error": _redacted(exc)}
    finally:
        overrides.close()
    return {"version": (record or {}).get("version"), "canary_percent": binding.percent_of(record), "record": record}


def run_status(args: argparse.Namespace) -> int:
    from ..diagnostics import TuskError

    try:
        with _open(args) as db:
            _, store = _stores(db)
            state, _raw, controller = _load(store, args.name)
            history = store.history(args.name, None if args.format == "html" else args.last)
            latest = store.latest_write(args.name)
    except TuskError as exc:
        return _fail(exc, args.format)
    binding = _binding(state)
    data: dict[str, Any] = {
        "state": state.to_dict(),
        "decisions": history,
        "override": latest.to_dict() if latest is not None else None,
    }
    live = _live_override(args, binding)
    if live is not None:
        data["live_override"] = live
    if args.format == "json":
        return _emit(args, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if args.format == "html":
        from ..reports.rollout import render_status_html

        return _emit(args, render_status_html(data, _thresholds(controller)))
    lines = [f"{state.name} ({state.kind}): {state.status.value}, canary at {state.canary_percent:g}%"]
    lines.append(f"  step {state.step_index}, consecutive failures {state.consecutive_failures}")
    if binding is not None:
        lines.append(f"  bound to {binding.describe()}")
    if latest is not None:
        where = f", override version {latest.override_version}" if latest.override_version else ""
        lines.append(f"  last override write: decision #{latest.decision_id} {latest.status}{where}")
    if live is not None and "error" not in live:
        now_at = "not set" if live["canary_percent"] is None else f"{live['canary_percent']:g}%"
        lines.append(f"  override layer now: version {live['version']}, canary at {now_at}")
    if state.cooldown_until is not None:
        lines.append(f"  cooldown until {state.cooldown_until.isoformat()}")
    for entry in history:
        who = " (manual)" if entry["manual"] else ""
        lines.append(f"  {entry['time']}  {entry['action']:<8} {entry['canary_percent']:>6g}%  {entry['reason']}{who}")
    return _emit(args, "\n".join(lines) + "\n")


def _thresholds(controller: Any) -> dict[str, Any]:
    """The policy's health checks, for the page to draw against (metric -> threshold and direction)."""
    section = getattr(controller, "canary", None) or getattr(controller, "health", None)
    if section is None:
        return {}
    out: dict[str, Any] = {}
    for check in section.checks:
        out.setdefault(check.metric, {})["threshold"] = check.threshold
        out[check.metric]["direction"] = check.direction.value
    for comparison in section.comparisons:
        entry = out.setdefault(comparison.metric, {})
        entry["direction"] = comparison.direction.value
        entry["max_ratio"] = comparison.max_ratio
        entry["max_difference"] = comparison.max_difference
    return out


def _emit(args: argparse.Namespace, text: str) -> int:
    if getattr(args, "output", None):
        write_atomic(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_simulate(args: argparse.Namespace) -> int:
    from ..delivery.controller import CanaryController
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
        return _emit(args, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    if args.format == "html":
        from ..reports.rollout import render_simulation_html

        return _emit(args, render_simulation_html(result, _thresholds(CanaryController(policy))))
    lines = []
    for decision in result.decisions:
        when, action = decision.time.isoformat(), decision.action.value
        lines.append(f"{when}  {action:<8} {decision.canary_percent:>6g}%  {decision.reason}")
    final = result.final
    lines.append(f"final: {final.status.value} at {final.canary_percent:g}% after {len(result.decisions)} interval(s)")
    return _emit(args, "\n".join(lines) + "\n")
