"""The language server is one more front door to the project model: for every fixture project it reports
the same set of (code, file, line) as `tusk check`, and both equal `tusk compile` minus what needs
execution (tests/test_project_model.py defines the cases and that expectation).

The server is real (`tusk lsp` over stdio). Each case's files are opened as an editor would open them; a
case of several files is declared as one project with `tusk.projects`, as `tusk check A B` checks them,
and its env file is `tusk.envFile`. What the server publishes, on every URI (included files too), is the
language server's set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import SERVER, SERVER_ENV, Client, close, diagnostics_for, doc, make_client, open_file
from tests.test_project_model import CASES, EPOCH, ROOT, Case, check_findings, expected_findings
from tusklang.compiler.check import check_project
from tusklang.diagnostics import Diagnostic

Finding = tuple[str, str, int]


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(
        server_command=SERVER,
        client_factory=make_client,
        # the cases' clock, as Case.settings() fixes it; nothing else from this machine's environment
        server_env={**SERVER_ENV, "SOURCE_DATE_EPOCH": EPOCH},
    ),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=ROOT.as_uri(),
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(ROOT)  # the cases name files relative to the repository, as the other doors do
    yield


def _relative(uri: str) -> str:
    return Path(os.path.relpath(unquote(urlparse(uri).path), ROOT)).as_posix()


async def lsp_findings(client: Client, case: Case) -> set[Finding]:
    """Everything the server publishes with the case's files open, as (code, file, 1-based line)."""
    paths = [ROOT / p for p in case.paths]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={
                "tusk": {
                    "envFile": str(ROOT / case.env_file) if case.env_file else "",
                    "database": case.database or "",
                    "projects": [[str(p) for p in paths]] if len(paths) > 1 else [],
                }
            }
        )
    )
    client.diagnostics.clear()
    uris = [open_file(client, path) for path in paths]
    for uri in uris:
        await diagnostics_for(client, uri, 1)
    # One more round trip: what the same lint published for included files has arrived before its answer.
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uris[0])))
    found = {
        (str(d.code), _relative(uri), d.range.start.line + 1)
        for uri, diagnostics in client.diagnostics.items()
        for d in diagnostics
    }
    for uri in uris:
        close(client, uri)
    return found


def _check_all(case: Case) -> set[Finding]:
    """`tusk check` with its TSK332 notes (what was not run), which the server shows as well."""
    found: list[Diagnostic] = check_project(list(case.paths), case.settings())
    return {(d.code, d.span.file if d.span else "", d.span.line if d.span else 0) for d in found}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_the_language_server_reports_what_check_and_compile_report(client: Client, case: Case) -> None:
    found = await lsp_findings(client, case)
    assert found == _check_all(case)
    assert {f for f in found if f[0] != "TSK332"} == check_findings(case) == expected_findings(case)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_comparison_is_not_vacuous(client: Client) -> None:
    """The server's side holds errors, warnings and findings inside included files."""
    by_name = {c.name: c for c in CASES}
    split = await lsp_findings(client, by_name["split-with-includes"])
    assert ("TSK301", "fixtures/project/split/flags/search.tsk", 10) in split
    assert len(await lsp_findings(client, by_name["seed"])) >= 20
    blocks = await lsp_findings(client, by_name["valid-seed-blocks"])
    assert len({file for _, file, _ in blocks}) >= 2
    assert sum(1 for c in CASES if c.name.startswith("compile-invalid/")) >= 40
