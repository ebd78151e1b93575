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
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            *("--single", "60", "--bulk", "20", "--concurrency", "4"),
            "--redis",
            redis_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["overrides"] is True
    for mode, count in (("single", 60), ("bulk", 20)):
        result = report["modes"][mode]
        assert (result["requests"], result["answered"], result["served"], result["errors"]) == (count, count, count, 0)
        assert result["requests_per_s"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
