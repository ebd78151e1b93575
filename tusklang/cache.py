"""Where tusklang keeps what it may rebuild at any time: the grammar's tables and `tusk check`'s findings."""

from __future__ import annotations

import os
import sys


def cache_folder() -> str | None:
    """`$XDG_CACHE_HOME/tusklang` (`~/.cache/tusklang`; `%LOCALAPPDATA%\\tusklang` on Windows), or None when
    TUSK_NO_CACHE is set or no base folder is known. Not created here: each cache makes its own part."""
    if os.environ.get("TUSK_NO_CACHE"):
        return None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tusklang") if base else None
