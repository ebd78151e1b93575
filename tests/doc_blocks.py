"""Run the fenced examples of a Markdown page as tests (tests/test_docs.py), in the manner of Sybil.

The conventions, for whoever writes docs (also in docs/contributing.md):

- Every fenced block names its language (```sh, ```python, ```tusk, ```json, ```text, ...): a block
  without one would hide a command from the harness, so tests/test_docs.py rejects it.
- ```sh and ```python blocks run, in page order, in one fresh directory per page. That directory holds
  a copy of the repository's `fixtures/` and `flags.json`, compiled from the seed project exactly as
  README.md shows, so a page may say `flags.json` and `fixtures/...` as a user in a clone would.
  Nothing is ever written into the repository.
- Python blocks of one page share one namespace, in order, in one Python process of their own (nothing a
  snippet sets reaches the test session); an exception names the page and its line.
- A ```sh block whose lines start with `$ ` is a transcript: each `$ ` line (with `\\` continuation
  lines) is a command, and the lines up to the next `$ ` line are its expected output (stdout and
  stderr together, as a terminal shows them). A last output line `[exit N]` expects exit status N;
  otherwise a command must exit 0. Without `$ ` lines the whole block is one `bash -e` script that
  must exit 0.
- A block may be followed by a ```text output block: the expected output of the block before it
  (a python block's stdout; a sh script's stdout and stderr).
- In expected output `...` matches anything (doctest's ELLIPSIS); trailing spaces are ignored.
- ```tusk blocks must pass `tusk check` (errors only; lint warnings are fine).
- A block marked illustrative does not run: `illustrative` after the language (```sh illustrative),
  or `<!-- illustrative -->` (optionally with a reason: `<!-- illustrative: needs a Kubernetes cluster -->`)
  on the line before the fence. Use it for synopses, placeholders and long-running commands.
- Environment: REDIS_URL is the test Redis (TUSK_TEST_REDIS_URL), TUSK_TEST_POSTGRES_URL the test
  PostgreSQL, and TUSK_PII_KEY a throwaway key; `tusk` and `python` are the ones of this interpreter.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import select
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = ("sh", "python")
SEED_COMPILE = (
    "tusk compile fixtures/seed/project.tsk --db sqlite:///fixtures/db/seed.db "
    "--env-file fixtures/seed/seed.env -o flags.json"
)
COMMAND_TIMEOUT = 60.0

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<info>[^`]*)$")
_ILLUSTRATIVE_COMMENT = re.compile(r"^\s*<!--\s*illustrative\b.*-->\s*$")
_EXIT = re.compile(r"^\[exit (\d+)\]$")


class DocExampleError(AssertionError):
    """An example that does not do what its page says; the message starts with `page:line:`."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    flags: tuple[str, ...]
    code: str
    illustrative: bool
    expected: str | None = None  # the following ```text output block, if any
    expected_line: int = 0

    @property
    def first_code_line(self) -> int:
        return self.line + 1

    def where(self, line: int | None = None) -> str:
        return f"{display(self.path)}:{line or self.line}"


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of a Markdown page, with an output block attached to the block before it."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).split("\n")
    raw: list[Block] = []
    last_end = 0  # the line after the previous block's closing fence
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        words = m["info"].split()
        j = i + 1
        while j < len(lines) and not re.match(rf"^ {{0,3}}{fence}\s*$", lines[j]):
            j += 1
        if j == len(lines):
            raise DocExampleError(f"{display(path)}:{i + 1}: unclosed code fence")
        body = [ln[indent:] if ln[:indent].strip() == "" else ln for ln in lines[i + 1 : j]]
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        illustrative = "illustrative" in words[1:] or bool(_ILLUSTRATIVE_COMMENT.match(prev))
        blank_before = bool(raw) and all(not lines[k].strip() for k in range(last_end, i))
        block = Block(path, i + 1, words[0] if words else "", tuple(words[1:]), "\n".join(body), illustrative)
        if "output" in block.flags and raw and blank_before and raw[-1].lang in RUNNABLE and raw[-1].expected is None:
            prior = raw[-1]
            raw[-1] = Block(prior.path, prior.line, prior.lang, prior.flags, prior.code, prior.illustrative,
                            block.code, block.line)
        else:
            raw.append(block)
        last_end = i = j + 1
    return raw


def output_matches(expected: str, actual: str) -> bool:
    want = "\n".join(ln.rstrip() for ln in expected.strip("\n").split("\n")) + "\n"
    got = "\n".join(ln.rstrip() for ln in actual.strip("\n").split("\n")) + "\n"
    return doctest.OutputChecker().check_output(want, got, doctest.ELLIPSIS)


def _mismatch(where: str, what: str, expected: str, actual: str) -> DocExampleError:
    return DocExampleError(
        f"{where}: {what}: output differs\n--- expected\n{expected.rstrip()}\n--- actual\n{actual.rstrip()}"
    )


