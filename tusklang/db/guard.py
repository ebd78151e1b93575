"""The early, readable refusals of `@query` on PostgreSQL: a lexical look at the statement.

This is NOT what makes `@query` read-only; the server does that (tusklang/db/postgres.py: a described
statement that returns rows, a READ ONLY transaction always rolled back, privileges dropped, advisory
locks released). A name scan alone is defeatable, so it is only the clear first answer for the known
doors, and the last word for the two the server cannot close for a privileged login:
- `set_config` can change `role` back to the login role in the middle of a statement;
- functions that run SQL text (`query_to_xml`, `ts_stat`, `ts_rewrite`, `dblink`) hide their names
  from any scan.

It works on tokens (tusklang/db/placeholders.py's lexer), so names inside string literals, comments and
dollar-quoted bodies are not calls, and a function is refused only where it is called: its name
followed by `(`, as every call in SQL is written (schema-qualified, quoted or not).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Final, Literal, NamedTuple

from .errors import QueryError
from .placeholders import skip_token

__all__ = ["ALLOWED_FIRST_WORDS", "check_statement", "denied_function"]

# Statements that are queries, not utility commands (EXPLAIN ANALYZE runs its statement, SHOW/FETCH
# return rows too, COPY ... TO PROGRAM runs a program on the server).
ALLOWED_FIRST_WORDS: Final = frozenset({"select", "with", "values", "table"})

# The other words a PostgreSQL or SQLite statement can begin with: refused as not being queries. Any
# other first word is not SQL at all, and is reported as a syntax error (still without running it).
_STATEMENT_WORDS: Final = frozenset(
    """abort alter analyse analyze attach begin call checkpoint close cluster comment commit copy create
    deallocate declare delete detach discard do drop end execute explain fetch grant import insert listen
    load lock merge move notify pragma prepare reassign refresh reindex release replace reset revoke
    rollback savepoint security set show start truncate unlisten update vacuum""".split()
)

# Functions with effects a READ ONLY transaction does not stop (or that outlive its rollback).
_DENIED_PREFIXES: Final = (
    # server files and large objects (lo_import / lo_export read and write server files)
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "pg_logdir_ls",
    "lo_",
    "loread",
    "lowrite",
    # other backends and the server itself
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_log_backend_memory_contexts",
    "pg_switch_wal",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_",
    "pg_stat_reset",
    "pg_import_system_collations",
    "pg_notify",
    # WAL messages and replication slots (a non-transactional message is written even when rolled back)
    "pg_logical_",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    # session-level advisory locks survive ROLLBACK; transaction-level ones block others until it
    "pg_advisory_",
    "pg_try_advisory_",
    # settings: set_config('role', ...) undoes the dropped privileges mid-statement
    "set_config",
    # SQL text run by a function: invisible to this scan, and dblink opens a session of its own
    "dblink",
    "query_to_xml",
    "cursor_to_xml",
    "ts_stat",
    "ts_rewrite",
)

_HINT: Final = "@query runs one SELECT (or WITH/VALUES/TABLE) that only reads"


class _UnicodeIdentifier(Exception):
    """`U&"..."`: its name is spelt in escapes a scan would have to decode; refused instead."""


class _Token(NamedTuple):
    kind: str  # "word", "quoted" (identifier), "literal", "punct"
    text: str  # lower-cased for words; the identifier for quoted; the character for punct
    start: int


def _tokens(sql: str) -> Iterator[_Token]:
    """Words, quoted identifiers, literals and punctuation; whitespace and comments are skipped."""
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char.isspace():
            index += 1
            continue
        end = skip_token(sql, index)
        if end is not None:
            if char == '"':
                if sql[max(0, index - 2) : index].lower() == "u&":
                    raise _UnicodeIdentifier
                yield _Token("quoted", sql[index + 1 : end - 1].replace('""', '"'), index)
            elif char not in "-/":  # comments are not tokens
                yield _Token("literal", "", index)
            index = end
            continue
        if char.isalpha() or char == "_":
            start = index
            while index < length and (sql[index].isalnum() or sql[index] in "_$"):
                index += 1
            yield _Token("word", sql[start:index].lower(), start)
            continue
        if char.isdigit():
            while index < length and (sql[index].isalnum() or sql[index] == "."):
                index += 1
            yield _Token("literal", "", index)
            continue
        yield _Token("punct", char, index)
        index += 1


def denied_function(name: str) -> bool:
    lowered = name.lower()
    return any(lowered.startswith(prefix) for prefix in _DENIED_PREFIXES)


def check_statement(sql: str, *, functions: bool = True) -> None:
    """QueryError(kind="read_only") for a statement that is not a query, or (`functions`) that calls a
    refused function. SQLite checks only the first word: its authorizer refuses the rest."""
    found = _verdict(sql, functions)
    if found is not None:
        message, kind = found
        raise QueryError(message, kind, hint=_HINT if kind == "read_only" else None)


@lru_cache(maxsize=512)
def _verdict(sql: str, functions: bool) -> tuple[str, Literal["read_only", "syntax"]] | None:
    """Why `sql` is refused, or None; cached, since a dashboard runs the same texts again and again."""
    try:
        tokens = _tokens(sql)
        first = next((t for t in tokens if not (t.kind == "punct" and t.text == "(")), None)
        if first is None:
            return "the statement is empty", "syntax"
        if first.kind == "word" and first.text not in ALLOWED_FIRST_WORDS and first.text not in _STATEMENT_WORDS:
            return f"the statement begins with {first.text!r}, which is not SQL; @query runs a SELECT", "syntax"
        if first.kind != "word" or first.text not in ALLOWED_FIRST_WORDS:
            shown = first.text.upper() if first.kind == "word" else "this statement"
            return f"{shown} is not allowed: @query runs only a query (SELECT, WITH, VALUES or TABLE)", "read_only"
        if not functions:
            return None
        previous = first
        for token in tokens:
            if token.kind == "punct" and token.text == "(" and previous.kind in ("word", "quoted"):
                if denied_function(previous.text):
                    return (
                        f"the function {previous.text}() is not allowed in @query: it acts on the server "
                        "(files, other sessions, settings, locks) or runs SQL text",
                        "read_only",
                    )
            previous = token
    except _UnicodeIdentifier:
        return 'a Unicode-escaped identifier (U&"...") is not allowed in @query; write the name plainly', "read_only"
    return None
