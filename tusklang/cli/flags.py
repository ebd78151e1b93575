"""`tusk flags`: runtime overrides on Redis (rollout, on/off, variant weights), audited and versioned.

Writes are checked against the snapshot (`--snapshot`, required for every write except `clear`) and
refused with compiler-style diagnostics (exit 1) when they would not fit it. Redis problems exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from ._common import EXIT_OK, UsageError, add_command, add_format, io_error, print_json, read_text, report

if TYPE_CHECKING:
    from ..overrides import OverrideStore, WriteResult
    from ..snapshot import Snapshot

REDIS_HELP = "Redis URL (default: $REDIS_URL)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "flags",
        "runtime overrides on Redis: rollout percentage, on/off, variant weights (docs/overrides.md)",
        "tusk flags set-rollout new_checkout_flow 40 --snapshot flags.json --reason 'error rate ok'",
    )
    actions = parser.add_subparsers(dest="flags_command", metavar="ACTION")

    def connection(p: argparse.ArgumentParser, snapshot_required: bool) -> None:
        p.add_argument(
            "--snapshot",
            required=snapshot_required,
            help="compiled snapshot JSON the override is checked against (its storage key_prefix is the default)",
        )
        p.add_argument("--redis", default=None, metavar="URL", help=REDIS_HELP)
        p.add_argument("--prefix", default=None, help="key prefix (default: the snapshot's, else feature_flags:)")

    def writer(p: argparse.ArgumentParser, snapshot_required: bool = True) -> None:
        connection(p, snapshot_required)
        p.add_argument("--actor", default=None, help="who makes the change (default: the OS user)")
        p.add_argument("--reason", default="", help="why, kept in the audit log")
        add_format(p)

    p = add_command(
        actions,
        "set-rollout",
        "Pin the rollout percentage of a flag's rollout rules (or of --rule).",
        "tusk flags set-rollout new_checkout_flow 40 --snapshot flags.json",
    )
    p.add_argument("flag")
    p.add_argument("percent", help="0..100 (decimals allowed)")
    p.add_argument("--rule", default=None, help="only this rule (default: every rule with a rollout)")
    writer(p)
    p.set_defaults(func=run_set_rollout)

    for name, verb in (("enable", "Turn a flag on (its rules decide again)."), ("disable", "Turn a flag off.")):
        p = add_command(actions, name, verb, f"tusk flags {name} new_checkout_flow --snapshot flags.json")
        p.add_argument("flag")
        writer(p)
        p.set_defaults(func=run_enable, enabled=name == "enable")

    p = add_command(
        actions,
        "set-variant-weights",
        "Set the variant split (percentages summing to 100) of a flag's split rules (or of --rule).",
        "tusk flags set-variant-weights checkout_optimization control=40 variant_a=60 --snapshot flags.json",
    )
    p.add_argument("flag")
    p.add_argument("weights", nargs="+", metavar="VARIANT=PERCENT")
    p.add_argument("--rule", default=None, help="only this rule (default: every rule with a split)")
    writer(p)
    p.set_defaults(func=run_set_weights)

    p = add_command(
        actions, "clear", "Remove a flag's override: the snapshot decides again.", "tusk flags clear new_checkout_flow"
    )
    p.add_argument("flag")
    writer(p, snapshot_required=False)
    p.set_defaults(func=run_clear)

    p = add_command(actions, "show", "Show the overrides in force (all, or one flag).", "tusk flags show --format json")
    p.add_argument("flag", nargs="?")
    connection(p, snapshot_required=False)
    add_format(p)
    p.set_defaults(func=run_show)

    p = add_command(
        actions,
        "history",
        "Show the audit log: who changed what, when, why (oldest first).",
        "tusk flags history new_checkout_flow --limit 20",
    )
    p.add_argument("flag", nargs="?")
    p.add_argument("--limit", type=int, default=None, help="only the last N entries")
    connection(p, snapshot_required=False)
    add_format(p)
    p.set_defaults(func=run_history)

    parser.set_defaults(func=lambda args: _missing_action(parser))


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    raise UsageError("an action is required (set-rollout, enable, disable, set-variant-weights, clear, show, history)")


# --- shared plumbing ---------------------------------------------------------------------------------


def _snapshot(path: str | None) -> Snapshot | None:
    if path is None:
        return None
    from ..diagnostics import TuskError
    from ..snapshot import load_snapshot

    try:
        return load_snapshot(read_text(path))
    except TuskError as exc:
        more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
        raise io_error(f"{path}: invalid snapshot: {exc.first.message}{more}") from None


def _store(args: argparse.Namespace, snapshot: Snapshot | None) -> OverrideStore:
    from ..overrides import DEFAULT_PREFIX, OverrideStore, storage_settings

    url = args.redis or os.environ.get("REDIS_URL")
    if not url:
        raise UsageError("no Redis: give --redis URL or set REDIS_URL")
    prefix = args.prefix or (storage_settings(snapshot)[0] if snapshot is not None else None) or DEFAULT_PREFIX
    try:
        return OverrideStore.from_url(url, prefix)
    except ValueError as exc:
        raise UsageError(f"--redis: {exc}") from None


def _redis_failure(exc: Exception) -> UsageError:
    from ..overrides.watcher import redact

    return io_error(f"Redis: {redact(f'{type(exc).__name__}: {exc}')}")


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container: still record something
        return "unknown"


def describe(record: dict[str, Any] | None) -> str:
    """One line of what an override changes: ``enabled=false rollout[rollout]=40%``."""
    from ..overrides.overlay import check_record

    if not record:
        return "(none)"
    problem = check_record(record)
    if problem is not None:  # written by hand into Redis: say so rather than fail to print it
        return f"(malformed: {problem})"
    parts = []
    if "enabled" in record:
        parts.append(f"enabled={json.dumps(record['enabled'])}")
    for rule, percent in sorted((record.get("rollout") or {}).items()):
        parts.append(f"rollout[{rule}]={percent:g}%")
    for rule, weights in sorted((record.get("weights") or {}).items()):
        parts.append(f"weights[{rule}]=" + ",".join(f"{v}:{w:g}" for v, w in weights))
    return " ".join(parts) or "(empty)"


def _write(args: argparse.Namespace, patch: dict[str, Any] | None, snapshot: Snapshot | None, cmd: Any) -> int:
    """Merge ``patch`` into the flag's record (None: delete it) and report the outcome."""
    import redis

    from ..diagnostics import TuskError
    from ..overrides.overlay import check_record, check_result, merge

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if patch is None:
            return None
        if current is not None and (problem := check_record(current)) is not None:
            # A record written by hand that no client applies: the new write replaces it whole.
            print(
                f"tusk flags: the stored override of {args.flag} is malformed ({problem}); replacing it",
                file=sys.stderr,
            )
            current = None
        content = merge(current, patch)
        if snapshot is not None:
            problems = check_result(snapshot, args.flag, content, cmd)
            if problems:
                raise TuskError(problems)
        return content

    store = _store(args, snapshot)
    try:
        if patch is None and not store.exists(args.flag):
            return _print_result(args, None, store.prefix)
        result = store.write(args.flag, change, op=args.flags_command, actor=_actor(args), reason=args.reason)
    except TuskError as exc:
        return report(exc.diagnostics, args.format)
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    return _print_result(args, result, store.prefix)


