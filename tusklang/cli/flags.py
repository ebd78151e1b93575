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

from ._common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_command,
    add_format,
    invalid_snapshot,
    io_error,
    print_json,
    read_text,
    report,
    write_atomic,
)

if TYPE_CHECKING:
    from ..overrides import OverrideStore, WriteResult
    from ..snapshot import Snapshot

REDIS_HELP = "Redis URL (default: $REDIS_URL)"


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "flags",
        "Runtime overrides on Redis: rollout percentage, on/off, variant weights (docs/overrides.md).",
        "tusk flags set-rollout new_checkout_flow 40 --snapshot flags.json --reason 'error rate ok'",
    )
    actions = parser.add_subparsers(dest="flags_command", metavar="ACTION")
    _write_actions(actions, "")

    p = add_command(
        actions,
        "propose",
        "Propose a change that needs approval (access control; docs/overrides.md): it takes effect once "
        "enough others approve it, unless it expires first.",
        "tusk flags propose set-rollout new_checkout_flow 40 --snapshot flags.json --reason 'canary ok'",
    )
    proposing = p.add_subparsers(dest="propose_command", metavar="ACTION")
    _write_actions(proposing, "propose ")
    p.set_defaults(func=lambda args, parser=p: _missing_action(parser, "a change to propose"))

    p = add_command(
        actions,
        "approve",
        "Approve a proposed change; the last approval needed applies it (signed by the approver).",
        "tusk flags approve 3f2a9c1e0b7d --snapshot flags.json --reason 'reviewed the dashboards'",
    )
    p.add_argument("proposal", help="the proposal id (`tusk flags proposals`)")
    _writer(p, snapshot_required=True)
    p.set_defaults(func=run_approve, flags_command="approve")

    p = add_command(
        actions, "proposals", "List proposed changes (open ones unless --all).", "tusk flags proposals --format json"
    )
    p.add_argument("--all", action="store_true", help="also applied and expired proposals")
    _connection(p, snapshot_required=False)
    add_format(p)
    p.set_defaults(func=run_proposals)

    p = add_command(actions, "show", "Show the overrides in force (all, or one flag).", "tusk flags show --format json")
    p.add_argument("flag", nargs="?")
    _connection(p, snapshot_required=False)
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
    _connection(p, snapshot_required=False)
    add_format(p)
    p.set_defaults(func=run_history)

    p = add_command(
        actions,
        "audit",
        "Show the audit stream with its hash chain; --verify checks it (exit 1 when it was tampered with).",
        "tusk flags audit --verify --snapshot flags.json --keyring keyring.json --checkpoint audit.checkpoint",
    )
    p.add_argument("--verify", action="store_true", help="check the chain, signatures, counter and records")
    p.add_argument("--keyring", default=None, help="check signatures with this keyring (default: $TUSK_KEYRING)")
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="with --verify: the head the last good run saw must still be there; saved again after a good run",
    )
    _connection(p, snapshot_required=False)
    add_format(p)
    p.set_defaults(func=run_audit)

    parser.set_defaults(func=lambda args: _missing_action(parser, "an action"))


def _connection(p: argparse.ArgumentParser, snapshot_required: bool) -> None:
    p.add_argument(
        "--snapshot",
        required=snapshot_required,
        help="compiled snapshot JSON the override is checked against (its storage key_prefix is the default)",
    )
    p.add_argument("--redis", default=None, metavar="URL", help=REDIS_HELP)
    p.add_argument("--prefix", default=None, help="key prefix (default: the snapshot's, else feature_flags:)")


def _writer(p: argparse.ArgumentParser, snapshot_required: bool = True) -> None:
    _connection(p, snapshot_required)
    p.add_argument("--actor", default=None, help="who makes the change when unsigned (default: the OS user)")
    p.add_argument("--reason", default="", help="why, kept in the audit log")
    p.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="the writer's token (`tusk keys create`; default: $TUSK_TOKEN, then $TUSK_TOKEN_FILE)",
    )
    p.add_argument("--keyring", default=None, metavar="FILE", help="the keyring (default: $TUSK_KEYRING)")
    add_format(p)


