"""The Pygments lexer (tusklang/pygments_lexer.py), as docs sites and `rich` find and use it.

On every fixture the parser accepts: no `Error` token, the tokens give back the text, the lexer ends
in its root state (nothing left open), and each key, section, string, interpolation, number, range,
constant, variable, directive, foreign call and comment the parser found (tests/highlight_oracle.py)
starts with a token of its kind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexer import LexerContext
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, String, _TokenType

from tusklang.pygments_lexer import TuskLexer

from .fixture_cases import FIXTURES, display_path, valid_cases
from .highlight_oracle import parseable_fixtures, places

PARSEABLE = parseable_fixtures()

EXPECTED: dict[str, tuple[_TokenType, ...]] = {
    "key": (Name.Attribute,),
    "section": (Name.Namespace,),
    "string": (String.Double, String.Single, String.Backtick),
    "interpolation": (String.Interpol,),
    "number": (Number,),
    "range": (Number.Integer,),
    "constant": (Keyword.Constant,),
    "variable": (Name.Variable,),
    "directive": (Name.Decorator, Name.Builtin),
    "foreign": (Name.Function,),
    "comment": (Comment,),
}


def _tokens(text: str) -> tuple[list[tuple[int, _TokenType, str]], list[str]]:
    context = LexerContext(text, 0)
    tokens = list(TuskLexer().get_tokens_unprocessed(context=context))
    return tokens, context.stack


def test_entry_point_finds_the_lexer() -> None:
    # Through the installed package's metadata, as Sphinx, MkDocs and rich look lexers up.
    assert isinstance(get_lexer_by_name("tusk"), TuskLexer)
    assert isinstance(get_lexer_by_name("tusklang"), TuskLexer)
    assert isinstance(get_lexer_for_filename("flags.tsk"), TuskLexer)


def test_import_tusklang_does_not_load_pygments() -> None:
    code = "import sys, tusklang; tusklang.loads('a = 1'); print('pygments' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_valid_fixture_is_parseable() -> None:
    # The "valid" set below is what the parser accepts: it holds every fixture meant to be valid.
    assert set(valid_cases()) | set((FIXTURES / "seed").glob("*.tsk")) <= set(PARSEABLE)
    assert len(PARSEABLE) > 150


@pytest.mark.parametrize("path", PARSEABLE, ids=display_path)
def test_fixture_highlights_without_errors(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tokens, stack = _tokens(text)
    assert "".join(value for _, _, value in tokens) == text
    errors = [(text.count("\n", 0, offset) + 1, value) for offset, token, value in tokens if token in Error]
    assert errors == [], f"Error tokens (line, text): {errors[:5]}"
    assert stack == ["root"], f"the lexer ended inside {stack[1:]}"
    kind_at: list[_TokenType] = [Error] * len(text)
    for offset, token, value in tokens:
        for i in range(offset, offset + len(value)):
            kind_at[i] = token
    wrong = [
        (place.line + 1, place.kind, place.text[:30], str(kind_at[place.offset]))
        for place in places(text, display_path(path))
        if not any(kind_at[place.offset] in expected for expected in EXPECTED[place.kind])
    ]
    assert wrong == [], f"(line, expected kind, text, token) {wrong[:5]}"


def test_chosen_constructs() -> None:
    text = (
        "# c\n[server]\nports: 8000-9000\nurl = \"http://${host}/\"\n$v = @env(\"X\", 1.5)\n"
        "t = `a${$v + 1}b`\nstamp: php(strlen(\")\") /* ) */)\nok = true // end\n"
    )
    tokens, stack = _tokens(text)
    assert stack == ["root"]
    seen = [(token, value) for _, token, value in tokens if value.strip()]
    for expected in [
        (Comment.Single, "# c"),
        (Name.Namespace, "server"),
        (Name.Attribute, "ports"),
        (Number.Integer, "8000"),
        (Number.Integer, "9000"),
        (String.Interpol, "${host}"),
        (Name.Variable, "$v"),
        (Name.Decorator, "@env"),
        (Number.Float, "1.5"),
        (String.Interpol, "${"),
        (Name.Function, "php"),
        (Keyword.Constant, "true"),
        (Comment.Single, "// end"),
    ]:
        assert expected in seen, expected
    # The foreign code ends at the balancing `)`, past the `)` in its string and comment.
    php_end = text.index("*/)") + 2
    assert (php_end, ")") in [(offset, value) for offset, token, value in tokens if token is not Error]
