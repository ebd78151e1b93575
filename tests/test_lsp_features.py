"""Every language server feature, on a flag project and on a plain TuskLang file, each as written and with
a syntax error and/or a duplicate key elsewhere in the document (the state an editor's buffer is usually in).

A real client (pytest-lsp) talks to `tusk lsp` over stdio. The documents are fixtures/lsp/features/*.tsk;
the variants insert a half-typed block (`half = { enabled = `) between two top-level blocks, and a second
definition of a key that exists above it. Positions asked about lie before and after the damage.
"""

from __future__ import annotations

import tempfile
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
    check_places,
    close,
    diagnostics_for,
    doc,
    make_client,
    open_text,
    position_of,
)
from tusklang.format import format_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

FEATURES = ROOT / "fixtures" / "lsp" / "features"
WORKDIR = Path(tempfile.mkdtemp(prefix="tusk-lsp-features-"))
DOCUMENTS = WORKDIR / "documents"  # outside the workspace root: each test sees only its own document
DOCUMENTS.mkdir()
(WORKDIR / "root").mkdir()
_opened: list[str] = []
VARIANTS = ["clean", "syntax_error", "duplicate_key", "both"]
HALF_TYPED = "\nhalf = { enabled = \n"
_ANCHORS = {"flags": "\nab_testing_config", "plain": "\n[database]"}
_DUPLICATES = {
    "flags": ("    enabled = true\n", "    enabled = true\n    enabled = false\n"),
    "plain": ('name = "billing"\n', 'name = "billing"\nname = "again"\n'),
}


def variant_text(kind: str, variant: str, extra: str = "") -> str:
    text = (FEATURES / f"{kind}.tsk").read_text(encoding="utf-8") + extra
    if variant in ("duplicate_key", "both"):
        old, new = _DUPLICATES[kind]
        text = text.replace(old, new, 1)
    if variant in ("syntax_error", "both"):
        at = text.index(_ANCHORS[kind])
        text = text[:at] + HALF_TYPED + text[at:]
    return text


def open_variant(client: Client, kind: str, variant: str, feature: str, extra: str = "") -> tuple[str, str, Path]:
    """The variant, written to disk (so `tusk check` can read it) and opened: (uri, text, path)."""
    text = variant_text(kind, variant, extra)
    path = DOCUMENTS / f"{kind}-{variant}-{feature}.tsk"
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    open_text(client, uri, text)
    _opened.append(uri)
    return uri, text, path


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=(WORKDIR / "root").as_uri(),
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(autouse=True)
def _close_documents(client: Client):
    yield
    while _opened:
        close(client, _opened.pop())


both_kinds = pytest.mark.parametrize("kind", ["flags", "plain"])
each_variant = pytest.mark.parametrize("variant", VARIANTS)


def _child(symbol: types.DocumentSymbol, name: str) -> types.DocumentSymbol:
    found = [c for c in symbol.children or [] if c.name == name]
    assert found, f"{name} not under {symbol.name}: {[c.name for c in symbol.children or []]}"
    return found[0]


# --- diagnostics -----------------------------------------------------------------------------------


@both_kinds
@each_variant
async def test_diagnostics_are_what_tusk_check_reports(client: Client, kind: str, variant: str) -> None:
    uri, text, path = open_variant(client, kind, variant, "diagnostics")
    found = await diagnostics_for(client, uri, 1)
    expected = {(code, line) for code, _, line in check_places(path)}
    assert {(d.code, d.range.start.line) for d in found} == expected
    if variant == "clean" and kind == "flags":
        (typo,) = found
        assert typo.code == "TSK301" and typo.severity == types.DiagnosticSeverity.Error
        assert "did you mean `rollout_percentage`" in typo.message
        assert typo.range.start == position_of(text, "rollout_percentge")
    elif variant == "clean":
        assert found == []
    else:
        assert found and all(d.severity == types.DiagnosticSeverity.Error for d in found)


# --- outline ---------------------------------------------------------------------------------------


@each_variant
async def test_outline_of_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "outline")
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
    assert symbols
    top = {s.name: s for s in symbols if isinstance(s, types.DocumentSymbol)}
    assert top["$team"].kind == types.SymbolKind.Variable
    flag = _child(_child(top["feature_flags"], "flags"), "new_checkout")
    assert (flag.kind, flag.detail) == (types.SymbolKind.Boolean, "flag")
    assert flag.selection_range.start == position_of(text, "new_checkout")
    assert "rollout_strategy" in [c.name for c in flag.children or []]
    segment = _child(_child(_child(top["feature_flags"], "targeting"), "user_segments"), "beta_users")
    assert (segment.kind, segment.detail) == (types.SymbolKind.Class, "segment")
    # after the damage
    experiment = _child(_child(top["ab_testing_config"], "experiments"), "checkout_copy")
    assert (experiment.kind, experiment.detail) == (types.SymbolKind.Struct, "experiment")
    assert experiment.selection_range.start == position_of(text, "checkout_copy")


