"""Parse time on pathological shapes: 2,000 vs 20,000 lines must stay within 15x (linear is 10x).

Run: python benchmarks/bench_pathological.py [--small 2000] [--large 20000] [--rounds 3] [--only NAME]
Each shape's text goes through everything that reads a file: `tusklang.parse`, `tusk check`
(`check_text`) and `tusk fmt` (`format_text`). Prints the median time at each size and the ratio;
exits 1 if any ratio exceeds the bound. `key =` followed by n blank lines used to take 0.9 s at
2,000 lines and 96 s at 20,000 (each blank line looked ahead to the value); nested arrays in
`tusk fmt` took 2^depth steps. tests/test_parser_limits.py runs every shape here at smaller sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import tusklang
from tusklang.check import check_text
from tusklang.format import format_text

RATIO_BOUND = 15.0


def _errors(n: int) -> str:
    # Recovery reparses after each error (at most 20 of them): 20 errors spread over n lines.
    step = max(1, n // 20)
    return "".join("bad = = 1\n" if i % step == 0 else f"k{i} = {i}\n" for i in range(n))


# name -> text of about n lines
SHAPES: dict[str, Callable[[int], str]] = {
    "blank lines after `k =`": lambda n: "k =\n" + "\n" * n + "1\n",
    "blank lines after `k:`": lambda n: "k:\n" + "\n" * n + "1\n",
    "comment lines after `k =`": lambda n: "k =\n" + "# note\n" * n + "1\n",
    "comment lines after `k:`": lambda n: "k:\n" + "// note\n" * n + "1\n",
    "many `k =` each after blank lines": lambda n: "".join(f"k{i} =\n\n\n{i}\n" for i in range(n // 4)),
    "blank lines inside `[`": lambda n: "k = [\n" + "\n" * n + "1]\n",
    "blank lines after `,`": lambda n: "k = [" + "".join(f"{i},\n\n" for i in range(n // 2)) + "0]\n",
    "blank lines before `}`": lambda n: "k = {\na = 1\n" + "\n" * n + "}\n",
    "comments in a row": lambda n: "# c\n" * n + "a = 1\n",
    "block comment of n lines": lambda n: "/*\n" + "x\n" * n + "*/\na = 1\n",
    "one long line": lambda n: "k = [" + ", ".join(["1"] * (2 * n)) + "]\n",
    "one long string": lambda n: 'k = "' + "x" * (50 * n) + '"\n',
    "many sections": lambda n: "".join(f"[s{i}]\na = 1\n" for i in range(n // 2)),
    "blocks with comments": lambda n: "".join(f"k{i} = {{}} # c\n# between\n" for i in range(n // 2)),
    "arrays with comments": lambda n: "".join(f"k{i} = [1, # c\n2]\n" for i in range(n // 2)),
    "errors for recovery": _errors,
    "too deep `[`": lambda n: "k = " + "[" * (50 * n) + "]" * (50 * n) + "\n",
    "too deep `{` over n lines": lambda n: "".join(f"k{i} {{\n" for i in range(n)) + "}\n" * n,
    "too long `+` chain": lambda n: "k = " + " + ".join(["1"] * (10 * n)) + "\n",
    "deep but allowed, many times": lambda n: "".join(
        f"k{i} = " + "[" * 100 + "]" * 100 + "\n" for i in range(n // 20)
    ),
    # n definitions, then n unknown variables (2n lines): "did you mean" over every visible name took
    # 5 s at 2,000 and 545 s at 20,000 (tusk check runs the interpreter; suggestions are now bounded)
    "unknown variables, as many defined": lambda n: (
        "".join(f"$defined_name_{i} = {i}\n" for i in range(n))
        + "".join(f"key_{i} = $unknown_name_{i}\n" for i in range(n))
    ),
}


def run_all(text: str) -> None:
    """What a user's file meets: parse, `tusk check`, `tusk fmt` (errors are a result, too)."""
    try:
        tusklang.parse(text)
    except tusklang.TuskError:
        pass
    check_text(text)
    try:
        format_text(text)
    except tusklang.TuskError:
        pass


def median_time(text: str, rounds: int) -> float:
    run_all(text)  # warm up: the grammar tables, the regex caches
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        run_all(text)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--large", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="run the shapes whose name contains this")
    args = ap.parse_args()

    print(f"median of {args.rounds} runs of parse + check + fmt; bound {RATIO_BOUND:.0f}x")
    print(f"{'shape':38} {args.small:>7} lines {args.large:>7} lines {'ratio':>7}")
    failed = []
    for name, build in SHAPES.items():
        if args.only and args.only not in name:
            continue
        small = median_time(build(args.small), args.rounds)
        large = median_time(build(args.large), args.rounds)
        ratio = large / small if small > 0 else float("inf")
        flag = "" if ratio <= RATIO_BOUND else "  <-- superlinear"
        print(f"{name:38} {small:11.4f} s {large:11.4f} s {ratio:6.1f}x{flag}", flush=True)
        if ratio > RATIO_BOUND:
            failed.append(name)
    if failed:
        print("superlinear:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
