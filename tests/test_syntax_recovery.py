"""Every broken line is reported, not just the first; recovery never invents errors after a broken structure."""

from __future__ import annotations

import pytest

import tusklang
from tusklang.syntax.recovery import MAX_ERRORS


def errors(text: str) -> list[tuple[str, int, int]]:
    with pytest.raises(tusklang.TuskError) as info:
        tusklang.parse(text, "t.tsk")
    return [(d.code, *d.span.source.position(d.span.start)) for d in info.value.diagnostics if d.span]


def test_independent_broken_lines_are_all_reported_in_order() -> None:
    text = "a = 1\nb = = 2\nc = 3\nd = @\ne = { f = 1 }\ng h = 4\n"
    found = errors(text)
    assert [(line, column) for _, line, column in found] == [(2, 5), (4, 5), (6, 3)]


def test_later_errors_render_the_original_line() -> None:
    with pytest.raises(tusklang.TuskError) as info:
        tusklang.parse('x = = 1\nname = "ok"\ny = )\n', "t.tsk")
    rendered = info.value.render()
    assert "x = = 1" in rendered and "y = )" in rendered


def test_an_unclosed_block_is_one_error_not_a_cascade() -> None:
    found = errors("a = {\n  b = 1\n  c = 2\n")
    assert len(found) == 1 and found[0][0] == "TSK103"


def test_a_broken_line_with_unbalanced_brackets_ends_the_search() -> None:
    # Blanking `b = [1, =` would leave the rest unbalanced: only the first error is certain.
    found = errors("a = 1\nb = [1, =\nc = = 3\n")
    assert len(found) == 1


def test_the_number_of_errors_is_bounded() -> None:
    text = "".join(f"k{i} = = {i}\n" for i in range(60))
    assert len(errors(text)) == MAX_ERRORS


def test_a_clean_file_still_parses_and_duplicates_are_all_reported() -> None:
    assert tusklang.loads("a = 1\nb = [1, 2]\n") == {"a": 1, "b": [1, 2]}
    found = errors("a = 1\na = 2\nb = 1\nb = 2\n")
    assert [code for code, _, _ in found] == ["TSK120", "TSK120"]


# --- parse_tolerant: parse's diagnostics, and a document anyway ------------------------------------

import random  # noqa: E402
from pathlib import Path  # noqa: E402

from tusklang.syntax import nodes  # noqa: E402
from tusklang.syntax.parser import parse, parse_tolerant  # noqa: E402

from .fixture_cases import invalid_cases, valid_cases  # noqa: E402


def keys(document: nodes.Document | None) -> list[str]:
    """The outline of a document: every key path, sections included, in source order."""
    assert document is not None
    found: list[str] = []

    def walk(members: tuple[nodes.Member | nodes.VarDef, ...], prefix: str) -> None:
        for member in members:
            if isinstance(member, nodes.VarDef):
                found.append(f"{prefix}${member.name}")
                continue
            found.append(prefix + member.key.dotted)
            if isinstance(member.value, nodes.Object):
                walk(member.value.members, f"{prefix}{member.key.dotted}.")

    walk(document.members, "")
    for section in document.sections:
        found.append(f"[{section.key.dotted}]")
        walk(section.members, f"{section.key.dotted}.")
    return found


def same(a: nodes.Document | None, b: nodes.Document) -> bool:
    """Equal trees (a span's repr is its position; sources differ by identity between two parses)."""
    assert a is not None
    return repr((a.members, a.sections, a.comments)) == repr((b.members, b.sections, b.comments))


def parse_diagnostics(text: str) -> list[tuple[str, str, int, int, str | None]]:
    try:
        parse(text, "t.tsk")
    except tusklang.TuskError as exc:
        return [shape(d) for d in exc.diagnostics]
    return []


def shape(d: tusklang.Diagnostic) -> tuple[str, str, int, int, str | None]:
    assert d.span is not None
    return (d.code, d.message, d.span.start, d.span.end, d.hint)


def tolerant(text: str) -> tuple[nodes.Document | None, list[tuple[str, str, int, int, str | None]]]:
    document, diagnostics = parse_tolerant(text, "t.tsk")
    return document, [shape(d) for d in diagnostics]


