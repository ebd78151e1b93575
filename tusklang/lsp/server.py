"""The pygls server: wires the pure features to LSP messages, and keeps the event loop free.

Nothing slow runs on the event loop. Diagnostics come from `diagnose` (what `tusk check` reports) in a lint
worker process, with stale jobs cancelled (worker.py), and are published per file (projects.py); each
document's index (the recovered AST, for the outline, hover, navigation and completion) is built on a
thread and used before it is current, positions mapped (documents.py); disk reads and the workspace scan
happen on other threads (workspace.py). Nothing with side effects runs on a keystroke: directives run on
save only when the client sets `tusk.resolveOnSave` (with `tusk.database` for @query).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, BinaryIO

import attrs
from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter

from .. import __version__
from ..diagnostics import TuskError
from ..format import format_text
from ..source import SourceFile
from . import actions, completion, hover, navigation, outline, transport
from .config import ServerConfig, environment
from .convert import offset_at, offset_range
from .documents import DocumentClosed, Documents, file_path
from .index import FileIndex
from .positions import Mapper, remap
from .projects import Projects
from .protocol import TuskProtocol
from .workspace import WorkspaceFiles, normalise

log = logging.getLogger(__name__)
_WATCHER_ID = "tusk-watch-tsk-files"
IDLE_COLLECTION_SECONDS = 60.0


class TuskLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "tusk-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=TuskProtocol,
            converter_factory=_converter,
        )
        self.config = ServerConfig()
        self.environ: Any = os.environ
        self.capabilities = types.ClientCapabilities()
        self.documents = Documents(lambda: self.workspace)
        self.projects = Projects(
            self.documents, lambda: self.config, self.text_document_publish_diagnostics, self.show_problems
        )
        self.files = WorkspaceFiles()
        self.disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tusk-lsp-disk")
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.idle_collection: asyncio.TimerHandle | None = None
        self.shown_problems: set[str] = set()
        self.background: set[asyncio.Future[None]] = set()

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

    def shutdown(self) -> None:
        self.projects.linter.stop()
        self.documents.shutdown()
        self.disk.shutdown(wait=False, cancel_futures=True)
        super().shutdown()

    @property
    def _tusk_protocol(self) -> TuskProtocol:
        assert isinstance(self.protocol, TuskProtocol)
        return self.protocol

    # --- settings ------------------------------------------------------------------------------

    def configure(self, raw: Any) -> None:
        before = self.config
        self.config = self.config.updated(raw)
        if self.config != before:
            self.shown_problems.clear()  # a problem fixed and made again is said again
        self.environ = environment(self.config)
        self.show_problems(self.config.problems)
        if self.config != before:
            self.projects.reproject()
            for uri in self.documents.uris():
                self.schedule(uri, delay=0)

    def show_problems(self, problems: Iterable[str]) -> None:
        for problem in problems:
            if problem not in self.shown_problems:
                self.shown_problems.add(problem)
                log.warning("settings: %s", problem)
                self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"tusk: {problem}"))

    async def pull_configuration(self) -> None:
        workspace = self.capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        try:
            answer = await self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="tusk")])
            )
        except Exception as exc:  # a client that advertises but fails: push settings still work
            log.info("workspace/configuration failed: %s", exc)
            return
        if answer and isinstance(answer[0], dict):
            self.configure({"tusk": answer[0]})

    def in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)  # the loop holds tasks weakly: keep it until it is done
        task.add_done_callback(self.background.discard)

    # --- edits, and when to lint ----------------------------------------------------------------

    def schedule(self, uri: str, delay: float | None = None) -> None:
        """Lint ``uri`` (and the projects that read it) after the debounce delay; index it when due."""
        self.collect_when_idle()
        previous = self.timers.pop(uri, None)
        if previous is not None:
            previous.cancel()
        wait = self.config.debounce_ms / 1000 if delay is None else delay
        self.timers[uri] = asyncio.get_running_loop().call_later(wait, self.refresh, uri)

    def refresh(self, uri: str) -> None:
        self.timers.pop(uri, None)
        if self.documents.is_open(uri):
            self.projects.edited(uri)
            self.documents.build_soon(uri)

    def reproject(self) -> None:
        if self.projects.reproject():
            for uri in self.documents.uris():
                self.schedule(uri, delay=0)

    def closed(self, uri: str) -> None:
        timer = self.timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self.documents.closed(uri)
        self.projects.closed(uri)

    def collect_when_idle(self) -> None:
        """(Re)arm the full collection that runs once the user has stopped editing for a while.

        Freezing (documents.py) also freezes whatever cyclic garbage exists at that moment; a full
        collection with everything unfrozen reclaims it. It costs as much as the pauses freezing avoids,
        so it waits for a quiet moment rather than running while the user types.
        """
        if self.idle_collection is not None:
            self.idle_collection.cancel()
        self.idle_collection = asyncio.get_running_loop().call_later(IDLE_COLLECTION_SECONDS, _collect)

    async def other_indexes(self, uri: str) -> list[tuple[str, FileIndex]]:
        """Every other `.tsk` file of the workspace: open ones as edited, the rest from disk (off the loop)."""
        opened = self.documents.uris()
        others = [other for other in opened if other != uri and other.endswith(".tsk")]
        built = await asyncio.gather(*(self.documents.index(other) for other in others), return_exceptions=True)
        for failure in built:
            if isinstance(failure, BaseException) and not isinstance(failure, DocumentClosed):
                raise failure
        indexes = [(other, index) for other, index in zip(others, built) if isinstance(index, FileIndex)]
        skip = set(self.documents.paths())
        on_disk = await asyncio.get_running_loop().run_in_executor(self.disk, self.files.indexes, skip)
        return indexes + on_disk


def _null_when_closed(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A request about a document the client closed while it waited is answered with null, as one about
    a document that was never open is (protocol.py)."""

    @functools.wraps(handler)
    async def answer(ls: TuskLanguageServer, params: Any) -> Any:
        try:
            return await handler(ls, params)
        except DocumentClosed:
            return None

    return answer


