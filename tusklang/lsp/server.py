"""The pygls server: wires the pure features to LSP messages, and keeps the event loop free.

Nothing slow runs on the event loop. Diagnostics come from `diagnose` (what `tusk check` reports) in a lint
worker process, with stale jobs cancelled (worker.py); each document's index (the recovered AST, for the
outline, hover, navigation and completion) is built on a thread, once per version; disk reads and the
workspace scan happen on other threads. Nothing with side effects runs on a keystroke: directives run on
save only when the client sets `tusk.resolveOnSave` (with `tusk.database` for @query).

Every open document is linted as a project of its own (with the files it includes). Diagnostics about an
included file are published on that file's URI; when several open projects say something about one file,
the union is published. When an open or on-disk file changes, every open project that includes it is
linted again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

import attrs
from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter

from .. import __version__
from .._gc import gc_paused
from ..diagnostics import TuskError
from ..format import format_text
from ..source import SourceFile
from . import actions, completion, hover, navigation, outline, transport
from .config import ServerConfig, environment, project_files
from .convert import offset_at, offset_range
from .diagnose import LintJob, LintResult
from .index import FileIndex, build_index
from .positions import Change, Mapper, remap
from .protocol import TuskProtocol
from .worker import Linter
from .workspace import WorkspaceFiles, normalise

log = logging.getLogger(__name__)
_WATCHER_ID = "tusk-watch-tsk-files"
_BUILD_AT_ONCE = 0.05  # seconds: a document whose index takes less is indexed after every edit
_MAX_MAPPED_EDITS = 32  # edits since the last index before the next is built without waiting for a pause
_ON_SAVE = "#resolved-on-save"  # the lint key of a project's resolve-on-save results
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
        self.linter = Linter(self._on_lint_result)
        self._linter_started = False
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.idle_collection: asyncio.TimerHandle | None = None
        self.indexes: dict[str, tuple[int | None, FileIndex]] = {}
        self.building: dict[str, asyncio.Future[tuple[int | None, FileIndex]]] = {}
        self.build_cost: dict[str, float] = {}  # seconds the last index of a document took
        self.build_timers: dict[str, asyncio.TimerHandle] = {}
        # uri -> the edits since its newest index: (version they made, the change; None for a whole-text one)
        self.edits: dict[str, list[tuple[int | None, Change | None]]] = {}
        self.files = WorkspaceFiles()
        self.projects: list[tuple[str, ...]] = []  # tusk.projects, patterns expanded (config.project_files)
        self.includes: dict[str, frozenset[str]] = {}  # lint key -> every file its project reads or names
        # lint key -> path -> (document version, diagnostics) from linting that project
        self.results: dict[str, dict[str, tuple[int | None, list[types.Diagnostic]]]] = {}
        self.uri_of: dict[str, str] = {}  # path -> the URI diagnostics for it go to
        self.shown_problems: set[str] = set()
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tusk-lsp-index")
        self.disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tusk-lsp-disk")

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
        self.linter.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
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
            self.reproject()
            for uri in self.open_uris():
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

    # --- documents and their indexes -----------------------------------------------------------

    def open_uris(self) -> list[str]:
        return list(self.workspace.text_documents)

    def path_of(self, uri: str) -> str:
        """The file path of a document (the URI itself for one that is not a file, e.g. `untitled:`)."""
        path = _path(uri)
        return normalise(path) if path is not None else uri

    def open_paths(self) -> dict[str, str]:
        return {self.path_of(uri): uri for uri in self.open_uris()}

    async def index(self, uri: str) -> FileIndex:
        """The index of the document as it is now: built on a thread, once per version."""
        wanted = self.workspace.get_text_document(uri).version
        while True:
            cached = self.indexes.get(uri)
            if cached is not None and _at_least(cached[0], wanted):
                return cached[1]
            build = self._ensure_build(uri)
            version, built = await asyncio.shield(build)
            if _at_least(version, wanted):
                return built

    async def view(self, uri: str, *positions: types.Position, wait: bool = True) -> tuple[FileIndex, Mapper]:
        """The newest index there is and the way from its text to the current one (positions.py), as long
        as none of ``positions`` lies in text edited since (with ``wait=False``: whatever they are); else
        the index of the current text, once built."""
        cached = self.indexes.get(uri)
        current = self.workspace.get_text_document(uri).version
        if cached is not None and cached[0] is not None and cached[0] != current:
            mapper = self.mapper(uri, cached[0])
            if mapper is not None and (not wait or all(mapper.to_old(p) is not None for p in positions)):
                self.build_soon(uri, postpone=False)
                return cached[1], mapper
        return await self.index(uri), Mapper(())

    def mapper(self, uri: str, since: int) -> Mapper | None:
        changes = []
        for version, change in self.edits.get(uri, ()):
            if version is None or version <= since:
                continue
            if change is None:
                return None
            changes.append(change)
        return Mapper(changes)

    def build_soon(self, uri: str, *, postpone: bool = True) -> None:
        """Index the current text once the user pauses for as long as the last build took.

        Requests meanwhile are answered from the previous index (`view`), so building after every
        keystroke would only compete with them for the interpreter: on a 20,000-line file a build is a
        few hundred milliseconds of pure Python. A small file (or many edits piled up, which make each
        mapping slower) is built at once.
        """
        cost = self.build_cost.get(uri, 0.0)
        if cost < _BUILD_AT_ONCE or len(self.edits.get(uri, ())) >= _MAX_MAPPED_EDITS:
            self._ensure_build(uri)
            return
        timer = self.build_timers.get(uri)
        if timer is not None:
            if not postpone:
                return
            timer.cancel()
        loop = asyncio.get_running_loop()
        self.build_timers[uri] = loop.call_later(cost, self._ensure_build, uri)

    def _ensure_build(self, uri: str) -> asyncio.Future[tuple[int | None, FileIndex]]:
        """The build in flight for ``uri``, or a new one of its current text: at most one at a time per document,
        so typing fast into a big file never queues up builds of texts that are already gone."""
        timer = self.build_timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        building = self.building.get(uri)
        if building is not None:
            return building
        document = self.workspace.get_text_document(uri)
        version, text, path = document.version, document.source, self.path_of(uri)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int | None, FileIndex]] = loop.run_in_executor(
            self.pool, _build, version, text, path
        )
        self.building[uri] = future
        started = loop.time()

        def done(fut: asyncio.Future[tuple[int | None, FileIndex]]) -> None:
            if self.building.get(uri) is fut:
                del self.building[uri]
            if fut.cancelled() or fut.exception() is not None:
                if not fut.cancelled():
                    log.error("indexing %s failed", uri, exc_info=fut.exception())
                return
            if uri not in self.workspace.text_documents:
                return
            self.build_cost[uri] = loop.time() - started
            self.indexes[uri] = fut.result()
            self.edits[uri] = [e for e in self.edits.get(uri, ()) if e[0] is None or e[0] > (version or 0)]
            if self.workspace.get_text_document(uri).version != version:
                self.build_soon(uri)  # edited while building

        future.add_done_callback(done)
        return future

    async def other_indexes(self, uri: str) -> list[tuple[str, FileIndex]]:
        """Every other `.tsk` file of the workspace: open ones as edited, the rest from disk (off the loop)."""
        others = [other for other in self.open_uris() if other != uri and other.endswith(".tsk")]
        opened = list(zip(others, await asyncio.gather(*(self.index(other) for other in others))))
        skip = {self.path_of(u) for u in self.open_uris()}
        loop = asyncio.get_running_loop()
        on_disk = await loop.run_in_executor(self.disk, self.files.indexes, skip)
        return opened + on_disk

    # --- linting -------------------------------------------------------------------------------

    def collect_when_idle(self) -> None:
        """(Re)arm the full collection that runs once the user has stopped editing for a while.

        Freezing (see `_build`) also freezes whatever cyclic garbage exists at that moment; a full
        collection with everything unfrozen reclaims it. It costs as much as the pauses freezing avoids,
        so it waits for a quiet moment rather than running while the user types.
        """
        if self.idle_collection is not None:
            self.idle_collection.cancel()
        self.idle_collection = asyncio.get_running_loop().call_later(IDLE_COLLECTION_SECONDS, _collect)

    def schedule(self, uri: str, delay: float | None = None) -> None:
        """Lint ``uri`` (and the open documents that include it) after the debounce delay."""
        self.collect_when_idle()
        previous = self.timers.pop(uri, None)
        if previous is not None:
            previous.cancel()
        wait = self.config.debounce_ms / 1000 if delay is None else delay
        self.timers[uri] = asyncio.get_running_loop().call_later(wait, self.refresh, uri)

    def refresh(self, uri: str) -> None:
        self.timers.pop(uri, None)
        if uri not in self.workspace.text_documents:
            return
        own = self.lint_key(uri)
        for key in self.includers_of(self.path_of(uri)):
            if key.endswith(_ON_SAVE):
                self.forget(key)  # what resolving found was about the text before this edit
            elif key != own:
                self.lint(key)
        self.lint(own)  # last: the linter takes the newest first
        self.build_soon(uri)

    # A lint key names a project: a document's URI (the document and what it includes), or
    # "project:N" for the N-th of `tusk.projects` (files checked together, as `tusk check A B` does).

    def lint_key(self, uri: str) -> str:
        path = self.path_of(uri)
        for n, files in enumerate(self.projects):
            if path in files:
                return f"project:{n}"
        return uri

    def project_paths(self, key: str) -> tuple[str, ...]:
        key = key.removesuffix(_ON_SAVE)
        if key.startswith("project:"):
            return self.projects[int(key.removeprefix("project:"))]
        return (self.path_of(key),)

    def alive(self, key: str) -> bool:
        """Whether a project is still linted: one of its documents is open."""
        key = key.removesuffix(_ON_SAVE)
        if not key.startswith("project:"):
            return key in self.workspace.text_documents
        n = int(key.removeprefix("project:"))
        return n < len(self.projects) and any(path in self.projects[n] for path in self.open_paths())

    def includers_of(self, path: str) -> list[str]:
        """The projects that read ``path`` (or name it in `@file`), their own files included."""
        return [key for key, files in self.includes.items() if path in files]

    def reproject(self) -> None:
        """`tusk.projects` (or the files its patterns match) changed: lint every open document again."""
        projects = project_files(self.config)
        if projects == self.projects:
            return
        self.projects = projects
        stale = [key for key in self.results if key.startswith("project:") or not self.alive(key)]
        for key in stale:
            self.forget(key)
        for uri in self.open_uris():
            self.schedule(uri, delay=0)

    def lint(self, key: str, *, execute: bool = False) -> None:
        if not self._linter_started:
            self._linter_started = True
            self.linter.start()
        versions: dict[str, int | None] = {}
        overlays: dict[str, str] = {}
        for other in self.open_uris():
            document = self.workspace.get_text_document(other)
            other_path = self.path_of(other)
            overlays[other_path] = document.source
            versions[other_path] = document.version
        job = LintJob(self.project_paths(key), overlays, self.config, execute=execute, versions=versions)
        # Resolving on save has a key of its own: the lint that follows the save must not replace it.
        self.linter.submit(key + _ON_SAVE if execute else key, job)

    def _on_lint_result(self, key: str, job: LintJob, result: LintResult) -> None:
        if not self.alive(key) or job.paths != self.project_paths(key):
            return
        self.show_problems(result.problems)

        def normal(path: str) -> str:
            return path if path in job.paths or not _is_path(path) else normalise(path)

        self.includes[key] = frozenset(normal(path) for path in result.files) | set(job.paths)
        fresh: dict[str, tuple[int | None, list[types.Diagnostic]]] = {}
        for path, found in result.by_path.items():
            fresh[normal(path)] = (job.versions.get(normal(path)), found)
        for path in job.paths:
            fresh.setdefault(path, (job.versions.get(path), []))
        previous = self.results.get(key, {})
        self.results[key] = fresh
        self.publish(set(previous) | set(fresh))

    def forget(self, key: str) -> None:
        """Drop a project's results (republishing what is left for its files) and any lint in flight."""
        self.linter.forget(key)
        self.includes.pop(key, None)
        gone = self.results.pop(key, {})
        self.publish(gone)

    def publish(self, paths: Iterable[str]) -> None:
        """Send what the open projects say about each of ``paths``: for an open document, only what was
        found in its newest text (a project that includes it and still has to be linted again would
        bring back problems already fixed), the union when several projects agree on that version."""
        opened = self.open_paths()
        for path in paths:
            uri = opened.get(path) or self.uri_of.get(path) or _uri_for_path(path)
            if uri is None:
                continue
            self.uri_of[path] = uri
            entries = [results[path] for results in self.results.values() if path in results]
            versions = [version for version, _ in entries if version is not None]
            newest = max(versions) if versions and path in opened else None
            seen: set[tuple[Any, ...]] = set()
            found: list[types.Diagnostic] = []
            for version, diagnostics in entries:
                if newest is not None and version != newest:
                    continue
                for d in diagnostics:
                    identity = (d.code, d.message, d.range.start.line, d.range.start.character, d.range.end.line)
                    if identity not in seen:
                        seen.add(identity)
                        found.append(d)
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=newest)
            )

    def closed(self, uri: str) -> None:
        timer = self.timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
        self.indexes.pop(uri, None)
        self.building.pop(uri, None)
        self.edits.pop(uri, None)
        self.build_cost.pop(uri, None)
        build_timer = self.build_timers.pop(uri, None)
        if build_timer is not None:
            build_timer.cancel()
        path = self.path_of(uri)
        key = self.lint_key(uri)
        if self.alive(key):
            self.lint(key)  # another file of its project is open: the closed one is read from disk now
        else:
            self.forget(key)
            self.forget(key + _ON_SAVE)
        self.publish({path})
        for other in self.includers_of(path):  # they read it from disk now
            if other != key and self.alive(other):
                self.lint(other)

    def disk_changed(self, path: str) -> None:
        """A file changed on disk (saved, or changed outside the editor): lint the open projects that read it."""
        self.files.changed(path)
        if path in self.open_paths():
            return  # its open text is what counts
        for key in self.includers_of(path):
            if self.alive(key):
                self.lint(key)


