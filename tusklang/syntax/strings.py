"""String literals: escapes, `${name}` interpolation, and the reverse (quoting for the writer)."""

from __future__ import annotations

import re

from ..diagnostics import Diagnostic, Span, TuskError
from ..source import SourceFile
from . import nodes

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "$": "$", "/": "/", "0": "\0"}
_SPECIAL = re.compile(r"\\|\$\{")
_INTERP = re.compile(r"\$\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}")


def decode_string(
    raw: str, source: SourceFile, start: int, kind: str, *, interpolate: bool = True
) -> nodes.String | nodes.Template:
    """Decode a quoted literal (with its quotes) that begins at offset ``start``."""
    span = Span(source, start, start + len(raw))
    if kind == "string3":
        body_start = 3
        body = raw[3:-3]
        # A newline right after the opening quotes is not part of the value (as in TOML).
        if body.startswith("\r\n"):
            body, body_start = body[2:], 5
        elif body.startswith("\n"):
            body, body_start = body[1:], 4
    else:
        body_start = 1
        body = raw[1:-1]
    # `"""` holds text verbatim but for its escapes: often code in another language (a FUJSEN function
    # in JavaScript), whose own `${...}` must stay as written. `"..."` interpolates; `'...'` does not.
    interpolating = interpolate and kind == "dstring"
    if "\\" not in body and (not interpolating or "${" not in body):
        return nodes.String(body, span)
    parts: list[str | nodes.VarRef] = []
    text: list[str] = []
    i = 0
    base = start + body_start
    while True:
        m = _SPECIAL.search(body, i)
        if m is None:
            text.append(body[i:])
            break
        text.append(body[i : m.start()])
        j = m.start()
        if m.group() == "${":
            if not interpolating:
                text.append("${")
                i = j + 2
                continue
            im = _INTERP.match(body, j)
            if im is None:
                raise TuskError(
                    [
                        Diagnostic(
                            "TSK108",
                            "malformed interpolation: expected `${name}`",
                            Span(source, base + j, base + j + 2),
                            hint="write `${name}`, or `\\${` for a literal `${`",
                        )
                    ]
                )
            if text:
                parts.append("".join(text))
                text = []
            parts.append(nodes.VarRef(im.group(1), Span(source, base + j, base + im.end())))
            i = im.end()
            continue
        esc = body[j + 1 : j + 2]
        if esc in ESCAPES:
            text.append(ESCAPES[esc])
            i = j + 2
        elif esc in ("u", "U"):
            width = 4 if esc == "u" else 8
            digits = body[j + 2 : j + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                _bad_escape(source, base + j, base + j + 2 + len(digits), f"\\{esc} needs {width} hex digits")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                _bad_escape(source, base + j, base + j + 2 + width, f"\\{esc}{digits} is not a Unicode scalar value")
            text.append(chr(code))
            i = j + 2 + width
        elif esc in ("\n", "\r") and kind == "string3":
            # A backslash at the end of a line in """...""" joins the lines.
            k = j + 1
            while k < len(body) and body[k] in " \t\r\n":
                k += 1
            i = k
        else:
            shown = esc if esc.isprintable() and esc else repr(esc)
            _bad_escape(source, base + j, base + j + 2, f"unknown escape `\\{shown}`")
    if text:
        parts.append("".join(text))
    if not any(isinstance(p, nodes.VarRef) for p in parts):
        return nodes.String("".join(p for p in parts if isinstance(p, str)), span)
    return nodes.Template(tuple(parts), span)


def decode_template_text(raw: str, source: SourceFile, start: int) -> str:
    """The text of a backtick template between its interpolations (escapes as in `"..."`, and `` \\` ``)."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while True:
        j = raw.find("\\", i)
        if j == -1:
            out.append(raw[i:])
            return "".join(out)
        out.append(raw[i:j])
        esc = raw[j + 1 : j + 2]
        if esc == "`":
            out.append("`")
            i = j + 2
        elif esc in ESCAPES:
            out.append(ESCAPES[esc])
            i = j + 2
        elif esc in ("u", "U"):
            width = 4 if esc == "u" else 8
            digits = raw[j + 2 : j + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                _bad_escape(source, start + j, start + j + 2 + len(digits), f"\\{esc} needs {width} hex digits")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                _bad_escape(source, start + j, start + j + 2 + width, f"\\{esc}{digits} is not a Unicode scalar value")
            out.append(chr(code))
            i = j + 2 + width
        else:
            shown = esc if esc.isprintable() and esc else repr(esc)
            _bad_escape(source, start + j, start + j + 2, f"unknown escape `\\{shown}`")


def _bad_escape(source: SourceFile, start: int, end: int, message: str) -> None:
    raise TuskError(
        [
            Diagnostic(
                "TSK109",
                message,
                Span(source, start, end),
                hint=(
                    "valid escapes: \\n \\t \\r \\\" \\' \\\\ \\$ \\uXXXX \\UXXXXXXXX; "
                    "use '...' or \\\\ for a backslash"
                ),
            )
        ]
    )


_ESCAPE_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(value: str) -> str:
    """A double-quoted literal that decodes back to ``value`` (no interpolation survives)."""
    out = []
    for ch in value:
        rep = _ESCAPE_OUT.get(ch)
        if rep is not None:
            out.append(rep)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    # Only `${` would start an interpolation; a lone `$` stays as it is.
    return '"' + "".join(out).replace("${", "\\${") + '"'
