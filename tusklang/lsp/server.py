"""The pygls server: wires the pure features to LSP messages.

Diagnostics are debounced: each change restarts a short timer, and only the latest text is checked.
Nothing with side effects runs on a keystroke; `@env`/`@query`/`@file` are checked statically, and
resolved on save only when the client sets `tusk.resolveOnSave` (with `tusk.database` for @query).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..check import check_text
from ..diagnostics import Diagnostic, Severity, TuskError
from ..format import format_text
from ..source import SourceFile
from . import actions, completion, hover, navigation, transport
from .convert import offset_at, offset_range, to_lsp
from .index import FileIndex, build_index
from .protocol import TuskProtocol

log = logging.getLogger(__name__)
_MAX_WORKSPACE_FILES = 2000


@dataclass
class Settings:
    resolve_on_save: bool = False
    database: str | None = None
    debounce_ms: int = 25

    def update(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        tusk = raw.get("tusk", raw)
        if not isinstance(tusk, dict):
            return
        self.resolve_on_save = bool(tusk.get("resolveOnSave", self.resolve_on_save))
        database = tusk.get("database", self.database)
        self.database = database if isinstance(database, str) and database else None
        debounce = tusk.get("debounceMs", self.debounce_ms)
        if isinstance(debounce, int) and 0 <= debounce <= 2000:
            self.debounce_ms = debounce


class TuskLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "tusk-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=TuskProtocol,
        )
        self.settings = Settings()
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.indexes: dict[str, tuple[int | None, FileIndex]] = {}
        self.disk: dict[str, tuple[float, FileIndex]] = {}

    # --- transport: pygls' readers hang on a bad Content-Length; ours resynchronise (transport.py) ---

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        reader = transport.ThreadReader(stdin or sys.stdin.buffer)
        try:
            asyncio.run(transport.pump(reader.read, self._tusk_protocol, stop))
        except BrokenPipeError:
            log.error("the client closed the connection")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """One client over TCP (for debugging); the server stops when it disconnects. OSError if bind fails."""
        self._stop_event = stop = threading.Event()
        connected = False

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connected
            if connected:  # a second client would take over the first one's answers
                writer.close()
                return
            connected = True
            self.protocol.set_writer(writer)  # type: ignore[arg-type]  # StreamWriter.write is the sync kind
            await transport.pump(lambda: reader.read(transport.READ_CHUNK), self._tusk_protocol, stop)
            self.shutdown()

        async def listen() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            log.info("listening on %s:%s", host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(listen())
        except asyncio.CancelledError:
            pass  # shutdown() closed the listener

    @property
    def _tusk_protocol(self) -> TuskProtocol:
        assert isinstance(self.protocol, TuskProtocol)
        return self.protocol

    # --- indexes -------------------------------------------------------------------------------

    def index(self, uri: str) -> FileIndex:
        document = self.workspace.get_text_document(uri)
        cached = self.indexes.get(uri)
        if cached is not None and cached[0] == document.version and document.version is not None:
            return cached[1]
        built = build_index(document.source, _path(uri))
        self.indexes[uri] = (document.version, built)
        return built

    def other_indexes(self, uri: str) -> list[tuple[str, FileIndex]]:
        """Every other .tsk file of the workspace: open ones as edited, the rest from disk."""
        out: list[tuple[str, FileIndex]] = []
        open_uris = set(self.workspace.text_documents)
        for other in open_uris:
            if other != uri and other.endswith(".tsk"):
                out.append((other, self.index(other)))
        for path in self._workspace_files():
            file_uri = path.as_uri()
            if file_uri == uri or file_uri in open_uris:
                continue
            try:
                info = path.stat()
                if not stat.S_ISREG(info.st_mode):
                    continue  # a FIFO or device named *.tsk would block the read, and the server with it
                mtime = info.st_mtime
                cached = self.disk.get(file_uri)
                if cached is None or cached[0] != mtime:
                    cached = (mtime, build_index(path.read_text(encoding="utf-8"), str(path)))
                    self.disk[file_uri] = cached
            except (OSError, UnicodeDecodeError):
                continue
            out.append((file_uri, cached[1]))
        return out

    def _workspace_files(self) -> list[Path]:
        root = self.workspace.root_path
        if not root:
            return []
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
            files.extend(Path(dirpath) / f for f in filenames if f.endswith(".tsk"))
            if len(files) >= _MAX_WORKSPACE_FILES:
                break
        return files[:_MAX_WORKSPACE_FILES]

    # --- diagnostics ---------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float | None = None) -> None:
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        wait = self.settings.debounce_ms / 1000 if delay is None else delay
        self.pending[uri] = asyncio.get_running_loop().create_task(self._publish_later(uri, wait))

    async def _publish_later(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.pending.pop(uri, None)
        self.publish(uri)

    def publish(self, uri: str, extra: list[Diagnostic] | None = None) -> None:
        document = self.workspace.get_text_document(uri)
        path = _path(uri)
        found = check_text(document.source, path) + (extra or [])
        source = SourceFile(document.source, path)
        if "@file" in document.source:  # the index costs a second parse: only when it is needed
            index = self.index(uri)
            source = index.source
            found.extend(_static_file_checks(index, path, self.workspace.root_path))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[to_lsp(d, d.span.source if d.span else source, uri) for d in found],
            )
        )

    def resolve_on_save(self, uri: str) -> None:
        """Run the directives (the user asked for it in the settings) and publish what that finds."""
        extra: list[Diagnostic] = []
        try:
            from ..resolver import resolve_file_text
        except ImportError:
            resolve_file_text = None  # type: ignore[assignment]
        if resolve_file_text is not None:
            document = self.workspace.get_text_document(uri)
            options: dict[str, Any] = {}
            if self.settings.database:
                options["database"] = self.settings.database
            try:
                resolve_file_text(document.source, _path(uri), **options)
            except TuskError as exc:
                extra = exc.diagnostics
            except Exception as exc:  # a resolver failure must not take the editor down
                log.warning("resolve on save failed: %s", type(exc).__name__)
        self.publish(uri, extra)


def _path(uri: str) -> str | None:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def _static_file_checks(index: FileIndex, path: str | None, root: str | None) -> list[Diagnostic]:
    """`@file` targets are looked at, never read: missing files and files outside the workspace."""
    if path is None:
        return []
    found = []
    base = Path(path).parent
    for ref in index.references:
        if ref.kind != "file":
            continue
        target = (base / ref.name).resolve()
        if root and not target.is_relative_to(Path(root).resolve()):
            found.append(
                Diagnostic(
                    "TSK960",
                    f"`@file` target {ref.name!r} is outside the workspace; it is not read while editing",
                    ref.span,
                    Severity.INFO,
                    hint="enable `tusk.resolveOnSave` to resolve it on save",
                )
            )
        elif not target.exists():
            found.append(
                Diagnostic("TSK961", f"`@file` target {ref.name!r} does not exist", ref.span, Severity.WARNING)
            )
    return found


server = TuskLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: TuskLanguageServer, params: types.InitializeParams) -> None:
    ls.settings.update(params.initialization_options or {})


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: TuskLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    ls.settings.update(params.settings)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: TuskLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, delay=0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TuskLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: TuskLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    if ls.settings.resolve_on_save:
        ls.resolve_on_save(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TuskLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    task = ls.pending.pop(uri, None)
    if task is not None:
        task.cancel()
    ls.indexes.pop(uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: TuskLanguageServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    return navigation.document_symbols(ls.index(params.text_document.uri))


def _target(ls: TuskLanguageServer, uri: str, pos: types.Position) -> tuple[FileIndex, tuple[str, str] | None]:
    index = ls.index(uri)
    return index, navigation.target_at(index, offset_at(index.source, pos))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: TuskLanguageServer, params: types.DefinitionParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, target = _target(ls, uri, params.position)
    if target is None:
        return None
    return navigation.definitions(*target, uri, index, ls.other_indexes(uri)) or None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
def references(ls: TuskLanguageServer, params: types.ReferenceParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, target = _target(ls, uri, params.position)
    if target is None:
        return None
    return navigation.references(*target, uri, index, ls.other_indexes(uri), params.context.include_declaration)


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
def prepare_rename(ls: TuskLanguageServer, params: types.PrepareRenameParams) -> types.Range | None:
    index = ls.index(params.text_document.uri)
    offset = offset_at(index.source, params.position)
    ref = index.reference_at(offset)
    if ref is not None and ref.kind != "file":
        return offset_range(index.source, ref.span.start, ref.span.end)
    symbol = index.definition_at(offset)
    if symbol is not None and symbol.kind in ("segment", "environment", "gate", "variable"):
        return offset_range(index.source, symbol.name_span.start, symbol.name_span.end)
    return None


@server.feature(types.TEXT_DOCUMENT_RENAME)
def rename(ls: TuskLanguageServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    uri = params.text_document.uri
    index, target = _target(ls, uri, params.position)
    if target is None or target[0] == "file":
        return None
    return navigation.rename(*target, params.new_name, uri, index, ls.other_indexes(uri))


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: TuskLanguageServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    index = ls.index(uri)
    others = [other for _, other in ls.other_indexes(uri)]
    return hover.hover(index, offset_at(index.source, params.position), others)


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=["@", '"', "=", " "]),
)
def on_completion(ls: TuskLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    index = ls.index(uri)
    offset = offset_at(SourceFile(document.source), params.position)
    indexes = [index, *(other for _, other in ls.other_indexes(uri))]
    return types.CompletionList(is_incomplete=False, items=completion.complete(document.source, offset, indexes))


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
def on_code_action(ls: TuskLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    return actions.code_actions(uri, ls.index(uri), params.range, list(params.context.diagnostics))


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: TuskLanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    try:
        formatted = format_text(document.source)
    except TuskError:
        return None  # a file that does not parse is left alone; its diagnostics say why
    if formatted == document.source:
        return []
    source = SourceFile(document.source)
    return [types.TextEdit(range=offset_range(source, 0, len(document.source)), new_text=formatted)]


def start(tcp: tuple[str, int] | None = None) -> None:
    """Serve over stdio, or over TCP on (host, port). Raises OSError when the port cannot be bound."""
    if tcp is not None:
        server.start_tcp(*tcp)
    else:
        server.start_io()
