"""Parser time and peak memory next to tomllib on the same data (issue 19), at 500, 5,000 and 50,000 flags.

Run: python benchmarks/bench_parse.py [--sizes 500,5000,50000] [--rounds 5] [--mem-rounds 3] [--profile]

Two data sets from generate.py: "easy" (the seed's shapes) and "rich" (plus an int array, an escaped
string and a multi-line string per flag). Time: `tusklang.parse` (AST with spans) and `tomllib.loads`
in the same process, interleaved rounds, each from a collected heap and with the collector paused
(parse pauses it itself; tomllib is given the same), medians of CPU time (process_time: on a shared
machine wall time measures the neighbours; both are single-threaded, so on an idle machine the two
agree); the ratio is ours / tomllib's (<= 1.0 is the goal).

Memory: each contender in its own subprocess reading the same data from a file, interleaved rounds,
medians of the process's peak RSS (VmHWM: interpreter, text and result) and of what the parse itself
allocated at its peak (tracemalloc, in a separate subprocess since tracing slows it down).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import as_toml, as_tusk, seed_style_flags

import tusklang

# Run in a fresh interpreter: read the file, then parse it and report the peak.
_MEASURE = r"""
import gc, json, sys
kind, path, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
text = open(path, encoding="utf-8").read()
if kind == "tusk":
    import tusklang
    parse = tusklang.parse
else:
    import tomllib
    parse = tomllib.loads
gc.collect()
if traced:
    import tracemalloc
    tracemalloc.start()
gc.disable()
result = parse(text)
if traced:
    print(json.dumps({"traced": tracemalloc.get_traced_memory()[1]}))
else:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"rss": int(hwm.split()[1]) * 1024}))
"""


def _timed(fn: Callable[[str], object], text: str) -> float:
    gc.collect()
    gc.disable()  # tomllib gets what parse does to itself (tusklang._gc)
    try:
        start = time.process_time()
        fn(text)
        return time.process_time() - start
    finally:
        gc.enable()


def _measure(kind: str, path: Path, traced: bool) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, kind, str(path), "1" if traced else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(next(iter(json.loads(out).values())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="500,5000,50000")
    ap.add_argument("--data", default="easy,rich", help="which data sets: easy, rich or both")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (at 50,000 flags: at most 3)")
    ap.add_argument("--mem-rounds", type=int, default=3, help="subprocess rounds per memory measure (0: skip)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of tusklang.parse (5,000 flags)")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for data_name in args.data.split(","):
                data = seed_style_flags(size, rich=data_name == "rich")
                tusk_text, toml_text = as_tusk(data), as_toml(data)
                assert tusklang.loads(tusk_text) == data == tomllib.loads(toml_text)
                del data
                tusk_path, toml_path = Path(tmp) / "flags.tsk", Path(tmp) / "flags.toml"
                tusk_path.write_text(tusk_text, encoding="utf-8")
                toml_path.write_text(toml_text, encoding="utf-8")
                rounds = min(args.rounds, 3) if size >= 50000 else args.rounds
                ours, base = [], []
                for _ in range(rounds):
                    ours.append(_timed(tusklang.parse, tusk_text))
                    base.append(_timed(tomllib.loads, toml_text))
                mem: dict[str, list[int]] = {"tusk rss": [], "toml rss": [], "tusk traced": [], "toml traced": []}
                for _ in range(args.mem_rounds):
                    for traced in (False, True):
                        what = "traced" if traced else "rss"
                        mem[f"tusk {what}"].append(_measure("tusk", tusk_path, traced))
                        mem[f"toml {what}"].append(_measure("toml", toml_path, traced))
                med = {k: statistics.median(v) if v else float("nan") for k, v in mem.items()}
                t_ours, t_base = statistics.median(ours), statistics.median(base)
                rows.append(
                    (
                        size,
                        data_name,
                        len(tusk_text) / 1e6,
                        len(toml_text) / 1e6,
                        t_ours,
                        t_base,
                        med["tusk rss"],
                        med["toml rss"],
                        med["tusk traced"],
                        med["toml traced"],
                    )
                )
                print(
                    f"{size:>6} {data_name:5}  parse {t_ours:7.3f} s  tomllib {t_base:7.3f} s"
                    f"  time {t_ours / t_base:5.2f}x"
                    f"  | peak RSS {med['tusk rss'] / 1e6:7.1f} / {med['toml rss'] / 1e6:7.1f} MB"
                    f" = {med['tusk rss'] / med['toml rss']:4.2f}x"
                    f"  | allocated {med['tusk traced'] / 1e6:7.1f} / {med['toml traced'] / 1e6:7.1f} MB"
                    f" = {med['tusk traced'] / med['toml traced']:4.2f}x",
                    flush=True,
                )

    print()
    print(f"tusklang.parse vs tomllib.loads, same data; medians of interleaved rounds (time {args.rounds}, memory")
    print(f"{args.mem_rounds}); goal: time <= 1.0x, peak memory <= 1.5x")
    print("| flags | data | TuskLang MB | TOML MB | time ratio | peak RSS ratio | allocated ratio |")
    print("|---|---|---|---|---|---|---|")
    for size, name, tmb, omb, t_ours, t_base, rss, rss_base, traced, traced_base in rows:
        print(
            f"| {size:,} | {name} | {tmb:.2f} | {omb:.2f} | {t_ours / t_base:.2f}x ({t_ours:.3f} / {t_base:.3f} s)"
            f" | {rss / rss_base:.2f}x ({rss / 1e6:.0f} / {rss_base / 1e6:.0f} MB)"
            f" | {traced / traced_base:.2f}x ({traced / 1e6:.0f} / {traced_base / 1e6:.0f} MB) |"
        )

    if args.profile:
        import cProfile
        import pstats

        text = as_tusk(seed_style_flags(5000, rich=True))
        cProfile.runctx("tusklang.parse(text)", globals(), {"text": text}, "/tmp/tusk_parse.prof")
        pstats.Stats("/tmp/tusk_parse.prof").sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
