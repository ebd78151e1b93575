"""Database URLs: which dialect, which SQLite file, and how to show one without its secrets.

The one place that reads a URL, for the read-only `@query` connections and the write connections of
the event store and delivery alike, so every layer accepts the same forms and says the same things:

| URL | meaning |
|---|---|
| `sqlite:///relative/path.db` | a file relative to the working directory |
| `sqlite:////absolute/path.db` | a file by absolute path (four slashes) |
| `sqlite:///:memory:` | an in-memory database (write connections only) |
| `postgresql://...`, `postgres://...` | PostgreSQL, any libpq parameter |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .errors import DatabaseURLError

__all__ = ["SUPPORTED_SCHEMES", "Dialect", "dialect_of", "redact_url", "scrub", "sqlite_path", "url_secrets"]

Dialect = Literal["sqlite", "postgresql"]
SUPPORTED_SCHEMES: Final = ("sqlite", "postgresql", "postgres")
_FORMS: Final = "sqlite:///relative/path.db or sqlite:////absolute/path.db, postgresql://... (or postgres://...)"


def dialect_of(url: str) -> Dialect:
    """`sqlite` or `postgresql`; DatabaseURLError (listing the supported forms) for anything else."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    # The scheme is shown only when it looks like one: a mistyped URL may be a password pasted whole.
    shown = f"{scheme!r}" if scheme.isascii() and scheme.isalnum() and len(scheme) <= 20 else "none"
    raise DatabaseURLError(f"unsupported database URL scheme {shown}; supported schemes: {_FORMS}")


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel/x.db` -> `rel/x.db` (from the working directory); `sqlite:////abs/x.db` -> `/abs/x.db`.

    A relative path is resolved against the current working directory when the file is opened.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise DatabaseURLError("a malformed SQLite URL; write sqlite:///relative/path.db") from None
    if parts.netloc:
        raise DatabaseURLError(
            f"a SQLite URL has no host: write sqlite:///relative/path.db or sqlite:////absolute/path.db, "
            f"not {redact_url(url)!r}"
        )
    path = unquote(parts.path)
    if not path.startswith("/") or path == "/":
        raise DatabaseURLError(f"a SQLite URL needs a file path: sqlite:///relative/path.db, not {redact_url(url)!r}")
    if "\x00" in path:
        raise DatabaseURLError("a SQLite path cannot contain a NUL character")
    return Path(path[1:])


def redact_url(url: str) -> str:
    """The URL with its password (in the authority or a `password=` parameter) replaced by `***`."""
    try:
        parts = urlsplit(url)
        if parts.password is None and "password=" not in parts.query.lower():
            return url
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key.lower() == "password" for key, _ in pairs):
                pairs = [(key, "***" if key.lower() == "password" else value) for key, value in pairs]
                query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable database URL>"


def url_secrets(url: str) -> tuple[str, ...]:
    """Strings that must never appear in output: the raw URL and its password."""
    secrets = [url]
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets.append(parts.password)
            secrets.append(unquote(parts.password))
        secrets.extend(value for key, value in parse_qsl(parts.query) if key.lower() == "password")
    except ValueError:
        pass
    # Longest first, so the URL is replaced whole before its password is.
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove every secret (password, raw URL) from a message coming back from a driver."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


_CREDENTIALS = re.compile(r"(\w+://)[^@/\s]*@")


def redact_text(text: str) -> str:
    """Strip ``user:password@`` from every URL inside free text (a driver's or Redis's error message)."""
    return _CREDENTIALS.sub(r"\1***@", text)