@pytest.mark.parametrize("path", invalid_cases() + valid_cases(), ids=lambda p: p.name)
def test_tolerant_reports_exactly_what_parse_raises(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    document, found = tolerant(text)
    assert found == parse_diagnostics(text)
    if not found:
        assert same(document, parse(text, "t.tsk"))


def test_a_duplicate_key_keeps_the_document_and_the_first_definition_wins() -> None:
    text = 'a = 1\nb = { x = 1, x = 2 }\na = 2\nc = "end"\n[s]\nk = 1\n[s]\nk = 2\n'
    document, found = tolerant(text)
    assert [code for code, *_ in found] == ["TSK120", "TSK120", "TSK120"]
    assert keys(document) == ["a", "b", "b.x", "c", "[s]", "s.k"]
    assert document is not None and document.members[0].value.value == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "broken",
    ["b = { enabled = ", "b = { enabled", "b = = 2", 'b = "unclosed', "b", "b = [1, ", "b = @env(", "b = 1 +"],
)
@pytest.mark.parametrize("where", ["top", "middle", "end"])
def test_a_half_typed_line_anywhere_leaves_the_rest_of_the_outline(broken: str, where: str) -> None:
    before = ["a = 1", "blk = {", "    inner = true", "}"]
    after = ["c = { d = 2 }", "[sec]", "e = 3"]
    lines = {"top": [broken, *before, *after], "middle": [*before, broken, *after], "end": [*before, *after, broken]}
    text = "\n".join(lines[where]) + "\n"
    document, found = tolerant(text)
    assert found and found == parse_diagnostics(text)
    outline = keys(document)
    for key in ("a", "blk", "blk.inner", "c", "c.d"):
        assert key in outline, (key, outline)
    assert "[sec]" in outline and ("sec.e" in outline or where == "end")


def test_the_recovered_document_points_into_the_original_text() -> None:
    text = 'a = 1\nb = = 2\nname = "kept"\n'
    document, _ = parse_tolerant(text, "t.tsk")
    assert document is not None and document.source.text == text
    member = document.members[-1]
    assert isinstance(member, nodes.Member) and member.key.span.text == "name"
    assert member.span.source.position(member.span.start) == (3, 1)


def test_an_unclosed_block_is_closed_where_its_indentation_ends() -> None:
    text = "a = {\n    b = {\n        x = 1\n    y = 2\n}\nz = 3\n"
    document, found = tolerant(text)
    assert [code for code, *_ in found] == ["TSK103"]
    assert keys(document) == ["a", "a.b", "a.b.x", "a.y", "z"]


def test_an_unclosed_array_is_closed_before_the_next_member() -> None:
    document, found = tolerant("xs = [1, 2\nb = 2\n")
    assert [code for code, *_ in found] == ["TSK103"]
    assert keys(document) == ["xs", "b"]
    assert document is not None and len(document.members[0].value.items) == 2  # type: ignore[union-attr]


def test_a_header_after_an_unclosed_block_starts_a_section() -> None:
    document, _ = tolerant('a = {\n    x = 1\n\n[db]\nhost = "h"\n')
    assert keys(document) == ["a", "a.x", "[db]", "db.host"]


def test_stray_and_skipped_constructs_keep_the_document() -> None:
    document, found = tolerant("a = 1\n}\nb = 2\n")
    assert [code for code, *_ in found] == ["TSK102"] and keys(document) == ["a", "b"]
    # An indented `- item` list is a value; a `- item` line without one (TSK110) is skipped.
    document, found = tolerant("a = 1\nlist:\n  - x\n  - y\nb = 2\n- z\nc = 3\n")
    assert found == parse_diagnostics("a = 1\nlist:\n  - x\n  - y\nb = 2\n- z\nc = 3\n")
    assert [code for code, *_ in found] == ["TSK110"] and keys(document) == ["a", "list", "b", "c"]


def test_a_clean_file_is_returned_without_diagnostics() -> None:
    document, found = parse_tolerant("a = 1\nb = { c = [1, 2] }\n")
    assert found == [] and same(document, parse("a = 1\nb = { c = [1, 2] }\n"))


def test_random_damage_never_raises_and_always_reports_what_parse_does() -> None:
    """Cut, drop and truncate lines of real fixtures: parse_tolerant never raises, matches parse, and
    recovers a document whenever some line of the file is intact."""
    rng = random.Random(14)
    texts = [p.read_text(encoding="utf-8") for p in valid_cases()[:40]]
    recovered = 0
    for round_ in range(300):
        lines = rng.choice(texts).splitlines()
        if not lines:
            continue
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            action = rng.choice(["cut", "drop", "dup"])
            if action == "cut":
                lines[i] = lines[i][: rng.randint(0, len(lines[i]))]
            elif action == "drop":
                del lines[i]
                if not lines:
                    lines = [""]
            else:
                lines.insert(i, lines[i])
        text = "\n".join(lines) + "\n"
        document, found = tolerant(text)
        assert found == parse_diagnostics(text), (round_, text)
        recovered += document is not None
    assert recovered >= 290


