"""Every command, walked from the parser: --format json where it reports, --help ending with a true example,
and the commands README.md and docs/ show use options that exist (under their current names)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusklang.cli import _ArgumentError, build_parser

ROOT = Path(__file__).resolve().parent.parent
# Servers: they answer requests rather than print a report.
NOT_REPORTING = {"tusk serve", "tusk lsp"}


def _commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    stack = [("tusk", build_parser())]
    while stack:
        name, parser = stack.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend((f"{name} {sub}", p) for sub, p in action.choices.items())


COMMANDS = dict(_commands())


def _leaves() -> list[str]:
    return sorted(
        name
        for name, parser in COMMANDS.items()
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    )


def test_the_walk_finds_every_command() -> None:
    assert {"tusk check", "tusk flags set-rollout", "tusk rollout record", "tusk db purge"} <= set(_leaves())
    assert len(_leaves()) >= 30


@pytest.mark.parametrize("name", [name for name in _leaves() if name not in NOT_REPORTING])
def test_every_reporting_command_takes_format_json(name: str) -> None:
    formats = [a for a in COMMANDS[name]._actions if "--format" in a.option_strings]
    assert formats and "json" in (formats[0].choices or ()), f"{name} has no --format json"


def _example(name: str) -> list[str]:
    """The example the help ends with, as argv (shell comments, redirections and continuations removed)."""
    help_text = COMMANDS[name].format_help().rstrip()
    _head, sep, example = help_text.rpartition("\nexample:\n")
    assert sep, f"{name} --help has no example"
    lines = example.replace("\\\n", " ").splitlines()
    assert all(line.startswith("  ") for line in lines), f"{name} --help does not end with its example"
    words = shlex.split(lines[0], comments=True)
    return words[: words.index(">")] if ">" in words else words


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_ends_with_an_example_that_parses(name: str) -> None:
    words = _example(name)
    assert words[0] == "tusk"
    try:
        args, extras = build_parser().parse_known_args(words[1:])
    except _ArgumentError as exc:
        pytest.fail(f"{name}: its example {' '.join(words)!r} does not parse: {exc.message}")
    assert extras == [], f"{name}: its example passes unknown options {extras}"
    assert getattr(args, "func", None) is not None
    assert args._tusk_parser.prog.startswith(name)  # the example is of this command (or one below)


# --- what the documentation shows ---------------------------------------------------------------------


def _visible_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option for action in parser._actions if action.help is not argparse.SUPPRESS for option in action.option_strings
    }


def _shown_commands() -> Iterator[tuple[str, str]]:
    """`tusk ...` command lines in README.md and docs/*.md: in code blocks and in `code spans`."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
        lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        spans = re.findall(r"`(tusk [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in [*lines, *spans]:
            # `a|b` (or `a\|b` in a table) is a choice the docs offer; ` | ` is a shell pipe
            for part in re.split(r"\s\|\s", line.replace("\\|", "|")):
                for match in re.finditer(r"(?:^|[\s;&(])(tusk [^;&#`]*)", part):
                    if not re.match(r"tusk [a-z -]*:", match.group(1)):  # `tusk check: ...` is a message
                        yield path.name, match.group(1)


def _command_of(words: list[str]) -> str:
    """The deepest command the words name (`tusk rollout record ...` -> `tusk rollout record`)."""
    name = "tusk"
    for word in words[1:]:
        if f"{name} {word}" in COMMANDS:
            name = f"{name} {word}"
        elif not word.startswith("-"):
            # an argument, or alternatives written `a|b` (`tusk db init|purge`): the first one
            first = word.split("|")[0].strip("\\")
            if f"{name} {first}" in COMMANDS and "|" in word:
                name = f"{name} {first}"
            break
    return name


def test_every_option_the_docs_show_exists_under_its_current_name() -> None:
    shown = list(_shown_commands())
    assert len(shown) > 50  # the scan finds the docs' commands
    wrong = []
    for where, line in shown:
        words = line.split()
        name = _command_of(words)
        known = _visible_options(COMMANDS[name]) | {"--help", "-h"}
        for word in words:
            option = word.strip("[](),.'\"").split("=")[0]
            if re.fullmatch(r"--[a-z][a-z0-9-]*", option) and option not in known:
                wrong.append(f"{where}: `{line.strip()}`: {name} has no {option}")
    assert not wrong, "\n".join(wrong)
