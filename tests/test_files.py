"""tusklang.files.write_atomic: readers see the old file or the new one; failures are one line and change nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tusklang.files import WriteError, write_atomic


def test_writes_and_replaces_whole_keeping_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_atomic(target, "one\n")
    assert target.read_text(encoding="utf-8") == "one\n"
    target.chmod(0o640)
    write_atomic(target, "two ü\n")
    assert target.read_bytes() == "two ü\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file left


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing" / "out.json", "cannot write"),
        (lambda d: d, "is a directory, not a file"),
        (lambda d: (d / "file").write_text("x") and d / "file" / "out.json", "cannot write"),
        (lambda d: str(d / "nul\0name"), "cannot write"),
    ],
    ids=["missing folder", "a directory", "through a file", "NUL in the path"],
)
def test_every_failure_is_one_line_naming_the_path(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    target = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(WriteError) as info:
        write_atomic(target, "x")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{target}: ") and reason in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_text_that_cannot_be_encoded_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(WriteError, match="not valid Unicode"):
        write_atomic(target, "half a pair: \ud800")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_unwritable_folder(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    else:
        # root writes into any chmod-protected folder; sysfs refuses new files even to root
        folder = Path("/sys")
    try:
        with pytest.raises(WriteError, match="Permission denied"):
            write_atomic(folder / "out.json", "x")
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o700)