def _collect() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _converter() -> Any:
    converter = default_converter()
    converter.register_unstructure_hook(outline.Outline, lambda symbols: symbols)  # already JSON
    return converter


server = TuskLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: TuskLanguageServer, params: types.InitializeParams) -> None:
    ls.capabilities = params.capabilities
    root = file_path(params.root_uri) if params.root_uri else params.root_path
    if not root and params.workspace_folders:
        root = file_path(params.workspace_folders[0].uri)
    ls.config = ServerConfig(workspace_root=root)
    ls.configure(params.initialization_options or {})


@server.feature(types.INITIALIZED)
def on_initialized(ls: TuskLanguageServer, params: types.InitializedParams) -> None:
    # Synchronous for the reason on_configuration is: a didOpen read in the same chunk must find the
    # workspace roots set. Only the round trips to the client wait.
    ls.projects.start()  # now, so the worker has warmed up by the time the first document opens
    roots = [p for folder in (ls.workspace.folders or {}).values() if (p := file_path(folder.uri))]
    if not roots and ls.config.workspace_root:
        roots = [ls.config.workspace_root]
    if roots:
        ls.files.set_roots(roots)
        threading.Thread(target=ls.files.scan, name="tusk-lsp-scan", daemon=True).start()
    ls.in_background(_ask_the_client(ls))


