"""What does `Database.query` cost over a bare psycopg `fetchall()`? (A benchmark, not a test.)

    python benchmarks/bench_query.py [--url URL] [--rounds N]

Five queries of 10,000 rows each (integers/text, booleans/floats, timestamps/dates, numerics, JSON),
run through `tusklang.db` and through a plain psycopg cursor in the same run, interleaved round by
round (alternating which goes first), reporting medians per query, time per row and the ratio.
The URL defaults to TUSK_TEST_POSTGRES_URL or the local test server; it is printed redacted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import psycopg

from tusklang.db import connect, redact_url

ROWS = 10_000
QUERIES: dict[str, str] = {
    "int+text": (f"SELECT g AS id, 'flag_' || g AS flag_name, g % 100 AS bucket FROM generate_series(1, {ROWS}) g"),
    "bool+float": (f"SELECT g AS id, g % 2 = 0 AS enabled, g / 7.0::float8 AS ratio FROM generate_series(1, {ROWS}) g"),
    "timestamp+date": (
        "SELECT g AS id, TIMESTAMP '2024-02-01' + g * INTERVAL '1 second' AS evaluated_at, "
        f"DATE '2024-01-01' + (g % 30) AS day FROM generate_series(1, {ROWS}) g"
    ),
    "numeric": (
        "SELECT g AS id, (g / 3.0)::numeric(12, 4) AS value, (g * 2)::numeric AS whole "
        f"FROM generate_series(1, {ROWS}) g"
    ),
    "json": (
        "SELECT g AS id, json_build_object('flag', 'f' || g, 'environments', json_build_array('production')) "
        f"AS targeting_rules FROM generate_series(1, {ROWS}) g"
    ),
}


def timed(run: Callable[[], int]) -> float:
    started = time.perf_counter()
    rows = run()
    elapsed = time.perf_counter() - started
    if rows != ROWS:
        raise SystemExit(f"expected {ROWS} rows, got {rows}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_url = os.environ.get("TUSK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--url", default=default_url)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    database = connect(args.url, max_rows=ROWS)
    plain = psycopg.connect(args.url, autocommit=True)
    samples: dict[tuple[str, str], list[float]] = {(name, way): [] for name in QUERIES for way in ("db", "plain")}

    def via_db(sql: str) -> Callable[[], int]:
        return lambda: len(database.query(sql))

    def via_plain(sql: str) -> Callable[[], int]:
        def run() -> int:
            with plain.cursor() as cursor:
                cursor.execute(sql)  # type: ignore[arg-type]
                return len(cursor.fetchall())

        return run

    # The whole resolver path: a TuskLang document whose five members are the five @query
    # directives, parsed once and resolved (directive registry, spans, provenance) each round.
    import tusklang
    from tusklang.resolver import resolve_document
    from tusklang.syntax.writer import format_key, format_value

    document = tusklang.parse(
        "".join(f"{format_key(name)} = @query({format_value(sql)})\n" for name, sql in QUERIES.items()),
        "bench.tsk",
    )

    def via_resolve() -> int:
        resolved = resolve_document(document, database=database, env={})
        return sum(len(rows) for rows in resolved.data.values())

    resolve_samples: list[float] = []
    plain_all_samples: list[float] = []

    try:
        for sql in QUERIES.values():  # warm-up: caches, prepared statements
            timed(via_db(sql))
            timed(via_plain(sql))
        for round_number in range(args.rounds):
            for name, sql in QUERIES.items():
                order = [("db", via_db(sql)), ("plain", via_plain(sql))]
                if round_number % 2:
                    order.reverse()
                for way, run in order:
                    samples[(name, way)].append(timed(run))
            start = time.perf_counter()
            assert via_resolve() == ROWS * len(QUERIES)
            resolve_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert sum(via_plain(sql)() for sql in QUERIES.values()) == ROWS * len(QUERIES)
            plain_all_samples.append(time.perf_counter() - start)
    finally:
        database.close()
        plain.close()

    print(f"server: {redact_url(args.url)}  rows/query: {ROWS}  rounds: {args.rounds} (medians)")
    print(f"{'query':<16}{'Database.query':>16}{'psycopg':>12}{'us/row db':>12}{'us/row pg':>12}{'ratio':>8}")
    totals = {"db": 0.0, "plain": 0.0}
    for name in QUERIES:
        db_median = statistics.median(samples[(name, "db")])
        plain_median = statistics.median(samples[(name, "plain")])
        totals["db"] += db_median
        totals["plain"] += plain_median
        ratio = db_median / plain_median
        print(
            f"{name:<16}{db_median * 1e3:>13.2f} ms{plain_median * 1e3:>9.2f} ms"
            f"{db_median / ROWS * 1e6:>12.3f}{plain_median / ROWS * 1e6:>12.3f}{ratio:>8.2f}"
        )
    rows_total = ROWS * len(QUERIES)
    print(
        f"{'all five':<16}{totals['db'] * 1e3:>13.2f} ms{totals['plain'] * 1e3:>9.2f} ms"
        f"{totals['db'] / rows_total * 1e6:>12.3f}{totals['plain'] / rows_total * 1e6:>12.3f}"
        f"{totals['db'] / totals['plain']:>8.2f}"
    )
    resolve_median = statistics.median(resolve_samples)
    plain_median_all = statistics.median(plain_all_samples)
    print(
        f"{'tusklang.resolve':<16}{resolve_median * 1e3:>13.2f} ms{plain_median_all * 1e3:>9.2f} ms"
        f"{resolve_median / rows_total * 1e6:>12.3f}{plain_median_all / rows_total * 1e6:>12.3f}"
        f"{resolve_median / plain_median_all:>8.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
