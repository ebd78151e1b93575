"""Compile the 5,000-flag generated config end to end, stage by stage, next to tomllib on the same data.

    python benchmarks/bench_compile.py [--flags 5000] [--repeat 5]

Target: the whole compile within 3x of tomllib parsing the equivalent TOML.
"""

from __future__ import annotations

import argparse
import gc
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
        totals, toml_times, toml_paused_times = [], [], []
        flag_count = 0
        for _ in range(args.repeat):
            # Each contender starts from a collected heap: a live 5,000-flag result makes every
            # collector pass of whatever runs next slower, which would flatter whoever runs first.
            gc.collect()
            started = time.perf_counter()
            result = compile_files([str(path)])
            totals.append(time.perf_counter() - started)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
            flag_count = len(result.snapshot["flags"])
            del result
            gc.collect()
            started = time.perf_counter()
            tomllib.loads(toml_text)
            toml_times.append(time.perf_counter() - started)
            gc.collect()
            # The stricter baseline: tomllib with the collector paused too, as compile_files pauses it.
            gc.disable()
            started = time.perf_counter()
            tomllib.loads(toml_text)
            toml_paused_times.append(time.perf_counter() - started)
            gc.enable()
    assert flag_count == args.flags
    total, toml = statistics.median(totals), statistics.median(toml_times)
    toml_paused = statistics.median(toml_paused_times)
    print(f"{args.flags} flags, median of {args.repeat} runs")
    for stage, values in stages.items():
        print(f"  {stage:<9} {statistics.median(values) * 1000:8.1f} ms")
    print(f"  {'total':<9} {total * 1000:8.1f} ms  (compile_files end to end, incl. lint)")
    print(f"  tomllib   {toml * 1000:8.1f} ms  (parse only)")
    print(f"  tomllib   {toml_paused * 1000:8.1f} ms  (parse only, collector paused)")
    print(f"  ratio     {total / toml:8.2f}x  (target <= 3x)")
    print(f"  ratio     {total / toml_paused:8.2f}x  (against tomllib with the collector paused)")


if __name__ == "__main__":
    main()
