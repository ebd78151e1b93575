"""Docs that are tests: every ```sh and ```python block of README.md and docs/*.md runs (tests/doc_blocks.py
says how, and how to mark a block illustrative), with its shown output compared; ```tusk blocks pass
`tusk check`. The harness itself is tested on broken pages, so a broken example cannot pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doc_blocks import (
    ROOT,
    SEED_COMPILE,
    DocExampleError,
    compile_seed,
    display,
    page_env,
    parse_blocks,
    prepare_workdir,
    run_page,
)

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


DOCS_REDIS_DB = 15  # the pages write overrides and audit entries: a database of their own, emptied per page


def _docs_redis(redis_url: str) -> str:
    base, _, db = redis_url.rpartition("/")
    return f"{base}/{DOCS_REDIS_DB}" if db.isdigit() and base.count("/") >= 2 else f"{redis_url}/{DOCS_REDIS_DB}"


@pytest.fixture(scope="module")
def docs_env() -> dict[str, str]:
    # The servers are named here and required (skip, or fail under CI) only by pages that use them.
    redis = os.environ.get("TUSK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    postgres = os.environ.get("TUSK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return page_env(_docs_redis(redis), postgres)


@pytest.fixture(scope="module")
def seed_snapshot(tmp_path_factory: pytest.TempPathFactory, docs_env: dict[str, str]) -> Path:
    workdir = tmp_path_factory.mktemp("seed")
    prepare_workdir(workdir, docs_env, None)
    return compile_seed(workdir, docs_env)


def _uses(page: Path, *words: str) -> bool:
    text = page.read_text(encoding="utf-8")
    return any(word in text for word in words)


@pytest.fixture
def page_dir(
    request: pytest.FixtureRequest, tmp_path: Path, docs_env: dict[str, str], seed_snapshot: Path
) -> Iterator[Path]:
    page: Path = request.node.callspec.params["page"]
    if _uses(page, "TUSK_TEST_POSTGRES_URL"):
        request.getfixturevalue("postgres_url")
    client = None
    if _uses(page, "REDIS_URL", "tusk flags ", "RedisOverrides"):
        request.getfixturevalue("redis_url")
        import redis

        client = redis.Redis.from_url(docs_env["REDIS_URL"])
        client.flushdb()
    prepare_workdir(tmp_path, docs_env, seed_snapshot)
    yield tmp_path
    if client is not None:
        client.flushdb()
        client.close()


@pytest.mark.parametrize("page", PAGES, ids=display)
def test_page_examples_run(page: Path, page_dir: Path, docs_env: dict[str, str]) -> None:
    run_page(page, page_dir, docs_env)


@pytest.mark.parametrize("page", PAGES, ids=display)
def test_every_block_names_its_language(page: Path) -> None:
    # An unlabelled block would hide a command from the harness.
    unlabelled = [b.where() for b in parse_blocks(page) if not b.lang]
    assert not unlabelled, f"fenced blocks without a language (```sh, ```tusk, ```text, ...): {unlabelled}"


def test_most_examples_run() -> None:
    """Illustrative is the exception: a page of placeholders would pass and prove nothing."""
    blocks = [b for page in PAGES for b in parse_blocks(page) if b.lang in ("sh", "python")]
    ran = [b for b in blocks if not b.illustrative]
    assert len(ran) >= 15 and len(ran) * 2 >= len(blocks), (len(ran), len(blocks))


# -- the harness itself: a broken example fails, naming the page and line ---------------------------


def _page(tmp_path: Path, body: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    page = tmp_path / "broken.md"
    page.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return page


def _run(tmp_path: Path, body: str, env: dict[str, str]) -> None:
    page = _page(tmp_path, body)
    workdir = tmp_path / "work"
    workdir.mkdir()
    prepare_workdir(workdir, env, None)
    run_page(page, workdir, env)


def test_a_broken_python_example_fails_with_page_and_line(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        # A page

        ```python
        import tusklang
        data = tusklang.loads("a = 1")
        ```

        Later on the same page, one namespace:

        ```python
        assert data == {"a": 1}
        print(undefined_name)
        ```
    """
    with pytest.raises(DocExampleError, match=r"broken\.md:12: NameError: name 'undefined_name'"):
        _run(tmp_path, body, docs_env)


