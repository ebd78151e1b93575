"""Helpers shared by the subcommands: reading inputs, printing diagnostics, writing outputs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time: `tusk --help` start-up
if TYPE_CHECKING:
    from typing import Any

    from ..diagnostics import Diagnostic, TuskError

# json, pathlib, tusklang.files and tusklang.diagnostics are imported where used: `tusk --help` loads this
# module and should load nothing it does not print.

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A usage or I/O problem: printed as one line, exit code 2.

    ``kind`` is "usage" (an option or argument the command cannot use) or "io" (a file, database,
    Redis or port that cannot be used); ``code`` is the diagnostic code when the problem has one. With
    ``--format json`` both reach the JSON error object on stdout (docs/diagnostics.md).
    """

    def __init__(self, message: str, *, kind: str = "usage", code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


def io_error(message: str, code: str | None = None) -> UsageError:
    return UsageError(message, kind="io", code=code)


def invalid_snapshot(path: str, exc: TuskError) -> UsageError:
    """The one-line error (exit 2) for a file that is not a snapshot the evaluator loads; a TuskLang source
    given where a compiled snapshot belongs says how to make one."""
    more = f" (+{len(exc.diagnostics) - 1} more)" if len(exc.diagnostics) > 1 else ""
    message = f"{path}: invalid snapshot: {exc.first.message}{more}"
    if path.endswith(".tsk"):
        message += f"; it is TuskLang source: compile it first (tusk compile {path} -o flags.json)"
    return io_error(message)


class _DeprecatedAlias(argparse.Action):
    """An old option name that still works: it stores into the new option's ``dest`` and says so on stderr.

    Hidden from --help (so new scripts learn the new name), kept so existing scripts and CI jobs do not
    break on upgrade.
    """

    def __init__(self, option_strings: list[str], dest: str, replacement: str = "", **kwargs: Any) -> None:
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"{parser.prog}: warning: {option_string} is deprecated, use {self.replacement} "
            "(the old name will be removed in a later release)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Let ``old`` keep working as a hidden, warning alias of the already added option ``new``."""
    target = next(a for a in parser._actions if new in a.option_strings)
    same: dict[str, Any] = {"type": target.type} if target.type is not None else {}
    parser.add_argument(
        old,
        dest=target.dest,
        action=_DeprecatedAlias,
        replacement=new,
        choices=target.choices,
        default=argparse.SUPPRESS,  # the new option's default stands
        metavar=target.metavar,
        help=argparse.SUPPRESS,
        **same,
    )


def add_command(sub: argparse._SubParsersAction, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """A subparser whose --help ends with a worked example."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The innermost command's parser wins (argparse copies a subcommand's namespace over its parent's),
    # so `main` can report an unknown option with the usage of the command it was given to.
    parser.set_defaults(**{PARSER_ATTR: parser})
    return parser


PARSER_ATTR = "_tusk_parser"


def missing_subcommand(parser: argparse.ArgumentParser) -> int:
    """A command group run without its subcommand: its help on stderr, a usage error."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def now_seconds(text: str | None) -> float:
    """``--now`` as epoch seconds (the wall clock without it); UsageError for a time that does not parse."""
    from datetime import UTC, datetime

    if text is None:
        return datetime.now(UTC).timestamp()
    from ..evaluate.client import epoch

    try:
        value = epoch(text)
    except ValueError:
        value = None
    if value is None:
        raise UsageError(f"--now: expected an ISO-8601 time like 2024-05-01T00:00:00Z, got {text!r}")
    return value


def add_format(parser: argparse.ArgumentParser, *choices: str, default: str = "text") -> None:
    parser.add_argument("--format", choices=choices or ("text", "json"), default=default, help="output format")


def read_text(path: str) -> str:
    """Read a UTF-8 file, turning every I/O problem into a one-line UsageError."""
    from pathlib import Path

    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise io_error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise io_error(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise io_error(f"{path}: permission denied") from None
    except OSError as exc:
        raise io_error(f"{path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise io_error(f"{path}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def write_atomic(path: str | os.PathLike[str], text: str | Sequence[str]) -> None:
    """``tusklang.files.write_atomic`` (readers never see half a file), its failure a one-line I/O error (exit 2)."""
    from .. import files

    try:
        files.write_atomic(path, text)
    except files.WriteError as exc:
        raise io_error(str(exc)) from None


def print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def report(diagnostics: Iterable[Diagnostic], fmt: str) -> int:
    """Print diagnostics as text (stderr) or JSON (stdout); return the exit code they call for."""
    from ..diagnostics import Severity

    diagnostics = list(diagnostics)
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diagnostics if d.severity is Severity.WARNING)
    if fmt == "json":
        print_json(
            {
                "diagnostics": [d.to_dict() for d in diagnostics],
                "errors": errors,
                "warnings": warnings,
            }
        )
    else:
        for d in diagnostics:
            print(d.render() + "\n", file=sys.stderr)
    return EXIT_PROBLEMS if errors else EXIT_OK
