"""What the language server tests share: the server command, a recording client, documents and positions."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-c", "import sys; from tusklang.cli import main; sys.exit(main(['lsp']))"]
SERVER_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


class Client(LanguageClient):
    """pytest-lsp's test client, remembering for which document version diagnostics were published, and
    which messages the server showed."""

    published_version: dict[str, int | None]
    messages: list[types.ShowMessageParams]
    versions: dict[str, int]


def _record(client: Client, params: types.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    client.published_version[params.uri] = params.version


def _show(client: Client, params: types.ShowMessageParams) -> None:
    client.messages.append(params)


def make_client() -> Client:
    client = Client(converter_factory=default_converter)
    client.published_version = {}
    client.messages = []
    client.versions = {}
    register_lsp_features(
        client,
        {
            **DEFAULT_CLIENT_FEATURES,
            types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _record,
            types.WINDOW_SHOW_MESSAGE: _show,
        },
    )
    return client


def open_text(client: Client, uri: str, text: str) -> None:
    client.versions[uri] = 1
    client.published_version.pop(uri, None)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="tusk", version=1, text=text)
        )
    )


def open_file(client: Client, path: Path) -> str:
    uri = path.as_uri()
    open_text(client, uri, path.read_text(encoding="utf-8"))
    return uri


def change_text(client: Client, uri: str, text: str) -> int:
    """Replace the whole document; returns its new version."""
    version = client.versions[uri] = client.versions[uri] + 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return version


def close(client: Client, uri: str) -> None:
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def diagnostics_for(client: Client, uri: str, version: int | None) -> list[types.Diagnostic]:
    """Wait until diagnostics for ``uri`` at ``version`` (None: any, for a file that is not open) arrive."""
    for _ in range(400):
        if uri in client.diagnostics and (version is None or client.published_version.get(uri) == version):
            return list(client.diagnostics[uri])
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    raise AssertionError(f"no diagnostics for {uri} v{version}")


async def diagnostics_when(
    client: Client, uri: str, version: int | None, condition: Any, notifications: int = 50
) -> list[types.Diagnostic]:
    """The first diagnostics for ``uri`` at ``version`` that satisfy ``condition`` (other projects that
    include the document may publish after the document's own lint)."""
    for _ in range(notifications):
        if uri in client.diagnostics and (version is None or client.published_version.get(uri) == version):
            found = list(client.diagnostics[uri])
            if condition(found):
                return found
        await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 30)
    raise AssertionError(f"diagnostics for {uri} v{version} never satisfied the condition: {client.diagnostics[uri]}")


async def next_diagnostics(client: Client, uri: str) -> list[types.Diagnostic]:
    """The next diagnostics published for ``uri`` (whatever was published before)."""
    client.diagnostics.pop(uri, None)
    return await diagnostics_for(client, uri, None)


def position_of(path_or_text: Path | str, needle: str, delta: int = 0, nth: int = 0) -> types.Position:
    """The LSP position (UTF-16 columns) of the ``nth`` occurrence of ``needle`` (+ delta code points)."""
    text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += delta
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    prefix = text[line_start:offset]
    return types.Position(line=line, character=len(prefix.encode("utf-16-le")) // 2)


def doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


def check_json(*paths: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """`tusk check --format json PATHS` (in this process), parsed."""
    import contextlib
    import io

    from tusklang.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["check", "--format", "json", *extra, *map(str, paths)])
    return json.loads(out.getvalue())


def check_places(*paths: Path, extra: tuple[str, ...] = ()) -> set[tuple[str, str, int]]:
    """(code, file, 0-based line) of everything `tusk check` reports; a spanless one sits on line 0 of the first."""
    report = check_json(*paths, extra=extra)
    places = set()
    for d in report["diagnostics"]:
        span = d["span"]
        file = str(Path(span["file"]).resolve()) if span else str(paths[0].resolve())
        places.add((d["code"], file, span["line"] - 1 if span else 0))
    return places


def lsp_places(client: Client, uris: list[str] | None = None) -> set[tuple[str, str, int]]:
    """(code, file, 0-based line) of everything the server has published (for ``uris``, or all)."""
    from urllib.parse import unquote, urlparse

    places = set()
    for uri, found in client.diagnostics.items():
        if uris is not None and uri not in uris:
            continue
        file = str(Path(unquote(urlparse(uri).path)).resolve())
        places.update((str(d.code), file, d.range.start.line) for d in found)
    return places
