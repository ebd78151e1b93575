"""The lint switches `tusk compile` and `tusk check` share: --error, --ignore, --now.

`--error`/`--ignore` are the one severity policy of every reporting command (cli/_severity.py): a
command calls ``severity_policy(args).apply(diagnostics)`` on what it reports. ``lint_options`` checks
the codes too (an unknown one is a usage error, exit 2, before any work) and hands the compiler what
it needs: the clock for age rules and the lint codes to raise as errors.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

from ._common import UsageError
from ._severity import SeverityPolicy, add_severity_options, severity_policy

if TYPE_CHECKING:
    from ..compiler import LintOptions

__all__ = ["SeverityPolicy", "add_lint_options", "lint_options", "severity_policy"]


def add_lint_options(parser: argparse.ArgumentParser) -> None:
    add_severity_options(parser)
    parser.add_argument("--now", metavar="ISO", help="clock for age lint rules (default SOURCE_DATE_EPOCH, then now)")


def lint_options(args: argparse.Namespace) -> LintOptions:
    from ..compiler import LintOptions

    policy = severity_policy(args)
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise UsageError(f"--now {args.now!r}: not an ISO-8601 date-time") from None
    return LintOptions(errors=set(policy.error), ignored=set(policy.ignore), now=now)
