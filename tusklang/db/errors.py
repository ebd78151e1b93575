"""The error family of the database layer and of the event store, reports and delivery built on it.

Every failure a user can cause here is a `TuskError` carrying one coded `Diagnostic`, so the CLI can
catch one family. `str()` of these errors is the plain message (what it was before they joined the
family), so `f"...: {exc}"` keeps reading well; `.diagnostics` / `.render()` carry the code.

Codes (docs/diagnostics.md): TSK250 database URL, TSK251 cannot connect, TSK252 statement refused
(not one read-only statement returning rows), TSK253 query failed, TSK254 a value with no JSON form,
TSK255 a write failed, TSK256 event tables newer than this code, TSK257 PII masking key. Reports use
TSK945-947 through `CodedError`.
"""

from __future__ import annotations

from typing import Final, Literal

from ..diagnostics import Diagnostic, Span, TuskError

__all__ = [
    "CODES",
    "CodedError",
    "DatabaseError",
    "DatabaseURLError",
    "ErrorKind",
    "QueryError",
    "QueryErrorKind",
    "WriteError",
]

# What `QueryError.kind` may be (a read through `tusklang.db.connect`).
QueryErrorKind = Literal[
    "syntax",
    "missing_table",
    "timeout",
    "read_only",
    "connection",
    "too_many_rows",
    "multiple_statements",
    "unsupported_value",
    "other",
]
# Every kind of the family: the read kinds plus the URL and the write side.
ErrorKind = Literal[
    "url",
    "syntax",
    "missing_table",
    "timeout",
    "read_only",
    "connection",
    "too_many_rows",
    "multiple_statements",
    "unsupported_value",
    "write",
    "schema",
    "other",
]

URL_CODE: Final = "TSK250"
CONNECT_CODE: Final = "TSK251"
REFUSED_CODE: Final = "TSK252"
QUERY_CODE: Final = "TSK253"
VALUE_CODE: Final = "TSK254"
WRITE_CODE: Final = "TSK255"
SCHEMA_CODE: Final = "TSK256"
MASKING_KEY_CODE: Final = "TSK257"

# A kind that names its own code wins over the class's default.
CODES: Final[dict[str, str]] = {
    "url": URL_CODE,
    "connection": CONNECT_CODE,
    "read_only": REFUSED_CODE,
    "multiple_statements": REFUSED_CODE,
    "unsupported_value": VALUE_CODE,
    "schema": SCHEMA_CODE,
}


class CodedError(TuskError):
    """A TuskError with exactly one diagnostic; `str()` is its message, `.code` its code."""

    def __init__(self, code: str, message: str, *, hint: str | None = None, span: Span | None = None) -> None:
        self.message = message
        super().__init__([Diagnostic(code, message, span, hint=hint)])

    @property
    def code(self) -> str:
        return self.first.code

    def __str__(self) -> str:
        return self.message


class DatabaseError(CodedError):
    """Any failure of `tusklang.db` (connecting, reading or writing); the message never holds a secret."""

    default_code = QUERY_CODE

    def __init__(
        self, message: str, kind: ErrorKind = "other", *, sqlstate: str | None = None, hint: str | None = None
    ) -> None:
        self.kind: ErrorKind = kind
        self.sqlstate = sqlstate
        super().__init__(CODES.get(kind, self.default_code), message, hint=hint)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, message={self.message!r})"


class QueryError(DatabaseError):
    """A read (`Database.query`, or opening the read-only connection) failed."""

    kind: QueryErrorKind  # type: ignore[assignment]


class WriteError(DatabaseError):
    """A write connection failed: connecting, a statement, a transaction (event store, delivery)."""

    default_code = WRITE_CODE


class DatabaseURLError(DatabaseError, ValueError):
    """The URL names no supported database, or a malformed one; raised by every layer alike.

    Also a ValueError, which is what `connect` raised for these before the family existed.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "url")
