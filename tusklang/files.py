"""Writing a file so that readers never see half of it (foundation: any stage may use it).

The compiler's snapshot, `tusk fmt`, reports and experiment exports all replace a file that something
else may be reading at that moment (a server polling a snapshot, an editor, a web server). Each write
goes to a temp file in the same folder, is flushed to disk, and is renamed over the target: a reader
sees the old file or the new one. Failures are one-line ``WriteError``s naming the path; the command
line turns them into its I/O error (exit 2).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

_SLICE = 1 << 20  # characters encoded and written at a time


class WriteError(Exception):
    """A file could not be written: one line, naming the path. The target is left as it was."""


def write_atomic(path: str | os.PathLike[str], text: str | Sequence[str]) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    ``text`` may be a sequence of pieces, written one after the other (the compiler's snapshot comes
    that way: joined first, it was one more copy of the file at the process's peak).

    Every failure (the path is a directory, its folder is missing, unwritable or a file, the disk is
    full, the text cannot be encoded) is a WriteError naming ``path``, and leaves the target and its
    folder as they were: the temp file is removed and the target is only ever replaced whole.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        if target.is_dir():  # os.replace would fail only after the temp file is written
            raise WriteError(f"{path}: is a directory, not a file")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise WriteError(f"{path}: cannot write ({_reason(exc)})") from None
    # mkstemp creates 0600; give the file the mode it had, or what the umask allows a new file.
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            # In slices: one write of the whole text encodes all of it at once, a second copy as big as
            # the file (a snapshot of 50,000 flags is 40-60 MB) on top of the text at the process's peak.
            for piece in (text,) if isinstance(text, str) else text:
                for start in range(0, len(piece), _SLICE):
                    fh.write(piece[start : start + _SLICE])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError | UnicodeError):
            raise WriteError(f"{path}: cannot write ({_reason(exc)})") from None
        raise


def _reason(exc: BaseException) -> str:
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UnicodeError):
        return "the text is not valid Unicode"
    return str(exc)
