"""The files a command reads as one project: `FILE...` arguments, where a directory stands for its `.tsk` files."""

from __future__ import annotations

from collections.abc import Sequence

from ._common import io_error, read_text


def project_texts(paths: Sequence[str]) -> dict[str, str]:
    """Each file's text, read up front so an unreadable file (or a directory without `.tsk` files) is a
    one-line I/O error (exit 2) before any work; `-` is standard input. The texts are the loader's
    overlays: the files are read once."""
    from ..project import InputError
    from ..project.loader import expand_paths

    try:
        names = [name for name, _ in expand_paths(list(paths))]
    except InputError as exc:
        raise io_error(str(exc)) from None
    return {name: read_text(name) for name in names}
