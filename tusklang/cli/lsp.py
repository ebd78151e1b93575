"""`tusk lsp`: the TuskLang language server, over stdio (or TCP for debugging)."""

from __future__ import annotations

import argparse

from ._common import EXIT_OK, UsageError, add_command


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "lsp",
        "Run the TuskLang language server (diagnostics, hover, completion, navigation, formatting).",
        "tusk lsp            # stdio, as editors start it",
    )
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (e.g. 127.0.0.1:2087)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    address = parse_address(args.tcp) if args.tcp else None
    try:
        from ..lsp.server import start
    except ImportError as exc:  # pygls/lsprotocol are the optional `lsp` extra
        missing = exc.name or "a dependency"
        raise UsageError(f"the language server needs {missing}: pip install 'tusklang[lsp]'") from None
    try:
        start(address)
    except OSError as exc:  # only TCP binds: stdio errors end the session inside `start`
        raise UsageError(f"cannot listen on {args.tcp}: {exc.strerror or exc}") from None
    return EXIT_OK


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1); `[::1]:PORT` for IPv6."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--tcp {text!r}: expected HOST:PORT with a port from 1 to 65535")
    return host, int(port)
