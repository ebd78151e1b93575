"""`tusk`: the command line. Each subcommand is a module in this package with ``register(subparsers)``.

Exit codes everywhere: 0 success, 1 problems found in the input, 2 usage or I/O error. With
`--format json`, a usage or I/O error is also a JSON object on stdout (docs/diagnostics.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ._common import EXIT_USAGE, PARSER_ATTR, UsageError, print_json

TYPE_CHECKING = False  # typing is not imported at run time: `tusk --help` start-up
if TYPE_CHECKING:
    from typing import Any, NoReturn

# Every command's name and its one-line help, as its module's ``register`` gives them. `tusk --help`
# prints this table without importing any command module (they pull in the compiler, pydantic, the
# HTTP server, scipy...), and `tusk CMD` imports CMD's module only. tests/test_startup.py holds this
# table equal to what the modules register.
COMMANDS: dict[str, str] = {
    "check": (
        "Check TuskLang files: syntax, duplicate keys, variables, expressions, and for flag configs the schema "
        "and lint rules (docs/lint.md), following @file includes. Nothing is executed: @query and @date are not "
        "run; @env reads the environment (a variable that is not set is its default)."
    ),
    "compile": "Compile TuskLang flag configs into a validated, versioned JSON snapshot (written atomically).",
    "dashboard": (
        "Render the widgets of `real_time_feature_dashboard` from their SQL queries (HTML, inline SVG charts)."
    ),
    "db": "The event store's tables: create them, purge old events, erase or export a unit's events.",
    "diff": (
        "Show what changed between two flag snapshots (or two TuskLang sources, compiled first): flags "
        "added or removed, rollout and weight changes, targeting."
    ),
    "eval": "Evaluate a flag or experiment of a JSON snapshot for a context.",
    "experiment": "Experiment results from the recorded events.",
    "flags": "Runtime overrides on Redis: rollout percentage, on/off, variant weights (docs/overrides.md).",
    "fmt": "Format TuskLang files in place (4-space indentation, `key = value`, comments kept).",
    "keys": "Identities and roles of override writers: create, list, rotate, revoke keys (docs/overrides.md).",
    "lsp": "Run the TuskLang language server (diagnostics, hover, completion, navigation, formatting).",
    "parse": "Print a TuskLang file's data as JSON (directives shown, not run) or as canonical TuskLang.",
    "report": "Reports from the event store.",
    "rollout": "Progressive delivery: canary steps, blue/green switches, metric samples, simulations.",
    "schema": "Print the JSON Schema (draft 2020-12) of the compiled flag snapshot.",
    "serve": "Serve a JSON snapshot over HTTP with the OpenFeature Remote Evaluation Protocol (OFREP).",
    "stats": "Experiment statistics: compare arms, sample ratio mismatch, sample size.",
}

_ALL = object()


class _ArgumentError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, except that an error is raised to `main` (which knows the command and the format)."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self, message)


def build_parser(command: Any = _ALL) -> argparse.ArgumentParser:
    """The `tusk` parser. With ``command`` (a name, or None for none), only that command's module is
    imported and its real subparser built; the others are placeholders carrying their help line, which
    is all `tusk --help` and argparse's "invalid choice" need. Without it, every command is built."""
    from .._version import __version__

    parser = _Parser(
        prog="tusk",
        description="Feature flags as code: parse, check and compile TuskLang flag configs.",
        epilog=(
            "example:\n"
            "  tusk compile fixtures/seed/project.tsk --db sqlite:///fixtures/db/seed.db \\\n"
            "      --env-file fixtures/seed/seed.env -o flags.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tusk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Commands)
    assert isinstance(sub, _Commands)
    for name, help in COMMANDS.items():
        if command is _ALL or name == command:
            importlib.import_module(f"{__name__}.{name}").register(sub)
        else:
            sub.add_placeholder(name, help)
    return parser


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The subcommands. A placeholder is its help line only; its parser (as `add_parser(name)` makes it) is
    built if argparse selects it, which only `tusk -- CMD` does: 17 parsers built for `tusk --help` were
    a third of its run time (issue 19)."""

    def add_placeholder(self, name: str, help: str) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._name_parser_map[name] = None

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        if values and values[0] in self._name_parser_map and self._name_parser_map[values[0]] is None:
            self._name_parser_map[values[0]] = self._parser_class(prog=f"{self._prog_prefix} {values[0]}")
        super().__call__(parser, namespace, values, option_string)


def _command_word(argv: Sequence[str]) -> str | None:
    """The command `argv` names: the top-level parser has only --help and --version, neither taking a
    value, so it is the first word not starting with a dash."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
        if word == "--":
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # pydantic looks for plugins by reading every installed distribution's entry points when it builds
    # its first model (~15 ms of a 20-line `tusk check`); our schema models are internal to the command,
    # nothing for a plugin to observe. An explicit setting is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser(_command_word(argv))
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # argparse leaves these to the top-level parser, which would print the top-level usage;
            # the command they were given to is the one whose usage helps.
            owner = getattr(args, PARSER_ATTR, parser)
            owner.error(_unrecognized(owner, extras))
    except _ArgumentError as exc:
        _argument_failure(exc, _wants_json(argv))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    json_errors = getattr(args, "format", None) == "json"
    prog = getattr(args, PARSER_ATTR, parser).prog  # `tusk db init`, not `tusk db`
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        return _usage_failure(prog, str(exc), exc.kind, exc.code, json_errors)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # A TuskError can only have been raised once its module is loaded: `tusk --help` need not load it.
        diagnostics = sys.modules.get("tusklang.diagnostics")
        if diagnostics is None or not isinstance(exc, diagnostics.TuskError):
            raise
        # The one family every command lets through: a database that cannot be reached is an I/O
        # problem (exit 2, one line with its code); anything else is a problem in the input (exit 1).
        from ..db.errors import DatabaseError
        from ._common import report
        from ._db_errors import one_line

        if isinstance(exc, DatabaseError):
            return _usage_failure(prog, one_line(exc), "io", exc.first.code, json_errors)
        if json_errors:
            return report(exc.diagnostics, "json") or 1
        print(exc.render(), file=sys.stderr)
        return 1


def _usage_failure(prog: str, message: str, kind: str, code: str | None, json_errors: bool) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    if json_errors:
        print_json(_error_object(kind, code, message))
    return EXIT_USAGE


def _argument_failure(exc: _ArgumentError, json_errors: bool) -> NoReturn:
    """As argparse reports it (the command's usage, then `prog: error: ...`), and the same exit code 2."""
    exc.parser.print_usage(sys.stderr)
    print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)
    if json_errors:
        print_json(_error_object("usage", None, exc.message))
    raise SystemExit(EXIT_USAGE)


def _error_object(kind: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "code": code, "message": message}}


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    from ..suggest import did_you_mean

    message = f"unrecognized arguments: {' '.join(extras)}"
    options = [
        option
        for action in parser._actions
        if action.help is not argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]
    for extra in extras:
        if extra.startswith("--"):
            close = did_you_mean(extra.split("=", 1)[0], options)
            if close:
                return f"{message} (did you mean {close}?)"
    return message


def _wants_json(argv: Sequence[str]) -> bool:
    """`--format json` as typed, for errors found before the arguments could be parsed."""
    for index, word in enumerate(argv):
        if word == "--format=json" or (word == "--format" and argv[index + 1 : index + 2] == ["json"]):
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
