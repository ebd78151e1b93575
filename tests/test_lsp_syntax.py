"""The language server on the constructs of issue 15 (docs/syntax.md) and the typed flags of issue 16.

A real client (pytest-lsp) talks to `tusk lsp` over stdio: the outline and hover on indentation blocks,
`- item` lists, foreign code, member chains, templates and bare references; completion and hover inside
`rules = [ { when = { ... } } ]` (lists of objects, `all` / `any` / `not` clauses, variants); and a
`tusk.projects` entry that is a directory, read as `tusk check DIR` reads it.
"""

from __future__ import annotations

import tempfile
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
    diagnostics_when,
    doc,
    make_client,
    open_text,
    position_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WORKDIR = Path(tempfile.mkdtemp(prefix="tusk-lsp-syntax-"))
ROOT = WORKDIR / "root"
ROOT.mkdir()

SYNTAX = """\
# the constructs of issue 15
storage:
    engine: "postgres"
    replica:
        region: "eu-north"
toppings:
  - olives
  - "sun-dried tomato"
stamp: php(strtoupper("a ) b"))
orders: @query("Orders").where("state", "open").count()
trace: @request.headers.x-trace-id
shared = @settings.tsk.get("mail.sender")
slug: "spring-sale"
url: `/sales/${slug}/`
path: slug + "/static"
levels [debug, info]
timeout: 45;
"""

FLAGS = """\
feature_flags {
    flags {
        checkout {
            variants = {
                compact = { value = { rows = 50 }, weight = 50 }
                roomy = { value = { rows = 20 }, weight = 50 }
            }
            rules = [
                {
                    id = "benelux"
                    when = { attribute = "country", op = "in", values = ["NL", "BE"] }
                    serve = "compact"
                }
                {
                    when = {
                        all = [
                            { attribute = "plan", op = "==", value = "pro" }
                            { not = { segment = "internal" } }
                        ]
                    }
                    serve = "roomy"
                }
            ]
        }
    }
}
"""


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVER, client_factory=make_client, server_env=SERVER_ENV),
)
async def client(lsp_client: Client):
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=ROOT.as_uri(),
            initialization_options={"tusk": {"debounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


def _open(client: Client, name: str, text: str) -> str:
    path = WORKDIR / name
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    open_text(client, uri, text)
    return uri


def _child(symbol: types.DocumentSymbol, name: str) -> types.DocumentSymbol:
    found = [c for c in symbol.children or [] if c.name == name]
    assert found, f"{name} not under {symbol.name}: {[c.name for c in symbol.children or []]}"
    return found[0]


async def _hover(client: Client, uri: str, text: str, needle: str, delta: int, nth: int = 0) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=doc(uri), position=position_of(text, needle, delta, nth))
    )
    assert result is not None, f"no hover on {needle!r}"
    assert isinstance(result.contents, types.MarkupContent)
    return result.contents.value


async def _labels(client: Client, uri: str, position: types.Position) -> list[str]:
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc(uri), position=position)
    )
    items = result.items if isinstance(result, types.CompletionList) else result or []
    return [item.label for item in items]


# --- outline ---------------------------------------------------------------------------------------


async def test_outline_of_the_new_constructs(client: Client) -> None:
    uri = _open(client, "outline.tsk", SYNTAX)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc(uri)))
    top = {s.name: s for s in symbols or [] if isinstance(s, types.DocumentSymbol)}
    assert list(top) == [
        "storage",
        "toppings",
        "stamp",
        "orders",
        "trace",
        "shared",
        "slug",
        "url",
        "path",
        "levels",
        "timeout",
    ]
    # an indentation block nests as a brace block does
    assert top["storage"].kind == types.SymbolKind.Object
    assert [c.name for c in top["storage"].children or []] == ["engine", "replica"]
    assert [c.name for c in _child(top["storage"], "replica").children or []] == ["region"]
    assert _child(top["storage"], "replica").selection_range.start == position_of(SYNTAX, "replica")
    # `- item` lists and `key [words]` are arrays
    assert (top["toppings"].kind, top["toppings"].detail) == (types.SymbolKind.Array, "2 items")
    assert (top["levels"].kind, top["levels"].detail) == (types.SymbolKind.Array, "2 items")
    # foreign code, member chains and directives are calls; the detail shows the code as written
    assert (top["stamp"].kind, top["stamp"].detail) == (types.SymbolKind.Function, 'php(strtoupper("a ) b"))')
    assert top["orders"].kind == types.SymbolKind.Function
    assert top["trace"].kind == types.SymbolKind.Function
    assert top["shared"].detail == '@settings.tsk.get("mail.sender")'
    assert (top["url"].kind, top["url"].detail) == (types.SymbolKind.String, "`/sales/${slug}/`")
    assert top["timeout"].kind == types.SymbolKind.Number
    close(client, uri)


# --- hover -----------------------------------------------------------------------------------------


async def test_hover_on_the_new_constructs(client: Client) -> None:
    uri = _open(client, "hover.tsk", SYNTAX)
    assert "`storage.replica.region`" in await _hover(client, uri, SYNTAX, "region", 2)
    assert "`toppings`" in await _hover(client, uri, SYNTAX, "toppings", 2)
    word = await _hover(client, uri, SYNTAX, "olives", 2)
    assert "**text** `olives`" in word
    foreign = await _hover(client, uri, SYNTAX, 'a ) b"', 1)
    assert "**foreign code** `php(...)`" in foreign and "Runtime-only" in foreign
    assert "**method call** `.where(...)`" in await _hover(client, uri, SYNTAX, "where", 2)
    assert "**method call** `.count()`" in await _hover(client, uri, SYNTAX, "count()", 2)
    assert "`@query(" in await _hover(client, uri, SYNTAX, '@query("Orders")', 2)
    runtime = await _hover(client, uri, SYNTAX, "x-trace-id", 2)
    assert "`@request.headers.x-trace-id`" in runtime and "Runtime only" in runtime
    dotted = await _hover(client, uri, SYNTAX, "settings.tsk", 2)
    assert "`@settings.tsk.get`" in dotted and "another TuskLang file" in dotted
    # a bare name and a template's `${...}` read an earlier key: hover shows it
    for needle in ("${slug}", 'slug + "'):
        reference = await _hover(client, uri, SYNTAX, needle, 3 if needle.startswith("$") else 1)
        assert "**key** `slug` reads `slug`" in reference and 'slug: "spring-sale"' in reference
    close(client, uri)


