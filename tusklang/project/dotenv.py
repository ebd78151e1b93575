"""The one dotenv reader (`--env-file`), for every command.

A line is `NAME=value`, optionally after `export `; blank lines and lines starting with `#` are
skipped. An unquoted value ends at ` #` (a comment) and is trimmed, so `NOTE=hello # c` is `hello`
(a `#` inside a word, `a#b`, is kept). A single-quoted value is literal. In a double-quoted value
`\\\\ \\" \\' \\n \\r \\t \\$` are escapes and any other backslash is kept as written: decoding `\\x..`
or `\\u..` would let a file make text that is not UTF-8 (a lone surrogate). After a closing quote
only a comment may follow. These are the rules of python-dotenv and docker compose for one-line values.

Every problem is an InputError naming the file and line (the CLI prints it as one line, exit 2).
"""

from __future__ import annotations

import os
import re

from .errors import InputError, read_input

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=[ \t]*(.*?)\s*\Z")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
_ESCAPE = re.compile(r"\\([\\\"'nrt$])")
_COMMENT = re.compile(r"\s#")


def parse_dotenv(text: str, path: str = "<env>") -> dict[str, str]:
    """NAME -> value of a dotenv text; a later line for the same name wins (as in a shell)."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise InputError(f"{path}:{number}: expected NAME=value")
        name, raw = match.groups()
        values[name] = _value(raw, path, number)
    return values


def _value(raw: str, path: str, number: int) -> str:
    if not raw or raw[0] not in "\"'":
        found = _COMMENT.search(raw)
        return (raw[: found.start()] if found else raw).strip()
    quote = raw[0]
    end = _closing(raw, quote)
    if end < 0:
        raise InputError(f"{path}:{number}: the value's {quote} quote is not closed on this line")
    rest = raw[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise InputError(f"{path}:{number}: only a # comment may follow a quoted value")
    value = raw[1:end]
    if quote == '"' and "\\" in value:
        value = _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], value)
    return value


def _closing(raw: str, quote: str) -> int:
    """Index of the quote closing ``raw[0]``; in double quotes a backslash escapes the next character."""
    index = 1
    while index < len(raw):
        ch = raw[index]
        if ch == "\\" and quote == '"':
            index += 2
            continue
        if ch == quote:
            return index
        index += 1
    return -1


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a dotenv file, which must be UTF-8 text (else an InputError naming the bad byte's offset)."""
    return parse_dotenv(read_input(path), str(path))