def _print_result(args: argparse.Namespace, result: WriteResult | None, prefix: str) -> int:
    if args.format == "json":
        if result is None:
            print_json({"flag": args.flag, "changed": False, "prefix": prefix})
        else:
            print_json(
                {
                    "flag": result.flag,
                    "changed": True,
                    "op": args.flags_command,
                    "version": result.version,
                    "prefix": prefix,
                    "old": result.old,
                    "new": result.new,
                }
            )
    elif result is None:
        print(f"{args.flag}: no override to clear")
    else:
        print(f"{result.flag}: {describe(result.old)} -> {describe(result.new)}  (version {result.version})")
    return EXIT_OK


def _command_line(args: argparse.Namespace, *words: str) -> tuple[Any, int | None]:
    """The command as typed (for diagnostic carets) and the index of the --rule value, if any."""
    from ..overrides.overlay import CommandLine

    parts = ["tusk", "flags", args.flags_command, *words]
    rule_at = None
    if getattr(args, "rule", None) is not None:
        parts += ["--rule", args.rule]
        rule_at = len(parts) - 1
    return CommandLine(parts), rule_at


# --- actions -----------------------------------------------------------------------------------------


def run_set_rollout(args: argparse.Namespace) -> int:
    from ..overrides.overlay import propose_rollout

    snapshot = _snapshot(args.snapshot)
    assert snapshot is not None
    cmd, rule_at = _command_line(args, args.flag, args.percent)
    proposal = propose_rollout(snapshot, args.flag, args.percent, args.rule, cmd, (3, 4, rule_at))
    if proposal.diagnostics:
        return report(proposal.diagnostics, args.format)
    return _write(args, proposal.patch, snapshot, cmd)


