"""Shared fixtures. Servers are real: outside CI a missing server skips with a reason; under CI it fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# A `tusk check` run by a test through the `tusk` script neither uses nor starts a warm check server
# (tusklang/warm), which would outlive the test; tests/test_warm_check.py turns it on where it is tested.
os.environ["TUSK_CHECK_SERVER"] = "0"

# Under CI the property tests draw a fixed sequence of examples: a red CI is then reproducible from its log,
# and what a random search finds outside CI is filed with its example as a test of its own
# (as tests/test_dumps_expressions.py holds the shapes the roundtrip property found) rather than turning
# landings into a coin toss.
# Loaded here, before any test module builds its own settings on top of the default profile.
settings.register_profile("ci", derandomize=True, database=None)
if IN_CI:
    settings.load_profile("ci")


def _unavailable(what: str, reason: str) -> None:
    message = f"{what} unavailable: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing server is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("TUSK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the server decides skip/fail below
        _unavailable("PostgreSQL", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TUSK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        _unavailable("Redis", f"{type(exc).__name__}: {exc}")
    return url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; every key under it is deleted after."""
    import redis

    name = f"tusk-test-{uuid.uuid4().hex[:12]}:"
    yield name
    conn = redis.Redis.from_url(redis_url)
    keys = list(conn.scan_iter(f"{name}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def pg_events_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL schema of its own (dropped afterwards), as a URL whose sessions use it."""
    import uuid
    from urllib.parse import quote, urlsplit, urlunsplit

    import psycopg

    schema = f"tusk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    parts = urlsplit(postgres_url)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    try:
        yield urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for every page test (tests/browser.py); missing: skip, or fail under CI."""
    from .browser import Browser, chromium_path

    instance = Browser(chromium_path())
    try:
        yield instance
    finally:
        instance.close()
