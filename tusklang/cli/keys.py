"""`tusk keys`: the identities that may write runtime overrides under access control (docs/overrides.md).

The keyring is a file (``--keyring`` or ``$TUSK_KEYRING``, mode 0600) holding every key's secret;
``create`` and ``rotate`` print the new key's token once (or write it to a new 0600 ``--token-file``),
and nothing else ever prints a secret. Exit 0 done, 1 refused (an identity that already has a key, an
unknown one, a malformed keyring), 2 usage or I/O.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import EXIT_OK, UsageError, add_command, add_format, print_json, report


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "keys",
        "Identities and roles of override writers: create, list, rotate, revoke keys (docs/overrides.md).",
        "tusk keys create alice --role release_manager --keyring keyring.json --token-file alice.token",
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--keyring", default=None, metavar="FILE", help="the keyring file (default: $TUSK_KEYRING)")
        add_format(p)

    for name, text, example in (
        (
            "create",
            "Make a key for an identity with its roles; prints its token once (or writes --token-file).",
            "tusk keys create alice --role release_manager --keyring keyring.json --token-file alice.token",
        ),
        (
            "rotate",
            "Make a new key for an identity; its old key keeps what it signed before, signs nothing more.",
            "tusk keys rotate alice --keyring keyring.json --token-file alice.token.new",
        ),
    ):
        p = add_command(actions, name, text, example)
        p.add_argument("identity", help="who holds the key (1-64 of letters, digits and ._@+-)")
        p.add_argument(
            "--role",
            action="append",
            default=None,
            metavar="NAME",
            help="a role of security_config.access_control.roles (repeatable)"
            + ("" if name == "create" else "; default: the old key's roles"),
        )
        p.add_argument("--token-file", default=None, metavar="FILE", help="write the token to this new 0600 file")
        common(p)
        p.set_defaults(func=run_create if name == "create" else run_rotate)

    p = add_command(
        actions, "list", "List the keys: id, identity, roles, status (never a secret).", "tusk keys list --format json"
    )
    common(p)
    p.set_defaults(func=run_list)

    p = add_command(
        actions,
        "revoke",
        "Revoke a key (by id) or every key of an identity: nothing it signed is applied any more.",
        "tusk keys revoke alice --keyring keyring.json",
    )
    p.add_argument("key", help="a key id (k-...) or an identity")
    common(p)
    p.set_defaults(func=run_revoke)

    parser.set_defaults(func=lambda args: _missing(parser))


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    raise UsageError("an action is required (create, list, rotate, revoke)")


def _path(args: argparse.Namespace) -> str:
    from ..overrides.keys import keyring_path

    path = keyring_path(args.keyring)
    if path is None:
        raise UsageError("no keyring: give --keyring FILE or set TUSK_KEYRING")
    return path


def _refused(args: argparse.Namespace, message: str) -> int:
    from ..diagnostics import Diagnostic
    from ..overrides.access import KEYRING_PROBLEM

    return report([Diagnostic(KEYRING_PROBLEM, message)], args.format)


def _made(args: argparse.Namespace, keyring: Any, signer: Any, retired: list[str]) -> int:
    from ..overrides.keys import KeyError_, write_token

    path = _path(args)
    if args.token_file:
        try:
            write_token(args.token_file, signer)
        except KeyError_ as exc:
            raise UsageError(str(exc), kind="io") from None
    try:
        keyring.save(path)
    except KeyError_ as exc:
        raise UsageError(str(exc), kind="io") from None
    entry = keyring.get(signer.kid)
    out = {**entry.to_dict(with_secret=False), "retired": retired}
    if args.token_file:
        out["token_file"] = args.token_file
    else:
        out["token"] = signer.token()  # shown this once: the keyring holds the secret, nothing else does
    if args.format == "json":
        print_json(out)
        return EXIT_OK
    print(f"{entry.identity}: key {entry.kid} (roles: {', '.join(entry.roles)}) added to {path}", file=sys.stderr)
    if retired:
        print(f"retired: {', '.join(retired)}", file=sys.stderr)
    if args.token_file:
        print(f"token written to {args.token_file} (mode 0600)", file=sys.stderr)
    else:
        print("token (shown once; give it to the writer as $TUSK_TOKEN):", file=sys.stderr)
        print(signer.token())
    return EXIT_OK


def run_create(args: argparse.Namespace) -> int:
    from ..overrides.keys import KeyError_, Keyring, create

    try:
        keyring, signer = create(Keyring.load(_path(args), missing_ok=True), args.identity, args.role or [])
    except KeyError_ as exc:
        return _refused(args, str(exc))
    return _made(args, keyring, signer, [])


def run_rotate(args: argparse.Namespace) -> int:
    from ..overrides.keys import KeyError_, Keyring, rotate

    try:
        keyring, signer, retired = rotate(Keyring.load(_path(args)), args.identity, args.role)
    except KeyError_ as exc:
        return _refused(args, str(exc))
    return _made(args, keyring, signer, retired)


def run_list(args: argparse.Namespace) -> int:
    from ..overrides.keys import KeyError_, Keyring

    path = _path(args)
    try:
        keyring = Keyring.load(path, missing_ok=True)
    except KeyError_ as exc:
        return _refused(args, str(exc))
    keys = [e.to_dict(with_secret=False) for e in sorted(keyring.keys.values(), key=lambda e: (e.identity, e.kid))]
    if args.format == "json":
        print_json({"keyring": path, "keys": keys})
        return EXIT_OK
    for k in keys:
        print(f"{k['kid']}  {k['identity']:<20} {k['status']:<8} roles: {', '.join(k['roles'])}  ({k['created_at']})")
    if not keys:
        print(f"no keys in {path}")
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    from ..overrides.keys import KeyError_, Keyring, revoke

    path = _path(args)
    try:
        keyring, revoked = revoke(Keyring.load(path), args.key)
        keyring.save(path)
    except KeyError_ as exc:
        return _refused(args, str(exc))
    if args.format == "json":
        print_json({"keyring": path, "revoked": revoked})
    else:
        print(f"revoked: {', '.join(revoked)} (ship {path} to every serving host)")
    return EXIT_OK
