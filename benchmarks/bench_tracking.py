"""What tracking costs the evaluator, and how fast the event store ingests into PostgreSQL.

1. `Client.evaluate()` throughput over N distinct contexts, for two flags (a boolean rule + 25% rollout;
   a 50/30/20 variant split, which also writes one exposure per unit), in three setups:
   tracking off, on with sampling 1.0, on with sampling 0.1. Rounds are interleaved and each tracked round
   gets a fresh tracker (so every round writes the same exposures); figures are medians. The store's
   writer thread runs during the timed loop, as in production (it competes for the GIL): that is part of
   the cost measured.
2. Ingest: M events put as fast as possible, timed until the last one is committed (COPY batches).

PostgreSQL comes from TUSK_BENCH_POSTGRES_URL or TUSK_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), in a schema created for the run and dropped after; without
a server, SQLite (a temporary file) is used and said so.

Run: ``python benchmarks/bench_tracking.py [--n 100000] [--rounds 5] [--ingest 200000]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_evaluate import contexts, tusk_snapshot  # noqa: E402

from tusklang.evaluate import Client  # noqa: E402
from tusklang.events import EventStore, EventTracker  # noqa: E402

SETUPS = ("off", "sampling 1.0", "sampling 0.1")
FLAGS = {"bool": "checkout", "split": "ai"}


@contextmanager
def database() -> Iterator[tuple[str, str]]:
    """(url, label): a fresh PostgreSQL schema, or a temporary SQLite file when there is no server."""
    base = os.environ.get("TUSK_BENCH_POSTGRES_URL") or os.environ.get(
        "TUSK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    try:
        import psycopg

        with psycopg.connect(base, connect_timeout=3, autocommit=True) as conn:
            schema = f"tusk_bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"PostgreSQL unavailable ({type(exc).__name__}); using SQLite", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/events.db", "SQLite (temporary file)"
        return
    parts = urlsplit(base)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, f"{parts.query}&{option}" if parts.query else option, ""))
    try:
        yield url, "PostgreSQL"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def timed(client: Client, flag: str, ctxs: list[dict[str, Any]]) -> float:
    evaluate = client.evaluate
    start = time.perf_counter()
    for ctx in ctxs:
        evaluate(flag, ctx)
    return len(ctxs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="distinct contexts per timed loop")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ingest", type=int, default=200_000, help="events for the ingest measurement")
    args = parser.parse_args()
    snap, ctxs = tusk_snapshot(), contexts(args.n)
    rates: dict[str, dict[str, list[float]]] = {s: {k: [] for k in FLAGS} for s in SETUPS}
    drops = 0
    with database() as (url, label):
        # One store for the whole run, large enough that nothing is dropped while timing.
        with EventStore(url, queue_size=4 * args.n, batch_size=5000, flush_interval=0.2) as store:
            plain = Client(snap)
            for rnd in range(args.rounds):
                for setup in SETUPS:
                    for kind, flag in FLAGS.items():
                        if setup == "off":
                            client = plain
                        else:
                            rate = 1.0 if setup == "sampling 1.0" else 0.1
                            client = Client(snap, tracker=EventTracker(store, snapshot=snap, sampling_rate=rate))
                        rates[setup][kind].append(timed(client, flag, ctxs))
                        store.flush()  # start every loop with an empty queue, outside the timing
                print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
            drops = store.dropped
            written = store.stats().written

        med = {s: {k: statistics.median(v) for k, v in r.items()} for s, r in rates.items()}
        print(f"\n{args.n:,} distinct contexts, median of {args.rounds} interleaved rounds (evaluations/s)")
        print(f"{'tracking':<16}{'bool+25%':>12}{'50/30/20':>12}{'off/this bool':>15}{'off/this split':>16}")
        for setup in SETUPS:
            m = med[setup]
            rb = med["off"]["bool"] / m["bool"]
            rs = med["off"]["split"] / m["split"]
            print(f"{setup:<16}{m['bool']:>12,.0f}{m['split']:>12,.0f}{rb:>14.2f}x{rs:>15.2f}x")
        print(f"events written to {label}: {written:,}; dropped: {drops:,}")

        # Ingest: a fresh store (its own queue), M events queued as fast as possible, timed to the last commit.
        with EventStore(url, queue_size=args.ingest + 1, batch_size=10_000, flush_interval=0.05) as store:
            base = store.stats().written
            row_time = time.time()
            start = time.perf_counter()
            for i in range(args.ingest):
                store.put(("exposure", row_time, "ai", "ai_v1", "SPLIT", None, f"user-{i}", None, 1.0, None))
            queued = time.perf_counter() - start
            store.flush()
            total = time.perf_counter() - start
            assert store.stats().written - base == args.ingest and store.dropped == 0
        print(
            f"ingest into {label}: {args.ingest:,} events in {total:.2f} s = {args.ingest / total:,.0f} events/s "
            f"(queueing alone {args.ingest / queued:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
