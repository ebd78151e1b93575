"""The language server's settings, from one place: `tusk.error` / `tusk.ignore` act as `tusk check --error /
--ignore` (the CLI's severity policy), `tusk.envFile` as `--env-file`, and a setting that cannot be used is
said once (window/showMessage) instead of silently turning a check off."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import (
    ROOT,
    SERVER,
    SERVER_ENV,
    Client,
    check_places,
    diagnostics_for,
    diagnostics_when,
    doc,
    lsp_places,
    make_client,
    open_file,
    open_text,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
SETTINGS = ROOT / "fixtures" / "lsp" / "settings"
FLAGS = SETTINGS / "flags.tsk"
ENV_FILE = SETTINGS / "pct.env"


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    capabilities = types.ClientCapabilities(workspace=types.WorkspaceClientCapabilities(configuration=True))
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=SETTINGS.as_uri(),
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


def configure(client: Client, **tusk: object) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"tusk": tusk}))


async def test_ignore_and_error_act_as_the_cli_options(client: Client) -> None:
    uri = open_file(client, FLAGS)
    found = await diagnostics_for(client, uri, 1)
    assert [(d.code, d.severity) for d in found] == [("TSK406", types.DiagnosticSeverity.Warning)]
    assert lsp_places(client, [uri]) == check_places(FLAGS)

    client.diagnostics.pop(uri)
    configure(client, ignore=["TSK406"])
    assert await diagnostics_for(client, uri, 1) == []
    assert check_places(FLAGS, extra=("--ignore", "TSK406")) == set()

    client.diagnostics.pop(uri)
    configure(client, ignore=[], error=["tsk406"])  # any case, as on the command line
    (promoted,) = await diagnostics_for(client, uri, 1)
    assert (promoted.code, promoted.severity) == ("TSK406", types.DiagnosticSeverity.Error)


async def test_an_unknown_code_is_said_once_and_the_rest_still_applies(client: Client) -> None:
    uri = FLAGS.as_uri()
    client.messages.clear()
    client.diagnostics.pop(uri, None)
    configure(client, error=["TSK406", "TSK999"], ignore=[])
    (promoted,) = await diagnostics_for(client, uri, 1)
    assert promoted.severity == types.DiagnosticSeverity.Error  # TSK406 still promoted
    assert len(client.messages) == 1
    message = client.messages[0]
    assert message.type == types.MessageType.Warning
    assert "tusk.error TSK999: no such diagnostic code" in message.message


async def test_an_error_code_cannot_be_ignored_as_in_the_cli(client: Client) -> None:
    uri = FLAGS.as_uri()
    client.messages.clear()
    client.diagnostics.pop(uri, None)
    configure(client, error=[], ignore=["TSK301"])
    await diagnostics_for(client, uri, 1)
    assert any("tusk.ignore TSK301" in m.message and "cannot be ignored" in m.message for m in client.messages)


async def test_env_file_is_read_as_check_reads_it(client: Client) -> None:
    uri = FLAGS.as_uri()
    client.diagnostics.pop(uri, None)
    configure(client, error=[], ignore=[], envFile="pct.env")  # relative to the workspace folder
    found = await diagnostics_for(client, uri, 1)
    assert "TSK303" in [d.code for d in found]
    assert lsp_places(client, [uri]) == check_places(FLAGS, extra=("--env-file", str(ENV_FILE)))
    hover = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=position_of(FLAGS, "TUSK_LSP_PCT", 2))
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "`TUSK_LSP_PCT` is set" in hover.contents.value and "150" not in hover.contents.value

    client.diagnostics.pop(uri, None)
    configure(client, envFile="missing.env")
    await diagnostics_for(client, uri, 1)
    assert any("missing.env" in m.message for m in client.messages)

    client.diagnostics.pop(uri, None)
    configure(client, envFile="")
    assert [d.code for d in await diagnostics_for(client, uri, 1)] == ["TSK406"]


async def test_settings_are_pulled_when_the_client_only_says_they_changed(client: Client) -> None:
    uri = FLAGS.as_uri()
    client.set_configuration({"ignore": ["TSK406"], "error": [], "envFile": ""}, section="tusk")
    client.diagnostics.pop(uri, None)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    assert await diagnostics_for(client, uri, 1) == []


async def test_resolve_on_save_runs_the_directives_as_compile_does(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-resolve-on-save.tsk"
    open_text(client, uri, "owner = @env(TUSK_LSP_NEVER_SET)\n")
    assert await diagnostics_for(client, uri, 1) == []  # nothing runs while typing
    configure(client, resolveOnSave=True, ignore=[], error=[], envFile="")
    client.diagnostics.pop(uri, None)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=doc(uri)))
    found = await diagnostics_when(client, uri, 1, bool)
    assert [d.code for d in found] == ["TSK223"] and "TUSK_LSP_NEVER_SET" in found[0].message
    configure(client, resolveOnSave=False)
