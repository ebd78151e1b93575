"""`@file` includes in the language server: a problem inside an included file is published on that file's
URI (as `tusk check` reports it at its own line, with the include chain), and the including document is
linted again when an included file changes, in the editor or on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import (
    ROOT,
    SERVER,
    SERVER_ENV,
    Client,
    change_text,
    check_places,
    close,
    diagnostics_for,
    diagnostics_when,
    lsp_places,
    make_client,
    next_diagnostics,
    open_file,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
INCLUDES = ROOT / "fixtures" / "lsp" / "includes"


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(INCLUDES, tmp_path / "project")
    return tmp_path / "project"


async def test_a_problem_in_an_included_file_is_published_on_that_file(client: Client, project: Path) -> None:
    main, search = project / "main.tsk", project / "search.tsk"
    main_uri = open_file(client, main)
    assert await diagnostics_for(client, main_uri, 1) == []
    (typo,) = await diagnostics_for(client, search.as_uri(), None)
    assert typo.code == "TSK301" and "did you mean `rollout_percentage`" in typo.message
    assert typo.range.start == position_of(search, "rollout_percentge")
    (chain,) = typo.related_information or []
    assert chain.location.uri == main_uri and chain.message == "included from here"
    assert chain.location.range.start == position_of(main, '@file("search.tsk")')
    # exactly what `tusk check main.tsk` says, file by file
    assert lsp_places(client, [main_uri, search.as_uri()]) == check_places(main)
    client.diagnostics.pop(search.as_uri())
    close(client, main_uri)
    assert await diagnostics_for(client, search.as_uri(), None) == []  # nobody says it any more


async def test_editing_an_open_included_file_lints_the_including_one_again(client: Client, project: Path) -> None:
    main, search = project / "main.tsk", project / "search.tsk"
    main_uri = open_file(client, main)
    await diagnostics_for(client, main_uri, 1)
    search_uri = open_file(client, search)
    assert [d.code for d in await diagnostics_for(client, search_uri, 1)] == ["TSK301"]  # from main's project
    fixed = search.read_text(encoding="utf-8").replace("rollout_percentge", "rollout_percentage")
    version = change_text(client, search_uri, fixed)
    assert await diagnostics_for(client, search_uri, version) == []
    # the included text makes main's project wrong: reported where it is, in the included file
    broken = fixed.replace('"percentage"', '"percentag"')
    version = change_text(client, search_uri, broken)
    found = await diagnostics_when(client, search_uri, version, bool)  # after main's project is linted again
    assert found[0].range.start == position_of(broken, '"percentag"')
    search.write_text(broken, encoding="utf-8")  # for `tusk check`, which reads the disk
    assert lsp_places(client, [main_uri, search_uri]) == check_places(main)
    close(client, search_uri)
    close(client, main_uri)


async def test_a_change_on_disk_lints_the_including_file_again(client: Client, project: Path) -> None:
    main, search = project / "main.tsk", project / "search.tsk"
    main_uri = open_file(client, main)
    await diagnostics_for(client, main_uri, 1)
    text = search.read_text(encoding="utf-8")
    search.unlink()
    client.diagnostics.pop(main_uri, None)
    client.diagnostics.pop(search.as_uri(), None)
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=search.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    missing = await diagnostics_for(client, main_uri, None)
    assert [d.range.start.line for d in missing] == [position_of(main, "@file").line]
    assert lsp_places(client, [main_uri]) == check_places(main)
    assert await diagnostics_for(client, search.as_uri(), None) == []  # the typo went with the file
    search.write_text(text.replace("rollout_percentge", "rollout_percentage"), encoding="utf-8")
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=search.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    assert await next_diagnostics(client, main_uri) == []
    close(client, main_uri)
