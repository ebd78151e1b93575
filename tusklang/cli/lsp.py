"""`tusk lsp`: the TuskLang language server, over stdio (or TCP for debugging)."""

from __future__ import annotations

import argparse

from ._common import EXIT_OK, add_command


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
    from ..lsp.server import start

    start(args.tcp)
    return EXIT_OK