@pytest.mark.parametrize(
    ("name", "outline"),
    [
        (
            "unclosed_brace",
            ["feature_flags", "feature_flags.enabled", "feature_flags.storage", "feature_flags.storage.ttl"],
        ),
        (
            "unclosed_inner_block",
            [
                "flags",
                "flags.search",
                "flags.search.enabled",
                "flags.search.rollout",
                "flags.checkout",
                "flags.checkout.enabled",
            ],
        ),
        ("unclosed_inner_block_closer", ["flags", "flags.search", "flags.search.enabled"]),
        (
            "unclosed_inline_block",
            ["flags", "flags.beta", "flags.beta.enabled", "flags.search", "flags.search.enabled"],
        ),
        ("unclosed_block_before_section", ["server", "server.host", "server.port", "[database]", "database.url"]),
        ("unclosed_angle_inner", ["server", "server.tls", "server.tls.cert", "server.port"]),
        ("unclosed_array_before_member", ["flags", "flags.search", "flags.search.regions", "flags.search.enabled"]),
        ("unclosed_paren_before_member", ["region", "port"]),
        ("operator_before_member", ["port"]),
    ],
)
def test_the_recovered_document_closes_the_block_the_diagnostic_names(name: str, outline: list[str]) -> None:
    text = (Path(__file__).resolve().parent.parent / "fixtures" / "invalid" / f"{name}.tsk").read_text(encoding="utf-8")
    document, _ = tolerant(text)
    assert keys(document) == outline


def parse_errors(text: str) -> list[tusklang.Diagnostic]:
    with pytest.raises(tusklang.TuskError) as info:
        parse(text, "t.tsk")
    return info.value.diagnostics


def test_a_block_written_without_indentation_is_never_blamed_on_indentation() -> None:
    # No indentation anywhere: no evidence, so the innermost block open at the end is named, as before.
    [d] = parse_errors("a = {\nb = {\nx = 1\n}\n")
    assert d.code == "TSK103" and (d.span.line, d.span.column) == (1, 5) and not d.related  # type: ignore[union-attr]


def test_a_misaligned_but_closed_block_does_not_take_the_blame() -> None:
    text = "a = {\n    odd = {\n      x = 1\n  }\n    b = {\n        y = 1\n    c = 2\n}\n"
    [d] = parse_errors(text)
    assert (d.span.line, d.span.column) == (5, 9)  # type: ignore[union-attr]
    assert d.hint == "add the missing `}` before line 7"


def test_a_section_header_inside_an_unindented_block_is_still_a_misplaced_header() -> None:
    [d] = parse_errors("a = {\n[s]\n}\n")
    assert d.code == "TSK101"


def test_two_threads_parse_at_once_without_taking_each_others_spans() -> None:
    """A language server parses on more than one thread (index, linter fallback): each tree's spans
    must point into its own text."""
    import threading

    texts = {name: "".join(f"{name}{i} = {{ x = {i}, y = [1, 2] }}\n" for i in range(6000)) for name in "ab"}
    results: dict[str, nodes.Document | None] = {}

    def work(name: str) -> None:
        results[name] = parse_tolerant(texts[name], f"{name}.tsk")[0]

    threads = [threading.Thread(target=work, args=(name,)) for name in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    for document in results.values():
        assert document is not None
        for member in document.members:
            assert isinstance(member, nodes.Member)
            assert member.span.source is document.source and member.value.span.source is document.source


def test_an_unclosed_quote_does_not_swallow_the_outline() -> None:
    # The quote pairs with the next one lines below, so parse reports errors far away (strings may
    # span lines); the recovered document still has every member but the broken one.
    text = 'b = "abc\nfirst = { x = 1 }\nsecond = "two"\nthird = "2024-02-01"\nlast = 4\n'
    document, found = tolerant(text)
    assert found == parse_diagnostics(text) and found
    assert keys(document) == ["first", "first.x", "second", "third", "last"]


def test_a_file_broken_everywhere_still_gives_the_outline_before_the_last_repair() -> None:
    lines = [f"k{i} = {{ v = {i} }}" if i % 2 else f"k{i} = = {i}" for i in range(400)]
    document, found = tolerant("\n".join(lines) + "\n")
    assert len(found) == MAX_ERRORS and found == parse_diagnostics("\n".join(lines) + "\n")
    outline = keys(document)
    assert outline[:4] == ["k1", "k1.v", "k3", "k3.v"] and len(outline) >= 2 * 40


@pytest.mark.parametrize(
    ("text", "outline"),
    [
        ('a = 1\nb = "\ud800"\nc = 2\n', ["a", "c"]),  # TSK001, not a syntax error: reported as parse raises it
        ("a = 1\nb = " + "[" * 200 + "]" * 200 + "\nc = 2\n", ["a", "c"]),  # TSK112
        ("a = 1\r\nb = 2\rc = 3\r\nd = 4\r\n", ["a", "d"]),  # a lone carriage return
        ("[sec\nb = 1\n", ["b"]),
        ("a = {\n", ["a"]),
        ("}", []),
        ("", []),
    ],
    ids=["lone surrogate", "too deep", "lone CR", "bad header", "open brace at the end", "stray brace", "empty"],
)
def test_odd_inputs_still_give_a_document(text: str, outline: list[str]) -> None:
    document, found = tolerant(text)
    assert found == parse_diagnostics(text)
    assert keys(document) == outline
