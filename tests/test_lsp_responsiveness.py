"""A big document stays responsive: requests are answered from the newest index while the current text is
parsed (positions mapped through the edits since: tusklang/lsp/positions.py), and linting happens in the
worker process, so requests on any document never queue behind it. The answers must still be right, in
the current text's positions. benchmarks/bench_lsp.py measures the waits."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import (
    SERVER,
    SERVER_ENV,
    Client,
    close,
    diagnostics_for,
    doc,
    make_client,
    open_text,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

FLAG = """        flag_{i} = {{
            enabled = true
            rollout_strategy = "percentage"
            rollout_percentage = {pct}
            targeting = {{
                user_segments = ["early_adopters"]
            }}
            fallback = false
            metadata = {{
                description = "Flag {i}"
                owner = "team-{team}"
            }}
        }}
"""
TAIL = """    }
    targeting = {
        user_segments = {
            early_adopters = { criteria = { beta_opt_in = true } }
        }
    }
}
"""


def big_document(flags: int) -> str:
    body = "".join(FLAG.format(i=i, pct=i % 100, team=i % 7) for i in range(flags))
    return "feature_flags = {\n    flags = {\n" + body + TAIL


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(), initialization_options={"tusk": {}})
    )
    yield
    await lsp_client.shutdown_session()


def insert(client: Client, uri: str, line: int, text: str) -> int:
    version = client.versions[uri] = client.versions[uri] + 1
    at = types.Position(line=line, character=0)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at), text=text)],
        )
    )
    return version


async def test_answers_right_after_an_edit_are_in_the_current_text(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-big-stale.tsk"
    text = big_document(1500)  # about 20,000 lines
    open_text(client, uri, text)
    await diagnostics_for(client, uri, 1)
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
    for round_ in range(3):
        # Lines above everything, then at once (the new text takes a few hundred ms to parse) ask about
        # things below them, in the new text's positions.
        insert(client, uri, 0, "// a note\n" * 2)
        text = "// a note\n" * 2 + text
        reference = position_of(text, '"early_adopters"', 3, nth=1400)
        found = await client.text_document_definition_async(
            types.DefinitionParams(text_document=doc(uri), position=reference)
        )
        assert [loc.range.start for loc in found or []] == [position_of(text, "early_adopters = {")], round_
        outline = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
        assert outline and outline[0].name == "feature_flags"
        assert outline[0].selection_range.start == position_of(text, "feature_flags")
        hover = await client.text_document_hover_async(
            types.HoverParams(text_document=doc(uri), position=position_of(text, "rollout_strategy", 2, nth=1300))
        )
        assert hover is not None and hover.range is not None
        assert hover.range.start == position_of(text, "rollout_strategy", nth=1300)


async def test_requests_elsewhere_do_not_wait_for_the_linter(client: Client) -> None:
    big_uri = "file:///tmp/tusk-lsp-big-busy.tsk"
    big = big_document(1500)
    open_text(client, big_uri, big)
    small_uri = "file:///tmp/tusk-lsp-small.tsk"
    small = "$port = 8080\nserver = { port = $port }\n"
    open_text(client, small_uri, small)
    await diagnostics_for(client, small_uri, 1)
    waits = []
    for i in range(8):
        insert(client, big_uri, 0, f"// edit {i}\n")  # each edit restarts a lint of about a second
        started = time.perf_counter()
        result = await client.text_document_hover_async(
            types.HoverParams(text_document=doc(small_uri), position=position_of(small, "= $port", 3))
        )
        waits.append(time.perf_counter() - started)
        assert result is not None
    # Generous for a loaded test machine: the point is that none waits for a whole lint.
    assert max(waits) < 1.0, waits


async def test_a_document_closed_while_a_request_waits_is_never_read_from_disk(client: Client, tmp_path: Path) -> None:
    fifo = tmp_path / "closed.tsk"
    os.mkfifo(fifo)  # reading it would block the server for good
    uri = fifo.as_uri()
    text = big_document(1500)
    open_text(client, uri, text)  # its first index takes a few hundred ms: the requests below wait for it
    at = position_of(text, "rollout_strategy", 2)
    pending = [
        asyncio.ensure_future(client.text_document_hover_async(types.HoverParams(text_document=doc(uri), position=at))),
        asyncio.ensure_future(
            client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
        ),
    ]
    await asyncio.sleep(0.02)
    close(client, uri)
    await asyncio.wait_for(asyncio.gather(*pending), 30)  # answered: from the index of the text asked about, or null
    small = "file:///tmp/tusk-lsp-after-close.tsk"
    open_text(client, small, "$a = 1\nb = $a\n")
    assert await asyncio.wait_for(diagnostics_for(client, small, 1), 30) == []
