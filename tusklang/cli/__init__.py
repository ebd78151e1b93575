"""`tusk`: the command line. Each subcommand is a module in this package with ``register(subparsers)``.

Exit codes everywhere: 0 success, 1 problems found in the input, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from ..diagnostics import TuskError
from ._common import EXIT_USAGE, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tusk",
        description="Feature flags as code: parse, check and compile TuskLang flag configs.",
        epilog=(
            "example:\n"
            "  tusk compile fixtures/seed/project.tsk --db sqlite:///fixtures/db/seed.db \\\n"
            "      --env-file fixtures/seed/seed.env -o flags.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"tusk {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TuskError as exc:
        # The one family every command lets through: a database that cannot be reached is an I/O
        # problem (exit 2, one line with its code); anything else is a problem in the input (exit 1).
        from ..db.errors import DatabaseError
        from ._db_errors import one_line

        if isinstance(exc, DatabaseError):
            print(f"tusk {args.command}: {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(exc.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
