"""The serve load benchmark still runs and still checks what it claims (tiny counts, with overrides)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_serve.py"


@pytest.mark.redis
def test_bench_serve_runs_clean_with_overrides(redis_url: str) -> None:
    """Tiny counts: the benchmark's own check (every answer of `tusk serve`, override applied, equals the
    reference evaluator's; exit 1 otherwise) passes, and both servers are measured."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            *("--rounds", "1", "--duration", "0.5", "--connections", "2", "--flags", "10", "--check", "40"),
            *("--load-client", "python", "--redis", redis_url, "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["overrides"] is True and report["flags"] == 10
    for mode in ("single", "bulk"):
        for server in ("ours", "flagd"):
            result = report["modes"][mode][server]
            assert result["requests_per_s"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