async def _ask_the_client(ls: TuskLanguageServer) -> None:
    watched = ls.capabilities.workspace and ls.capabilities.workspace.did_change_watched_files
    if watched and watched.dynamic_registration:
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/*.tsk")]
        )
        registration = types.Registration(_WATCHER_ID, types.WORKSPACE_DID_CHANGE_WATCHED_FILES, options)
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
        except Exception as exc:
            log.info("could not register the file watcher: %s", exc)
    await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: TuskLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    # Synchronous on purpose: pygls starts a coroutine handler only on the next loop pass, after the
    # synchronous handlers of the messages read in the same chunk (a didSave sent right after this
    # notification would run with the old settings).
    if isinstance(params.settings, dict) and params.settings:
        ls.configure(params.settings)
    else:  # the notification only says "something changed": ask
        ls.in_background(ls.pull_configuration())


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def on_watched_files(ls: TuskLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        path = file_path(change.uri)
        if path is None or not path.endswith(".tsk"):
            continue
        path = normalise(path)
        if change.type == types.FileChangeType.Deleted:
            ls.files.remove(path)
        elif change.type == types.FileChangeType.Created:
            ls.files.add(path)
        if change.type != types.FileChangeType.Changed and ls.config.projects:
            ls.reproject()  # a pattern of tusk.projects may match one file more or less
        ls.files.changed(path)
        ls.projects.disk_changed(path)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: TuskLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = file_path(uri)
    if path is not None:
        ls.files.add(path)
    ls.schedule(uri, delay=0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TuskLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.documents.changed(uri, params.text_document.version, params.content_changes)
    ls.schedule(uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: TuskLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = file_path(uri)
    if path is not None:
        ls.files.add(path)
        ls.files.changed(path)
    if ls.config.resolve_on_save:
        ls.projects.lint(ls.projects.key_of(uri), execute=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TuskLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.closed(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@_null_when_closed
async def document_symbol(ls: TuskLanguageServer, params: types.DocumentSymbolParams) -> Any:
    uri = params.text_document.uri
    index, mapper = await ls.documents.view(uri)
    return remap(await ls.documents.outline(index), uri, mapper)


async def _target(
    ls: TuskLanguageServer, uri: str, pos: types.Position
) -> tuple[FileIndex, Mapper, tuple[str, str] | None]:
    index, mapper = await ls.documents.view(uri, pos)
    old = mapper.to_old(pos)
    assert old is not None  # view() guarantees it
    return index, mapper, navigation.target_at(index, offset_at(index.source, old))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@_null_when_closed
async def definition(ls: TuskLanguageServer, params: types.DefinitionParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None:
        return None
    others = await ls.other_indexes(uri) if target[0] not in ("variable", "file") else []
    return remap(navigation.definitions(*target, uri, index, others), uri, mapper) or None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
@_null_when_closed
async def references(ls: TuskLanguageServer, params: types.ReferenceParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None:
        return None
    others = await ls.other_indexes(uri) if target[0] != "variable" else []
    found = navigation.references(*target, uri, index, others, params.context.include_declaration)
    return remap(found, uri, mapper)


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
@_null_when_closed
async def prepare_rename(ls: TuskLanguageServer, params: types.PrepareRenameParams) -> types.Range | None:
    uri = params.text_document.uri
    index, mapper = await ls.documents.view(uri, params.position)
    old = mapper.to_old(params.position)
    assert old is not None
    offset = offset_at(index.source, old)
    ref = index.reference_at(offset)
    if ref is not None and ref.kind != "file":
        return remap(offset_range(index.source, ref.span.start, ref.span.end), uri, mapper)
    symbol = index.definition_at(offset)
    if symbol is not None and symbol.kind in ("segment", "environment", "gate", "variable"):
        return remap(offset_range(index.source, symbol.name_span.start, symbol.name_span.end), uri, mapper)
    return None


@server.feature(types.TEXT_DOCUMENT_RENAME)
@_null_when_closed
async def rename(ls: TuskLanguageServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None or target[0] == "file":
        return None
    others = await ls.other_indexes(uri) if target[0] != "variable" else []
    return remap(navigation.rename(*target, params.new_name, uri, index, others), uri, mapper)


@server.feature(types.TEXT_DOCUMENT_HOVER)
@_null_when_closed
async def on_hover(ls: TuskLanguageServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    index, mapper = await ls.documents.view(uri, params.position)
    old = mapper.to_old(params.position)
    assert old is not None
    offset = offset_at(index.source, old)
    ref = index.reference_at(offset)
    others: list[FileIndex] = []
    if ref is not None and ref.kind not in ("file", "variable"):
        others = [other for _, other in await ls.other_indexes(uri)]
    return remap(hover.hover(index, offset, others, ls.environ), uri, mapper)


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=["@", "$", '"', "=", " "]),
)
@_null_when_closed
async def on_completion(ls: TuskLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    """From the current text (the cursor is usually in what was just typed) and the newest index there is:
    only names and keys come from the index, so it never needs to be the current text's."""
    uri = params.text_document.uri
    text = ls.documents.get(uri).source
    index, _ = await ls.documents.view(uri)
    offset = offset_at(SourceFile(text), params.position)
    indexes = [index, *(other for _, other in await ls.other_indexes(uri))]
    return types.CompletionList(is_incomplete=False, items=completion.complete(text, offset, indexes))


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
@_null_when_closed
async def on_code_action(ls: TuskLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    rng = params.range
    diagnostics = list(params.context.diagnostics)
    # Never waits for a parse: editors ask at every cursor move, usually where the user just typed. A
    # diagnostic in text edited since is stale anyway; the quick fixes of the rest are offered.
    index, mapper = await ls.documents.view(uri, wait=False)
    old_diagnostics = [_moved(d, mapper) for d in diagnostics]
    start, end = mapper.to_old(rng.start), mapper.to_old(rng.end)
    old_range = types.Range(start=start, end=end) if start is not None and end is not None else None
    found = actions.code_actions(uri, index, old_range, [d for d in old_diagnostics if d is not None])
    return remap(_echo_client_diagnostics(found, diagnostics, old_diagnostics), uri, mapper)


def _moved(diagnostic: types.Diagnostic, mapper: Mapper) -> types.Diagnostic | None:
    start, end = mapper.to_old(diagnostic.range.start), mapper.to_old(diagnostic.range.end)
    if start is None or end is None:
        return None
    return attrs.evolve(diagnostic, range=types.Range(start=start, end=end))


def _echo_client_diagnostics(
    found: list[types.CodeAction],
    diagnostics: list[types.Diagnostic],
    moved: list[types.Diagnostic | None],
) -> list[types.CodeAction]:
    back = {id(m): d for m, d in zip(moved, diagnostics) if m is not None}
    for action in found:
        if action.diagnostics:
            action.diagnostics = [back.get(id(d), d) for d in action.diagnostics]
    return found


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@_null_when_closed
async def formatting(ls: TuskLanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    text = ls.documents.get(params.text_document.uri).source
    try:
        formatted = await asyncio.get_running_loop().run_in_executor(ls.documents.pool, format_text, text)
    except TuskError:
        return None  # a file that does not parse is left alone; its diagnostics say why
    if formatted == text:
        return []
    source = SourceFile(text)
    return [types.TextEdit(range=offset_range(source, 0, len(text)), new_text=formatted)]


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: TuskLanguageServer, params: None) -> None:
    ls.projects.linter.stop()


def start(tcp: tuple[str, int] | None = None) -> None:
    """Serve over stdio, or over TCP on (host, port). Raises OSError when the port cannot be bound."""
    # The event loop shares the GIL with the index thread: a short switch interval lets a request in
    # within a millisecond of arriving instead of five.
    sys.setswitchinterval(0.001)
    gc.freeze()  # what was imported lives as long as the process: no collection needs to walk it
    if tcp is not None:
        server.start_tcp(*tcp)
    else:
        server.start_io()
