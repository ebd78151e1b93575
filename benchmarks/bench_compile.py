"""Compile the 5,000-flag generated config end to end, stage by stage, next to tomllib on the same data.

    python benchmarks/bench_compile.py [--flags 5000] [--repeat 5]

Target: the whole compile within 3x of tomllib parsing the equivalent TOML.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generate import as_toml, as_tusk, seed_style_flags

from tusklang.compiler import compile_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flags", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = seed_style_flags(args.flags)
    tusk_text, toml_text = as_tusk(data), as_toml(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flags.tsk"
        path.write_text(tusk_text, encoding="utf-8")
        stages: dict[str, list[float]] = {}
        totals, toml_times = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = compile_files([str(path)])
            totals.append(time.perf_counter() - started)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            started = time.perf_counter()
            tomllib.loads(toml_text)
            toml_times.append(time.perf_counter() - started)
    assert len(result.snapshot["flags"]) == args.flags
    total, toml = statistics.median(totals), statistics.median(toml_times)
    print(f"{args.flags} flags, median of {args.repeat} runs")
    for stage, values in stages.items():
        print(f"  {stage:<9} {statistics.median(values) * 1000:8.1f} ms")
    print(f"  {'total':<9} {total * 1000:8.1f} ms  (compile_files end to end, incl. lint)")
    print(f"  tomllib   {toml * 1000:8.1f} ms  (parse only)")
    print(f"  ratio     {total / toml:8.2f}x  (target <= 3x)")


if __name__ == "__main__":
    main()
