"""The warm `tusk check` (tusklang/warm): a check the server runs is the check the command line runs.

Every test drives the installed `tusk` script, as a user or a pre-commit hook does, against a real server
in a private runtime folder, and compares with `TUSK_CHECK_SERVER=0` (the check run in the calling process).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusklang.warm import wire

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm check is Linux only")

TUSK = str(Path(sys.executable).with_name("tusk"))
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

CLEAN = """\
feature_flags = {
    flags = {
        new_checkout = {
            enabled = true
            rollout_percentage = 25
            metadata = { owner = "payments", description = "the new checkout flow" }
        }
    }
}
"""
# a schema error (rollout over 100), an unknown variable and a lint finding
BROKEN = """\
feature_flags = {
    flags = {
        a = { enabled = true, rollout_percentage = 150 }
        b = { enabled = $missing, rollout_percentage = 10 }
    }
}
"""
FROM_ENV = """\
feature_flags = {
    flags = {
        a = { enabled = true, rollout_percentage = @env("TUSK_WARM_TEST_PERCENT", 10) }
    }
}
"""


def _env(runtime: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", wire.MODE_ENV, wire.IDLE_ENV}}
    env["XDG_RUNTIME_DIR"] = runtime
    env.update(extra)
    return env


def _tusk(
    args: list[str], env: dict[str, str], cwd: Path | str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TUSK, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def _server_pid(runtime: str) -> int | None:
    for lock in Path(runtime, "tusklang").glob("check-*.sock.lock"):
        text = lock.read_text().strip()
        if text and Path(f"/proc/{text}").exists():
            return int(text)
    return None


def _wait_for(predicate: object, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _socket_ready(runtime: str) -> bool:
    return any(Path(runtime, "tusklang").glob("check-*.sock")) and _server_pid(runtime) is not None


def _stop(runtime: str) -> None:
    pid = _server_pid(runtime)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.fixture
def runtime() -> Iterator[str]:
    # short: a socket's path is limited to ~100 bytes, which pytest's tmp_path can pass
    folder = tempfile.mkdtemp(prefix="tw-", dir="/tmp")
    try:
        yield folder
    finally:
        _stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "clean.tsk").write_text(CLEAN)
    (tmp_path / "broken.tsk").write_text(BROKEN)
    (tmp_path / "from_env.tsk").write_text(FROM_ENV)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "one.tsk").write_text(CLEAN)
    return tmp_path


@pytest.fixture
def server(runtime: str, project: Path) -> str:
    """A server started as users get one: by a first `tusk check` that had to run in its own process."""
    first = _tusk(["check", "clean.tsk"], _env(runtime), project)
    assert first.returncode == 0, first.stderr
    assert _wait_for(lambda: _socket_ready(runtime)), "no server started after the first check"
    return runtime


CASES = [
    (["check", "clean.tsk"], None),
    (["check", "broken.tsk"], None),
    (["check", "broken.tsk", "--format", "json"], None),
    (["check", "broken.tsk", "--ignore", "TSK401", "--error", "TSK403"], None),
    (["check", "dir"], None),
    (["check", str(Path("dir") / "one.tsk"), "clean.tsk"], None),
    (["check", "-"], BROKEN),
    (["check", "-"], "a = ["),
    (["check", "missing.tsk"], None),
    (["check", "--format", "json", "missing.tsk"], None),
    (["check", "--no-such-option", "clean.tsk"], None),
    (["check", "--help"], None),
    (["check"], None),
    # the seed project: @file includes, @env from an env file, @query left unknown
    (["check", str(FIXTURES / "seed" / "project.tsk"), "--env-file", str(FIXTURES / "seed" / "seed.env")], None),
    (["check", str(FIXTURES / "project" / "split"), "--format", "json"], None),
]


@pytest.mark.parametrize(("args", "stdin"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_the_server_prints_and_exits_as_the_check_run_here(
    server: str, project: Path, args: list[str], stdin: str | None
) -> None:
    warm = _tusk(args, _env(server, TUSK_CHECK_SERVER="required"), project, stdin)
    here = _tusk(args, _env(server, TUSK_CHECK_SERVER="0"), project, stdin)
    assert (warm.returncode, warm.stdout, warm.stderr) == (here.returncode, here.stdout, here.stderr)
    assert "no warm check server" not in warm.stderr


def test_each_check_reads_its_callers_environment(server: str, project: Path) -> None:
    results = {}
    for percent in ("150", "40"):
        env = _env(server, TUSK_CHECK_SERVER="required", TUSK_WARM_TEST_PERCENT=percent)
        results[percent] = _tusk(["check", "from_env.tsk", "--format", "json"], env, project)
        here = _tusk(["check", "from_env.tsk", "--format", "json"], {**env, "TUSK_CHECK_SERVER": "0"}, project)
        assert (results[percent].returncode, results[percent].stdout) == (here.returncode, here.stdout)
    assert results["150"].returncode == 1 and results["40"].returncode == 0


def test_checks_at_the_same_time_are_each_answered(server: str, project: Path) -> None:
    env = _env(server, TUSK_CHECK_SERVER="required")
    procs = [
        subprocess.Popen([TUSK, "check", name], env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("clean.tsk", "broken.tsk") * 4
    ]
    codes = [proc.wait(timeout=60) for proc in procs]
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert codes == [0, 1] * 4


def test_ctrl_c_stops_the_check_the_server_runs(server: str, project: Path) -> None:
    env = _env(server, TUSK_CHECK_SERVER="required")
    # the check waits for standard input, which stays open: only the interrupt can end it
    proc = subprocess.Popen(
        [TUSK, "check", "-"], env=env, cwd=project, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server_pid = _server_pid(server)
    assert server_pid is not None
    assert _wait_for(lambda: bool(_children(server_pid)), 20), "the server forked no child for the check"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    assert _wait_for(lambda: not _children(server_pid), 20), "the check went on after Ctrl-C"
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.close()
    proc.stderr.close()


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def test_a_server_older_than_the_installed_code_hands_the_check_back(server: str, project: Path) -> None:
    old = _server_pid(server)
    module = Path(wire.__file__)
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        checked = _tusk(["check", "broken.tsk"], _env(server), project)
        here = _tusk(["check", "broken.tsk"], _env(server, TUSK_CHECK_SERVER="0"), project)
        assert (checked.returncode, checked.stdout, checked.stderr) == (here.returncode, here.stdout, here.stderr)
        assert _wait_for(lambda: _server_pid(server) not in {None, old}), "no new server replaced the stale one"
    finally:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert old is not None and (not Path(f"/proc/{old}").exists() or _zombie(old))


def test_required_without_a_server_is_a_usage_error(runtime: str, project: Path) -> None:
    result = _tusk(["check", "clean.tsk"], _env(runtime, TUSK_CHECK_SERVER="required"), project)
    assert result.returncode == 2
    assert "no warm check server answered" in result.stderr


@pytest.mark.parametrize("setting", [{"TUSK_CHECK_SERVER": "0"}, {"CI": "true"}])
def test_no_server_is_started_when_turned_off_or_under_ci(runtime: str, project: Path, setting: dict[str, str]) -> None:
    assert _tusk(["check", "clean.tsk"], _env(runtime, **setting), project).returncode == 0
    time.sleep(1.0)
    assert _server_pid(runtime) is None
    assert not any(Path(runtime).glob("tusklang/*.sock"))


def test_an_idle_server_exits_and_removes_its_socket(runtime: str, project: Path) -> None:
    _tusk(["check", "clean.tsk"], _env(runtime, TUSK_CHECK_SERVER_IDLE="1"), project)
    assert _wait_for(lambda: _socket_ready(runtime))
    assert _wait_for(lambda: not any(Path(runtime).glob("tusklang/*.sock")), 20)


def test_a_folder_other_users_can_enter_is_not_used(runtime: str, project: Path) -> None:
    folder = Path(runtime, "tusklang")
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    assert not wire.is_private(str(folder))
    result = _tusk(["check", "clean.tsk"], _env(runtime), project)
    assert result.returncode == 0
    time.sleep(1.0)
    assert _server_pid(runtime) is None  # nor does a server start there
    folder.chmod(0o700)
    assert wire.is_private(str(folder))


def test_a_server_that_does_not_answer_in_time_leaves_the_check_to_the_caller(server: str, project: Path) -> None:
    pid = _server_pid(server)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        # captured through pipes: the call returns only once every holder of their write ends is gone, so a
        # server that kept this process's descriptors would hold it here until SIGCONT
        checked = _tusk(["check", "broken.tsk"], _env(server), project)
        waited = time.monotonic() - start
    finally:
        os.kill(pid, signal.SIGCONT)
    here = _tusk(["check", "broken.tsk"], _env(server, TUSK_CHECK_SERVER="0"), project)
    assert (checked.returncode, checked.stdout, checked.stderr) == (here.returncode, here.stdout, here.stderr)
    assert wire.START_TIMEOUT <= waited < wire.START_TIMEOUT + 20
    # the server goes on, and the check it then forks for the gone caller runs nothing
    warm = _tusk(["check", "broken.tsk"], _env(server, TUSK_CHECK_SERVER="required"), project)
    assert (warm.returncode, warm.stdout, warm.stderr) == (here.returncode, here.stdout, here.stderr)


def test_checks_that_start_together_leave_one_server(runtime: str, project: Path) -> None:
    env = _env(runtime)
    procs = [
        subprocess.Popen([TUSK, "check", "clean.tsk"], env=env, cwd=project, stdout=subprocess.DEVNULL)
        for _ in range(4)
    ]
    assert [proc.wait(timeout=60) for proc in procs] == [0] * 4
    assert _wait_for(lambda: _socket_ready(runtime))
    time.sleep(2.0)  # the servers that lost the race for the lock have exited by now
    servers = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and runtime.encode() in _cmdline(pid) and b"tusklang.warm.server" in _cmdline(pid)
    ]
    assert servers == [str(_server_pid(runtime))]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
