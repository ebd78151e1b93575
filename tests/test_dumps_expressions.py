"""`dumps` writes an inert expression where its names mean what they meant where `loads` read it.

An ``Expression`` keeps its source text; a bare name in it means the nearest earlier key of that name,
a `$name` a variable. The data `loads` gives has no sections, dotted keys or variables, and a reference
copies a value to another object, so at its place in `dumps`' output the same text may read another key
(or no variable). Each test reads a file, writes its data, reads that back, and checks what every
expression's names mean, not only its text (``Expression`` equality compares the text alone).
"""

from __future__ import annotations

from typing import Any

import pytest

import tusklang
from tusklang.format import format_text
from tusklang.values import DirectiveCall, Expression, ForeignCall


def meaning(value: Any, text: bool = True) -> Any:
    """The data with each expression as its text (unless not ``text``) and what each of its names means."""
    if isinstance(value, dict):
        return {key: meaning(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [meaning(item, text) for item in value]
    if isinstance(value, Expression):
        names = value.names
        read = None if names is None else [(n.name, n.variable, n.resolved, meaning(n.value, text)) for n in names]
        return ("expression", value.text if text else None, read)
    if isinstance(value, DirectiveCall):
        return ("directive", value.name, None if value.args is None else [meaning(a, text) for a in value.args])
    return value


def written_and_read_back(source: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    data = tusklang.loads(source)
    text = tusklang.dumps(data)
    again = tusklang.loads(text)
    assert tusklang.dumps(again) == text  # canonical: the same decisions on the data read back
    return data, text, again


# Files whose expressions `dumps` writes with their own text: the data reads back equal, names and all.
KEPT = {
    # The defect the roundtrip property found: `b` copies `a.a.e`, and at `a.b` the name `c` is the top
    # level's `c: 0`. Written as a reference to where it is written as it is.
    "copied into a section by reference": "c: 0\n[a]\na {\n  c: php(time())\n  e: c + 1\n}\nb: a.e\n",
    "copied through a list": "c: 0\na {\n  c: php(time())\n  e: [c + 1, 2]\n}\nb: a.e\n",
    "copied through nested objects": "c: 0\na {\n  c: php(time())\n  d {\n    e: c + 1\n  }\n}\nb: a.d\n",
    "copied inside a directive's argument": "c: 0\na {\n  c: php(t)\n  q: @query(c + 1)\n}\nb: a.q\n",
    "copied where the names mean the same": "c: php(t)\ne: c + 1\nb: e\n",
    "a variable": "$v = php(time())\nx: $v + 1\n",
    "a variable in a string": '$v = php(t)\nx: "a ${v} b"\n',
    "a variable in a backtick template": "$v = php(t)\nx: `a ${$v + 1}`\n",
    "a variable holding an expression": "c: php(t)\n$v = c * 2\nx: $v + 1\n",
    "a variable of an inner object": "$v = php(1)\no {\n  $v = php(2)\n  x: $v + 1\n}\ny: $v + 1\n",
    "an object literal in the expression": "c: 0\na {\n  c: php(t)\n  e: c ? { k: c } : 2\n}\nb: a.e\n",
    "a name nothing defines before it": "c: php(t)\nx: c + zz\nzz: 1\n",
    "a name nothing defines, copied where one is": "c: php(t)\na {\n  x: c + zz\n}\nzz: 1\nb: a.x\n",
}


@pytest.mark.parametrize("source", KEPT.values(), ids=KEPT.keys())
def test_an_expression_reads_back_with_the_same_text_and_names(source: str) -> None:
    data, _, again = written_and_read_back(source)
    assert again == data
    assert meaning(again) == meaning(data)


@pytest.mark.parametrize(
    "source",
    [
        'a = @env("X", "d") == "p\nq" ? 1 : 2\n',  # a line break inside a string
        'a = (@env("X", "d") == "p\nq") + (1)\n',  # parenthesized parts, not the whole
        'a = (@env("X", ")(") == "p\nq")\n',  # already whole in parentheses, with parentheses quoted
    ],
)
def test_an_expression_over_lines_is_written_the_same_after_one_round(source: str) -> None:
    """Each loads/dumps round once added a pair of parentheses around an expression text over lines."""
    _, text, again = written_and_read_back(source)  # asserts dumps(loads(text)) == text
    assert text.count("(") - source.count("(") <= 1
    assert meaning(again, text=False) == meaning(tusklang.loads(source), text=False)


def test_a_copy_whose_names_mean_the_same_keeps_its_text() -> None:
    _, text, _ = written_and_read_back(KEPT["copied where the names mean the same"])
    assert text == "c = php(t)\ne = c + 1\nb = c + 1\n"


def test_a_copy_into_another_scope_is_written_as_a_reference() -> None:
    _, text, again = written_and_read_back(KEPT["copied into a section by reference"])
    assert "    b = a.e\n" in text
    (name,) = again["a"]["b"].names
    assert name.value == ForeignCall("php", "time()")  # not the top level's `c: 0`


def test_a_variable_is_defined_before_the_member_that_reads_it() -> None:
    _, text, _ = written_and_read_back(KEPT["a variable"])
    assert text == "$v = php(time())\nx = $v + 1\n"


# Files where no text reads the same names at the expression's place in the output: the names it
# cannot keep are written as their values, so it computes the same, written otherwise.
REWRITTEN = {
    # `k` of `$e` is the top level's; in [s] a `k: 5` comes first.
    "a variable's expression used where a key shadows its name": (
        "k: php(x)\n$e = k + 1\n[s]\nk: 5\ny: $e\n",
        ("s", "y"),
        "php(x) + 1",
    ),
    # A dotted key's value is read in the object that writes it: `q` is the top level's.
    "a dotted key's expression under a key of the same name": (
        "q: php(t)\na.q: 2\na.r: q + 1\n",
        ("a", "r"),
        "php(t) + 1",
    ),
    "a dotted key's expression before the key it reads": ("a.p: 1\nq: php(t)\na.r: q + 1\n", ("a", "r"), "php(t) + 1"),
    # `[c]` replaces the `c` that section [s] read.
    "a section's expression whose key a later section replaces": (
        "c: php(t)\n[s]\nx: c + 1\n[c]\nz: 1\n",
        ("s", "x"),
        "php(t) + 1",
    ),
    "an object's value in place of its name": (
        "o { k: php(t) }\na.o: 1\na.x: o.k + 1\n",
        ("a", "x"),
        "$o.k + 1",
    ),
    "a name in a backtick template": ("c: php(t)\na.c: 1\na.x: `v ${c}`\n", ("a", "x"), "`v ${php(t)}`"),
    "a runtime-only directive": ("h: @request.method\na.h: 1\na.x: h + 1\n", ("a", "x"), "$h + 1"),
    "a negative number": ("n: -2\nc: php(t)\na.n: 1\na.x: c * n\n", ("a", "x"), "c * (-2)"),
    "an expression's value in place of its name": (
        "c: php(t)\nd: c + 1\na.d: 0\na.x: d * 2\n",
        ("a", "x"),
        "$d * 2",
    ),
}


@pytest.mark.parametrize(("source", "where", "expected"), REWRITTEN.values(), ids=REWRITTEN.keys())
def test_a_name_that_cannot_mean_the_same_is_written_as_its_value(
    source: str, where: tuple[str, str], expected: str
) -> None:
    data, _, again = written_and_read_back(source)
    first, second = where
    assert again[first][second].text == expected
    # Everything else reads back equal.
    del data[first][second], again[first][second]
    assert meaning(again) == meaning(data)


def test_two_values_of_one_variable_in_one_object() -> None:
    # `c.l` holds `$v + 1` twice, with two values of `$v`: the second gets a variable of its own.
    source = "a {\n  $v = php(1)\n  x: $v + 1\n}\nb {\n  $v = php(2)\n  y: $v + 1\n}\nc {\n  l: [a.x, b.y]\n}\n"
    _, text, again = written_and_read_back(source)
    assert "    $v = php(1)\n    $v_2 = php(2)\n    l = [$v + 1, $v_2 + 1]\n" in text
    first, second = again["c"]["l"]
    assert (first.text, first.names[0].value) == ("$v + 1", ForeignCall("php", "1"))
    assert (second.text, second.names[0].value) == ("$v_2 + 1", ForeignCall("php", "2"))


def test_two_values_of_one_variable_in_strings_in_one_object() -> None:
    source = 'a {\n  $v = php(1)\n  x: "${v}"\n}\nb {\n  $v = php(2)\n  y: "${v}"\n}\nc {\n  l: [a.x, b.y]\n}\n'
    _, _, again = written_and_read_back(source)
    first, second = again["c"]["l"]
    assert (first.text, first.names[0].value) == ('"${v}"', ForeignCall("php", "1"))
    assert (second.text, second.names[0].value) == ('"${v_2}"', ForeignCall("php", "2"))


def test_a_value_read_through_many_names_is_written_once() -> None:
    # Each `kN` reads the one before twice: written in place, the last would be 2**40 names long.
    lines = ["k0: php(t)", *(f"k{n}: k{n - 1} + k{n - 1}" for n in range(1, 41))]
    lines += [f"a.k{n}: 0" for n in range(41)] + ["a.x: k40 + 1"]
    _, text, again = written_and_read_back("\n".join(lines) + "\n")
    assert len(text) < 10_000
    value = again["a"]["x"]
    assert value.text == "$k40 + 1"
    for n in range(40, 1, -1):  # each variable reads the one before, down to `k1`
        value = value.names[0].value
        assert value.text == f"$k{n - 1} + $k{n - 1}"
    assert value.names[0].value.text == "php(t) + php(t)"  # `k0`'s short value is written in its place


SOURCES = [*KEPT.values(), *(source for source, _, _ in REWRITTEN.values())]


@pytest.mark.parametrize("source", SOURCES)
def test_fmt_keeps_each_expression_where_it_is_written(source: str) -> None:
    # `tusk fmt` rewrites the file, not the data: an expression stays in its scope (its layout may change).
    formatted = format_text(source)
    assert meaning(tusklang.loads(formatted), text=False) == meaning(tusklang.loads(source), text=False)
