"""The `tusk` script: `tusk check` goes to the warm check server when one answers (tusklang/warm),
everything else, and a check no server took, to `tusklang.cli.main` in this process.

Kept apart from tusklang.cli so that handing a check over imports nothing of the command line.
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] != ["check"]:
        return _here(argv)
    from .warm import client, wire

    mode = wire.mode()
    if mode == wire.OFF:
        return _here(argv)
    path = wire.socket_path()
    code = client.forward(argv, path)
    if code is not None:
        return code
    if mode == wire.REQUIRED:
        print("tusk: no warm check server answered (TUSK_CHECK_SERVER=required)", file=sys.stderr)
        return 2
    code = _here(argv)
    if not _in_ci():
        client.start_server(path)
    return code


def _here(argv: list[str]) -> int:
    """`tusk ARGV` run in this process."""
    from .cli import main as cli_main

    return cli_main(argv)


def _in_ci() -> bool:
    """A CI job checks once and ends: a server left behind would only hold memory."""
    import os

    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
