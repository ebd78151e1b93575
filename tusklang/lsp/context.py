"""Where the cursor is, in terms of keys, even while the file does not parse (as when typing).

A line scan, not the parser: completion runs on half-written text. Brackets outside strings and
comments open and close blocks (`key = {`, `key {`, an item's `{`) and arrays (`key = [`); `name >`
and a lone `<` open and close angle blocks; `key:` alone on its line opens an indentation block, which
ends at the first line indented no deeper than it; `[a.b]` headers set the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN_ANGLE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*>\s*$")
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*[=:]\s*(.*)$")
_COMMENT = re.compile(r"\s*(#|//).*$")


@dataclass(frozen=True)
class CursorContext:
    path: tuple[str, ...]  # the block the cursor is in
    key: str | None  # the key whose value is being written, if any
    prefix: str  # the word being typed
    in_value: bool
    in_string: bool
    after_at: bool  # typing a directive name
    after_dollar: bool = False  # typing a variable name


def cursor_context(text: str, offset: int) -> CursorContext:
    before = text[:offset]
    lines = before.split("\n")
    current = lines[-1]
    frames: list[_Frame] = []
    section: tuple[str, ...] = ()
    for line in lines[:-1]:
        code = _code(line)
        stripped = code.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip(" \t"))
        # An indentation block ends at the first line indented no deeper than its key's line.
        while frames and frames[-1].indent is not None and indent <= frames[-1].indent:
            frames.pop()
        if match := _SECTION.match(code):
            section = tuple(p.strip().strip('"') for p in match.group(1).split("."))
            frames = []
        elif match := _OPEN_ANGLE.match(code):
            frames.append(_Frame("{", _parts(match.group(1))))
        elif stripped == "<":
            _close(frames, "{")
        elif match := _OPEN_INDENT.match(code):
            frames.append(_Frame("{", _parts(match.group(1)), indent))
        else:
            _scan(code, frames)
    # The cursor's own line, up to the cursor: brackets it opens, then the member being written.
    in_string = current.count('"') % 2 == 1
    tail = _STRING.sub(_emptied, current)
    segment = _scan(tail if in_string else _COMMENT.sub("", tail), frames)
    path = section + tuple(part for frame in frames for part in frame.key)
    word = re.search(r"[@$]?[\w.-]*$", current)
    prefix = word.group(0) if word else ""
    key = None
    in_value = False
    array = frames[-1] if frames and frames[-1].kind == "[" else None
    if match := _KEY_VALUE.match(segment):
        key, in_value = match.group(1), True
        path = path + tuple(key.split(".")[:-1])
        key = key.split(".")[-1]
    elif array is not None and array.key:
        # An item of `key = [ ... ]`: a value of that key (segment names in `user_segments`, say).
        key, in_value = array.key[-1], True
        path = path[:-1]
    return CursorContext(
        path=path,
        key=key,
        prefix=prefix.lstrip("@$"),
        in_value=in_value,
        in_string=in_string,
        after_at=prefix.startswith("@"),
        after_dollar=prefix.startswith("$") and not in_string,
    )


@dataclass
class _Frame:
    """A block (`{`: an object, an angle or indentation block) or an array (`[`) open above the cursor.
    ``key`` is the key path that opened it (empty for an object or array that is an array item): the
    objects in `rules = [ { when = ... } ]` are at `rules`, so `when` is at `rules.when`, as the index
    puts it."""

    kind: str
    key: tuple[str, ...]
    indent: int | None = None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_KEY_BEFORE = re.compile(r'((?:[A-Za-z_][\w-]*|"[^"]*")(?:\.(?:[A-Za-z_][\w-]*|"[^"]*"))*)\s*[=:]?\s*$')
_OPEN_INDENT = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*:\s*$")


def _code(line: str) -> str:
    """The line with its strings emptied (their brackets are text) and a trailing comment dropped."""
    return _COMMENT.sub("", _STRING.sub(_emptied, line))


def _emptied(string: re.Match[str]) -> str:
    return string.group(0)[0] * 2


def _parts(key: str) -> tuple[str, ...]:
    return tuple(part.strip('"') for part in key.split("."))


def _close(frames: list[_Frame], kind: str) -> None:
    while frames and frames[-1].indent is not None:
        frames.pop()  # a brace closes the indentation blocks opened inside it
    if frames and frames[-1].kind == kind:
        frames.pop()


def _scan(code: str, frames: list[_Frame]) -> str:
    """Open and close the brackets of ``code`` on ``frames``; returns the text after the last one (or
    after the last `,` or `;`): the member or item being written."""
    start = 0
    for index, char in enumerate(code):
        if char in "{[":
            match = _KEY_BEFORE.search(code, start, index)
            key = _parts(match.group(1)) if match is not None and match.group(1) else ()
            frames.append(_Frame(char, key))
            start = index + 1
        elif char in "}]":
            _close(frames, "{" if char == "}" else "[")
            start = index + 1
        elif char in ",;":
            start = index + 1
    return code[start:]


_MEMBER_KEY = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:[=:]|\{|>\s*$)")


def keys_in_block(text: str, offset: int) -> set[str]:
    """Keys already written in the block around ``offset`` (its own members, not nested ones)."""
    lines = text.split("\n")
    current = text.count("\n", 0, offset)
    found: set[str] = set()

    def change(line: str) -> int:
        line = _code(line)  # a brace in a string or a comment opens nothing
        opens = line.count("{") + (1 if _OPEN_ANGLE.match(line) else 0)
        closes = line.count("}") + (1 if line.strip() == "<" else 0)
        return opens - closes

    depth = 0  # upwards: a `}` enters a nested block, a `{` leaves it (or leaves ours: stop)
    for line in reversed(lines[:current]):
        depth -= change(line)
        if depth < 0:
            break
        if depth == 0 and (match := _MEMBER_KEY.match(line)):
            found.add(match.group(1))
    depth = 0  # downwards: the opener line of a nested block is still one of ours
    for line in lines[current + 1 :]:
        if depth == 0 and (match := _MEMBER_KEY.match(line)):
            found.add(match.group(1))
        depth += change(line)
        if depth < 0:
            break
    return found
