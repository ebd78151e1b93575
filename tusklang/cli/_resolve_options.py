"""Options shared by the commands that resolve directives: --env-file, --db, limits."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

from ._common import UsageError, read_text

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*\Z")
# The escapes of a double-quoted dotenv value (as python-dotenv and docker compose read them). Any
# other backslash stays as written: decoding \x.. or \u.. would let a file make text that is not
# UTF-8 (a lone surrogate), and `unicode_escape` read non-ASCII text as Latin-1.
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
_ESCAPE = re.compile(r"\\([\\\"'nrt$])")


def add_resolve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", help="a dotenv file (NAME=value lines) read before the environment")
    parser.add_argument(
        "--db",
        help="database URL for @query: sqlite:///path.db or postgresql://... (default: $TUSK_DATABASE_URL)",
    )
    parser.add_argument("--query-timeout", type=float, default=5.0, help="seconds per @query (default 5)")
    parser.add_argument("--max-rows", type=int, default=10_000, help="rows per @query (default 10000)")
    parser.add_argument("--allow-outside-root", action="store_true", help="let @file leave the project folder")


def read_env_file(path: str) -> dict[str, str]:
    """Parse a dotenv file: NAME=value, optional `export`, quotes, # comments.

    The file must be UTF-8 (else a one-line usage error naming the byte's offset, exit 2): a value
    that is not text could never be written to a snapshot, and guessing its bytes would change it.
    """
    values: dict[str, str] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise UsageError(f"{path}:{number}: expected NAME=value")
        name, value = m.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"' and "\\" in value:
                value = _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], value)
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[name] = value
    return values


def resolve_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    if getattr(args, "env_file", None):
        # The process environment wins over the file, as in docker and most dotenv loaders.
        env = {**read_env_file(args.env_file), **env}
    return {
        "env": env,
        "database": getattr(args, "db", None),
        "query_timeout": getattr(args, "query_timeout", 5.0),
        "max_rows": getattr(args, "max_rows", 10_000),
        "allow_outside_root": getattr(args, "allow_outside_root", False),
    }
