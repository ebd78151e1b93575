"""The options that build a command's one Settings (tusklang/project/settings.py).

`--env-file`, `--db`, `--query-timeout`, `--max-rows`, `--allow-outside-root`, `--root`: the same names,
meanings and defaults in `parse --resolve`, `compile`, `check`, `dashboard` and `rollout`, read once
into a Settings that the command hands to the project loader. `--env-file` is merged under the process
environment everywhere (docs/directives.md, "Settings").
"""

from __future__ import annotations

import argparse

from ..project import InputError, Settings
from ..project.settings import DEFAULT_MAX_ROWS, DEFAULT_QUERY_TIMEOUT
from ._common import UsageError


def add_settings_options(
    parser: argparse.ArgumentParser,
    *,
    database: bool = True,
    limits: bool = True,
    root: bool = False,
) -> None:
    """``database``: `--db` for @query; ``limits``: `--query-timeout`, `--max-rows`; ``root``: `--root`."""
    parser.add_argument(
        "--env-file",
        metavar="F",
        help="a dotenv file (NAME=value lines) for @env; a variable also set in the environment keeps "
        "the environment's value",
    )
    if database:
        parser.add_argument(
            "--db",
            metavar="URL",
            help="database URL for @query: sqlite:///path.db or postgresql://... (default: $TUSK_DATABASE_URL)",
        )
    if limits:
        parser.add_argument(
            "--query-timeout",
            type=float,
            default=DEFAULT_QUERY_TIMEOUT,
            metavar="S",
            help=f"seconds per @query (default {DEFAULT_QUERY_TIMEOUT:g})",
        )
        parser.add_argument(
            "--max-rows",
            type=int,
            default=DEFAULT_MAX_ROWS,
            metavar="N",
            help=f"rows per @query (default {DEFAULT_MAX_ROWS})",
        )
    if root:
        parser.add_argument(
            "--root",
            metavar="DIR",
            help="project root: @file may not leave it, snapshot paths are relative to it "
            "(default: the first file's folder)",
        )
    parser.add_argument(
        "--allow-outside-root", action="store_true", help="let @file read files outside the project root"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The run's Settings; a bad env file or limit is a one-line usage error (exit 2)."""
    try:
        return Settings.from_environment(
            env_file=getattr(args, "env_file", None),
            database=getattr(args, "db", None),
            root=getattr(args, "root", None),
            allow_outside_root=getattr(args, "allow_outside_root", False),
            query_timeout=getattr(args, "query_timeout", DEFAULT_QUERY_TIMEOUT),
            max_rows=getattr(args, "max_rows", DEFAULT_MAX_ROWS),
            strict_secrets=getattr(args, "strict_secrets", False),
        )
    except InputError as exc:
        raise UsageError(_option(exc)) from None


def _option(exc: InputError) -> str:
    text = str(exc)
    if text.startswith(("the query timeout", "the row limit")):
        return ("--query-timeout: " if "timeout" in text else "--max-rows: ") + text
    return text


def read_env_file(path: str) -> dict[str, str]:
    """The one dotenv reader (tusklang.project.read_env_file), with its problems as usage errors."""
    from ..project import read_env_file as read

    try:
        return read(path)
    except InputError as exc:
        raise UsageError(str(exc)) from None
