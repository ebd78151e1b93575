"""Parser throughput on 5,000 seed-style flags next to tomllib (same data as TOML) and json.

Run: python benchmarks/bench_parse.py [--flags 5000] [--rounds 7] [--profile]
Prints MB/s per contender (median of interleaved rounds) and ratios against tomllib.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import as_json, as_toml, as_tusk, seed_style_flags

import tusklang


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flags", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of tusklang.parse")
    args = ap.parse_args()

    data = seed_style_flags(args.flags)
    tusk_text, toml_text, json_text = as_tusk(data), as_toml(data), as_json(data)
    assert tusklang.loads(tusk_text) == data == tomllib.loads(toml_text) == json.loads(json_text)

    contenders = {
        "tusklang.parse (AST+spans)": (lambda: tusklang.parse(tusk_text), len(tusk_text.encode())),
        "tusklang.loads": (lambda: tusklang.loads(tusk_text), len(tusk_text.encode())),
        "tomllib.loads": (lambda: tomllib.loads(toml_text), len(toml_text.encode())),
        "json.loads": (lambda: json.loads(json_text), len(json_text.encode())),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (fn, _size) in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["tomllib.loads"])
    base_rate = len(toml_text.encode()) / base / 1e6
    print(
        f"{args.flags} flags; TuskLang {len(tusk_text) / 1e6:.2f} MB, TOML {len(toml_text) / 1e6:.2f} MB, "
        f"JSON {len(json_text) / 1e6:.2f} MB; median of {args.rounds} interleaved rounds"
    )
    print(f"{'contender':30} {'median s':>9} {'MB/s':>7} {'throughput vs tomllib':>22}")
    for name, (_fn, size) in contenders.items():
        median = statistics.median(times[name])
        rate = size / median / 1e6
        print(f"{name:30} {median:9.3f} {rate:7.2f} {rate / base_rate:21.2f}x")

    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("tusklang.parse(tusk_text)", globals(), {"tusk_text": tusk_text}, "/tmp/tusk_parse.prof")
        pstats.Stats("/tmp/tusk_parse.prof").sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
