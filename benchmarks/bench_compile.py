"""`tusk compile`, whole process, next to a `python -c 'import tomllib; tomllib.loads(...)'` process on the
same data (issue 19: within 2x in time and peak memory at 5,000 and 50,000 flags).

    python benchmarks/bench_compile.py [--sizes 5000,50000] [--data easy,rich] [--rounds 5] [--stages]

Each round runs both processes, interleaved, under /usr/bin/time: its %M is the process's peak RSS
(a Python parent would hand its own peak down to the child through fork and exec), and the time is
the process's CPU time (user + system), start-up included: on a shared machine wall time measures the
neighbours (both processes are single-threaded, so on an idle machine the two agree). Medians.
``--stages`` also prints compile_files' own stage timings (CPU seconds, in process, 5,000 flags).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import as_toml, as_tusk, seed_style_flags

TOMLLIB = "import sys, tomllib; tomllib.loads(open(sys.argv[1], encoding='utf-8').read())"


def _run(argv: list[str], tmp: Path) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of one process."""
    report = tmp / "time.out"
    subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", "-o", str(report), *argv],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    user, system, peak_kb = report.read_text().split()[-3:]
    return float(user) + float(system), int(peak_kb) * 1024


def _stages(tmp: Path, flags: int) -> None:
    from tusklang.compiler import compile_files

    path = tmp / "stages.tsk"
    path.write_text(as_tusk(seed_style_flags(flags)), encoding="utf-8")
    stages: dict[str, list[float]] = {}
    for _ in range(3):
        gc.collect()
        result = compile_files([str(path)])
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(seconds)
        del result
    print(f"compile_files stages (CPU), {flags} flags, median of 3:")
    for stage, values in stages.items():
        print(f"  {stage:<9} {statistics.median(values) * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,50000")
    ap.add_argument("--data", default="easy,rich")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (at 50,000 flags: at most 3)")
    ap.add_argument("--stages", action="store_true")
    args = ap.parse_args()
    tusk = shutil.which("tusk", path=str(Path(sys.executable).parent)) or shutil.which("tusk")
    assert tusk is not None, "the tusk command is not installed"
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.stages:
            _stages(tmp, 5000)
        for size in (int(s) for s in args.sizes.split(",")):
            for data_name in args.data.split(","):
                data = seed_style_flags(size, rich=data_name == "rich")
                (tmp / "flags.tsk").write_text(as_tusk(data), encoding="utf-8")
                (tmp / "flags.toml").write_text(as_toml(data), encoding="utf-8")
                del data
                ours_cmd = [tusk, "compile", str(tmp / "flags.tsk"), "-o", str(tmp / "snapshot.json")]
                base_cmd = [sys.executable, "-c", TOMLLIB, str(tmp / "flags.toml")]
                _run(ours_cmd, tmp)  # warm the file cache and the bytecode
                runs: dict[str, list[tuple[float, int]]] = {"ours": [], "base": []}
                for _ in range(min(args.rounds, 3) if size >= 50000 else args.rounds):
                    runs["ours"].append(_run(ours_cmd, tmp))
                    runs["base"].append(_run(base_cmd, tmp))
                t_ours = statistics.median(w for w, _ in runs["ours"])
                t_base = statistics.median(w for w, _ in runs["base"])
                m_ours = statistics.median(m for _, m in runs["ours"])
                m_base = statistics.median(m for _, m in runs["base"])
                rows.append((size, data_name, t_ours, t_base, m_ours, m_base))
                print(
                    f"{size:>6} {data_name:5} tusk compile {t_ours:6.2f} s {m_ours / 1e6:7.1f} MB | "
                    f"tomllib process {t_base:6.2f} s {m_base / 1e6:7.1f} MB | "
                    f"time {t_ours / t_base:4.2f}x  memory {m_ours / m_base:4.2f}x",
                    flush=True,
                )
    print()
    print(f"`tusk compile` vs a tomllib.loads process, same data, {os.cpu_count()} cores; medians")
    print("goal: time and peak memory <= 2x")
    print("| flags | data | time ratio | peak RSS ratio |")
    print("|---|---|---|---|")
    for size, name, t_ours, t_base, m_ours, m_base in rows:
        print(
            f"| {size:,} | {name} | {t_ours / t_base:.2f}x ({t_ours:.2f} / {t_base:.2f} s)"
            f" | {m_ours / m_base:.2f}x ({m_ours / 1e6:.0f} / {m_base / 1e6:.0f} MB) |"
        )


if __name__ == "__main__":
    main()
