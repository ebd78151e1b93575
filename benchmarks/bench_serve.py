"""`tusk serve` against flagd's own evaluator behind Node, in requests per second per core.

Both servers serve the same flags: a generated project of ``--flags`` flags in the seed's style
(benchmarks/generate.py) is compiled twice, to a snapshot for ``tusk serve`` and with
``tusk compile --target flagd`` to a flagd document for benchmarks/flagd_core_server.js, a minimal
Node HTTP server over ``@openfeature/flagd-core`` (tests/flagd_js; ``npm ci --prefix tests/flagd_js``)
answering the same two OFREP routes. Each server is pinned to core 0 and the load client to core 1,
so the client is not what is measured and "per core" means what it says.

1. Check: a Python keep-alive client sends ``--check`` single-flag and bulk requests with distinct
   units to ``tusk serve``; every answer must equal the reference evaluator's (answers where flagd-core
   serves another value are counted and shown: an export difference, not a load problem); the server's
   access log must hold one line per request sent.
2. Load: wrk (Debian ``apt-get install wrk``; else the Python client, pinned the same way) with
   ``--connections`` keep-alive connections, a distinct unit per request, single-flag (a different flag
   each time) and bulk, ``--duration`` seconds each, in ``--rounds`` interleaved rounds (per mode, ours
   then flagd's in even rounds, flagd's then ours in odd ones), after an unmeasured warm-up of
   ``--warmup`` seconds per server and mode (V8 compiles its hot functions under load). Reported:
   medians of requests/s, p99 latency and server CPU ms per request, and the ratios ours / flagd's
   (requests/s: higher is better; p99: lower is better).

The access log stays on, as in production. ``--workers N`` runs ``tusk serve --workers N`` pinned to N
cores (the flagd server stays on one): the fleet-sizing figure. ``--redis URL`` layers a live override.

Run: ``python benchmarks/bench_serve.py [--rounds 3] [--duration 5] [--warmup 1] [--connections 32] [--flags 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import as_tusk, seed_style_flags  # noqa: E402

from tusklang.evaluate import Client  # noqa: E402

SHIM = ROOT / "benchmarks" / "flagd_core_server.js"
FLAGD_CORE = ROOT / "tests" / "flagd_js" / "node_modules" / "@openfeature" / "flagd-core"
SERVER_CORE, CLIENT_CORE = 0, 1
ENVIRONMENTS = ["production", "staging"]
REGIONS = ["us-east", "eu-west", "ap-south"]
SEGMENTS = ["early_adopters", "premium_users", "beta"]

# wrk builds each request in Lua: a distinct unit per request, attributes that reach the rules.
WRK_SCRIPT = """
local i = 0
local envs = {"production", "staging"}
local regions = {"us-east", "eu-west", "ap-south"}
local segments = {"early_adopters", "premium_users", "beta"}
local flags = %(flags)d
local bulk = %(bulk)s
local headers = {["Content-Type"] = "application/json"}
request = function()
  i = i + 1
  local body = string.format(
    '{"context":{"targetingKey":"wrk-%%d","user_id":"wrk-%%d","environment":"%%s","region":"%%s","segments":["%%s"]}}',
    i, i, envs[i %% 2 + 1], regions[i %% 3 + 1], segments[i %% 3 + 1])
  local path = "/ofrep/v1/evaluate/flags"
  if not bulk then path = string.format("%%s/flag_%%05d", path, i %% flags) end
  return wrk.format("POST", path, headers, body)
