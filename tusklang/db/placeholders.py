"""Translate the one placeholder style users write (`?`) into psycopg's `%s` (or the server's `$1`).

psycopg looks for `%` everywhere in the query text, string literals included, so every literal `%`
must be doubled; a `?` is a placeholder only outside string literals, quoted identifiers, dollar-quoted
bodies and comments. This is a lexer for exactly those token kinds, not an SQL parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Converted(NamedTuple):
    sql: str
    placeholders: int


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _dollar_tag_at(sql: str, start: int) -> str | None:
    """The `$tag$` opening a dollar-quoted string at `start`, or None (`$1` is not one)."""
    end = start + 1
    while end < len(sql) and _is_ident_char(sql[end]):
        end += 1
    if end < len(sql) and sql[end] == "$":
        tag = sql[start : end + 1]
        if len(tag) == 2 or not tag[1].isdigit():
            return tag
    return None


def _end_of_quoted(sql: str, start: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the literal opened at `start`; a doubled quote is an escaped quote."""
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if backslash_escapes and char == "\\":
            index += 2
            continue
        if char == quote:
            if index + 1 < len(sql) and sql[index + 1] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    return len(sql)


def _end_of_block_comment(sql: str, start: int) -> int:
    # PostgreSQL block comments nest.
    depth = 0
    index = start
    while index < len(sql):
        if sql.startswith("/*", index):
            depth += 1
            index += 2
        elif sql.startswith("*/", index):
            depth -= 1
            index += 2
            if depth == 0:
                return index
        else:
            index += 1
    return len(sql)


def skip_token(sql: str, index: int) -> int | None:
    """End of a literal, quoted identifier or comment starting at `index`, or None if none starts."""
    char = sql[index]
    if char == "'":
        before = sql[index - 1] if index > 0 else ""
        escape_string = before in "eE" and (index < 2 or not _is_ident_char(sql[index - 2]))
        return _end_of_quoted(sql, index, "'", backslash_escapes=escape_string)
    if char == '"':
        return _end_of_quoted(sql, index, '"', backslash_escapes=False)
    if sql.startswith("--", index):
        newline = sql.find("\n", index)
        return len(sql) if newline < 0 else newline
    if sql.startswith("/*", index):
        return _end_of_block_comment(sql, index)
    if char == "$" and (index == 0 or not _is_ident_char(sql[index - 1])):
        tag = _dollar_tag_at(sql, index)
        if tag is not None:
            close = sql.find(tag, index + len(tag))
            return len(sql) if close < 0 else close + len(tag)
    return None


def qmark_to_pyformat(sql: str) -> Converted:
    """`?` outside literals/comments becomes `%s`; every `%` becomes `%%` (psycopg's format)."""
    return _translate(sql, lambda _: "%s", escape_percent=True)


def qmark_to_dollar(sql: str) -> Converted:
    """`?` outside literals/comments becomes `$1`, `$2`, ...: the server's own form (libpq's PQprepare)."""
    return _translate(sql, lambda number: f"${number}", escape_percent=False)


def _translate(sql: str, placeholder: Callable[[int], str], *, escape_percent: bool) -> Converted:
    out: list[str] = []
    count = 0
    index = 0
    while index < len(sql):
        end = skip_token(sql, index)
        if end is not None:
            chunk = sql[index:end]
            out.append(chunk.replace("%", "%%") if escape_percent else chunk)
            index = end
            continue
        char = sql[index]
        if char == "?":
            count += 1
            out.append(placeholder(count))
        elif char == "%" and escape_percent:
            out.append("%%")
        else:
            out.append(char)
        index += 1
    return Converted("".join(out), count)