async def test_hover_on_an_unknown_bare_name_says_so(client: Client) -> None:
    text = "a: 1\nb: nope + 1\n"
    uri = _open(client, "unknown-name.tsk", text)
    assert "no key of this name is written before it" in await _hover(client, uri, text, "nope", 1)
    close(client, uri)


# --- flags: lists of objects, clauses, variants ------------------------------------------------------


async def test_hover_inside_rules_clauses_and_variants(client: Client) -> None:
    uri = _open(client, "flags-hover.tsk", FLAGS)
    when = await _hover(client, uri, FLAGS, "when", 1)
    assert "`feature_flags.flags.checkout.rules.when`" in when and "clause" in when
    op = await _hover(client, uri, FLAGS, 'op = "in"', 1)
    assert "The operator" in op and "`semver_ge`" in op
    assert "The context attribute tested." in await _hover(client, uri, FLAGS, 'attribute = "plan"', 1)
    assert "Clauses that must all hold." in await _hover(client, uri, FLAGS, "all = [", 1)
    assert "Segment name(s)." in await _hover(client, uri, FLAGS, "segment", 1)
    assert "The clause that must not hold." in await _hover(client, uri, FLAGS, "not = {", 1)
    assert "The variant served" in await _hover(client, uri, FLAGS, "serve", 1)
    assert "Share of the flag's split" in await _hover(client, uri, FLAGS, "weight", 1)
    close(client, uri)


def _with_cursor(old: str, new: str) -> tuple[str, int]:
    """FLAGS with ``old`` replaced by ``new``, whose `|` marks the cursor: (text, offset)."""
    text = FLAGS.replace(old, new, 1)
    return text.replace("|", "", 1), text.index("|")


_RULE_START = "            rules = [\n"
_CLAUSE = '{ attribute = "plan", op = "==", value = "pro" }\n'
_VARIANT = "compact = { value = { rows = 50 }, weight = 50 }\n"


@pytest.mark.parametrize(
    ("old", "new", "expected", "absent"),
    [
        # a new rule in the list: a rule's keys
        (_RULE_START, _RULE_START + "{\n|\n}\n", {"when", "serve", "rollout", "id"}, set()),
        # a new clause inside `all = [ ... ]`: a clause's keys
        (_CLAUSE, _CLAUSE + "{ | }\n", {"attribute", "op", "value", "values", "segment", "any", "not"}, set()),
        # inside `not = { ... }`
        ('{ not = { segment = "internal" } }', "{ not = {\n|\n} }", {"attribute", "op", "segment", "all"}, set()),
        # a variant written as an object, `weight` already there
        (_VARIANT, "compact = {\n weight = 50\n |\n }\n", {"value", "description"}, {"weight"}),
    ],
    ids=["rule", "clause-in-all", "clause-in-not", "variant"],
)
async def test_completion_of_keys_inside_lists_and_clauses(
    client: Client, old: str, new: str, expected: set[str], absent: set[str]
) -> None:
    text, offset = _with_cursor(old, new)
    uri = _open(client, "flags-keys.tsk", text)
    labels = set(await _labels(client, uri, position_of(text[:offset] + "|", "|")))
    assert expected <= labels and not absent & labels, labels
    close(client, uri)


async def test_completion_of_a_clause_operator(client: Client) -> None:
    text, offset = _with_cursor('op = "in", values', "op = |, values")
    uri = _open(client, "flags-values.tsk", text)
    ops = await _labels(client, uri, position_of(text[:offset] + "|", "|"))
    assert {"in", "not_in", "semver_ge", "matches", "exists"} <= set(ops)
    close(client, uri)


# --- tusk.projects: a directory --------------------------------------------------------------------


async def test_a_project_may_be_a_directory(client: Client) -> None:
    teams = ROOT / "teams"
    teams.mkdir(exist_ok=True)
    meta = 'metadata = { description = "d", owner = "o" }'
    requires = "requires = { search_v3 = true }"
    checkout = f"feature_flags = {{ flags = {{ checkout_v2 = {{ rollout_percentage = 25, {requires}, {meta} }} }} }}\n"
    (teams / "checkout.tsk").write_text(checkout, encoding="utf-8")
    (teams / "search.tsk").write_text(
        f"feature_flags = {{ flags = {{ search_v3 = {{ rollout_percentage = 50, {meta} }} }} }}\n", encoding="utf-8"
    )
    (teams / "plain.tsk").write_text('name = "a plain file beside the flags"\n', encoding="utf-8")
    uri = (teams / "checkout.tsk").as_uri()
    open_text(client, uri, checkout)
    alone = await diagnostics_for(client, uri, 1)
    assert [d.code for d in alone] == ["TSK343"]  # search_v3 is in another file
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"tusk": {"projects": [["teams/"]]}})
    )
    together = await diagnostics_when(client, uri, 1, lambda found: not found)
    assert together == []
    assert not [m for m in client.messages if "tusk.projects" in str(m)]
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"tusk": {"projects": []}}))
    close(client, uri)
