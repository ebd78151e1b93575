"""`tusk lsp` end to end: a real LSP client (pytest-lsp) talking to the server over stdio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.lsp_client import (
    ROOT,
    SERVER,
    Client,
    diagnostics_for,
    make_client,
    open_file,
    open_text,
    position_of,
)

WORKSPACE = ROOT / "fixtures" / "lsp" / "workspace"
FLAGS = WORKSPACE / "flags.tsk"
EXPERIMENTS = WORKSPACE / "experiments.tsk"
EMOJI = ROOT / "fixtures" / "lsp" / "emoji.tsk"
SET_VARIABLE = "TUSK_LSP_TEST_SECRET"
SECRET_VALUE = "s3cr3t-value-never-shown"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(
        server_command=SERVER,
        client_factory=make_client,
        server_env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), SET_VARIABLE: SECRET_VALUE},
    ),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=WORKSPACE.as_uri(),
            initialization_options={"tusk": {"debounceMs": 10}},
        )
    )
    yield
    await lsp_client.shutdown_session()


# --- diagnostics ---------------------------------------------------------------------------------


async def test_diagnostic_columns_count_utf16_units_after_an_emoji(client: Client) -> None:
    uri = open_file(client, EMOJI)
    found = await diagnostics_for(client, uri, 1)
    assert [d.code for d in found] == ["TSK200"]
    line = EMOJI.read_text(encoding="utf-8").splitlines()[0]
    code_points = line.index("$missing")
    assert found[0].range.start == types.Position(line=0, character=code_points + 1)  # 🚀 is 2 units
    assert found[0].range.end.character == code_points + 1 + len("$missing")
    assert found[0].severity == types.DiagnosticSeverity.Error


async def test_diagnostics_follow_edits(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-edit.tsk"
    open_text(client, uri, "a = 1\n")
    assert await diagnostics_for(client, uri, 1) == []
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="a = 1\na = {\n")],
        )
    )
    broken = await diagnostics_for(client, uri, 2)
    assert broken and all(d.severity == types.DiagnosticSeverity.Error for d in broken)
    assert broken[0].range.start.line >= 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="a = 1\nb = 2\na = 3\n")],
        )
    )
    duplicate = await diagnostics_for(client, uri, 3)
    assert len(duplicate) == 1 and duplicate[0].range.start.line == 2


async def test_every_broken_line_is_underlined_at_once(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-many.tsk"
    open_text(client, uri, "a = 1\nb = = 2\nc = 3\nd = @\ne = 4\n")
    found = await diagnostics_for(client, uri, 1)
    assert [d.range.start.line for d in found] == [1, 3]
    assert all(d.severity == types.DiagnosticSeverity.Error for d in found)


# --- navigation ----------------------------------------------------------------------------------


async def test_document_symbols_outline_flags_segments_environments_gates(client: Client) -> None:
    uri = open_file(client, FLAGS)
    outline = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    defined: dict[str, list[str]] = {}

    def walk(symbols: list[types.DocumentSymbol]) -> None:
        for symbol in symbols:
            if symbol.detail in ("flag", "segment", "environment", "gate"):
                defined.setdefault(symbol.detail, []).append(symbol.name)
            walk(symbol.children or [])

    walk(outline)
    assert defined["flag"] == ["new_checkout_flow", "ai_recommendations", "dark_mode", "beta_features"]
    assert defined["segment"] == ["early_adopters", "power_users", "beta_program"]
    assert defined["environment"] == ["development", "staging", "production"]
    assert defined["gate"] == ["performance_gate", "business_gate"]


async def test_definition_of_a_segment_reference_in_another_file(client: Client) -> None:
    uri = open_file(client, EXPERIMENTS)
    found = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(EXPERIMENTS, '"early_adopters"', 3),
        )
    )
    assert isinstance(found, list) and len(found) == 1
    assert found[0].uri == FLAGS.as_uri()
    assert found[0].range.start == position_of(FLAGS, "early_adopters = {")


async def test_definition_of_a_variable_and_a_file_target(client: Client) -> None:
    uri = open_file(client, EXPERIMENTS)
    variable = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(EXPERIMENTS, "= $owner", 3)
        )
    )
    assert variable[0].range.start == position_of(EXPERIMENTS, "owner = ")
    target = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(EXPERIMENTS, '@file("flags.tsk', 9),
        )
    )
    assert [loc.uri for loc in target] == [FLAGS.as_uri()]


async def test_references_to_a_segment_across_files(client: Client) -> None:
    uri = open_file(client, FLAGS)
    found = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(FLAGS, "early_adopters = {", 2),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    places = sorted((Path(loc.uri).name, loc.range.start.line) for loc in found)
    assert places == sorted(
        [
            ("flags.tsk", position_of(FLAGS, "early_adopters = {").line),
            ("flags.tsk", position_of(FLAGS, '"early_adopters"').line),
            ("experiments.tsk", position_of(EXPERIMENTS, '"early_adopters"').line),
        ]
    )


async def test_rename_a_segment_updates_every_reference(client: Client) -> None:
    uri = open_file(client, EXPERIMENTS)
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(EXPERIMENTS, '"power_users"', 2),
            new_name="heavy_users",
        )
    )
    assert edit is not None and edit.changes is not None
    flags_text = FLAGS.read_text(encoding="utf-8")
    flags_edits = edit.changes[FLAGS.as_uri()]
    assert {e.range.start.line for e in flags_edits} == {
        position_of(flags_text, "power_users = {").line,
        position_of(flags_text, '"power_users"').line,
    }
    assert all(e.new_text == "heavy_users" for e in flags_edits)
    assert len(edit.changes[EXPERIMENTS.as_uri()]) == 1
    # The ranges cover the name only, so applying them keeps the quotes.
    first = flags_edits[0]
    assert first.range.end.character - first.range.start.character == len("power_users")


# --- hover ---------------------------------------------------------------------------------------


async def _hover_text(client: Client, path: Path, needle: str, delta: int) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=open_file(client, path)),
            position=position_of(path, needle, delta),
        )
    )
    assert result is not None
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def test_hover_on_a_key_shows_meaning_and_allowed_values(client: Client) -> None:
    text = await _hover_text(client, FLAGS, "rollout_strategy", 2)
    assert "rollout_strategy" in text
    for value in ("percentage", "gradual", "user_preference", "invite_only"):
        assert value in text


async def test_hover_on_a_segment_reference_shows_its_definition(client: Client) -> None:
    text = await _hover_text(client, EXPERIMENTS, '"power_users"', 2)
    assert "segment" in text and "session_frequency" in text


async def test_hover_on_env_says_whether_set_never_the_value(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-env.tsk"
    source = f'a = @env({SET_VARIABLE})\nb = @env(TUSK_LSP_SURELY_UNSET, "x")\n'
    open_text(client, uri, source)
    hovers = []
    for needle in (SET_VARIABLE, "TUSK_LSP_SURELY_UNSET"):
        result = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(source, needle, 1)
            )
        )
        assert result is not None and isinstance(result.contents, types.MarkupContent)
        hovers.append(result.contents.value)
    assert "is set" in hovers[0] and SECRET_VALUE not in hovers[0]
    assert "not set" in hovers[1]


# --- completion ----------------------------------------------------------------------------------


async def _complete(client: Client, uri: str, text: str, needle: str, delta: int) -> list[str]:
    open_text(client, uri, text)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_of(text, needle, delta)
        )
    )
    items = result.items if isinstance(result, types.CompletionList) else result or []
    return [item.label for item in items]


async def test_completion_offers_enum_values(client: Client) -> None:
    text = 'feature_flags = {\n    flags = {\n        f = {\n            rollout_strategy = "\n'
    labels = await _complete(client, "file:///tmp/c1.tsk", text, 'rollout_strategy = "', 20)
    assert {"percentage", "gradual", "user_preference", "invite_only"} <= set(labels)
    text = "real_time_feature_dashboard = {\n    widgets = {\n        w = {\n            type = \n"
    labels = await _complete(client, "file:///tmp/c2.tsk", text, "type = ", 7)
    assert {"counter", "line_chart", "gauge", "bar_chart", "list"} <= set(labels)


async def test_completion_offers_segment_names_where_a_reference_goes(client: Client) -> None:
    open_file(client, FLAGS)
    text = "x = {\n    targeting = {\n        user_segments = [\n"
    labels = await _complete(client, (WORKSPACE / "new.tsk").as_uri(), text, "user_segments = [", 17)
    assert labels == ["beta_program", "early_adopters", "power_users"]
    text = "x = {\n    targeting = {\n        environments = [\n"
    labels = await _complete(client, (WORKSPACE / "new2.tsk").as_uri(), text, "environments = [", 16)
    assert labels == ["development", "production", "staging"]


async def test_completion_offers_directives_and_keys(client: Client) -> None:
    labels = await _complete(client, "file:///tmp/c3.tsk", "a = @\n", "@", 1)
    assert {"env", "query", "file", "date"} <= set(labels)
    text = "feature_flags = {\n    flags = {\n        f = {\n            enabled = true\n            \n"
    labels = await _complete(client, "file:///tmp/c4.tsk", text, "true\n            ", 17)
    assert {"rollout_strategy", "targeting", "metadata"} <= set(labels)
    assert "enabled" not in labels  # already written in this block


# --- code actions and formatting -----------------------------------------------------------------


async def _the_one_replacement(client: Client, uri: str, found: list[types.Diagnostic]) -> types.TextEdit:
    """The edit of the single "Replace with ..." quick fix offered for the first diagnostic."""
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=found[0].range,
            context=types.CodeActionContext(diagnostics=found),
        )
    )
    fixes = [a for a in actions or [] if isinstance(a, types.CodeAction) and a.title.startswith("Replace")]
    assert len(fixes) == 1
    assert fixes[0].edit is not None and fixes[0].edit.changes is not None
    (edit,) = fixes[0].edit.changes[uri]
    return edit


async def test_did_you_mean_code_action_fixes_the_name(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-typo.tsk"
    source = '$owner = "team"\nx = $owenr\n'
    open_text(client, uri, source)
    found = await diagnostics_for(client, uri, 1)
    assert len(found) == 1
    edit = await _the_one_replacement(client, uri, found)
    assert edit.new_text == "$owner"
    assert edit.range.start == position_of(source, "$owenr")
    assert edit.range.end == position_of(source, "$owenr", len("$owenr"))


async def test_another_systems_operator_name_has_a_quick_fix_to_ours(client: Client) -> None:
    # A team moving from LaunchDarkly writes its operator names: the editor offers ours, quotes kept.
    uri = "file:///tmp/tusk-lsp-peer-op.tsk"
    source = (
        'feature_flags = {\n    flags = {\n        f = {\n            rules = [ { when = { attribute = "v", '
        'op = "semVerGreaterThan", value = "2.0.0" } } ]\n        }\n    }\n}\n'
    )
    open_text(client, uri, source)
    found = await diagnostics_for(client, uri, 1)
    assert [d.code for d in found] == ["TSK304"]
    edit = await _the_one_replacement(client, uri, found)
    assert edit.new_text == '"semver_gt"'
    assert edit.range.start == position_of(source, '"semVerGreaterThan"')


async def test_missing_metadata_code_action_adds_the_required_fields(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-meta.tsk"
    source = "feature_flags = {\n    flags = {\n        bare = {\n            enabled = true\n        }\n    }\n}\n"
    open_text(client, uri, source)
    at = position_of(source, "bare")
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=at, end=at),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    fixes = [a for a in actions or [] if isinstance(a, types.CodeAction) and "metadata" in a.title]
    assert len(fixes) == 1
    (edit,) = fixes[0].edit.changes[uri]
    lines = source.split("\n")
    lines.insert(edit.range.start.line, edit.new_text.rstrip("\n"))
    import tusklang

    data = tusklang.loads("\n".join(lines))
    assert data["feature_flags"]["flags"]["bare"]["metadata"] == {"description": "", "owner": ""}


async def test_formatting_returns_the_canonical_text(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-fmt.tsk"
    source = "a: 1 # one\nb >\n  c: 2\n<\n"
    open_text(client, uri, source)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == "a = 1 # one\nb = {\n    c = 2\n}\n"
    assert edits[0].range.start == types.Position(line=0, character=0)


async def test_unclosed_blocks_still_have_an_outline(client: Client) -> None:
    uri = "file:///tmp/tusk-lsp-broken.tsk"
    open_text(client, uri, "a = {\n  b = [1,\n")
    assert await diagnostics_for(client, uri, 1)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert [s.name for s in symbols] == ["a"]
    assert [c.name for c in symbols[0].children or []] == ["b"]
    await asyncio.sleep(0)