def _write_actions(actions: argparse._SubParsersAction, lead: str) -> None:
    """The five writes; under `propose` (``lead``) each makes a proposal instead of writing."""
    propose = bool(lead)
    p = add_command(
        actions,
        "set-rollout",
        "Pin the rollout percentage of a flag's rollout rules (or of --rule).",
        f"tusk flags {lead}set-rollout new_checkout_flow 40 --snapshot flags.json",
    )
    p.add_argument("flag")
    p.add_argument("percent", help="0..100 (decimals allowed)")
    p.add_argument("--rule", default=None, help="only this rule (default: every rule with a rollout)")
    _writer(p)
    p.set_defaults(func=run_set_rollout, flags_command="set-rollout", propose=propose)

    for name, verb in (("enable", "Turn a flag on (its rules decide again)."), ("disable", "Turn a flag off.")):
        p = add_command(actions, name, verb, f"tusk flags {lead}{name} new_checkout_flow --snapshot flags.json")
        p.add_argument("flag")
        _writer(p)
        p.set_defaults(func=run_enable, enabled=name == "enable", flags_command=name, propose=propose)

    p = add_command(
        actions,
        "set-variant-weights",
        "Set the variant split (percentages summing to 100) of a flag's split rules (or of --rule).",
        f"tusk flags {lead}set-variant-weights checkout_optimization control=40 variant_a=60 --snapshot flags.json",
    )
    p.add_argument("flag")
    p.add_argument("weights", nargs="+", metavar="VARIANT=PERCENT")
    p.add_argument("--rule", default=None, help="only this rule (default: every rule with a split)")
    _writer(p)
    p.set_defaults(func=run_set_weights, flags_command="set-variant-weights", propose=propose)

    p = add_command(
        actions,
        "clear",
        "Remove a flag's override: the snapshot decides again.",
        f"tusk flags {lead}clear new_checkout_flow" + (" --snapshot flags.json" if propose else ""),
    )
    p.add_argument("flag")
    _writer(p, snapshot_required=propose)
    p.set_defaults(func=run_clear, flags_command="clear", propose=propose)


def _missing_action(parser: argparse.ArgumentParser, what: str) -> int:
    parser.print_help(sys.stderr)
    raise UsageError(
        f"{what} is required (set-rollout, enable, disable, set-variant-weights, clear"
        + (", propose, approve, proposals, show, history, audit)" if what == "an action" else ")")
    )


# --- shared plumbing ---------------------------------------------------------------------------------


def _snapshot(path: str | None) -> Snapshot | None:
    if path is None:
        return None
    from ..diagnostics import TuskError
    from ..snapshot import load_snapshot

    try:
        return load_snapshot(read_text(path))
    except TuskError as exc:
        raise invalid_snapshot(path, exc) from None


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


def _identity(args: argparse.Namespace, cmd: Any) -> Any:
    """The writer's identity from its token (None without one); a bad token or keyring is TSK710/TSK714."""
    from ..diagnostics import Diagnostic, TuskError
    from ..overrides.access import KEYRING_PROBLEM, NO_IDENTITY
    from ..overrides.keys import KeyError_
    from ..overrides.writer import identity_from_environment

    try:
        return identity_from_environment(args.token_file, args.keyring)
    except KeyError_ as exc:
        code = KEYRING_PROBLEM if "keyring" in str(exc) and "not in the keyring" not in str(exc) else NO_IDENTITY
        raise TuskError([Diagnostic(code, str(exc), cmd.span(2), hint="see `tusk keys --help`")]) from None


def _refusal(exc: Any, cmd: Any) -> Any:
    from ..diagnostics import Diagnostic

    return Diagnostic(
        exc.code,
        f"write of `{exc.flag}` refused: {exc.reason}",
        cmd.span(3),
        hint=f"the refusal is audited (version {exc.version}, `tusk flags history {exc.flag}`)",
    )


