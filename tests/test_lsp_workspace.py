"""The workspace's files: found once, off the event loop, within bounds, and kept current by events.

Before, every hover, definition and completion walked the whole workspace root again: with `rootUri`
`file:///` that was about 5 s per request.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import SERVER, SERVER_ENV, Client, doc, make_client, open_text, position_of
from tusklang.lsp.workspace import MAX_FILES, WorkspaceFiles

USES_A_SEGMENT = 'x = {\n    targeting = {\n        user_segments = ["nowhere_defined"]\n    }\n}\n'


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri="file:///",
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_requests_with_the_filesystem_root_as_workspace_do_not_walk_it(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-root-workspace.tsk"
    open_text(client, uri, USES_A_SEGMENT)
    at = position_of(USES_A_SEGMENT, "nowhere_defined", 1)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        result = await client.text_document_hover_async(types.HoverParams(text_document=doc(uri), position=at))
        timings.append(time.perf_counter() - started)
        assert result is not None and "not defined in the workspace" in str(result.contents)
    # The first may wait for the files found so far to be indexed; none walks the tree again.
    assert sorted(timings)[len(timings) // 2] < 1.0, timings


def test_the_scan_is_bounded_and_events_keep_the_set_current(tmp_path: Path) -> None:
    for i in range(MAX_FILES + 50):
        (tmp_path / f"f{i}.tsk").write_text(f"a{i} = {i}\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skipped.tsk").write_text("a = 1\n")
    files = WorkspaceFiles()
    files.set_roots([str(tmp_path)])
    files.scan()
    assert len(files.paths()) == MAX_FILES and not files.complete
    assert not any(".hidden" in p for p in files.paths())

    small = tmp_path / "small"
    small.mkdir()
    files = WorkspaceFiles()
    files.set_roots([str(small)])
    files.scan()
    assert files.paths() == []
    created = small / "new.tsk"
    created.write_text("$v = 1\nk = $v\n")
    files.add(str(created))
    files.add(str(tmp_path / "f1.tsk"))  # outside the workspace folder: not one of its files
    assert files.paths() == [str(created)]
    (index,) = [i for _, i in files.indexes(skip=())]
    assert [s.name for s in index.definitions] == ["v"]
    created.write_text("$w = 1\nk = $w\n")
    files.changed(str(created))
    (index,) = [i for _, i in files.indexes(skip=())]
    assert [s.name for s in index.definitions] == ["w"]
    files.remove(str(created))
    assert files.paths() == []
