"""Foreign code: the argument of `php(...)` (and of any plain call not in the directive registry).

TuskLang files embed code of other languages in calls written without `@`: `php(time())`,
`php(rand(1, 100))`, `php(<<<'HTML' ... HTML)`, `php(function($n) { ... }(20))`. That code is not
TuskLang and is never parsed as TuskLang: it is kept verbatim, up to the `)` that balances the call's
`(`. What may hide a parenthesis is skipped whole, so it cannot confuse the balance: strings quoted
with `'`, `"` or a backtick (backslash escapes; they may span lines), comments (`// ...` and `# ...` to
the end of the line, `/* ... */`) and heredocs (`<<<ID`, `<<<'ID'`, `<<<"ID"`, ending at the first
later line whose text, after indentation, starts with `ID`: PHP's flexible heredoc).

The scan is one pass over the text (each skip is a single search), so it is linear in the code's size.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Everything that is neither a parenthesis nor the start of something skipped whole: consumed in one step.
_PLAIN = re.compile(r"""[^()'"`/#<]+|/(?![/*])|<(?!<<)""")
_HEREDOC = re.compile(
    r"""<<<[ \t]*(?:'([A-Za-z_][A-Za-z0-9_]*)'|"([A-Za-z_][A-Za-z0-9_]*)"|([A-Za-z_][A-Za-z0-9_]*))"""
)
_QUOTED = {
    "'": re.compile(r"'(?:[^'\\]|\\[\s\S])*'"),
    '"': re.compile(r'"(?:[^"\\]|\\[\s\S])*"'),
    "`": re.compile(r"`(?:[^`\\]|\\[\s\S])*`"),
}


class Unclosed(NamedTuple):
    """Why the scan stopped before a balancing `)`: what was left open, and where it starts."""

    what: str  # "call", "string", "comment" or "heredoc"
    at: int


def scan(text: str, start: int) -> int | Unclosed:
    """The offset of the `)` that balances the `(` just before ``start``, or what was left open.

    ``start`` is the offset right after the call's `(`; the code is ``text[start:result]``.
    """
    depth = 1
    pos = start
    n = len(text)
    plain = _PLAIN.match
    while pos < n:
        m = plain(text, pos)
        if m is not None:
            pos = m.end()
            continue
        ch = text[pos]
        if ch == "(":
            depth += 1
            pos += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return pos
            pos += 1
        elif ch in _QUOTED:
            q = _QUOTED[ch].match(text, pos)
            if q is None:
                return Unclosed("string", pos)
            pos = q.end()
        elif ch == "#" or text.startswith("//", pos):
            nl = text.find("\n", pos)
            pos = n if nl == -1 else nl
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            if close == -1:
                return Unclosed("comment", pos)
            pos = close + 2
        else:  # `<<<`
            h = _HEREDOC.match(text, pos)
            if h is None:
                pos += 3
                continue
            name = h.group(1) or h.group(2) or h.group(3)
            line_end = text.find("\n", h.end())
            if line_end == -1:
                return Unclosed("heredoc", pos)
            closing = re.compile(rf"^[ \t]*{re.escape(name)}(?![A-Za-z0-9_])", re.M).search(text, line_end + 1)
            if closing is None:
                return Unclosed("heredoc", pos)
            pos = closing.end()
    return Unclosed("call", start - 1)


def is_balanced(code: str) -> bool:
    """Whether ``code`` is foreign code a call can hold: its balancing `)` is just past its end."""
    found = scan(code + ")", 0)
    return found == len(code)