def _write(args: argparse.Namespace, patch: dict[str, Any] | None, snapshot: Snapshot | None, cmd: Any) -> int:
    """Merge ``patch`` into the flag's record (None: delete it) and report the outcome; under
    ``propose`` record a proposal instead."""
    import redis

    from ..diagnostics import TuskError
    from ..overrides.access import Policy
    from ..overrides.overlay import check_result
    from ..overrides.writer import AccessRefused, write_override

    def check(content: dict[str, Any]) -> None:
        if snapshot is not None:
            problems = check_result(snapshot, args.flag, content, cmd)
            if problems:
                raise TuskError(problems)

    def malformed(problem: str) -> None:
        # A record written by hand that no client applies: the new write replaces it whole.
        print(f"tusk flags: the stored override of {args.flag} is malformed ({problem}); replacing it", file=sys.stderr)

    try:
        identity = _identity(args, cmd)
    except TuskError as exc:
        return report(exc.diagnostics, args.format)
    policy = Policy.of(snapshot)
    store = _store(args, snapshot)
    try:
        if getattr(args, "propose", False):
            assert snapshot is not None
            return _propose(args, store, policy, identity, patch, cmd)
        if patch is None and not store.exists(args.flag):
            return _print_result(args, None, store.prefix)
        result = write_override(
            store,
            args.flag,
            patch,
            actor=_actor(args),
            reason=args.reason,
            op=args.flags_command,
            check=check,
            on_malformed=malformed,
            identity=identity,
            policy=policy,
        )
    except AccessRefused as exc:
        return report([_refusal(exc, cmd)], args.format)
    except TuskError as exc:
        return report(exc.diagnostics, args.format)
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    return _print_result(args, result, store.prefix)


# --- proposals -----------------------------------------------------------------------------------------


def _proposals_key(store: OverrideStore) -> str:
    return f"{store.prefix}overrides:proposals"


def _propose(args: argparse.Namespace, store: OverrideStore, policy: Any, identity: Any, patch: Any, cmd: Any) -> int:
    import uuid
    from datetime import UTC, datetime, timedelta

    from ..diagnostics import Diagnostic
    from ..overrides.access import BAD_PROPOSAL, NO_IDENTITY, OUTSIDE_ROLE, sign_proposal
    from ..overrides.store import now_iso

    if identity is None:
        return report([Diagnostic(NO_IDENTITY, "a proposal must be signed: give a token", cmd.span(2))], args.format)
    settings = policy.settings
    if not policy.enforced or settings.approval is None:
        message = "this snapshot does not enforce change approval: write the change directly"
        return report([Diagnostic(BAD_PROPOSAL, message, cmd.span(2))], args.format)
    why = policy.allows(identity.entry.roles, args.flag)
    if why is not None:
        version = store.refuse(
            args.flag,
            patch,
            op=f"propose-{args.flags_command}",
            actor=identity.entry.identity,
            reason=f"refused: {why}",
            signer=identity.signer,
        )
        return report([_refusal(_Refused(args.flag, OUTSIDE_ROLE, why, version), cmd)], args.format)
    created = datetime.now(UTC)
    expires = created + timedelta(seconds=settings.approval.expires_seconds)
    proposal = sign_proposal(
        identity.signer,
        {
            "id": uuid.uuid4().hex[:12],
            "flag": args.flag,
            "op": args.flags_command,
            "patch": patch,
            "reason": args.reason,
            "proposer": identity.entry.identity,
            "kid": identity.signer.kid,
            "created_at": now_iso(),
            "expires_at": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "required": settings.approval.required,
        },
    )
    stored = {**proposal, "approvals": [], "status": "open"}
    store.client.hset(_proposals_key(store), proposal["id"], json.dumps(stored, sort_keys=True))
    if args.format == "json":
        print_json(stored)
    else:
        print(
            f"proposal {proposal['id']}: {args.flags_command} {args.flag} by {proposal['proposer']}, "
            f"needs {proposal['required']} approval(s) by others before {proposal['expires_at']}"
        )
    return EXIT_OK


class _Refused:
    def __init__(self, flag: str, code: str, reason: str, version: int) -> None:
        self.flag, self.code, self.reason, self.version = flag, code, reason, version


