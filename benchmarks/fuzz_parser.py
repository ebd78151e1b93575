"""Fuzz everything that reads TuskLang text: every input gives a result or a TuskError, nothing else.

Run: python benchmarks/fuzz_parser.py [--count 20000] [--seed 13] [--out crashes.json]

Inputs (a fixed share of each, from one seeded generator, so a run can be repeated exactly):
  * mutations of fixtures/valid/**/*.tsk and fixtures/seed/*.tsk: spans deleted, duplicated, swapped,
    characters replaced, TuskLang pieces inserted;
  * truncations of the same files (a prefix, a suffix, a middle);
  * token soup: TuskLang's own pieces (brackets, operators, directives, strings, numbers) joined;
  * nesting: every bracket kind (`{`, `[`, `(`, `@name(`, angle blocks, `${`), dotted keys, section
    headers and every operator (`+ && || == != < <= > >= !`, `? :`), repeated to depths up to
    100,000, closed, unclosed or cut, alone or inside a mutated fixture;
  * odd text: huge numbers in every base and in ranges, NUL, lone CR, BOM, lone surrogates.
  * variables: nesting built through variables (`$v1 = [$v0]`, ...), and values that double.
Each input goes through `tusklang.parse`, `tusklang.loads`, `tusklang.dumps(loads(x))` and back,
the JSON of `tusk parse --format json`, `tusklang.check.check_text` (what `tusk check` runs) and
`tusklang.format.format_text` (`tusk fmt`, twice).
An exception other than TuskError (RecursionError, ValueError, ...) or a call taking more than
--timeout seconds is a crash: each distinct one is printed with the shortest input that showed it
and, with --out, all are written as JSON. Exits 1 when there was a crash.
tests/test_fuzz.py runs a smaller seeded share of the same generator.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tusklang
from tusklang.check import check_text
from tusklang.format import format_text
from tusklang.values import to_jsonable

ROOT = Path(__file__).resolve().parent.parent
MAX_NEST = 100_000

PIECES = [
    "a", "b_1", "k-2", '"s"', "'q'", '"""t"""', '"${v}"', '"\\u00e9"', "=", ":", "{", "}", "[", "]", "(", ")",
    ",", "\n", "\r\n", " ", "\t", "1", "-2", "3.5", "1e3", "0x1F", "0o17", "0b101", "1_000", "8000-9000",
    "true", "false", "null", "$v", "$v = ", "@env", "@env(X)", "@query(", "@date(", "@file(", "@x.y(",
    ">", "<", "&&", "||", "!", "==", "!=", "<=", ">=", "+", "?", "#c\n", "//c\n", "/*c*/", "/*", "[s]",
    "[a.b]", ".", "\\", "-", "- ", "é", "😀", "\x00", "\r", "\ufeff", "\ud800",
]  # fmt: skip

OPENERS = ["{", "k = {", "k {", "[", "(", "@f(", "@env(", "k >\n", '"${', "a.", "[s.", "k = "]
CLOSERS = {"{": "}", "k = {": "}", "k {": "}", "[": "]", "(": ")", "@f(": ")", "@env(": ")", "k >\n": "<\n"}
OPERATORS = ["+ 1 ", "&& true ", "|| false ", "== 1 ", "!= 2 ", "< 3 ", "<= 3 ", "> 0 ", ">= 0 ", "? 1 : "]


def corpus() -> list[str]:
    files = sorted((ROOT / "fixtures" / "valid").rglob("*.tsk")) + sorted((ROOT / "fixtures" / "seed").glob("*.tsk"))
    return [path.read_text(encoding="utf-8") for path in files]


# --- generators: each takes the random source and the corpus, returns one input ---------------------

Generator = Callable[[random.Random, list[str]], str]


def mutation(rng: random.Random, texts: list[str]) -> str:
    text = rng.choice(texts)
    for _ in range(rng.randint(1, 6)):
        n = len(text)
        i, j = sorted((rng.randint(0, n), rng.randint(0, n)))
        j = min(j, i + rng.randint(0, 40))
        choice = rng.randrange(6)
        if choice == 0:
            text = text[:i] + text[j:]  # delete
        elif choice == 1:
            text = text[:j] + text[i:j] + text[j:]  # duplicate
        elif choice == 2:
            text = text[:i] + rng.choice(PIECES) + text[i:]  # insert a piece
        elif choice == 3 and n:
            text = text[:i] + chr(rng.choice([rng.randint(0, 127), rng.randint(128, 0x2FFF)])) + text[i + 1 :]
        elif choice == 4:
            k = rng.randint(0, n)
            text = text[:i] + text[k : k + (j - i)] + text[j:]  # overwrite with another span
        else:
            text = text[:i] + nesting(rng, texts, max_depth=rng.choice([50, 200, 2000])) + text[i:]
    return text


def truncation(rng: random.Random, texts: list[str]) -> str:
    text = rng.choice(texts)
    i = rng.randint(0, len(text))
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i]
    if kind == 1:
        return text[i:]
    return text[:i] + text[rng.randint(i, len(text)) :]


def soup(rng: random.Random, texts: list[str]) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60)))


def nesting(rng: random.Random, texts: list[str], max_depth: int = MAX_NEST) -> str:
    depth = rng.choice([1, 2, 127, 128, 129, 500, 1000, 5000, max_depth]) if max_depth >= 129 else max_depth
    depth = min(depth, max_depth)
    kind = rng.randrange(5)
    if kind == 0:  # one bracket kind (or key part), closed, unclosed, or cut
        opener = rng.choice(OPENERS)
        closer = CLOSERS.get(opener, "")
        body = opener * depth + rng.choice(["1", "", "x = 1\n", '"s"']) + closer * rng.choice([depth, depth // 2, 0])
        return "k = " + body if opener in ("[", "(", "@f(", "@env(", '"${') else body
    if kind == 1:  # one operator, repeated
        op = rng.choice([*OPERATORS, "!", "! "])
        if op.startswith("!"):
            return "k = " + op * depth + "true\n"
        return "k = 1 " + op * depth + "1\n"
    if kind == 2:  # brackets of mixed kinds, balanced
        stack: list[str] = []
        out = ["k = "]
        for _ in range(depth):
            opener = rng.choice(["[", "(", "@f(", "{ k = "])
            out.append(opener)
            stack.append({"[": "]", "(": ")", "@f(": ")", "{ k = ": " }"}[opener])
        out.append("1")
        out.extend(reversed(stack))
        return "".join(out)
    if kind == 3:  # brackets and operators interleaved
        unit = rng.choice(["(1 + ", "[!", "(true && ", "{ k = 1 + ", "@f(1 == "])
        closer = {"(1 + ": ")", "[!": "]", "(true && ": ")", "{ k = 1 + ": "}", "@f(1 == ": ")"}[unit]
        return "k = " + unit * depth + "1" + closer * depth + "\n"
    # dotted keys and section headers with many parts
    parts = ".".join(["p"] * depth)
    return rng.choice([f"{parts} = 1\n", f"[{parts}]\nx = 1\n", f"k {{ {parts} = {{}} }}\n"])


def odd_text(rng: random.Random, texts: list[str]) -> str:
    digits = "9" * rng.choice([4000, 4001, 4300, 5000, 100_000])
    value = rng.choice(
        [
            digits,
            "-" + digits,
            "0x" + "f" * len(digits),
            "0o" + "7" * len(digits),
            "0b" + "1" * len(digits),
            "1-" + digits,
            digits + "-1",
            digits + ".5",
            "1e" + digits,
            "1e-" + digits,
            '"\\ud800"',
            '"\\U0010FFFF"',
            '"\\U00110000"',
            '"\x00"',
            '"\ud83d"',
            '"a\rb"',
        ]
    )
    text = f"k = {value}\n"
    return rng.choice([text, "\ufeff" + text, text.replace("\n", "\r"), text.replace("\n", "\r\n"), "x\x00 = 1\n"])


def variables(rng: random.Random, texts: list[str]) -> str:
    """Values built through variables: nesting the parser cannot see, and values that double in size.

    Doubling stays small (2^14): its growth is what to look at (see the report), not the machine's memory.
    """
    kind = rng.randrange(4)
    if kind == 0:  # nesting through variables, as deep as the nesting generator goes
        n = rng.choice([10, 127, 128, 129, 1000, 3000])
        wrap = rng.choice(["[$v{}]", "{{ k = $v{} }}", "@f($v{})", "[[$v{}]]"])
        lines = ["$v0 = 1"] + [f"$v{i} = " + wrap.format(i - 1) for i in range(1, n)]
        return "\n".join([*lines, f"out = $v{n - 1}"]) + "\n"
    n = rng.randint(1, 14)
    step = rng.choice(['"${{v{0}}}${{v{0}}}"', "$v{0} + $v{0}", "[$v{0}, $v{0}]"])
    first = rng.choice(['"ab"', "[1, 2]", "1"])
    lines = [f"$v0 = {first}"] + [f"$v{i} = " + step.format(i - 1) for i in range(1, n)]
    return "\n".join([*lines, f"out = $v{n - 1}"]) + "\n"


GENERATORS: list[tuple[Generator, int]] = [
    (mutation, 42),
    (truncation, 14),
    (soup, 20),
    (nesting, 12),
    (odd_text, 7),
    (variables, 5),
]


def inputs(count: int, seed: int, generators: list[tuple[Generator, int]] | None = None) -> Iterator[str]:
    rng = random.Random(seed)
    texts = corpus()
    makers = [make for make, weight in (generators or GENERATORS) for _ in range(weight)]
    for _ in range(count):
        yield rng.choice(makers)(rng, texts)


# --- what each input goes through -----------------------------------------------------------------


def _round_trip(text: str) -> None:
    data = tusklang.loads(text)
    written = tusklang.dumps(data)
    tusklang.loads(written)


def _as_json(text: str) -> None:
    json.dumps(to_jsonable(tusklang.loads(text)))


def _format_twice(text: str) -> None:
    formatted = format_text(text)
    format_text(formatted)


CALLS: dict[str, Callable[[str], Any]] = {
    "parse": tusklang.parse,
    "loads": tusklang.loads,
    "dumps(loads)": _round_trip,
    "tusk parse --format json": _as_json,
    "check_text": check_text,
    "format_text": _format_twice,
}


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def run_one(text: str, timeout: float) -> list[dict[str, Any]]:
    """The crashes of one input: one record per call that raised something other than TuskError."""
    crashes = []
    for name, call in CALLS.items():
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            call(text)
        except tusklang.TuskError as exc:
            exc.render()  # rendering must not fail either
        except _Timeout:
            crashes.append({"call": name, "error": f"took more than {timeout} s", "where": "", "input": text})
        except Exception as exc:  # the point: anything else is a finding
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            crashes.append(
                {
                    "call": name,
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                    "where": f"{Path(frame.filename).name}:{frame.lineno} ({frame.name})",
                    "input": text,
                }
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return crashes


def fuzz(
    count: int, seed: int, timeout: float = 10.0, generators: list[tuple[Generator, int]] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``count`` inputs; returns (inputs run, crashes)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    crashes: list[dict[str, Any]] = []
    done = 0
    try:
        for text in inputs(count, seed, generators):
            crashes.extend(run_one(text, timeout))
            done += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    return done, crashes


def distinct(crashes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One crash per (call, exception type, place), with the shortest input that showed it."""
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    for crash in crashes:
        key = (crash["call"], crash["error"].split(":")[0], crash["where"])
        if key not in best or len(crash["input"]) < len(best[key]["input"]):
            best[key] = crash
    return list(best.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds one call may take")
    ap.add_argument("--out", type=Path, help="write every crash (with its input) here as JSON")
    args = ap.parse_args()

    sys.setrecursionlimit(1000)  # the default: what users get
    start = time.perf_counter()
    done, crashes = fuzz(args.count, args.seed, args.timeout)
    elapsed = time.perf_counter() - start
    found = distinct(crashes)
    print(f"{done} inputs x {len(CALLS)} calls in {elapsed:.1f} s (seed {args.seed}): {len(crashes)} crashes")
    for crash in found:
        shown = crash["input"] if len(crash["input"]) <= 300 else crash["input"][:300] + f"... ({len(crash['input'])})"
        print(f"- {crash['call']}: {crash['error']} at {crash['where']}\n  input: {shown!r}")
    if args.out:
        args.out.write_text(json.dumps(crashes, indent=1), encoding="utf-8")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
