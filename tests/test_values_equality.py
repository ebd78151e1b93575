"""`loads(dumps(x)) == x` (README): inert values compare by what they say, not where they were written."""

from __future__ import annotations

import tusklang
from tusklang.values import DirectiveCall


def test_a_directive_that_moves_to_another_line_is_still_equal() -> None:
    text = 'storage = { connection = @env(REDIS_URL), ttl = 300 }\nlimits = @env("MAX", 10)\n'
    data = tusklang.loads(text)
    again = tusklang.loads(tusklang.dumps(data))  # dumps lays the object out over several lines
    moved, original = again["storage"]["connection"], data["storage"]["connection"]
    assert moved.location != original.location  # the test means something: the place did change
    assert again == data
    assert hash(moved) == hash(original)
    assert {moved, original} == {original}


def test_a_different_directive_or_argument_is_not_equal() -> None:
    a = DirectiveCall("env", ("A",), location="x.tsk:1:1")
    assert a == DirectiveCall("env", ("A",), location="y.tsk:9:4")
    assert a != DirectiveCall("env", ("B",), location="x.tsk:1:1")
    assert a != DirectiveCall("file", ("A",), location="x.tsk:1:1")
    assert a != DirectiveCall("env", None, location="x.tsk:1:1")
