"""Bearer tokens for ``tusk serve --auth-token-file``: several valid at once, rotated by editing the file.

The file holds one token per line (blank lines and lines starting with ``#`` are ignored). It is read
at start (no usable token there is a usage error) and again whenever its modification time, size or
inode changes, checked at most once per ``check_every`` seconds on the request path, so rotating is:
add the new token, move the clients, remove the old one. A file that vanishes or cannot be read
keeps the last tokens (an atomic replace is never a window without auth) and logs why; a file
with no token left refuses every request.

Every candidate is compared in constant time (``hmac.compare_digest``) with every valid token, so
neither the position of a mismatch nor which token matched shows in the time taken.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("tusklang.serve")

UNAUTHORIZED_BODY = b'{"errorCode":"GENERAL","errorDetails":"missing or invalid bearer token"}'


class TokenFileError(ValueError):
    """The token file cannot be used at start: unreadable, or no token in it."""


def read_tokens(path: Path) -> list[bytes]:
    text = path.read_text(encoding="utf-8")
    return [
        line.strip().encode("utf-8") for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TokenAuth:
    def __init__(self, path: str | os.PathLike[str], *, check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        try:
            self._signature = _signature(self.path)
            self._tokens = read_tokens(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{path}: cannot read the token file ({exc})") from None
        if not self._tokens:
            raise TokenFileError(f"{path}: no token in the file (one per line)")
        self._next_check = time.monotonic() + check_every
        self.rotations = 0

    @property
    def token_count(self) -> int:
        return len(self._tokens)

    def _refresh(self) -> None:
        self._next_check = time.monotonic() + self.check_every
        signature = _signature(self.path)
        if signature == self._signature:
            return
        try:
            tokens = read_tokens(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("auth: cannot read %s (%s); keeping the last %d token(s)", self.path, exc, len(self._tokens))
            return
        self._signature = signature
        self._tokens = tokens
        self.rotations += 1
        log.warning(
            "auth: %s reloaded: %d token(s)%s", self.path, len(tokens), "" if tokens else ", refusing every request"
        )

    def allowed(self, authorization: bytes | str | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid bearer token."""
        if time.monotonic() >= self._next_check:
            self._refresh()
        if not authorization:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, candidate = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        candidate = candidate.strip()
        ok = False
        for token in self._tokens:  # no early exit: the time does not say which token matched
            ok |= hmac.compare_digest(candidate, token)
        return ok and bool(candidate)
