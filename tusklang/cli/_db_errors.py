"""How the database-backed commands (db, experiment, dashboard, rollout) report a database failure.

A database that cannot be reached, an unsupported URL or missing tables are I/O problems (exit 2), not
problems in the user's input: they are printed as one line that keeps the diagnostic's code.
"""

from __future__ import annotations

from ..diagnostics import TuskError
from ._common import UsageError


def one_line(exc: TuskError) -> str:
    """`error[TSK251]: cannot connect to ... (hint)`: the first diagnostic, on one line."""
    first = exc.first
    text = f"error[{first.code}]: {first.message}"
    return f"{text} ({first.hint})" if first.hint else text


def usage_error(exc: TuskError) -> UsageError:
    """A database problem as the CLI reports it: an I/O error (exit 2) that keeps its code."""
    return UsageError(one_line(exc), kind="io", code=exc.first.code)