def run_enable(args: argparse.Namespace) -> int:
    from ..overrides.overlay import check_flag

    snapshot = _snapshot(args.snapshot)
    assert snapshot is not None
    cmd, _ = _command_line(args, args.flag)
    problems = check_flag(snapshot, args.flag, cmd, 3)
    if problems:
        return report(problems, args.format)
    return _write(args, {"enabled": bool(args.enabled)}, snapshot, cmd)


def run_set_weights(args: argparse.Namespace) -> int:
    from ..overrides.overlay import propose_weights

    snapshot = _snapshot(args.snapshot)
    assert snapshot is not None
    cmd, rule_at = _command_line(args, args.flag, *args.weights)
    proposal = propose_weights(snapshot, args.flag, args.weights, args.rule, cmd, (3, 4, rule_at))
    if proposal.diagnostics:
        return report(proposal.diagnostics, args.format)
    return _write(args, proposal.patch, snapshot, cmd)


def run_clear(args: argparse.Namespace) -> int:
    # No check against the snapshot: clearing must work for a flag the snapshot has since dropped.
    snapshot = _snapshot(args.snapshot)
    cmd, _ = _command_line(args, args.flag)
    return _write(args, None, snapshot, cmd)


def run_show(args: argparse.Namespace) -> int:
    import redis

    store = _store(args, _snapshot(args.snapshot))
    try:
        state = store.read()
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    records = state.records if args.flag is None else {k: v for k, v in state.records.items() if k == args.flag}
    malformed = {k: v for k, v in state.malformed.items() if args.flag is None or k == args.flag}
    if args.format == "json":
        print_json({"prefix": store.prefix, "version": state.version, "overrides": records, "malformed": malformed})
        return EXIT_OK
    if args.flag is not None and not records and not malformed:
        print(f"{args.flag}: no override (version {state.version})")
        return EXIT_OK
    print(f"overrides under {store.prefix!r}: {len(records)} flag(s), version {state.version}")
    for key, reason in malformed.items():
        print(f"  {key}: (malformed: {reason}; clients ignore it, `tusk flags clear {key}` removes it)")
    for key, record in records.items():
        why = f', "{record["reason"]}"' if record.get("reason") else ""
        print(
            f"  {key}: {describe(record)}  (version {record.get('version')}, "
            f"{record.get('updated_by', '?')} at {record.get('updated_at', '?')}{why})"
        )
    return EXIT_OK


def run_history(args: argparse.Namespace) -> int:
    import redis

    if args.limit is not None and args.limit <= 0:
        raise UsageError("--limit must be positive")
    store = _store(args, _snapshot(args.snapshot))
    try:
        entries = store.audit(args.flag, args.limit)
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    if args.format == "json":
        print_json({"prefix": store.prefix, "entries": [e.to_dict() for e in entries]})
        return EXIT_OK
    for e in entries:
        why = f'  "{e.reason}"' if e.reason else ""
        print(f"v{e.version} {e.at} {e.actor} {e.op} {e.flag}: {describe(e.old)} -> {describe(e.new)}{why}")
    if not entries:
        print("no audit entries" + (f" for {args.flag}" if args.flag else ""))
    return EXIT_OK
