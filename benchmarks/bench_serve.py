"""Load on `tusk serve`: single-flag and bulk OFREP evaluations from several concurrent clients.

A bounded run on loopback: `tusk serve` (real uvicorn, its own process, access log on as in
production) serves the seed snapshot; ``--concurrency`` asyncio workers, each on its own keep-alive
connection (a minimal HTTP/1.1 client, or with ``--client httpx`` one shared ``AsyncClient``), send
exactly ``--single`` single-flag requests, then ``--bulk`` bulk requests, each for a distinct unit.
Every answer is checked against the reference evaluator in this process (a wrong or failed answer is
an error), and the server's access log must hold exactly one line per request sent (no request lost).
Reports requests/s, p50/p90/p99 latency and the server's CPU time per request (Linux) per mode;
exits 1 on any error.

With ``--redis URL`` the server also layers runtime overrides (an override is written first, so the
overlay is live during the run).

Run: ``python benchmarks/bench_serve.py [--single 4000] [--bulk 1000] [--concurrency 16] [--redis URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tusklang.evaluate import Client  # noqa: E402

SEED = ROOT / "fixtures" / "seed" / "snapshot.json"
FLAGS = ["new_checkout_flow", "ai_recommendations", "checkout_express", "search_v2", "dark_mode"]
TIERS = ["free", "premium", "enterprise"]


def context(i: int) -> dict[str, Any]:
    """Distinct units with attributes that reach the flags' rules (not only defaults)."""
    return {
        "user_id": f"bench-{i}",
        "environment": ["production", "staging"][i % 2],
        "region": ["us-east", "eu-west", "ap-south"][i % 3],
        "account_tier": TIERS[i % 3],
        "plan": TIERS[(i // 3) % 3],
        "platform": ["web", "android", "ios"][i % 3],
        "sessions": i % 20,
        "purchases": i % 4,
        "account_age": i % 60,
        "feature_usage": i % 10,
        "feedback_score": (i % 5) + 0.5,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams.

    httpx spends 1-2 ms of CPU per request, three times what the server spends, so on a small machine
    a benchmark through it measures httpx. This client costs tens of microseconds (``--client httpx``
    still runs the same load through httpx).
    """

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
            await self.writer.wait_closed()


async def run_mode(
    base: str, mode: str, count: int, concurrency: int, local: Client, offset: int, client: str = "raw"
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    host, port = base.removeprefix("http://").split(":")

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def worker() -> None:
            nonlocal next_index
            raw = RawConnection(host, int(port))
            try:
                while next_index < count:
                    i = offset + next_index
                    next_index += 1
                    await one(i, raw)
            finally:
                await raw.close()

        async def one(i: int, raw: RawConnection) -> None:
            ctx = context(i)
            path = (
                f"/ofrep/v1/evaluate/flags/{FLAGS[i % len(FLAGS)]}" if mode == "single" else "/ofrep/v1/evaluate/flags"
            )
            payload = json.dumps({"context": ctx}).encode("utf-8")
            started = time.perf_counter()
            try:
                if client == "raw":
                    status, content = await asyncio.wait_for(raw.post(path, payload), 30)
                else:
                    response = await http.post(path, content=payload, headers={"content-type": "application/json"})
                    status, content = response.status_code, response.content
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                errors.append(f"{mode} #{i}: {type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{mode} #{i}: HTTP {status}")
                return
            check(i, ctx, json.loads(content))

        def check(i: int, ctx: dict[str, Any], body: Any) -> None:
            answers = [body] if mode == "single" else body["flags"]
            if mode == "bulk" and len(answers) != len(local.snapshot.flags) + len(local.snapshot.experiments):
                errors.append(f"bulk #{i}: {len(answers)} flags")
            for answer in answers:
                expected = local.evaluate(answer["key"], ctx)
                got = (answer.get("value"), answer.get("variant"), answer.get("reason"))
                if got != (expected.value, expected.variant, expected.reason):
                    errors.append(f"{mode} #{i} {answer['key']}: {got} != reference")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def start_server(snapshot: Path, log_path: Path, redis_url: str | None, prefix: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "tusklang.cli", "serve", str(snapshot), "--port", str(port)]
    if redis_url:
        command += ["--redis", redis_url, "--prefix", prefix]
    log = log_path.open("w")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"tusk serve exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("tusk serve did not start within 30 s")
        time.sleep(0.05)


def server_cpu(pid: int) -> float | None:
    """User + system CPU seconds of the server process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def served_requests(log_path: Path) -> dict[str, int]:
    counts = {"single": 0, "bulk": 0}
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("method") != "POST":
            continue
        path = entry.get("path", "")
        if path == "/ofrep/v1/evaluate/flags":
            counts["bulk"] += 1
        elif path.startswith("/ofrep/v1/evaluate/flags/"):
            counts["single"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=4000, help="single-flag requests (default 4000)")
    parser.add_argument("--bulk", type=int, default=1000, help="bulk requests (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--redis", default=None, metavar="URL", help="serve with runtime overrides from this Redis")
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="HTTP client (default raw: a minimal asyncio one)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.single < 1 or args.bulk < 1 or args.concurrency < 1:
        parser.error("--single, --bulk and --concurrency must be positive")

    prefix = f"tusk-bench-{uuid.uuid4().hex[:8]}:"
    overrides: dict[str, Any] | None = None
    if args.redis:
        from tusklang.cli import main as tusk

        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the results (--json)
            code = tusk(
                [
                    *("flags", "set-rollout", "new_checkout_flow", "60", "--snapshot", str(SEED)),
                    *("--redis", args.redis, "--prefix", prefix, "--reason", "bench"),
                ]
            )
        if code != 0:
            return 2
        from tusklang.overrides import OverrideStore

        store = OverrideStore.from_url(args.redis, prefix)
        overrides = store.read().records
        store.close()
    local = Client.from_file(SEED, overrides=overrides)

    results: dict[str, Any] = {
        "concurrency": args.concurrency,
        "client": args.client,
        "cpus": os.cpu_count(),
        "overrides": bool(args.redis),
        "modes": {},
    }
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "access.log"
        proc, base = start_server(SEED, log_path, args.redis, prefix)
        try:
            offset = 0
            for mode, count in (("single", args.single), ("bulk", args.bulk)):
                cpu_before = server_cpu(proc.pid)
                latencies, errors, elapsed = asyncio.run(
                    run_mode(base, mode, count, args.concurrency, local, offset, args.client)
                )
                cpu_after = server_cpu(proc.pid)
                offset += count
                latencies.sort()
                results["modes"][mode] = {
                    "requests": count,
                    "answered": len(latencies),
                    "errors": len(errors),
                    "seconds": round(elapsed, 3),
                    "requests_per_s": round(len(latencies) / elapsed, 1),
                    "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
                    "p90_ms": round(percentile(latencies, 0.90) * 1000, 3),
                    "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
                    "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if latencies else None,
                    "server_cpu_ms_per_request": (
                        round((cpu_after - cpu_before) * 1000 / count, 3)
                        if cpu_before is not None and cpu_after is not None
                        else None
                    ),
                }
                failures += errors[:5]
                if len(latencies) != count:
                    failures.append(f"{mode}: {count - len(latencies)} requests got no answer")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        served = served_requests(log_path)
        for mode, count in (("single", args.single), ("bulk", args.bulk)):
            results["modes"][mode]["served"] = served[mode]
            if served[mode] != count:
                failures.append(f"{mode}: sent {count}, server logged {served[mode]}")
    if args.redis:
        import redis

        conn = redis.Redis.from_url(args.redis)
        keys = list(conn.scan_iter(f"{prefix}*"))
        if keys:
            conn.delete(*keys)
        conn.close()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"tusk serve on loopback, {args.concurrency} concurrent {args.client} clients, {os.cpu_count()} CPUs"
            + (", with Redis overrides" if args.redis else "")
        )
        header = ("mode", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "server CPU ms/req")
        print(f"{header[0]:<8}" + "".join(f"{h:>10}" for h in header[1:6]) + f"{header[6]:>8}{header[7]:>19}")
        for mode, r in results["modes"].items():
            print(
                f"{mode:<8}{r['requests']:>10}{r['requests_per_s']:>10}{r['p50_ms']:>10}{r['p90_ms']:>10}"
                f"{r['p99_ms']:>10}{r['errors']:>8}{r['server_cpu_ms_per_request']!s:>19}"
            )
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