def run_approve(args: argparse.Namespace) -> int:
    import redis

    from ..diagnostics import Diagnostic, TuskError
    from ..overrides.access import BAD_PROPOSAL, NO_IDENTITY, Policy, sign_approval
    from ..overrides.overlay import check_result
    from ..overrides.store import now_iso
    from ..overrides.writer import AccessRefused, write_override

    snapshot = _snapshot(args.snapshot)
    cmd, _ = _command_line(args, args.proposal)
    args.flag = args.proposal
    try:
        identity = _identity(args, cmd)
    except TuskError as exc:
        return report(exc.diagnostics, args.format)
    if identity is None:
        return report([Diagnostic(NO_IDENTITY, "an approval must be signed: give a token", cmd.span(2))], args.format)
    policy = Policy.of(snapshot)
    store = _store(args, snapshot)
    key = _proposals_key(store)
    try:
        with store.client.pipeline() as pipe:
            # WATCH: two approvals at once must not lose one, nor apply the change twice.
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, args.proposal)
                    proposal = json.loads(raw) if raw is not None else None
                    problem = _approval_problem(proposal, identity, policy, args.keyring)
                    if problem is not None:
                        pipe.reset()
                        break
                    assert proposal is not None
                    approval = sign_approval(identity.signer, proposal, now_iso())
                    proposal["approvals"].append({**approval, "identity": identity.entry.identity})
                    done = len(proposal["approvals"]) >= int(proposal["required"])
                    proposal["status"] = "approved" if done else "open"
                    pipe.multi()
                    pipe.hset(key, args.proposal, json.dumps(proposal, sort_keys=True))
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        if problem is not None:
            flag = proposal.get("flag", "") if isinstance(proposal, dict) else ""
            if flag:  # a refused approval of a real proposal is audited like any refused write
                store.refuse(
                    flag,
                    None,
                    op="approve",
                    actor=identity.entry.identity,
                    reason=f"refused approval of proposal {args.proposal}: {problem}",
                    signer=identity.signer,
                )
            return report([Diagnostic(BAD_PROPOSAL, problem, cmd.span(3))], args.format)
        assert proposal is not None
        result = None
        if proposal["status"] == "approved":
            body = {k: v for k, v in proposal.items() if k not in ("approvals", "status")}
            names = ", ".join(sorted({str(a.get("identity")) for a in proposal["approvals"]}))

            def check(content: dict[str, Any]) -> None:
                if snapshot is not None and (problems := check_result(snapshot, proposal["flag"], content, cmd)):
                    raise TuskError(problems)

            args.flag = proposal["flag"]
            args.flags_command = proposal["op"]
            result = write_override(
                store,
                proposal["flag"],
                proposal["patch"],
                actor=identity.entry.identity,
                reason=f"{proposal['reason']} [proposal {proposal['id']} by {proposal['proposer']}, "
                f"approved by {names}]",
                op=proposal["op"],
                check=check,
                identity=identity,
                policy=policy,
                extra={"approval": {"proposal": body, "approvals": proposal["approvals"]}},
            )
            proposal["status"] = "applied"
            proposal["applied_version"] = result.version
            store.client.hset(key, args.proposal, json.dumps(proposal, sort_keys=True))
    except AccessRefused as exc:
        return report([_refusal(exc, cmd)], args.format)
    except TuskError as exc:
        return report(exc.diagnostics, args.format)
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    if args.format == "json":
        print_json(
            {"proposal": _public(proposal), "applied": result is not None, "version": getattr(result, "version", None)}
        )
    elif result is not None:
        print(
            f"proposal {proposal['id']} approved and applied: {proposal['flag']} {describe(result.new)} "
            f"(version {result.version})"
        )
    else:
        have = len(proposal["approvals"])
        print(f"proposal {proposal['id']}: {have} of {proposal['required']} approval(s)")
    return EXIT_OK


def _approval_problem(
    proposal: dict[str, Any] | None, identity: Any, policy: Any, keyring_arg: str | None
) -> str | None:
    """Why this identity cannot approve this proposal now (None: it can)."""
    from ..overrides.access import proposal_bytes, proposal_digest
    from ..overrides.keys import Keyring, keyring_path
    from ..overrides.store import now_iso

    if proposal is None:
        return "no such proposal (`tusk flags proposals`)"
    # Proposals live in Redis: one edited there would be approved in vain (clients check the proposer's
    # signature), so check it before signing anything.
    path = keyring_path(keyring_arg)
    proposer = Keyring.load(path).get(str(proposal.get("kid"))) if path else None
    if proposer is None or not proposer.verify(str(proposal.get("sig")), proposal_bytes(proposal_digest(proposal))):
        return "the proposal's signature does not hold (edited in Redis, or its proposer's key is gone)"
    if proposal.get("status") != "open":
        return f"the proposal is {proposal.get('status')}"
    if now_iso() > str(proposal.get("expires_at")):
        return f"the proposal expired at {proposal.get('expires_at')}: propose the change again"
    me = identity.entry.identity
    if me == proposal.get("proposer"):
        return "a proposer cannot approve their own change"
    if not policy.enforced or policy.settings.approval is None:
        return "the snapshot does not enforce change approval (give the --snapshot the proposal was made with)"
    if not policy.may_approve(identity.entry.roles, proposal["flag"]):
        roles = ", ".join(policy.settings.approval.approvers) or "a role that may change the flag"
        return f"{me} may not approve (approvers: {roles})"
    keyring_ids = {a.get("kid") for a in proposal.get("approvals", [])}
    if identity.signer.kid in keyring_ids or any(a.get("identity") == me for a in proposal.get("approvals", [])):
        return f"{me} has already approved it"
    return None