def test_a_failing_command_fails_with_page_and_line(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        ```sh
        tusk check fixtures/seed/project.tsk
        tusk check does-not-exist.tsk
        ```
    """
    with pytest.raises(DocExampleError, match=r"broken\.md:1: exit 2"):
        _run(tmp_path, body, docs_env)


def test_shown_output_is_compared(tmp_path: Path, docs_env: dict[str, str]) -> None:
    good = """
        ```sh
        $ tusk parse fixtures/valid/numbers/bases.tsk --format json | head -c 1
        {
        $ tusk check nothing-here.tsk
        ...no such file
        [exit 2]
        ```
    """
    bad = """
        Text.

        ```sh
        $ echo one
        one
        $ echo two
        three
        ```
    """
    _run(tmp_path / "good", good, docs_env)
    with pytest.raises(DocExampleError, match=r"broken\.md:6: `echo two`: output differs"):
        _run(tmp_path / "bad", bad, docs_env)


def test_an_output_block_checks_the_python_block_before_it(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        ```python
        print(1 + 1)
        ```

        ```text output
        3
        ```
    """
    with pytest.raises(DocExampleError, match=r"broken\.md:5: python block: output differs"):
        _run(tmp_path, body, docs_env)


def test_a_tusk_block_must_check(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        ```tusk
        a = 1
        a = 2
        ```
    """
    with pytest.raises(DocExampleError, match=r"broken\.md:3: tusk check: TSK120"):
        _run(tmp_path, body, docs_env)


def test_illustrative_blocks_do_not_run(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        ```sh illustrative
        exit 3
        ```

        <!-- illustrative: a placeholder host -->
        ```python
        raise SystemExit(3)
        ```
    """
    page = _page(tmp_path, body)
    assert [b.illustrative for b in parse_blocks(page)] == [True, True]
    _run(tmp_path, body, docs_env)


# -- prose that points at another command's options ------------------------------------------------


def _help(command: str) -> str:
    tusk = str(Path(sys.executable).parent / "tusk")
    return subprocess.run([tusk, *command.split(), "--help"], capture_output=True, text=True, check=True).stdout


def test_options_said_to_be_as_for_tusk_compile_exist_on_compile() -> None:
    """docs/directives.md's settings table and every "... as for `tusk compile`" line name compile's options."""
    compile_help = _help("compile")
    claimed: dict[str, str] = {}
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            in_settings_table = page.name == "directives.md" and line.startswith("| ") and "`--" in line
            if "as for `tusk compile`" in line or in_settings_table:
                for option in re.findall(r"`(--[a-z][a-z-]*)", line):
                    claimed.setdefault(option, f"{display(page)}:{number}")
    assert {"--query-timeout", "--max-rows", "--allow-outside-root"} <= set(claimed), claimed
    missing = {o: where for o, where in claimed.items() if not re.search(rf"(?<![\w-]){o}(?![\w-])", compile_help)}
    assert not missing, f"options the docs give tusk compile but its --help lacks: {missing}"


def test_the_pages_flags_json_is_the_readme_compile() -> None:
    """Every page's flags.json comes from SEED_COMPILE; the README's first command (illustrative, it installs)
    must end with that very compile, so what the pages assume is what a reader gets."""
    first = next(b for b in parse_blocks(ROOT / "README.md") if b.lang == "sh")
    assert first.illustrative
    assert first.code.strip().endswith("&& " + SEED_COMPILE), first.code


def test_python_blocks_run_apart_from_the_test_process(tmp_path: Path, docs_env: dict[str, str]) -> None:
    body = """
        ```python
        import os
        os.environ["TUSK_DOCS_LEAK"] = "1"
        os.chdir("/")
        ```

        ```python
        print(os.environ["TUSK_DOCS_LEAK"], os.getcwd())
        ```

        ```text output
        1 /
        ```

        ```python
        def broken(:
        ```
    """
    cwd = Path.cwd()
    with pytest.raises(DocExampleError, match=r"broken\.md:16: SyntaxError"):
        _run(tmp_path, body, docs_env)
    assert "TUSK_DOCS_LEAK" not in os.environ
    assert Path.cwd() == cwd
