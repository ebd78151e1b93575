"""Portable JsonLogic building blocks for the flagd export: type guards and exact string/version tests.

"Portable" means: the same answer, and no exception, in both JsonLogic engines flagd ships - flagd-core's
Python engine (panzi-json-logic: `===` is Python `==`, so `true === 1`; `1 in [true]`) and the TypeScript
core's json-logic-engine (raises on `<`/`+` of a string, list or object, on `in` over a non-string
non-list, on `substr` of a non-string; `some` over a string walks its characters). Every builder below
is false, never an error, for a missing/null attribute and for every JSON type, which is our evaluator's
rule: a missing or mistyped attribute does not satisfy an attribute condition.
"""

from __future__ import annotations

import re
from typing import Any

from ..evaluate.conditions import semver_key, value_type

_BOOL_TEXT = ["true", "false", "True", "False"]  # cat(true): "true" in json-logic-engine, "True" in Python
_DIGITS = list("0123456789")
# The last character of a version our evaluator reads is a digit or a SemVer identifier character.
_VERSION_END = [*_DIGITS, *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"]
_SEMVER_OPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
# node-semver (the TypeScript core's sem_ver) reads numbers above this as invalid and keeps numeric
# pre-release identifiers from it up as text; python-semver reads at most 255 characters.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_VERSION_TEXT = 250
# A partial version's `-`/`+` is at most this far in: "v" + 16 digits + "." + 16 digits (node-semver's
# numbers have at most 16 digits).
_PAD_SCAN = 34


class Unsupported(Exception):
    """A construct flagd cannot express with the same meaning."""


def var(name: str) -> dict[str, Any]:
    """`{"var": name}` when both engines read exactly the context attribute `name`."""
    if name == "" or "." in name or name == "$flagd":
        # flagd's `var` splits on dots (a flat key `a.b` is unreachable) and owns `$flagd`.
        raise Unsupported(f"attribute name {name!r} cannot be read by flagd's `var`")
    if "\\" in name:
        # json-logic-engine reads `\` as an escape in paths (`a\\.b` is the key `a.b`), Python does not.
        raise Unsupported(f"attribute name {name!r} contains a backslash, which flagd's TypeScript `var` unescapes")
    if name == "__proto__":
        # JavaScript: every object has one, so `var` reads an object where our context has nothing.
        raise Unsupported(f"attribute name {name!r} reads JavaScript's object prototype in flagd's TypeScript core")
    return {"var": name}


# --- type guards --------------------------------------------------------------------------------
# JsonLogic has no typeof; these use only portable operators. Each is false for a missing/null value.


def is_str(x: Any) -> dict[str, Any]:
    return {"===": [x, {"cat": [x]}]}


def is_bool(x: Any) -> dict[str, Any]:
    # `in [true, false]` alone admits 1 and 0 in Python JsonLogic (1 == True); cat tells them apart.
    return {"and": [{"in": [x, [True, False]]}, {"in": [{"cat": [x]}, _BOOL_TEXT]}]}


def is_list(x: Any) -> dict[str, Any]:
    # `merge` flattens a list into the new one, so only a list is not an element of merge([x]); no
    # operator here raises for any type in flagd's Python or TypeScript JsonLogic
    return {"!": {"in": [x, {"merge": [x]}]}}


def is_obj(x: Any) -> dict[str, Any]:
    # `cat` of an object: "[object Object]" in JavaScript, "{...}" in Python (only asked of non-strings)
    # (`substr`, not flagd's `starts_with`: custom operators fail inside `some` in the TypeScript core)
    text = {"cat": [x]}
    return {"or": [{"===": [text, "[object Object]"]}, {"===": [{"substr": [text, 0, 1]}, "{"]}]}


def is_num(x: Any) -> dict[str, Any]:
    # `+` decides, but flagd's TypeScript JsonLogic raises on `+` of a string, list or object, so those
    # are ruled out first with operators that never raise (`and` stops at the first false)
    return {
        "and": [
            {"!": is_str(x)},
            {"!==": [x, None]},
            {"!": is_list(x)},
            {"!": is_obj(x)},
            {"!": {"in": [{"cat": [x]}, _BOOL_TEXT]}},
            {"===": [x, {"+": [x]}]},
        ]
    }


GUARDS = {"string": is_str, "number": is_num, "boolean": is_bool}


def json_kind(value: Any) -> str:
    """flagd's variant types: boolean, number, string, and everything else (lists, maps, null) an object."""
    found = value_type(value)
    return found if found in GUARDS else "object"


def by_kind(values: list[Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for v in values:
        groups.setdefault(json_kind(v), []).append(v)
    return dict(sorted(groups.items()))


def any_of(parts: list[Any]) -> Any:
    parts = [p for p in parts if p is not False]
    if any(p is True for p in parts):
        return True
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"or": parts}


def all_of(parts: list[Any]) -> Any:
    parts = [p for p in parts if p is not True]
    if any(p is False for p in parts):
        return False
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else {"and": parts}


def negate(inner: Any) -> Any:
    return (not inner) if isinstance(inner, bool) else {"!": [inner]}


def typed_in(x: Any, values: list[Any]) -> Any:
    """x equals one of the values with the same JSON type (`true` is not `1`, `1` is `1.0`)."""
    parts = []
    for k, vals in by_kind(values).items():
        if k == "string":
            parts.append({"in": [x, vals]})  # a non-string never equals a string: no guard needed
        else:
            parts.append({"and": [GUARDS[k](x), {"in": [x, vals]}]})
    return any_of(parts)


def exact_number(value: Any) -> bool:
    """Whether every number in `value` reads back unchanged as an IEEE double (JavaScript, flagd's Go
    daemon): 2**53 + 1 would be served or compared as 2**53."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and abs(item) > 2**53:
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


# --- strings ------------------------------------------------------------------------------------


def contains(x: Any, text: str) -> Any:
    """Substring test; `in` on a list would test membership and raises on a number in TypeScript.

    Every string contains "": json-logic-engine's `in` reads an empty haystack as `[]` (`"" || []`), so
    `"" in ""` would be false there."""
    if text == "":
        return is_str(x)
    return all_of([is_str(x), {"in": [text, x]}])


def _regex_literal(pattern: str) -> tuple[bool, str, str] | None:
    """(anchored at start, literal, end anchor "" | "$" | "\\Z") when the pattern is a plain literal."""
    try:
        tree = re._parser.parse(pattern)  # type: ignore[attr-defined]
    except Exception:  # anything sre cannot read is not a literal
        return None
    if tree.state.flags & (re.IGNORECASE | re.MULTILINE | re.LOCALE):
        return None  # these change what a literal or an anchor matches
    c = re._constants  # type: ignore[attr-defined]
    parsed = list(tree)
    start = parsed[:1] in ([(c.AT, c.AT_BEGINNING)], [(c.AT, c.AT_BEGINNING_STRING)])
    if start:
        parsed = parsed[1:]
    end = ""
    if parsed and parsed[-1] == (c.AT, c.AT_END):
        end, parsed = "$", parsed[:-1]
    elif parsed and parsed[-1] == (c.AT, c.AT_END_STRING):
        end, parsed = "\\Z", parsed[:-1]
    if not all(op == c.LITERAL for op, _ in parsed):
        return None
    return start, "".join(chr(code) for _, code in parsed), end


def matches(x: Any, pattern: str) -> Any:
    """`matches` (re.search) for the regexes that are literals, optionally anchored; others refused.

    Python's `$` also matches before one final newline, so `lit$` is "ends with lit or lit + newline"."""
    found = _regex_literal(pattern)
    if found is None:
        raise Unsupported(f"regular expression {pattern!r} (JsonLogic has no regex; only literals export)")
    start, literal, end = found
    ends = [literal, literal + "\n"] if end == "$" else [literal]
    if start and end:
        return all_of([is_str(x), {"in": [x, ends]}])
    if start:
        return {"starts_with": [x, literal]}
    if end:
        return any_of([{"ends_with": [x, e]} for e in ends])
    return contains(x, literal)


# --- semantic versions --------------------------------------------------------------------------


def semver_target(text: str) -> str:
    """The condition's version as node-semver and python-semver read it alike: `M.m.p[-pre]`.

    The leading `v` and the build (ignored by precedence) are dropped, a missing minor/patch becomes 0
    (node-semver refuses "1.2-rc"); versions flagd cannot hold exactly are refused."""
    key = semver_key(text)
    if key is None:
        raise Unsupported(f"version {text!r} is not one our evaluator reads")
    major, minor, patch, pre = key[0], key[1], key[2], key[3]
    if max(major, minor, patch) > MAX_SAFE_INTEGER:
        raise Unsupported(f"version {text!r} has a number above 2^53-1, which flagd's TypeScript core rejects")
    ids: list[str] = []
    for kind, number, word in pre[1:]:
        if kind == 0 and number >= MAX_SAFE_INTEGER:
            raise Unsupported(f"version {text!r} has a pre-release number flagd's TypeScript core orders as text")
        ids.append(str(number) if kind == 0 else word)
    full = f"{major}.{minor}.{patch}" + (f"-{'.'.join(ids)}" if ids else "")
    if len(full) > MAX_VERSION_TEXT:
        raise Unsupported(f"version {text!r} is longer than flagd's sem_ver reads ({MAX_VERSION_TEXT} characters)")
    return full


def semver(x: Any, op: str, target: str) -> Any:
    """`semver_<op>` with flagd's `sem_ver`, its leniencies guarded and its strictness padded around.

    flagd's sem_ver strips `v` and `V`, and the TypeScript core also trims whitespace and takes `vv1.2.3`;
    ours reads none of these. A version we read starts with a digit or `v` + digit and ends with a
    digit, letter or `-`, so testing both ends excludes all of them. The TypeScript core refuses a partial
    version with a pre-release or build (`1.2-rc.1`), which we read as `1.2.0-rc.1`: when flagd does not
    read the attribute as it is, `.0` (one dot before its first `-`/`+`) or `.0.0` (none) is inserted
    there; the result only reads as a version when the attribute was one of ours."""
    sym, full = _SEMVER_OPS[op], semver_target(target)
    first, second = {"substr": [x, 0, 1]}, {"substr": [x, 1, 1]}
    ends_ok = [
        {"or": [{"in": [first, _DIGITS]}, {"and": [{"===": [first, "v"]}, {"in": [second, _DIGITS]}]}]},
        {"in": [{"substr": [x, -1]}, _VERSION_END]},
    ]
    at: list[Any] = []
    for i in range(1, _PAD_SCAN + 1):
        at += [{"in": [{"substr": [x, i, 1]}, ["-", "+"]]}, i]
    # `reduce` over one item binds [x, cut] to `current`; only built-in operators inside it: the
    # TypeScript core's custom operators (sem_ver) raise inside reduce/some/map (no logger there)
    text, cut = {"var": "current.0"}, {"var": "current.1"}
    head = {"substr": [text, 0, cut]}
    zeros = {"if": [{"in": [".", head]}, ".0", ".0.0"]}  # "1.2" -> "1.2.0", "1" -> "1.0.0"
    candidate = {"if": [{"===": [cut, 0]}, "", {"cat": [head, zeros, {"substr": [text, cut]}]}]}
    padded = {"reduce": [[[x, {"if": [*at, 0]}]], candidate, ""]}
    compare = {"if": [{"sem_ver": [x, "=", x]}, {"sem_ver": [x, sym, full]}, {"sem_ver": [padded, sym, full]}]}
    return {"and": [is_str(x), *ends_ok, compare]}
