"""A Pygments lexer for TuskLang, registered as the ``pygments.lexers`` entry point ``tusk``.

Docs sites (Sphinx, MkDocs), ``rich`` and anything else built on Pygments find it by name
(``get_lexer_by_name("tusk")``) or by file name (``*.tsk``) once tusklang is installed with Pygments
(``pip install 'tusklang[highlight]'``). Pygments is imported here only: ``import tusklang`` never
needs it.

It is a highlighter, not the parser: it reads one construct at a time (docs/syntax.md) and never
fails, so snippets and half-written files highlight too. What it cannot tell by looking at a line
(``a ? b : c`` written as the first thing on a line reads ``b :`` as a key) is rare enough to leave.
Foreign code (``php(...)``) ends where the parser says it does, at the balancing ``)`` after strings,
comments and heredocs are skipped, and is highlighted as PHP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pygments.lexer import ExtendedRegexLexer, LexerContext, bygroups, include
from pygments.lexers.php import PhpLexer
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
    _TokenType,
)

__all__ = ["TuskLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_\-]*"
_KEYPART = rf"(?:{_NAME}|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
_KEYPATH = rf"{_KEYPART}(?:[ \t]*\.[ \t]*{_KEYPART})*"
# The four directives a call without `@` still names (docs/syntax.md, Directives).
_PLAIN_DIRECTIVES = ("env", "file", "query", "date")

# Inside foreign code: what may hide a parenthesis (skipped whole), and the parentheses themselves.
_FOREIGN_SKIP = re.compile(
    r"""
      '(?:[^'\\]|\\[\s\S])*'
    | "(?:[^"\\]|\\[\s\S])*"
    | `(?:[^`\\]|\\[\s\S])*`
    | /\*[\s\S]*?\*/
    | (?://|\#)[^\n]*
    | <<<[ \t]*(?P<q>['"]?)(?P<id>[A-Za-z_][A-Za-z0-9_]*)(?P=q)
    | [()]
    """,
    re.VERBOSE,
)


def _foreign_end(text: str, open_at: int, end: int) -> int | None:
    """The offset just after the `)` balancing the `(` at ``open_at``, or None when there is none."""
    depth = 0
    pos = open_at
    while True:
        m = _FOREIGN_SKIP.search(text, pos, end)
        if m is None:
            return None
        token = m.group()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth == 0:
                return m.end()
        elif m.group("id"):
            # A heredoc ends at the first later line that starts, after its indentation, with its id.
            closing = re.compile(rf"^[ \t]*{re.escape(m.group('id'))}", re.MULTILINE)
            line_end = text.find("\n", m.end(), end)
            found = None if line_end < 0 else closing.search(text, line_end + 1, end)
            if found is None:
                return None
            pos = found.end()
            continue
        pos = m.end()


def _foreign_call(
    lexer: ExtendedRegexLexer, match: re.Match[str], ctx: LexerContext
) -> Iterator[tuple[int, _TokenType, str]]:
    """`name(` of any other name than a directive's: the code up to the balancing `)` is kept whole."""
    name, start = match.group(1), match.start()
    open_at = match.end() - 1
    close = _foreign_end(ctx.text, open_at, ctx.end)
    yield start, Name.Function, name
    if close is None:  # unbalanced: the parser reports TSK103; highlight the rest as TuskLang
        yield open_at, Punctuation, "("
        ctx.pos = open_at + 1
        return
    yield open_at, Punctuation, "("
    code = ctx.text[open_at + 1 : close - 1]
    if name == "php":
        for offset, token, value in PhpLexer(startinline=True).get_tokens_unprocessed(code):
            # Foreign code is not TuskLang's to judge: whatever PHP's lexer cannot place stays plain.
            yield open_at + 1 + offset, Text if token in Error else token, value
    elif code:
        yield open_at + 1, String.Other, code
    yield close - 1, Punctuation, ")"
    ctx.pos = close


class TuskLexer(ExtendedRegexLexer):
    """TuskLang (``.tsk``): feature flags and configuration, docs/syntax.md."""

    name = "TuskLang"
    aliases = ["tusk", "tusklang"]
    filenames = ["*.tsk"]
    mimetypes = ["text/x-tusklang"]
    flags = re.MULTILINE

    tokens = {
        "root": [
            (r"\ufeff", Text),
            # Line-start rules come before whitespace, which would take the indentation they match.
            # `[section]` / `[a.b]` alone on its line (a comment may follow).
            (
                rf"^([ \t]*)(\[)([ \t]*)({_KEYPATH})([ \t]*)(\])(?=[ \t]*(?:$|#|//|/\*))",
                bygroups(Whitespace, Punctuation, Whitespace, Name.Namespace, Whitespace, Punctuation),
            ),
            # `- item` lines of a list opened by `key:`.
            (r"^([ \t]*)(-)(?=[ \t])", bygroups(Whitespace, Punctuation)),
            # A key where a member starts: at the start of a line (or after a `/* */` there), or after
            # `{`, `,` or `;`.
            (
                rf"(?:^|(?<=\*/))([ \t]*)({_KEYPATH})([ \t]*)(=|:)(?!=)",
                bygroups(Whitespace, Name.Attribute, Whitespace, Punctuation),
            ),
            (
                rf"([{{,;])([ \t]*)({_KEYPATH})([ \t]*)(=|:)(?!=)",
                bygroups(Punctuation, Whitespace, Name.Attribute, Whitespace, Punctuation),
            ),
            # `key { ... }`, `key [ ... ]` and the angle block `key >` ... `<`.
            (
                rf"^([ \t]*)({_KEYPATH})([ \t]*)(?=[{{\[]|>[ \t]*(?:$|#|//))",
                bygroups(Whitespace, Name.Attribute, Whitespace),
            ),
            (r"^([ \t]*)(<)(?=[ \t]*(?:$|#|//))", bygroups(Whitespace, Punctuation)),
            include("value"),
        ],
        "space": [
            (r"\r?\n", Whitespace),
            (r"[ \t]+", Whitespace),
            (r"(#|//).*?$", Comment.Single),
            (r"/\*", Comment.Multiline, "comment"),
        ],
        "comment": [
            (r"[^*]+", Comment.Multiline),
            (r"\*/", Comment.Multiline, "#pop"),
            (r"\*", Comment.Multiline),
        ],
        "value": [
            include("space"),
            (r'"""', String.Double, "string3"),
            (r'"', String.Double, "dstring"),
            (r"'", String.Single, "sstring"),
            (r"`", String.Backtick, "template"),
            (r"\$[A-Za-z_][A-Za-z0-9_]*", Name.Variable),
            # `@name`, `@name.sub-part` (a directive; its arguments follow as values).
            (rf"@{_NAME}(?:\.{_NAME})*", Name.Decorator),
            (r"(true|false|null)\b(?![\-])", Keyword.Constant),
            # Numbers: a range `8000-9000` first (two integer literals, a dash, no spaces).
            (
                r"(?<![\w.$\-])(0|[1-9][0-9_]*)(-)(0|[1-9][0-9_]*)(?![\w.])",
                bygroups(Number.Integer, Operator, Number.Integer),
            ),
            (r"-?0[xX][0-9a-fA-F_]+", Number.Hex),
            (r"-?0[oO][0-7_]+", Number.Oct),
            (r"-?0[bB][01_]+", Number.Bin),
            (r"-?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?[eE][+\-]?[0-9_]+", Number.Float),
            (r"-?[0-9][0-9_]*\.[0-9][0-9_]*", Number.Float),
            (r"-?[0-9][0-9_]*", Number.Integer),
            # A call: one of the four directives, or foreign code (never after `.`: that is a method).
            (rf"(?<![.\w@$\-])({'|'.join(_PLAIN_DIRECTIVES)})(?=\()", Name.Builtin),
            (rf"(?<![.\w@$\-])({_NAME})\(", _foreign_call),
            # `.name` on a value (member access, method chains).
            (rf"(\.)({_NAME})", bygroups(Punctuation, Name.Attribute)),
            (_NAME, Name),
            (r"\|\||&&|==|!=|<=|>=|[<>+\-*/%!?:=]", Operator),
            (r"[{}\[\](),;.]", Punctuation),
        ],
        "escapes": [
            (r"\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[\s\S])", String.Escape),
        ],
        "dstring": [
            include("escapes"),
            (r"\$\{[^}\n]*\}", String.Interpol),
            (r'[^"\\$]+', String.Double),
            (r"\$", String.Double),
            (r'"', String.Double, "#pop"),
        ],
        "sstring": [
            include("escapes"),
            (r"[^'\\]+", String.Single),
            (r"'", String.Single, "#pop"),
        ],
        "string3": [
            include("escapes"),
            (r'"""', String.Double, "#pop"),
            (r'[^"\\]+', String.Double),
            (r'"', String.Double),
        ],
        "template": [
            include("escapes"),
            (r"\$\{", String.Interpol, "template-expression"),
            (r"[^`\\$]+", String.Backtick),
            (r"\$", String.Backtick),
            (r"`", String.Backtick, "#pop"),
        ],
        "template-expression": [
            (r"\}", String.Interpol, "#pop"),
            (r"\{", Punctuation, "braces"),
            include("value"),
        ],
        "braces": [
            (r"\}", Punctuation, "#pop"),
            (r"\{", Punctuation, "#push"),
            include("value"),
        ],
    }
