"""Start-up (issue 19): `tusk --help`, `import tusklang`, `tusk check` and `tusk compile` of a 20-line flag file,
whole process, next to `python -c pass` and `python -c 'import tomllib'` measured in the same run.

    python benchmarks/bench_startup.py [--rounds 15]

Each round runs every command once, in the same order (interleaved, so a busy neighbour slows all of
them alike); the figures are medians of wall time, and of CPU time (user + system, from wait4), which a
loaded machine inflates less. Goals: `tusk check` within 100 ms and `tusk --help`
within 60 ms.

What is measured is the program, not Python compiling it: the child processes run without
PYTHONDONTWRITEBYTECODE (a shell that exports it would have every run compile every module) and each
command runs once before the rounds, which writes the .pyc files, warms the page cache and fills the
grammar's table cache and `tusk check`'s findings cache (~/.cache/tusklang), as any first run does.
`tusk check (20 lines)` is then the same file checked again (its findings come from the cache, as for
the unchanged files of a pre-commit run); `tusk check (20 lines, edited)` changes one description
before each run, as an editor's check on save does, so its findings are never cached.

Those rows run the check in the `tusk` process (TUSK_CHECK_SERVER=0), as a first check does. The rows
marked "warm" are the same checks handed to the warm check server (tusklang/warm, docs/lint.md), which the
first check starts for the next ones: what an editor's or a pre-commit hook's later checks cost. The
server gets a private runtime folder and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 20 lines: two flags, one with variants and rules, as a file an editor checks on save.
FLAG_FILE = """\
feature_flags = {
    flags = {
        new_checkout = {
            enabled = true
            rollout_percentage = 25
            metadata = { owner = "payments", description = "the new checkout flow" }
        }
        checkout_layout = {
            variants = { compact = { rows = 50 }, roomy = { rows = 20 }, classic = { rows = 10 } }
            fallback = "classic"
            rules = [
                { id = "benelux", when = { attribute = "country", op = "in", values = ["NL", "BE"] },
                  serve = "compact" },
                { when = { attribute = "app_version", op = "semver_ge", value = "2.1.0" },
                  rollout = 25, serve = "roomy" },
            ]
            metadata = { owner = "web", description = "page density" }
        }
    }
}
"""


def _tusk() -> list[str]:
    """The console script users run (`tusk`), else `python -m tusklang.cli`."""
    script = Path(sys.executable).with_name("tusk")
    found = str(script) if script.exists() else shutil.which("tusk")
    return [found] if found else [sys.executable, "-m", "tusklang.cli"]


# Whatever the calling shell exports, the children write and use .pyc files; a check runs in its process.
ENV = {name: value for name, value in os.environ.items() if name not in {"PYTHONDONTWRITEBYTECODE", "CI"}}
ENV["TUSK_CHECK_SERVER"] = "0"


def _run(argv: list[str], env: dict[str, str] = ENV) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = 0  # reaped by wait4
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    tusk = _tusk()
    with tempfile.TemporaryDirectory() as tmp:
        flags = Path(tmp) / "flags.tsk"
        flags.write_text(FLAG_FILE, encoding="utf-8")
        edited = Path(tmp) / "edited.tsk"
        out = Path(tmp) / "flags.json"
        check = subprocess.run([*tusk, "check", str(flags)], capture_output=True, text=True, env=ENV)
        if check.returncode != 0:  # the file must be a clean flag project, or check stops early
            raise SystemExit(f"tusk check failed on the benchmark file:\n{check.stderr}")
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([py, "-c", "pass"], ENV),
            "python -c 'import tomllib'": ([py, "-c", "import tomllib"], ENV),
            "python -c 'import tusklang'": ([py, "-c", "import tusklang"], ENV),
            "tusk --help": ([*tusk, "--help"], ENV),
            "tusk check (20 lines)": ([*tusk, "check", str(flags)], ENV),
            "tusk check (20 lines, edited)": ([*tusk, "check", str(edited)], ENV),
            "tusk compile (20 lines)": ([*tusk, "compile", str(flags), "-o", str(out)], ENV),
        }
        warm = _start_warm_server(tusk, flags, tmp)
        if warm is not None:
            commands["tusk check (20 lines), warm"] = ([*tusk, "check", str(flags)], warm)
            commands["tusk check (edited), warm"] = ([*tusk, "check", str(edited)], warm)
        runs = 0

        def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
            nonlocal runs
            if argv[-1] == str(edited):  # a new description each run: text the findings cache has not seen
                runs += 1
                edited.write_text(FLAG_FILE.replace("page density", f"page density {runs}"), encoding="utf-8")
            return _run(argv, env)

        try:
            for argv, env in commands.values():  # .pyc files, the page cache, the grammar's and findings' caches
                run(argv, env)
            walls: dict[str, list[float]] = {name: [] for name in commands}
            cpus: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.rounds):
                for name, (argv, env) in commands.items():
                    seconds, used = run(argv, env)
                    walls[name].append(seconds)
                    cpus[name].append(used)
        finally:
            _stop_warm_server(tmp)
        if warm is None:
            print("(no warm check server started: a tree without tusklang/warm; warm rows left out)")
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    base = wall["python -c pass"]
    tomllib = wall["python -c 'import tomllib'"]
    load = os.getloadavg()[0]
    print(f"start-up, median of {args.rounds} interleaved rounds ({os.cpu_count()} CPUs, load average {load:.1f})")
    print("wall: the goal's measure; CPU (user + system): what a busy machine inflates least")
    print(f"{'command':31} {'wall ms':>8} {'CPU ms':>8} {'x pass':>7} {'x tomllib':>10} {'goal (wall)':>12}")
    goals = {
        "tusk --help": 0.060,
        "tusk check (20 lines)": 0.100,
        "tusk check (20 lines, edited)": 0.100,
        "tusk check (20 lines), warm": 0.100,
        "tusk check (edited), warm": 0.100,
    }
    for name, value in wall.items():
        goal = goals.get(name)
        mark = "" if goal is None else (f"{goal * 1000:.0f} ok" if value <= goal else f"{goal * 1000:.0f} MISS")
        print(
            f"{name:31} {value * 1000:8.1f} {cpu[name] * 1000:8.1f} {value / base:7.2f} {value / tomllib:10.2f} "
            f"{mark:>12}"
        )


def _start_warm_server(tusk: list[str], flags: Path, runtime: str) -> dict[str, str] | None:
    """The environment of checks the warm server must answer (TUSK_CHECK_SERVER=required), after a first
    check started the server in `runtime`; None when no server came up (a tree without one)."""
    env = {**ENV, "XDG_RUNTIME_DIR": runtime, "TUSK_CHECK_SERVER": "1"}
    subprocess.run([*tusk, "check", str(flags)], capture_output=True, env=env, check=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(Path(runtime, "tusklang").glob("check-*.sock")):
            return {**env, "TUSK_CHECK_SERVER": "required"}
        time.sleep(0.1)
    return None


def _stop_warm_server(runtime: str) -> None:
    for lock in Path(runtime, "tusklang").glob("check-*.sock.lock"):
        pid = lock.read_text().strip()
        if pid:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except (OSError, ValueError):
                pass


if __name__ == "__main__":
    main()