def _collect() -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _converter() -> Any:
    converter = default_converter()
    converter.register_unstructure_hook(outline.Outline, lambda symbols: symbols)  # already JSON
    return converter


def _build(version: int | None, text: str, path: str) -> tuple[int | None, FileIndex]:
    with gc_paused():
        index = build_index(text, path)
    # The index lives until the next one replaces it, and is freed then by reference counting (it holds no
    # cycle). Left to the collector, its million objects would be walked by each full collection: pauses
    # of 300 ms on a 20,000-line file, measured, on whichever thread triggers them (often the event
    # loop's). Frozen, no collection walks it; `collect_when_idle` sweeps what a freeze may have caught.
    gc.freeze()
    return version, index


def _outline(index: FileIndex) -> outline.Outline:
    with gc_paused():
        symbols = outline.document_symbols(index)
    gc.freeze()  # long-lived with its index: see _build
    return symbols


def _at_least(version: int | None, wanted: int | None) -> bool:
    return wanted is None or (version is not None and version >= wanted)


def _path(uri: str) -> str | None:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else None


def _is_path(text: str) -> bool:
    return not urlparse(text).scheme or len(urlparse(text).scheme) == 1  # a Windows drive letter is not a scheme


def _uri_for_path(path: str) -> str | None:
    if not _is_path(path):
        return None
    candidate = Path(path)
    return candidate.as_uri() if candidate.is_absolute() else None


server = TuskLanguageServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: TuskLanguageServer, params: types.InitializeParams) -> None:
    ls.capabilities = params.capabilities
    root = _path(params.root_uri) if params.root_uri else params.root_path
    if not root and params.workspace_folders:
        root = _path(params.workspace_folders[0].uri)
    ls.config = ServerConfig(workspace_root=root)
    ls.configure(params.initialization_options or {})


@server.feature(types.INITIALIZED)
async def on_initialized(ls: TuskLanguageServer, params: types.InitializedParams) -> None:
    if not ls._linter_started:
        ls._linter_started = True
        ls.linter.start()  # now, so the worker has warmed up by the time the first document opens
    roots = [p for folder in (ls.workspace.folders or {}).values() if (p := _path(folder.uri))]
    if not roots and ls.config.workspace_root:
        roots = [ls.config.workspace_root]
    if roots:
        ls.files.set_roots(roots)
        threading.Thread(target=ls.files.scan, name="tusk-lsp-scan", daemon=True).start()
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
async def on_configuration(ls: TuskLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    if isinstance(params.settings, dict) and params.settings:
        ls.configure(params.settings)
    else:  # the notification only says "something changed": ask
        await ls.pull_configuration()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def on_watched_files(ls: TuskLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
    for change in params.changes:
        path = _path(change.uri)
        if path is None or not path.endswith(".tsk"):
            continue
        path = normalise(path)
        if change.type == types.FileChangeType.Deleted:
            ls.files.remove(path)
        elif change.type == types.FileChangeType.Created:
            ls.files.add(path)
        if change.type != types.FileChangeType.Changed and ls.config.projects:
            ls.reproject()  # a pattern of tusk.projects may match one file more or less
        ls.disk_changed(path)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: TuskLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = _path(uri)
    if path is not None:
        ls.files.add(path)
    ls.schedule(uri, delay=0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TuskLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    edits = ls.edits.setdefault(uri, [])
    edits.extend((params.text_document.version, Change.of(change)) for change in params.content_changes)
    ls.schedule(uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: TuskLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = _path(uri)
    if path is not None:
        ls.files.add(path)
        ls.files.changed(path)
    if ls.config.resolve_on_save:
        ls.lint(ls.lint_key(uri), execute=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TuskLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.closed(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
async def document_symbol(ls: TuskLanguageServer, params: types.DocumentSymbolParams) -> Any:
    uri = params.text_document.uri
    index, mapper = await ls.view(uri)
    if index.outline is None:  # built on the index thread, once per index: it is most of the work
        index.outline = await asyncio.get_running_loop().run_in_executor(ls.pool, _outline, index)
    return remap(index.outline, uri, mapper)


async def _target(
    ls: TuskLanguageServer, uri: str, pos: types.Position
) -> tuple[FileIndex, Mapper, tuple[str, str] | None]:
    index, mapper = await ls.view(uri, pos)
    old = mapper.to_old(pos)
    assert old is not None  # view() guarantees it
    return index, mapper, navigation.target_at(index, offset_at(index.source, old))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
async def definition(ls: TuskLanguageServer, params: types.DefinitionParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None:
        return None
    others = await ls.other_indexes(uri) if target[0] not in ("variable", "file") else []
    return remap(navigation.definitions(*target, uri, index, others), uri, mapper) or None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
async def references(ls: TuskLanguageServer, params: types.ReferenceParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None:
        return None
    others = await ls.other_indexes(uri) if target[0] != "variable" else []
    found = navigation.references(*target, uri, index, others, params.context.include_declaration)
    return remap(found, uri, mapper)


@server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
async def prepare_rename(ls: TuskLanguageServer, params: types.PrepareRenameParams) -> types.Range | None:
    uri = params.text_document.uri
    index, mapper = await ls.view(uri, params.position)
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
async def rename(ls: TuskLanguageServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
    uri = params.text_document.uri
    index, mapper, target = await _target(ls, uri, params.position)
    if target is None or target[0] == "file":
        return None
    others = await ls.other_indexes(uri) if target[0] != "variable" else []
    return remap(navigation.rename(*target, params.new_name, uri, index, others), uri, mapper)


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def on_hover(ls: TuskLanguageServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    index, mapper = await ls.view(uri, params.position)
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
async def on_completion(ls: TuskLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    """From the current text (the cursor is usually in what was just typed) and the newest index there is:
    only names and keys come from the index, so it never needs to be the current text's."""
    uri = params.text_document.uri
    text = ls.workspace.get_text_document(uri).source
    index, _ = await ls.view(uri)
    offset = offset_at(SourceFile(text), params.position)
    indexes = [index, *(other for _, other in await ls.other_indexes(uri))]
    return types.CompletionList(is_incomplete=False, items=completion.complete(text, offset, indexes))


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
async def on_code_action(ls: TuskLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    rng = params.range
    diagnostics = list(params.context.diagnostics)
    # Never waits for a parse: editors ask at every cursor move, usually where the user just typed. A
    # diagnostic in text edited since is stale anyway; the quick fixes of the rest are offered.
    index, mapper = await ls.view(uri, wait=False)
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
async def formatting(ls: TuskLanguageServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    text = ls.workspace.get_text_document(params.text_document.uri).source
    try:
        formatted = await asyncio.get_running_loop().run_in_executor(ls.pool, format_text, text)
    except TuskError:
        return None  # a file that does not parse is left alone; its diagnostics say why
    if formatted == text:
        return []
    source = SourceFile(text)
    return [types.TextEdit(range=offset_range(source, 0, len(text)), new_text=formatted)]


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: TuskLanguageServer, params: None) -> None:
    ls.linter.stop()


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