@each_variant
async def test_outline_of_a_plain_file_sections_blocks_keys_variables(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "outline")
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
    top = {s.name: s for s in symbols if isinstance(s, types.DocumentSymbol)}
    assert [name for name in top if name != "half"] == ["$port", "name", "server", "[database]"]
    assert top["$port"].kind == types.SymbolKind.Variable
    assert [c.name for c in top["server"].children or []] == ["host", "port", "tls"]
    assert [c.name for c in _child(top["server"], "tls").children or []] == ["enabled"]
    database = top["[database]"]
    assert database.kind == types.SymbolKind.Module
    assert [c.name for c in database.children or []] == ["host", "port", "pool"]
    assert [c.name for c in _child(database, "pool").children or []] == ["min", "max"]
    assert database.selection_range.start == position_of(text, "database]")


# --- hover -----------------------------------------------------------------------------------------


async def _hover(client: Client, uri: str, text: str, needle: str, delta: int, nth: int = 0) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=position_of(text, needle, delta, nth))
    )
    assert result is not None, f"no hover on {needle!r}"
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


@each_variant
async def test_hover_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "hover")
    key = await _hover(client, uri, text, "rollout_strategy", 3)
    assert "feature_flags.flags.new_checkout.rollout_strategy" in key
    assert all(v in key for v in ("percentage", "gradual", "user_preference", "invite_only"))
    reference = await _hover(client, uri, text, '"beta_users"', 3, nth=1)  # after the damage
    assert "**segment** `beta_users` — defined at `feature_flags.targeting.user_segments.beta_users`" in reference
    assert "beta_opt_in" in reference


@each_variant
async def test_hover_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "hover")
    variable = await _hover(client, uri, text, "max = $port", len("max = $p"))
    assert "**variable** `port`" in variable and "8080" in variable
    key = await _hover(client, uri, text, 'host = "db', 1)
    assert "`database.host`" in key


# --- definition and references ---------------------------------------------------------------------


@each_variant
async def test_definition_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "definition")
    found = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc(uri), position=position_of(text, '"beta_users"', 3, nth=1))
    )
    assert isinstance(found, list) and [(loc.uri, loc.range.start) for loc in found] == [
        (uri, position_of(text, "beta_users = {"))
    ]


@each_variant
async def test_definition_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "definition")
    found = await client.text_document_definition_async(
        types.DefinitionParams(text_document=doc(uri), position=position_of(text, "max = $port", len("max = $p")))
    )
    assert isinstance(found, list) and [(loc.uri, loc.range.start) for loc in found] == [
        (uri, position_of(text, "$port = 8080", 1))
    ]


@each_variant
async def test_references_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "references")
    found = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc(uri),
            position=position_of(text, "beta_users = {", 2),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert found is not None
    assert sorted(loc.range.start.line for loc in found if loc.uri == uri) == sorted(
        [
            position_of(text, "beta_users = {").line,
            position_of(text, '"beta_users"').line,
            position_of(text, '"beta_users"', nth=1).line,
        ]
    )


@each_variant
async def test_references_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "references")
    found = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc(uri),
            position=position_of(text, "$port = 8080", 2),
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert found is not None
    assert sorted(loc.range.start for loc in found) == sorted(
        [
            position_of(text, "$port = 8080", 1),
            position_of(text, "port = $port", len("port = $")),
            position_of(text, "max = $port", len("max = $")),
        ],
        key=lambda p: (p.line, p.character),
    )


# --- rename ----------------------------------------------------------------------------------------


def _apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        assert edit.range.start.line == edit.range.end.line
        line = lines[edit.range.start.line]
        lines[edit.range.start.line] = (
            line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
        )
    return "\n".join(lines)


@each_variant
async def test_rename_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "rename")
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=doc(uri), position=position_of(text, '"beta_users"', 3, nth=1), new_name="early_birds"
        )
    )
    assert edit is not None and edit.changes is not None and list(edit.changes) == [uri]
    renamed = _apply(text, edit.changes[uri])
    assert "beta_users" not in renamed
    assert renamed.count("early_birds = {") == 1 and renamed.count('"early_birds"') == 2


