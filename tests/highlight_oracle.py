"""What a highlighter must say about a TuskLang file, read from the parser's own syntax tree.

The Pygments lexer (tests/test_pygments_lexer.py) and the VS Code grammar (tests/test_vscode_extension.py)
are checked against the same places: every key, section, string, interpolation, number, range,
constant, variable, directive, foreign call and comment the parser found in a fixture, at the offset
where it starts. A highlighter that loses track (a string that swallows the rest of the file, a comment
read as a key) fails on the first place after the loss.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path
from typing import Any, NamedTuple

import tusklang
from tusklang.diagnostics import TuskError
from tusklang.syntax import nodes

from .fixture_cases import FIXTURES, display_path

KINDS = ("key", "section", "string", "interpolation", "number", "range", "constant", "variable", "directive",
         "foreign", "comment")


class Place(NamedTuple):
    offset: int  # code points from the start of the text
    line: int  # 0-based
    character: int  # UTF-16 units from the start of the line, as editors count
    kind: str
    text: str


def parseable_fixtures() -> list[Path]:
    """Every fixture the parser accepts (its problems, if any, are beyond syntax)."""
    found = []
    for path in sorted(FIXTURES.rglob("*.tsk")):
        try:
            tusklang.parse(path.read_text(encoding="utf-8"), path=display_path(path))
        except TuskError:
            continue
        found.append(path)
    return found


def places(text: str, path: str = "<text>") -> list[Place]:
    document = tusklang.parse(text, path=path)
    found: list[tuple[int, int, str]] = []

    def add(span: Any, kind: str) -> None:
        found.append((span.start, span.end, kind))

    def walk(node: Any, in_string: bool = False) -> None:
        if isinstance(node, tuple) and not hasattr(node, "_fields"):
            for item in node:
                walk(item, in_string)
            return
        if not hasattr(node, "_fields"):
            return
        match node:
            case nodes.Section():
                for span in node.key.spans:
                    add(span, "section")
                walk(node.members)
                return
            case nodes.Key():
                for span in node.spans:
                    add(span, "key")
                return
            case nodes.String():
                add(node.span, "string")
            case nodes.Template():
                add(node.span, "string")
                interpolated = text[node.span.start] == '"'  # "${name}"; a backtick holds expressions
                for part in node.parts:
                    if interpolated and isinstance(part, nodes.VarRef):
                        add(part.span, "interpolation")
                    else:
                        walk(part)
                return
            case nodes.Number():
                add(node.span, "number")
            case nodes.Range():
                add(node.span, "range")
            case nodes.Bool() | nodes.Null():
                add(node.span, "constant")
            case nodes.VarRef():
                add(node.span, "variable")
            case nodes.VarDef():
                add(node.name_span, "variable")
            case nodes.Directive():
                add(node.name_span, "directive")
            case nodes.Foreign():
                add(node.name_span, "foreign")
                return  # the code inside is another language's
        for field in node._fields:
            if field != "span" and not field.endswith("_span"):
                walk(getattr(node, field), in_string)

    walk(document.members)
    walk(document.sections)
    for comment in document.comments:
        add(comment.span, "comment")

    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    result = []
    for start, end, kind in sorted(set(found)):
        line = bisect.bisect_right(line_starts, start) - 1
        before = text[line_starts[line] : start]
        character = len(before.encode("utf-16-le")) // 2
        result.append(Place(start, line, character, kind, text[start:end]))
    return result


def write_expectations(out: Path) -> int:
    """Every parseable fixture's places as JSON, for the Node test of the VS Code grammar."""
    files = []
    for path in parseable_fixtures():
        text = path.read_text(encoding="utf-8")
        files.append({
            "path": str(path),
            "name": display_path(path),
            "places": [p._asdict() for p in places(text, display_path(path))],
        })
    out.write_text(json.dumps(files), encoding="utf-8")
    return sum(len(f["places"]) for f in files)