end
"""


def context(i: int) -> dict[str, Any]:
    """Distinct units with attributes that reach the flags' rules (not only defaults)."""
    return {
        "targetingKey": f"bench-{i}",
        "user_id": f"bench-{i}",
        "environment": ENVIRONMENTS[i % 2],
        "region": REGIONS[i % 3],
        "segments": [SEGMENTS[i % 3]],
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def pin(cores: set[int]) -> Callable[[], None]:
    usable = os.sched_getaffinity(0)
    chosen = (cores & usable) or usable

    def apply() -> None:
        os.sched_setaffinity(0, chosen)

    return apply


# --- the project ------------------------------------------------------------------------------------


def build_project(tmp: Path, count: int) -> tuple[Path, Path]:
    """The same ``count`` flags as a tusklang snapshot and as a flagd document."""
    source = tmp / "flags.tsk"
    source.write_text(as_tusk(seed_style_flags(count)), encoding="utf-8")
    snapshot, flagd = tmp / "snapshot.json", tmp / "flagd.json"
    for target, out in (("snapshot", snapshot), ("flagd", flagd)):
        done = subprocess.run(
            [sys.executable, "-m", "tusklang.cli", "compile", str(source), "-o", str(out), "--target", target],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if done.returncode != 0:
            raise SystemExit(f"tusk compile --target {target} failed:\n{done.stderr}")
    return snapshot, flagd


def server_cores(workers: int) -> set[int]:
    """Core 0 for one process; for N workers, N cores other than the client's when there are enough."""
    usable = sorted(os.sched_getaffinity(0))
    others = [core for core in usable if core != CLIENT_CORE]
    if workers == 1:
        return {SERVER_CORE} if SERVER_CORE in usable else {others[0] if others else usable[0]}
    if len(others) < workers:
        print(f"warning: {workers} workers on {len(usable)} cores share the client's core", file=sys.stderr)
        return set(usable)
    return set(others[:workers])


# --- the servers ------------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, command: list[str], port: int, cores: set[int], log: Path) -> None:
        self.name, self.port = name, port
        self.base = f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=out, cwd=ROOT, preexec_fn=pin(cores)
            )
        self.log = log
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited: {log.read_text()}")
            try:
                httpx.post(f"{self.base}/ofrep/v1/evaluate/flags/flag_00000", json={"context": {}}, timeout=0.5)
                return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{name} did not start within 30 s")
            time.sleep(0.05)

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server and its worker processes (Linux /proc; None elsewhere)."""
        pids = [self.proc.pid]
        with contextlib.suppress(OSError):
            pids += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the Python client (check phase, and load without wrk) -------------------------------------------


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams (httpx costs more CPU than the server)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + payload)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


def request_for(mode: str, i: int, flags: int) -> tuple[str, dict[str, Any]]:
    path = "/ofrep/v1/evaluate/flags" if mode == "bulk" else f"/ofrep/v1/evaluate/flags/flag_{i % flags:05d}"
    return path, context(i)


async def python_load(
    server: Server, mode: str, flags: int, connections: int, until: float | None, count: int | None, offset: int
) -> tuple[list[float], list[tuple[int, dict[str, Any], int, bytes]]]:
    """Latencies, and (i, context, status, body) of every answer; stops at ``until`` or after ``count``."""
    latencies: list[float] = []
    answers: list[tuple[int, dict[str, Any], int, bytes]] = []
    sent = 0

    async def worker() -> None:
        nonlocal sent
        raw = RawConnection("127.0.0.1", server.port)
        try:
            while (count is None or sent < count) and (until is None or time.perf_counter() < until):
                i = offset + sent
                sent += 1
                path, ctx = request_for(mode, i, flags)
                started = time.perf_counter()
                status, body = await raw.post(path, json.dumps({"context": ctx}).encode("utf-8"))
                latencies.append(time.perf_counter() - started)
                if count is not None:
                    answers.append((i, ctx, status, body))
        finally:
            await raw.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, answers


# --- check ------------------------------------------------------------------------------------------


def check(ours: Server, flagd: Server, local: Client, count: int, flags: int, failures: list[str]) -> int:
    """Every answer of ours equals the reference evaluator; flagd serves the same values. Requests sent."""
    sent = compared = 0
    disagree: list[str] = []
    for mode, n in (("single", count), ("bulk", max(1, count // 10))):
        _, answers = asyncio.run(python_load(ours, mode, flags, 8, None, n, 0))
        _, theirs = asyncio.run(python_load(flagd, mode, flags, 8, None, n, 0))
        sent += n
        baseline = {i: (status, body) for i, _, status, body in theirs}
        for i, ctx, status, body in answers:
            if status != 200:
                failures.append(f"{mode} #{i}: HTTP {status}")
                continue
            got = json.loads(body)
            mine = [got] if mode == "single" else got["flags"]
            for answer in mine:
                expected = local.evaluate(answer["key"], ctx)
                if (answer["value"], answer["variant"], answer["reason"]) != (
                    expected.value,
                    expected.variant,
                    expected.reason,
                ):
                    failures.append(f"{mode} #{i} {answer['key']}: {answer} != reference {expected}")
            other = json.loads(baseline[i][1])
            values = {a["key"]: a.get("value") for a in ([other] if mode == "single" else other["flags"])}
            for answer in mine:
                compared += 1
                if answer["key"] in values and values[answer["key"]] != answer["value"]:
                    disagree.append(f"{mode} #{i} {answer['key']}: flagd-core serves {values[answer['key']]!r}")
    if disagree:
        # Not a load problem: the flagd export and flagd-core disagree (tests/test_flagd_js.py's business).
        print(
            f"note: flagd-core serves another value in {len(disagree)} of {compared} answers, e.g. {disagree[0]}",
            file=sys.stderr,
        )
    return sent


def logged_requests(log: Path) -> int:
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("method") == "POST":
                count += 1
    return count


# --- load -------------------------------------------------------------------------------------------

_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _WRK_UNITS[unit]


def wrk_load(server: Server, mode: str, flags: int, connections: int, duration: float, tmp: Path) -> dict[str, float]:
    script = tmp / f"{mode}.lua"
    script.write_text(WRK_SCRIPT % {"flags": flags, "bulk": "true" if mode == "bulk" else "false"})
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(script)]
    done = subprocess.run(
        [*command, server.base], capture_output=True, text=True, preexec_fn=pin({CLIENT_CORE}), check=True
    )
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: "69.50%" in the thread statistics must not pass for the 50% percentile.
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": total,
        "requests_per_s": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": 1 if errors and re.search(r"[1-9]", errors.group(1)) else 0,
    }


def python_measure(server: Server, mode: str, flags: int, connections: int, duration: float) -> dict[str, float]:
    previous = os.sched_getaffinity(0)
    pin({CLIENT_CORE})()
    try:
        started = time.perf_counter()
        latencies, _ = asyncio.run(python_load(server, mode, flags, connections, started + duration, None, 10**9))
        elapsed = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, previous)
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "non_2xx": 0,
        "socket_errors": 0,
    }


def measure(server: Server, mode: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    cpu_before = server.cpu_seconds()
    if args.load_client == "wrk":
        result = wrk_load(server, mode, args.flags, args.connections, args.duration, tmp)
    else:
        result = python_measure(server, mode, args.flags, args.connections, args.duration)
    cpu_after = server.cpu_seconds()
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        result["cpu_ms_per_request"] = (cpu_after - cpu_before) * 1000 / result["requests"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds per server and mode before the rounds (default 1)"
    )
    parser.add_argument("--flags", type=int, default=100, help="flags in the generated snapshot (default 100)")
    parser.add_argument("--check", type=int, default=400, help="single-flag requests checked (default 400)")
    parser.add_argument("--workers", type=int, default=1, help="tusk serve --workers, on that many cores")
    parser.add_argument("--redis", default=None, metavar="URL", help="serve with a runtime override from this Redis")
    parser.add_argument(
        "--load-client",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator (default: wrk when installed)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if min(args.rounds, args.connections, args.flags, args.check, args.workers) < 1 or args.duration <= 0:
        parser.error("--rounds, --duration, --connections, --flags, --check and --workers must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if not FLAGD_CORE.is_dir():
        raise SystemExit("flagd-core is missing: npm ci --prefix tests/flagd_js")
    if len(os.sched_getaffinity(0)) < 2:
        print("warning: one usable core: server and client share it", file=sys.stderr)

    failures: list[str] = []
    prefix = f"tusk-bench-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        snapshot, flagd_doc = build_project(tmp, args.flags)
        overrides: dict[str, Any] | None = None
        command = [sys.executable, "-m", "tusklang.cli", "serve", str(snapshot)]
        if args.redis:
            overrides = write_override(args.redis, prefix, snapshot)
            command += ["--redis", args.redis, "--prefix", prefix]
        ours_cores = server_cores(args.workers)
        if args.workers > 1:
            command += ["--workers", str(args.workers)]
        ours_port, flagd_port = free_port(), free_port()
        ours = Server("tusk serve", [*command, "--port", str(ours_port)], ours_port, ours_cores, tmp / "ours.log")
        try:
            flagd = Server(
                "flagd-core",
                ["node", str(SHIM), str(flagd_doc), str(flagd_port)],
                flagd_port,
                {SERVER_CORE},
                tmp / "flagd.log",
            )
        except BaseException:
            ours.stop()
            raise
        local = Client.from_file(snapshot, overrides=overrides)
        results: dict[str, Any] = {
            "flags": args.flags,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "load_client": args.load_client,
            "workers": args.workers,
            "server_cores": sorted(ours_cores),
            "cpus": os.cpu_count(),
            "overrides": bool(args.redis),
            "modes": {},
        }
        try:
            sent = check(ours, flagd, local, args.check, args.flags, failures)
            rounds: dict[str, dict[str, list[dict[str, float]]]] = {
                m: {"ours": [], "flagd": []} for m in ("single", "bulk")
            }
            if args.warmup > 0:
                for mode in ("single", "bulk"):
                    for server in (ours, flagd):
                        got = measure(server, mode, argparse.Namespace(**{**vars(args), "duration": args.warmup}), tmp)
                        if server is ours:
                            sent += int(got["requests"])
            for index in range(args.rounds):
                for mode in ("single", "bulk"):
                    # Alternated, so neither server always runs right after the other's load.
                    order = (("ours", ours), ("flagd", flagd)) if index % 2 == 0 else (("flagd", flagd), ("ours", ours))
                    for name, server in order:
                        got = measure(server, mode, args, tmp)
                        rounds[mode][name].append(got)
                        if name == "ours":
                            sent += int(got["requests"])
                            if got["non_2xx"] or got["socket_errors"]:
                                failures.append(f"{mode}: {got['non_2xx']} non-2xx answers, socket errors")
        finally:
            ours.stop()
            flagd.stop()
        if args.load_client == "wrk":
            # wrk counts completed requests; the connections cut at the end may have sent one more each.
            logged = logged_requests(tmp / "ours.log")
            runs = (args.rounds + (1 if args.warmup > 0 else 0)) * 2
            if not sent <= logged <= sent + args.connections * runs:
                failures.append(f"sent {sent} requests, the access log holds {logged}")
        if args.redis:
            clear_override(args.redis, prefix)

    for mode, by_server in rounds.items():
        summary: dict[str, Any] = {}
        for name, runs in by_server.items():
            summary[name] = {
                key: round(statistics.median(run[key] for run in runs), 4)
                for key in ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")
                if all(key in run for run in runs)
            }
        o, f = summary["ours"], summary["flagd"]
        summary["ratio_requests_per_s"] = round(o["requests_per_s"] / f["requests_per_s"], 3)
        summary["ratio_p99"] = round(o["p99_ms"] / f["p99_ms"], 3)
        if "cpu_ms_per_request" in o and "cpu_ms_per_request" in f:
            # Requests per CPU-second: the per-core figure, steady even when other jobs share the machine.
            summary["ratio_per_cpu"] = round(f["cpu_ms_per_request"] / o["cpu_ms_per_request"], 3)
        results["modes"][mode] = summary

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures[:20]), file=sys.stderr)
        return 1
    return 0


def report(results: dict[str, Any]) -> None:
    print(
        f"{results['flags']} flags, {results['connections']} connections, {results['load_client']} on core "
        f"{CLIENT_CORE}, servers on core {SERVER_CORE}"
        + (
            f" (tusk serve: {results['workers']} workers on cores {results['server_cores']})"
            if results["workers"] > 1
            else ""
        )
        + f", median of {results['rounds']} interleaved rounds of {results['duration_s']:g} s"
    )
    print(f"{'mode':<8}{'server':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'req/CPU-s':>11}")
    for mode, summary in results["modes"].items():
        for name in ("ours", "flagd"):
            s = summary[name]
            cpu = s.get("cpu_ms_per_request")
            per_cpu = f"{1000 / cpu:>11.0f}" if cpu else f"{'-':>11}"
            label = "tusk serve" if name == "ours" else "flagd-core"
            print(
                f"{mode:<8}{label:<12}{s['requests_per_s']:>10.0f}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                f"{(cpu or 0):>12.3f}{per_cpu}"
            )
        print(
            f"{mode:<8}{'ours/flagd':<12}{summary['ratio_requests_per_s']:>9.2f}x{'':>9}{summary['ratio_p99']:>8.2f}x"
            f"{'':>12}{summary.get('ratio_per_cpu', float('nan')):>10.2f}x"
        )


def write_override(url: str, prefix: str, snapshot: Path) -> dict[str, Any]:
    from tusklang.cli import main as tusk
    from tusklang.overrides import OverrideStore

    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the results (--json)
        code = tusk(
            [
                *("flags", "set-rollout", "flag_00001", "60", "--snapshot", str(snapshot)),
                *("--redis", url, "--prefix", prefix, "--reason", "bench"),
            ]
        )
    if code != 0:
        raise SystemExit("could not write the override")
    store = OverrideStore.from_url(url, prefix)
    records = store.read().records
    store.close()
    return dict(records)


def clear_override(url: str, prefix: str) -> None:
    import redis

    conn = redis.Redis.from_url(url)
    keys = list(conn.scan_iter(f"{prefix}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
