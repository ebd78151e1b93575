"""Parser throughput of two source trees on the same documents: before and after a change.

Run: git worktree add /tmp/before <commit>
     python benchmarks/bench_parse_trees.py --before /tmp/before [--after .] [--flags 5000] [--rounds 9]

Each tree is imported in its own worker process (two versions of `tusklang` cannot share one); the
workers time `tusklang.parse` and `tusklang.loads` on the same text, one call at a time, alternating
between the trees (interleaved rounds, so load on the machine hits both alike). Prints the median of
each and the ratio after/before (above 1: the after tree is faster).

The documents hold only forms both trees read: the seed-style flags of benchmarks/generate.py (as
`tusk compile` projects are written) and the files of fixtures/valid, so a change that adds syntax is
measured on the documents that existed before it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import as_tusk, seed_style_flags  # noqa: E402

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import tusklang
texts = {}
for line in sys.stdin:
    request = json.loads(line)
    if "probe" in request:  # which of these texts this tree reads
        ok = []
        for text in request["probe"]:
            try:
                tusklang.loads(text)
                ok.append(True)
            except Exception:
                ok.append(False)
        print(json.dumps({"ok": ok}), flush=True)
        continue
    if "load" in request:
        texts[request["name"]] = open(request["load"], encoding="utf-8").read()
        print(json.dumps({"ok": tusklang.__file__}), flush=True)
        continue
    fn = tusklang.parse if request["fn"] == "parse" else tusklang.loads
    text = texts[request["name"]]
    start = time.perf_counter()
    for _ in range(request["repeat"]):
        fn(text)
    print(json.dumps({"seconds": (time.perf_counter() - start) / request["repeat"]}), flush=True)
"""


class Worker:
    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/",  # never import the tusklang of the directory we were started in
        )

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the worker for {self.tree} stopped")
        answer: dict[str, object] = json.loads(line)
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def documents(flags: int, scratch: Path, workers: list[Worker]) -> dict[str, tuple[Path, int]]:
    """name -> (file, size in bytes): the seed-style flags, and the fixtures/valid files both trees read."""
    scratch.mkdir(parents=True, exist_ok=True)
    seed = as_tusk(seed_style_flags(flags))
    out = {}
    path = scratch / "seed.tsk"
    path.write_text(seed, encoding="utf-8")
    out[f"seed-style flags ({flags})"] = (path, len(seed.encode()))
    # Each fixture is its own document (joined files would repeat keys); parsed together as one
    # text by wrapping each in a block of its own.
    fixtures = sorted((HERE.parent / "fixtures" / "valid").rglob("*.tsk"))
    candidates = []
    for fixture in fixtures:
        body = fixture.read_text(encoding="utf-8").lstrip("\ufeff")
        if any(line.startswith("[") for line in body.splitlines()):
            continue  # [section] headers cannot sit inside a block
        candidates.append(f" {{\n{body}\n}}\n")
    readable: list[list[bool]] = [
        worker.ask({"probe": ["doc" + block for block in candidates]})["ok"]  # type: ignore[misc]
        for worker in workers
    ]
    blocks = [block for index, block in enumerate(candidates) if all(ok[index] for ok in readable)]
    joined = "".join(f"doc_{copy}_{index}{block}" for copy in range(20) for index, block in enumerate(blocks))
    path = scratch / "fixtures.tsk"
    path.write_text(joined, encoding="utf-8")
    out[f"fixtures/valid blocks ({len(blocks)} x 20)"] = (path, len(joined.encode()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="root of the tree before the change")
    ap.add_argument("--after", type=Path, default=HERE.parent, help="root of the tree after it (default: this one)")
    ap.add_argument("--flags", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/bench_parse_trees"))
    args = ap.parse_args()

    workers = {"before": Worker(args.before.resolve()), "after": Worker(args.after.resolve())}
    try:
        docs = documents(args.flags, args.scratch, list(workers.values()))
        for worker in workers.values():
            for name, (path, _size) in docs.items():
                answer = worker.ask({"load": str(path), "name": name})
                if name == next(iter(docs)):
                    print(f"{worker.tree}: {answer['ok']}")
        # One untimed call each, then interleaved timed rounds.
        for name in docs:
            for fn in ("parse", "loads"):
                for worker in workers.values():
                    worker.ask({"name": name, "fn": fn, "repeat": 1})
        times: dict[tuple[str, str, str], list[float]] = {}
        for round_index in range(args.rounds):
            order = list(workers.items()) if round_index % 2 == 0 else list(reversed(workers.items()))
            for name in docs:
                for fn in ("parse", "loads"):
                    for label, worker in order:
                        seconds = worker.ask({"name": name, "fn": fn, "repeat": 1})["seconds"]
                        assert isinstance(seconds, float)
                        times.setdefault((name, fn, label), []).append(seconds)
    finally:
        for worker in workers.values():
            worker.close()

    print(f"median of {args.rounds} interleaved rounds; ratio = before / after time (above 1: after is faster)")
    header = f"{'document':36} {'call':6} {'before s':>9} {'after s':>9} {'MB/s before':>12} {'MB/s after':>11}"
    print(f"{header} {'ratio':>6}")
    for name, (_path, size) in docs.items():
        for fn in ("parse", "loads"):
            before = statistics.median(times[(name, fn, "before")])
            after = statistics.median(times[(name, fn, "after")])
            print(
                f"{name:36} {fn:6} {before:9.4f} {after:9.4f} {size / before / 1e6:12.2f} "
                f"{size / after / 1e6:11.2f} {before / after:6.2f}"
            )


if __name__ == "__main__":
    main()