def _public(proposal: dict[str, Any]) -> dict[str, Any]:
    """A proposal as shown: the signatures left out (they are not secret, just noise)."""
    out = {k: v for k, v in proposal.items() if k != "sig"}
    out["approvals"] = [
        {"identity": a.get("identity"), "kid": a.get("kid"), "at": a.get("at")} for a in proposal.get("approvals", [])
    ]
    return out


def run_proposals(args: argparse.Namespace) -> int:
    import redis

    from ..overrides.store import now_iso

    store = _store(args, _snapshot(args.snapshot))
    try:
        raw = store.client.hgetall(_proposals_key(store))
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    now = now_iso()
    items = []
    for value in raw.values():
        try:
            proposal = json.loads(value)
        except ValueError:
            continue
        if proposal.get("status") == "open" and now > str(proposal.get("expires_at")):
            proposal["status"] = "expired"
        if args.all or proposal.get("status") == "open":
            items.append(_public(proposal))
    items.sort(key=lambda p: str(p.get("created_at")))
    if args.format == "json":
        print_json({"prefix": store.prefix, "proposals": items})
        return EXIT_OK
    for p in items:
        print(
            f"{p['id']} {p['status']} {p['op']} {p['flag']} by {p['proposer']}: "
            f"{len(p['approvals'])}/{p['required']} approval(s), expires {p['expires_at']}"
            + (f'  "{p["reason"]}"' if p.get("reason") else "")
        )
    if not items:
        print("no proposals" + ("" if args.all else " open"))
    return EXIT_OK


def run_audit(args: argparse.Namespace) -> int:
    import redis

    from ..diagnostics import Diagnostic
    from ..overrides.access import AUDIT_BROKEN, KEYRING_PROBLEM, Policy
    from ..overrides.audit import verify
    from ..overrides.keys import KeyError_, Keyring, keyring_path

    snapshot = _snapshot(args.snapshot)
    if not args.verify:
        if args.checkpoint:
            raise UsageError("--checkpoint needs --verify")
        args.flag, args.limit = None, None
        return run_history(args)
    path = keyring_path(args.keyring)
    try:
        keyring = Keyring.load(path) if path else None
    except KeyError_ as exc:
        return report([Diagnostic(KEYRING_PROBLEM, str(exc))], args.format)
    store = _store(args, snapshot)
    try:
        result = verify(store, keyring, Policy.of(snapshot), args.checkpoint)
    except ValueError as exc:
        raise UsageError(f"--checkpoint: {exc}") from None
    except redis.RedisError as exc:
        raise _redis_failure(exc) from None
    finally:
        store.close()
    if result.ok and args.checkpoint:
        write_atomic(args.checkpoint, json.dumps({"version": result.version, "hash": result.head}) + "\n")
    if args.format == "json":
        print_json({"prefix": store.prefix, **result.to_dict()})
        return EXIT_OK if result.ok else EXIT_PROBLEMS
    if result.ok:
        checked = "signatures checked" if result.signatures_checked else "signatures not checked: no keyring"
        print(
            f"audit stream under {store.prefix!r}: {result.entries} entries intact (version {result.version}, "
            f"{result.signed} signed, {result.refused} refusals; {checked}); head {result.head[:16]}"
        )
        return EXIT_OK
    diagnostics = [
        Diagnostic(AUDIT_BROKEN, (f"entry v{p['version']} ({p['id']}): " if p["id"] else "") + p["problem"])
        for p in result.problems
    ]
    return report(diagnostics, args.format)


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
        if e.outcome == "refused":  # nothing changed: show what was asked for
            print(f"v{e.version} {e.at} {e.actor} {e.op} {e.flag}: REFUSED {describe(e.new)}{why}")
        else:
            print(f"v{e.version} {e.at} {e.actor} {e.op} {e.flag}: {describe(e.old)} -> {describe(e.new)}{why}")
    if not entries:
        print("no audit entries" + (f" for {args.flag}" if args.flag else ""))
    return EXIT_OK
