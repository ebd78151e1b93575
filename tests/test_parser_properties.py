"""Property tests for the parser: round trips, no crash on any input, linear time."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tusklang
from tusklang.diagnostics import TuskError

keys = st.text(min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=6)


@given(documents)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_loads_of_dumps_gives_back_the_data(data: dict) -> None:
    assert tusklang.loads(tusklang.dumps(data)) == data


@given(documents)
@settings(max_examples=100)
def test_dumps_is_canonical(data: dict) -> None:
    text = tusklang.dumps(data)
    assert tusklang.dumps(tusklang.loads(text)) == text


# Text made of TuskLang's own pieces finds more parser states than arbitrary characters.
PIECES = [
    "a",
    "b_1",
    '"s"',
    "'q'",
    '"""t"""',
    "=",
    ":",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    "\n",
    " ",
    "\t",
    "1",
    "-2",
    "3.5",
    "1e3",
    "0x1F",
    "8000-9000",
    "true",
    "null",
    "$v",
    "${v}",
    "@env",
    "@q(",
    ">",
    "<",
    "&&",
    "||",
    "!",
    "==",
    "+",
    "?",
    "#c\n",
    "//c\n",
    "/*c*/",
    "[s]",
    ".",
    "\\",
    '"${x}"',
    "-",
    "é",
    "😀",
]


@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_token_soup_raises_only_our_diagnostic_error(text: str) -> None:
    try:
        tusklang.loads(text)
    except TuskError as exc:
        assert exc.diagnostics and all(d.span is None or 0 <= d.span.start <= len(text) for d in exc.diagnostics)
        exc.render()


@given(st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")))
@settings(max_examples=800)
def test_random_bytes_raise_only_our_diagnostic_error(text: str) -> None:
    try:
        tusklang.loads(text)
    except TuskError as exc:
        exc.render()


def test_parse_time_grows_linearly_with_size() -> None:
    block = "".join(
        f'flag_{i} = {{\n    enabled = true\n    rollout_percentage = {i % 100}\n    tags = ["a", "b"]\n}}\n'
        for i in range(400)
    )

    def best_of(text: str) -> float:
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            tusklang.parse(text)
            timings.append(time.perf_counter() - start)
        return min(timings)

    small = best_of(block)
    large = best_of(
        block.replace("flag_", "f1_")
        + block.replace("flag_", "f2_")
        + block.replace("flag_", "f3_")
        + block.replace("flag_", "f4_")
    )
    # 4x the input: linear gives ~4x; allow noise on shared machines, but not quadratic (16x).
    assert large / small < 8, (small, large)