@each_variant
async def test_rename_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "rename")
    edit = await client.text_document_rename_async(
        types.RenameParams(
            text_document=doc(uri), position=position_of(text, "max = $port", len("max = $p")), new_name="listen"
        )
    )
    assert edit is not None and edit.changes is not None
    renamed = _apply(text, edit.changes[uri])
    assert "$port" not in renamed
    assert "$listen = 8080" in renamed and "port = $listen" in renamed and "max = $listen" in renamed


# --- completion ------------------------------------------------------------------------------------


async def _labels(client: Client, uri: str, position: types.Position) -> list[str]:
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=position)
    )
    items = result.items if isinstance(result, types.CompletionList) else result or []
    return [item.label for item in items]


@each_variant
async def test_completion_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "completion")
    values = await _labels(client, uri, position_of(text, "rollout_strategy = ", len("rollout_strategy = ")))
    assert {"percentage", "gradual", "user_preference", "invite_only"} <= set(values)
    at = position_of(text, 'user_segments = ["beta_users"]', len("user_segments = ["), nth=1)  # after the damage
    assert await _labels(client, uri, at) == ["beta_users"]


@each_variant
async def test_completion_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "completion")
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=position_of(text, "max = $port", len("max = $")))
    )
    items = result.items if isinstance(result, types.CompletionList) else result or []
    (port,) = [item for item in items if item.label == "$port"]
    assert isinstance(port.text_edit, types.TextEdit) and port.text_edit.new_text == "$port"
    assert port.text_edit.range.start == position_of(text, "max = $port", len("max = "))


# --- code actions ----------------------------------------------------------------------------------


async def _did_you_mean_fix(
    client: Client, uri: str, text: str, published: list[types.Diagnostic], code: str, written: str, message: str
) -> types.TextEdit:
    """The quick fix for the did-you-mean diagnostic: the one published, else (when the damage elsewhere
    stops the check, as `tusk check` stops) the one the editor still shows from before the damage."""
    diagnostic = next((d for d in published if d.code == code), None)
    if diagnostic is None:
        start = position_of(text, written)
        end = types.Position(line=start.line, character=start.character + len(written))
        diagnostic = types.Diagnostic(range=types.Range(start=start, end=end), message=message, code=code)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=doc(uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    fixes = [a for a in actions or [] if isinstance(a, types.CodeAction) and a.title.startswith("Replace")]
    assert len(fixes) == 1 and fixes[0].edit is not None and fixes[0].edit.changes is not None
    (edit,) = fixes[0].edit.changes[uri]
    return edit


@each_variant
async def test_code_action_in_a_flag_project(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "flags", variant, "actions")
    published = await diagnostics_for(client, uri, 1)
    message = "unknown key `rollout_percentge`\nhelp: did you mean `rollout_percentage`?"
    edit = await _did_you_mean_fix(client, uri, text, published, "TSK301", "rollout_percentge", message)
    assert edit.new_text == "rollout_percentage"
    assert edit.range.start == position_of(text, "rollout_percentge")
    assert edit.range.end == position_of(text, "rollout_percentge", len("rollout_percentge"))


@each_variant
async def test_code_action_in_a_plain_file(client: Client, variant: str) -> None:
    uri, text, _ = open_variant(client, "plain", variant, "actions", extra="alias = $prot\n")
    published = await diagnostics_for(client, uri, 1)
    if variant == "clean":
        assert [d.code for d in published] == ["TSK200"]
    message = "unknown variable `$prot`\nhelp: did you mean `$port`?"
    edit = await _did_you_mean_fix(client, uri, text, published, "TSK200", "$prot", message)
    assert edit.new_text == "$port"
    assert edit.range.start == position_of(text, "$prot")
    assert edit.range.end == position_of(text, "$prot", len("$prot"))


# --- formatting ------------------------------------------------------------------------------------


@both_kinds
@each_variant
async def test_formatting(client: Client, kind: str, variant: str) -> None:
    uri, text, _ = open_variant(client, kind, variant, "formatting")
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=doc(uri), options=types.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    if variant != "clean":
        # A document with an error is left as it is: formatting a recovered tree could drop what it left out.
        assert edits is None
        return
    expected = format_text(text)
    if expected == text:
        assert edits == []
    else:
        assert edits is not None and len(edits) == 1 and edits[0].new_text == expected
