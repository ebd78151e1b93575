"""One severity policy for every command that reports diagnostics: `--error CODE` and `--ignore CODE`.

It sits at the presentation layer, after the stages have produced their diagnostics, so it reaches
every code the same way (a lint rule, a schema warning, a secrets note, a flagd export warning, a
dashboard note), and `tusk check`, `tusk compile` and the language server agree:

* `--error CODE` makes every warning or info with that code an error (and so the exit code 1);
* `--ignore CODE` drops every warning or info with that code;
* a code given to both is ignored (a job may add `--ignore` to a shared list of `--error`s);
* an error is never dropped or changed: a code emitted only as an error cannot be ignored (a
  usage error, exit 2), since dropping it would let a broken project through a CI gate;
* an unknown code is a usage error (exit 2) with a "did you mean": a mistyped gate must not turn
  itself off silently.

Codes may be repeated (`--error TSK401 --error TSK403`) or comma-separated (`--error TSK401,TSK403`),
in any case (`tsk401`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass

from ..diagnostics import Diagnostic, Severity
from ..suggest import did_you_mean
from ._common import UsageError


class PolicyError(ValueError):
    """`--error`/`--ignore` (or the editor settings `tusk.error`/`tusk.ignore`) name a code they cannot use."""


@dataclass(frozen=True, slots=True)
class SeverityPolicy:
    error: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()

    @classmethod
    def from_codes(
        cls,
        error: Iterable[str] = (),
        ignore: Iterable[str] = (),
        *,
        error_name: str = "--error",
        ignore_name: str = "--ignore",
    ) -> SeverityPolicy:
        """Check the codes; raises PolicyError naming the option (``error_name``/``ignore_name``)."""
        errors = _codes(error_name, error)
        ignored = _codes(ignore_name, ignore)
        for code in sorted(ignored):
            from ..codes import CODES

            if not CODES[code].ignorable:
                raise PolicyError(
                    f"{ignore_name} {code}: {code} ({CODES[code].title}) is an error and cannot be ignored; "
                    f"fix it in the input ({ignore_name} drops warnings and infos)"
                )
        return cls(frozenset(errors - ignored), frozenset(ignored))

    def apply(self, diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
        """The diagnostics as the user asked to see them, in the same order."""
        out = []
        for d in diagnostics:
            if not d.is_error:
                if d.code in self.ignore:
                    continue
                if d.code in self.error:
                    d = d.with_severity(Severity.ERROR)
            out.append(d)
        return out


def _codes(option: str, values: Iterable[str]) -> set[str]:
    values = list(values)
    if not values:  # the registry is imported only to check codes given (start-up of every command)
        return set()
    from ..codes import CODES, normalise

    found = set()
    for value in values:
        for raw in value.split(","):
            if not raw.strip():
                raise PolicyError(f"{option}: an empty code in {value!r}")
            code = normalise(raw)
            if code not in CODES:
                raise PolicyError(f"{option} {raw.strip()}: no such diagnostic code{_suggestion(code)}")
            found.add(code)
    return found


def _suggestion(code: str) -> str:
    from ..codes import CODES

    if code.startswith("TSK") and code[3:].isdigit():
        # Compare the digits alone, within one edit of three: a swapped or mistyped digit finds its
        # code, and a code two digits off from any suggests nothing rather than an arbitrary one.
        # Codes of the same family (hundreds) come first, so they win a tie.
        family = sorted((c[3:] for c in CODES if c.startswith("TSK")), key=lambda c: c[0] != code[3])
        digits = did_you_mean(code[3:], family)
        close = f"TSK{digits}" if digits else None
    else:
        close = did_you_mean(code, CODES)
    if close:
        return f"; did you mean {close} ({CODES[close].title})?"
    return " (docs/diagnostics.md lists them)"


# --- the command-line side --------------------------------------------------------------------------


def add_severity_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--error",
        action="append",
        default=[],
        metavar="CODE",
        help="report this code as an error (exit 1) wherever it is a warning or info; repeatable, or CODE,CODE",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        help="drop this warning or info code (an error cannot be ignored); repeatable, or CODE,CODE",
    )


def severity_policy(args: argparse.Namespace) -> SeverityPolicy:
    """The policy the command line asks for; an unusable code is a UsageError (exit 2)."""
    try:
        return SeverityPolicy.from_codes(getattr(args, "error", ()), getattr(args, "ignore", ()))
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
