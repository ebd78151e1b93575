"""The built wheel (not the checkout) installs in a fresh venv and runs `tusk check`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_checks_a_fixture(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("tusklang-*.whl"))
    env_dir = tmp_path / "venv"
    # The new venv borrows the dependencies of the interpreter running the tests (a user's venv, or the
    # base interpreter in CI), so nothing is downloaded; the package itself comes only from the wheel.
    # `system_site_packages` would not do: it sees the BASE interpreter, which in a fresh venv has none.
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    inner = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    # Plain path lines: the outer site-packages' own .pth files (an editable install of the checkout)
    # are not run, so `tusklang` can only come from the wheel.
    (Path(inner) / "_outer_site_packages.pth").write_text("".join(f"{path}\n" for path in outer))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
        check=True,
        capture_output=True,
    )
    fixture = ROOT / "fixtures" / "seed" / "project.tsk"
    probe = (
        "import tusklang, sys; from importlib import resources; "
        "print(tusklang.__file__); print(resources.files('tusklang').joinpath('_grammar/tusk.lark').is_file())"
    )
    where = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    location, grammar_in_wheel = where.stdout.split()
    assert str(env_dir) in location, "tusklang was imported from the checkout, not the wheel"
    assert grammar_in_wheel == "True"
    tusk = env_dir / "bin" / "tusk"
    ok = subprocess.run([str(tusk), "check", str(fixture)], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.tsk"
    bad.write_text("a = {\n")
    failed = subprocess.run([str(tusk), "check", str(bad), "--format", "json"], capture_output=True, text=True)
    assert failed.returncode == 1
    assert '"code": "TSK103"' in failed.stdout
