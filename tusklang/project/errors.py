"""Input problems of the project loader that are not in a file's text: usage and I/O (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path


class InputError(ValueError):
    """A file that cannot be read, a bad `--env-file` line, a bad limit: one line, exit 2 in the CLI.

    Problems *in* a TuskLang file are diagnostics (TuskError), never this.
    """


def read_input(path: str | os.PathLike[str]) -> str:
    """A UTF-8 file's text (a BOM is dropped); every I/O problem is a one-line InputError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{path}: {reason}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = f"invalid byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise InputError(f"{path}: not UTF-8 text ({bad})") from None
