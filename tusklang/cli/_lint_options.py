"""The lint switches `tusk compile` and `tusk check` share: --error, --ignore, --now."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

from ._common import UsageError

if TYPE_CHECKING:
    from ..compiler import LintOptions


def add_lint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--error", action="append", default=[], metavar="CODE", help="treat a lint code as an error")
    parser.add_argument("--ignore", action="append", default=[], metavar="CODE", help="drop a diagnostic code")
    parser.add_argument("--now", metavar="ISO", help="clock for age lint rules (default SOURCE_DATE_EPOCH, then now)")


def lint_options(args: argparse.Namespace) -> LintOptions:
    from ..compiler import LintOptions

    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise UsageError(f"--now {args.now!r}: not an ISO-8601 date-time") from None
    return LintOptions(errors=set(args.error), ignored=set(args.ignore), now=now)
