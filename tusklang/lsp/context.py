"""Where the cursor is, in terms of keys, even while the file does not parse (as when typing).

A line scan, not the parser: completion runs on half-written text. Blocks open on lines ending in
`{` or `name >` and close on lines starting with `}` or a lone `<`; `[a.b]` headers set the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN_BRACE = re.compile(r"^\s*((?:[A-Za-z_][\w-]*|\"[^\"]*\")(?:\.(?:[A-Za-z_][\w-]*|\"[^\"]*\"))*)\s*[=:]?\s*\{\s*$")
_OPEN_ANGLE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*>\s*$")
_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*[=:]\s*(.*)$")
_ARRAY_OPEN = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*[=:]\s*\[[^\]]*$")
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
    stack: list[tuple[str, ...]] = []
    section: tuple[str, ...] = ()
    open_array: str | None = None  # the key of a `key = [` still open above the cursor
    for line in lines[:-1]:
        if match := _ARRAY_OPEN.match(line):
            open_array = match.group(1)
        elif open_array is not None and "]" in line:
            open_array = None
        line = _COMMENT.sub("", line) if '"' not in line else line
        stripped = line.strip()
        if match := _SECTION.match(line):
            section = tuple(p.strip().strip('"') for p in match.group(1).split("."))
            stack = []
        elif match := _OPEN_BRACE.match(line) or _OPEN_ANGLE.match(line):
            stack.append(tuple(p.strip('"') for p in match.group(1).split(".")))
        elif stripped.startswith("}") or stripped == "<":
            if stack:
                stack.pop()
    path = section + tuple(part for parts in stack for part in parts)
    word = re.search(r"[@$]?[\w.-]*$", current)
    prefix = word.group(0) if word else ""
    key = None
    in_value = False
    if match := _KEY_VALUE.match(current):
        key, in_value = match.group(1), True
        path = path + tuple(key.split(".")[:-1])
        key = key.split(".")[-1]
    elif open_array is not None:
        key, in_value = open_array, True
    in_string = current.count('"') % 2 == 1
    return CursorContext(
        path=path,
        key=key,
        prefix=prefix.lstrip("@$"),
        in_value=in_value,
        in_string=in_string,
        after_at=prefix.startswith("@"),
        after_dollar=prefix.startswith("$") and not in_string,
    )


_MEMBER_KEY = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:[=:]|\{|>\s*$)")


def keys_in_block(text: str, offset: int) -> set[str]:
    """Keys already written in the block around ``offset`` (its own members, not nested ones)."""
    lines = text.split("\n")
    current = text.count("\n", 0, offset)
    found: set[str] = set()

    def change(line: str) -> int:
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
