"""The parser's documented limits (docs/syntax.md, Limits): nesting depth, integer size, odd text.

Each limit turns an input that used to raise RecursionError or ValueError (or hang) into a positioned
TuskError; data just inside each limit still parses, and what the parser accepts can be walked
recursively by every later stage.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tusklang
from tusklang.check import check_text
from tusklang.diagnostics import TuskError
from tusklang.format import format_text
from tusklang.limits import MAX_DEPTH, MAX_INT_DIGITS
from tusklang.safejson import depth_exceeds
from tusklang.syntax import lexer, nodes

ROOT = Path(__file__).resolve().parent.parent


def first_error(text: str) -> tuple[str, str, int]:
    """(code, the text under the span, offset) of the first diagnostic of parsing ``text``."""
    with pytest.raises(TuskError) as info:
        tusklang.parse(text, "t.tsk")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.span is not None
    return diagnostic.code, diagnostic.span.text, diagnostic.span.start


def tree_depth(document: nodes.Document) -> int:
    """The level of the deepest container or operator node (the document is 1), walked iteratively."""
    deepest = 1
    work: list[tuple[Any, int]] = [(m, 1) for m in document.members]
    for section in document.sections:
        level = 1 + len(section.key.parts)
        deepest = max(deepest, level)
        work.extend((m, level) for m in section.members)
    while work:
        item, level = work.pop()
        if isinstance(item, nodes.Member | nodes.VarDef):  # (member, level of its object)
            parts = len(item.key.parts) if isinstance(item, nodes.Member) else 1
            deepest = max(deepest, level + parts - 1)
            work.append((("value", item.value), level + parts))
            continue
        _, node = item  # (("value", node), level the node sits at)
        kind = type(node)
        if kind is nodes.Object:
            children: list[Any] = [(m, level) for m in node.members]
        elif kind is nodes.Array:
            children = [(("value", v), level + 1) for v in node.items]
        elif kind is nodes.Binary:
            children = [(("value", node.left), level + 1), (("value", node.right), level + 1)]
        elif kind is nodes.Unary:
            children = [(("value", node.operand), level + 1)]
        elif kind is nodes.Ternary:
            children = [(("value", v), level + 1) for v in (node.condition, node.then, node.otherwise)]
        elif kind is nodes.Directive and node.args is not None:
            children = [(("value", a), level + 1) for a in node.args if not isinstance(a, nodes.Bare)]
        else:
            continue
        deepest = max(deepest, level)
        work.extend(children)
    return deepest


# --- nesting: every kind, at the limit and one past it ---------------------------------------------

# name -> (text with `depth` levels below the document, the text the error must point at)
SHAPES = {
    "object": (lambda d: "k = " + "{ k = " * d + "1" + " }" * d, "{"),
    "object lines": (lambda d: "".join(f"k{i} {{\n" for i in range(d)) + "x = 1\n" + "}\n" * d, "{"),
    "array": (lambda d: "k = " + "[" * d + "]" * d, "["),
    "array of strings": (lambda d: "k = " + "[" * (d - 1) + '["a", "b"]' + "]" * (d - 1), "["),
    "parentheses": (lambda d: "k = " + "(" * d + "1" + ")" * d, "("),
    "directive arguments": (lambda d: "k = " + "@f(" * d + ")" * d, "("),
    "angle block": (lambda d: "k >\n" * d + "x = 1\n" + "<\n" * d, "k >"),
    "plus chain": (lambda d: "k = " + " + ".join(["1"] * (d + 1)), "+"),
    "bang run": (lambda d: "k = " + "!" * d + "true", "!"),
    "ternary chain": (lambda d: "k = " + "true ? 1 : " * d + "2", "?"),
    "and chain": (lambda d: "k = " + " && ".join(["true"] * (d + 1)), "&&"),
}


@pytest.mark.parametrize("name", SHAPES)
def test_nesting_at_the_limit_parses_and_one_more_level_is_tsk112_at_the_crossing_token(name: str) -> None:
    build, crossing = SHAPES[name]
    at_limit = build(MAX_DEPTH - 1)  # levels below the document, which is level 1
    document = tusklang.parse(at_limit)
    assert tree_depth(document) <= MAX_DEPTH
    data = tusklang.loads(at_limit) if name != "directive arguments" else None
    assert data is None or not depth_exceeds(data)
    assert format_text(at_limit)  # the formatter walks it recursively too
    code, under_span, _ = first_error(build(MAX_DEPTH))
    assert code == "TSK112"
    assert under_span.startswith(crossing), (name, under_span)


def test_dotted_keys_and_section_headers_count_their_parts() -> None:
    key = ".".join(["a"] * MAX_DEPTH)  # objects at levels 2..128, then the value
    assert tusklang.loads(f"{key} = 1\n")
    code, under_span, offset = first_error(f"{key}.a = 1\n")
    assert (code, under_span, offset) == ("TSK112", "a", 2 * (MAX_DEPTH - 1))
    # Under a header, members start that much deeper; in a nested object, deeper still.
    header = ".".join(["s"] * (MAX_DEPTH - 1))
    assert tusklang.loads(f"[{header}]\nx = 1\n")
    assert first_error(f"[{header}]\nx = {{}}\n")[0] == "TSK112"
    assert first_error(f"[{header}.s]\nx = 1\n")[0] == "TSK112"
    assert first_error("k = { " + ".".join(["a"] * MAX_DEPTH) + " = 1 }")[0] == "TSK112"


def test_levels_add_up_across_kinds() -> None:
    half = MAX_DEPTH // 2
    # A sum of deep arrays: the operator sits above the tallest operand.
    deep = "[" * (half - 1) + "]" * (half - 1)
    assert tusklang.parse("k = " + " + ".join([deep] * half))
    assert first_error("k = " + " + ".join([deep] * (half + 2)))[0] == "TSK112"
    # Operators after a closed bracket still count against what the bracket held.
    text = "k = " + "(" * half + " + ".join(["1"] * half) + ")" * half + " + 1" * half
    assert first_error(text)[0] == "TSK112"
    # Each `(1 == ` is two levels: a parenthesis and an operator.
    assert tusklang.loads("k = " + "(1 == " * (half - 1) + "1" + ")" * (half - 1))
    assert first_error("k = " + "(1 == " * half + "1" + ")" * half)[1] == "=="


def test_depth_100000_of_every_kind_fails_fast_everywhere() -> None:
    start = time.perf_counter()
    for name, (build, _) in SHAPES.items():
        text = build(100_000)
        for run in (tusklang.parse, tusklang.loads, format_text):
            with pytest.raises(TuskError) as info:
                run(text)
            assert info.value.diagnostics[0].code == "TSK112", name
        assert check_text(text)[0].code == "TSK112"
    assert time.perf_counter() - start < 20


# With a small limit, random soups of brackets and operators reach it: whatever is accepted must be
# no deeper than the limit (the lexer's count is an upper bound), and for plain data the count is exact.
SOUP = ["{ k = ", "k = ", "}", "[", "]", "(", ")", "1", " + ", "!", " ? ", " : ", " && ", ", ", "@f(", "\n", "a.b = "]


@given(st.lists(st.sampled_from(SOUP), max_size=30).map(lambda parts: "k = " + "".join(parts)))
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_anything_accepted_is_no_deeper_than_the_limit(text: str) -> None:
    limit = 5
    original = lexer.MAX_DEPTH
    lexer.MAX_DEPTH = limit
    try:
        document = tusklang.parse(text)
    except TuskError:
        return
    finally:
        lexer.MAX_DEPTH = original
    assert tree_depth(document) <= limit


data_trees = st.recursive(
    st.integers(0, 9),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from("xyz"), data_trees, max_size=3))
@settings(max_examples=400)
def test_plain_data_is_refused_exactly_when_its_json_is_too_deep(data: dict[str, Any]) -> None:
    limit = 4
    text = tusklang.dumps(data)
    original = lexer.MAX_DEPTH
    lexer.MAX_DEPTH = limit
    try:
        accepted = tusklang.loads(text) == data
    except TuskError as exc:
        assert exc.diagnostics[0].code == "TSK112"
        accepted = False
    finally:
        lexer.MAX_DEPTH = original
    assert accepted == (not depth_exceeds(data, limit))


def test_recovery_reports_a_too_deep_line_and_goes_on() -> None:
    text = "a = " + "[" * 200 + "]" * 200 + "\nb = 1\nc = = 2\n"
    with pytest.raises(TuskError) as info:
        tusklang.parse(text)
    found = [(d.code, d.span.line) for d in info.value.diagnostics if d.span is not None]
    assert found[0] == ("TSK112", 1) and found[1][1] == 3 and len(found) == 2


# --- dumps refuses what loads would refuse --------------------------------------------------------


def nested(levels: int, container: str) -> dict[str, Any]:
    """A document ``levels`` JSON levels deep (the top-level object is level 1)."""
    value: Any = {} if container == "object" else []
    for _ in range(levels - 2):
        value = {"k": value} if container == "object" else [value]
    return {"k": value}


@pytest.mark.parametrize("container", ["object", "array"])
def test_dumps_writes_data_at_the_limit_and_refuses_deeper(container: str) -> None:
    data = nested(MAX_DEPTH, container)
    assert not depth_exceeds(data)
    assert tusklang.loads(tusklang.dumps(data)) == data
    too_deep = nested(MAX_DEPTH + 1, container)
    assert depth_exceeds(too_deep)
    with pytest.raises(TuskError) as info:
        tusklang.dumps(too_deep)
    assert info.value.diagnostics[0].code == "TSK130"


def test_dumps_refuses_data_that_contains_itself_and_values_no_file_can_hold() -> None:
    loop: list[Any] = []
    loop.append(loop)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    for data in (
        {"a": loop},
        cycle,
        {"a": 10**4300},
        {"a": -(10**MAX_INT_DIGITS)},
        {"a": "\ud800"},
        {"\udfff": 1},
        {"a": float("inf")},
    ):
        with pytest.raises(TuskError) as info:
            tusklang.dumps(data)
        assert info.value.diagnostics[0].code == "TSK130"
    biggest = 10**MAX_INT_DIGITS - 1
    assert tusklang.loads(tusklang.dumps({"a": biggest, "b": -biggest})) == {"a": biggest, "b": -biggest}


# --- numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "1" * (MAX_INT_DIGITS + 1),
        "-" + "9" * (MAX_INT_DIGITS + 1),
        "1" + "_0" * MAX_INT_DIGITS,
        "0x" + "f" * 4000,
        "0o" + "7" * 5000,
        "0b" + "1" * 14000,
        "1-" + "9" * 5000,
        "9" * 5000 + "-1",
        "1e999",
        "-1e999",
        "1" * 400 + ".5",
    ],
)
def test_numbers_out_of_range_are_tsk106_at_the_literal(literal: str) -> None:
    code, under_span, offset = first_error(f"n = {literal}\n")
    assert code == "TSK106" and offset >= 4 and under_span in literal


def test_numbers_at_the_edge_of_range_parse() -> None:
    digits = "9" * MAX_INT_DIGITS
    assert tusklang.loads(f"n = {digits}\nm = -{digits}\nr = 1-{digits}\n") == {
        "n": int(digits),
        "m": -int(digits),
        "r": {"min": 1, "max": int(digits)},
    }
    assert tusklang.loads("h = 0x" + "f" * 3000 + "\nf = 1e308\ng = 1e-999\n")["g"] == 0.0


# --- odd text ---------------------------------------------------------------------------------------


def test_byte_order_mark_crlf_and_nul() -> None:
    assert tusklang.loads("\ufeffa = 1\r\nb = 2\r\n") == {"a": 1, "b": 2}
    assert first_error("\ufeffa = = 1\n")[2] == 5  # offsets still count the mark
    assert tusklang.loads('a = "x\x00y"\n') == {"a": "x\x00y"}
    assert first_error("a\x00 = 1\n")[:2] == ("TSK107", "\x00")


def test_a_lone_carriage_return_is_named() -> None:
    with pytest.raises(TuskError) as info:
        tusklang.parse("a = 1\rb = 2\r")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.code == "TSK107" and "carriage return" in diagnostic.message


@pytest.mark.parametrize("text", ['a = "\ud800"\n', "# \udc00\na = 1\n", "k\udfff = 1\n"])
def test_a_lone_surrogate_is_tsk001_wherever_it_is(text: str) -> None:
    code, under_span, _ = first_error(text)
    assert code == "TSK001" and len(under_span) == 1 and 0xD800 <= ord(under_span) <= 0xDFFF
    assert first_error('a = "\\ud800"\n')[0] == "TSK109"  # as an escape it was already refused


def test_interpolation_cannot_nest() -> None:
    assert first_error('k = "' + "${" * 100_000 + 'x"\n')[0] == "TSK108"


# --- time: linear in the size of the input -------------------------------------------------------------


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_pathological", ROOT / "benchmarks" / "bench_pathological.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


@pytest.mark.parametrize("name", list(BENCH.SHAPES))
def test_pathological_shapes_take_linear_time(name: str) -> None:
    build = BENCH.SHAPES[name]
    small = BENCH.median_time(build(500), 3)
    large = BENCH.median_time(build(5000), 3)
    # 10x the lines: linear is ~10x, quadratic ~100x. Generous for a shared machine, and an absolute
    # floor for shapes so fast that timer noise dominates.
    assert large < max(35 * small, 0.05), (name, small, large)