class PythonProcess:
    """One Python process (tests/doc_python.py) running a page's python blocks in one namespace."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("doc_python.py")), str(write_fd)],
            cwd=workdir, env=env, stdin=subprocess.PIPE, text=True,
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
        )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r", encoding="utf-8")

    def run(self, block: Block) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"code": block.code, "filename": display(block.path), "line": block.line}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.replies], [], [], COMMAND_TIMEOUT)
        line = self.replies.readline() if ready else ""
        if not line:
            self.close()
            if ready:
                error = f"the Python process died (exit {self.proc.returncode})"
            else:
                error = f"still running after {COMMAND_TIMEOUT:.0f} s (make a long-running example illustrative)"
            return {"ok": False, "line": block.line, "error": error}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.replies.close()


@dataclass
class PageRun:
    """One page's examples, run in order in one directory with one Python namespace."""

    path: Path
    workdir: Path
    env: dict[str, str]
    python: PythonProcess | None = None
    ran: int = 0
    skipped: int = 0

    def run(self, blocks: list[Block]) -> None:
        try:
            self._run(blocks)
        finally:
            self.close()

    def _run(self, blocks: list[Block]) -> None:
        for block in blocks:
            if block.lang == "tusk" and not block.illustrative:
                self._check_tusk(block)
            if block.lang not in RUNNABLE:
                continue
            if block.illustrative:
                self.skipped += 1
                continue
            self.ran += 1
            if block.lang == "python":
                self._python(block)
            else:
                self._sh(block)

    def _check_tusk(self, block: Block) -> None:
        from tusklang.check import check_text

        diagnostics = check_text(block.code + "\n", path=str(display(block.path)))
        errors = [d for d in diagnostics if d.is_error]
        if errors:
            d = errors[0]
            line = block.first_code_line + d.span.line - 1 if d.span is not None else block.line
            raise DocExampleError(f"{block.where(line)}: tusk check: {d.code}: {d.message}")
        self.ran += 1

    def _python(self, block: Block) -> None:
        reply = self._python_process().run(block)
        if not reply["ok"]:
            raise DocExampleError(f"{block.where(reply['line'])}: {reply['error']}")
        if block.expected is not None and not output_matches(block.expected, reply["stdout"]):
            raise _mismatch(block.where(block.expected_line), "python block", block.expected, reply["stdout"])

    def _python_process(self) -> PythonProcess:
        if self.python is None:
            self.python = PythonProcess(self.workdir, self.env)
        return self.python

    def close(self) -> None:
        if self.python is not None:
            self.python.close()
            self.python = None

    def _shell(self, script: str, where: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.workdir, env=self.env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DocExampleError(f"{where}: still running after {COMMAND_TIMEOUT:.0f} s "
                                  "(long-running commands belong in an illustrative block)") from exc

    def _sh(self, block: Block) -> None:
        lines = block.code.split("\n")
        if not any(ln.startswith("$ ") for ln in lines):
            proc = self._shell(block.code, block.where())
            if proc.returncode != 0:
                raise DocExampleError(f"{block.where()}: exit {proc.returncode}\n{proc.stdout.rstrip()}")
            if block.expected is not None and not output_matches(block.expected, proc.stdout):
                raise _mismatch(block.where(block.expected_line), "sh block", block.expected, proc.stdout)
            return
        for line_no, command, expected in _transcript(lines, block.first_code_line):
            where = block.where(line_no)
            want_exit = 0
            if expected and _EXIT.match(expected[-1]):
                want_exit = int(_EXIT.match(expected[-1])[1])  # type: ignore[index]
                expected = expected[:-1]
            proc = self._shell(command, where)
            if proc.returncode != want_exit:
                raise DocExampleError(f"{where}: exit {proc.returncode}, expected {want_exit}\n{proc.stdout.rstrip()}")
            want = "\n".join(expected)
            if not output_matches(want, proc.stdout):
                raise _mismatch(where, f"`{command.splitlines()[0]}`", want, proc.stdout)


def _transcript(lines: list[str], first_line: int) -> list[tuple[int, str, list[str]]]:
    """(page line, command, expected output lines) for each `$ ` command of a transcript block."""
    steps: list[tuple[int, str, list[str]]] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if lines[i].strip():
                raise DocExampleError(f"line {first_line + i}: output before the first `$ ` command")
            i += 1
            continue
        start = i
        command = [lines[i][2:]]
        while command[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        i += 1
        out: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        while out and not out[-1].strip():
            out.pop()
        steps.append((first_line + start, "\n".join(command), out))
    return steps


def page_env(redis_url: str, postgres_url: str) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["REDIS_URL"] = redis_url
    env["TUSK_TEST_REDIS_URL"] = redis_url
    env["TUSK_TEST_POSTGRES_URL"] = postgres_url
    env.setdefault("TUSK_PII_KEY", "docs-test-key-0123456789abcdef")
    env.pop("TUSK_KEYRING", None)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "120"
    return env


def prepare_workdir(workdir: Path, env: dict[str, str], seed_snapshot: Path | None) -> None:
    """A copy of fixtures/ and the README's flags.json: a page may use both, as a user in a clone would."""
    shutil.copytree(ROOT / "fixtures", workdir / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    if seed_snapshot is not None:
        shutil.copyfile(seed_snapshot, workdir / "flags.json")


def compile_seed(workdir: Path, env: dict[str, str]) -> Path:
    proc = subprocess.run(["bash", "-c", SEED_COMPILE], cwd=workdir, env=env, text=True, capture_output=True,
                          timeout=COMMAND_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise DocExampleError(f"README.md: the seed compile failed (exit {proc.returncode})\n{proc.stderr}")
    return workdir / "flags.json"


def run_page(path: Path, workdir: Path, env: dict[str, str], text: str | None = None) -> PageRun:
    run = PageRun(path, workdir, env)
    run.run(parse_blocks(path, text))
    return run
