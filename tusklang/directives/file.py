"""`@file("other.tsk")`, `@file("other.tsk", "key.path")`: another TuskLang file's data.

Paths are relative to the including file. They may not leave the project root (the folder of the
file compiled first) unless `allow_outside_root` is set. An include cycle is an error that shows
the cycle. Only regular files are read (after following symlinks): a FIFO would block the compile
forever, and a device, socket or directory is never a TuskLang file.

`tusk check` and the editor follow includes too (``static``): reading a file changes nothing. The
included file is parsed and interpreted by the resolver (``ResolveContext.include``), which also
grafts its source map into the including one, so a problem inside it is reported at its own line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Span
from ..syntax import nodes
from . import Directive, DirectiveFailed, ResolveContext, arg_span


def check(node: nodes.Directive, args: list[Any]) -> list[Diagnostic]:
    if node.args is None or not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
        return [
            Diagnostic(
                "TSK240",
                "@file takes a path and an optional key path, both strings",
                node.span,
                hint='write `@file("segments.tsk")` or `@file("shared.tsk", "targeting.segments")`',
            )
        ]
    return []


def resolve(node: nodes.Directive, args: list[Any], ctx: ResolveContext, interp: Any) -> Any:
    problems = check(node, args)
    if problems:
        raise DirectiveFailed(problems[0])
    if "\0" in args[0]:
        raise DirectiveFailed(
            Diagnostic("TSK240", "an @file path cannot contain a NUL character (\\0)", arg_span(node, 0))
        )
    try:
        target = (ctx.base_dir / args[0]).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11's resolve)
        raise DirectiveFailed(
            Diagnostic("TSK243", f"@file: cannot read `{_shown(args[0])}`: {_reason(exc)}", arg_span(node, 0))
        ) from None
    root = (ctx.project_root or ctx.base_dir).resolve()
    if not ctx.allow_outside_root and not target.is_relative_to(root):
        raise DirectiveFailed(
            Diagnostic(
                "TSK241",
                f"@file path `{args[0]}` leaves the project root {root}",
                arg_span(node, 0),
                hint="keep included files inside the project, or pass --allow-outside-root",
            )
        )
    if target in ctx.include_stack:
        cycle = [*ctx.include_stack[ctx.include_stack.index(target) :], target]
        raise DirectiveFailed(
            Diagnostic(
                "TSK242",
                "include cycle: " + " -> ".join(p.name for p in cycle),
                node.span,
                hint="an included file may not include (directly or not) the file that includes it",
            )
        )
    text = ctx.overlays.get(str(target))
    if text is None:
        text = _read_regular_file(target, args[0], node)
    if ctx.include is None:  # pragma: no cover - the resolver always sets it
        raise RuntimeError("@file needs ResolveContext.include")
    included = ctx.include(text, target, node, interp)
    data, spans, key_spans, taint = included.data, included.spans, included.key_spans, included.taint
    if len(args) == 2:
        key = tuple(args[1].split("."))
        for part in key:
            if not isinstance(data, dict) or part not in data:
                raise DirectiveFailed(
                    Diagnostic(
                        "TSK244",
                        f"@file: `{args[0]}` has no key `{args[1]}` (missing `{part}`)",
                        arg_span(node, 1),
                    )
                )
            data = data[part]
        taint = _select(taint, key)
        spans, key_spans = _below(spans, key), _below(key_spans, key)
        key_spans.pop((), None)  # the including member's key stays the key of this value
    else:
        spans.pop((), None)  # a whole file has no value span: the @file call stands for it
        key_spans.pop((), None)
    interp.add_taint(taint)  # the included file's @env values stay secrets here
    interp.graft_spans(spans, key_spans)  # the source map reaches into the included file
    return data


def _below(spans: dict[tuple[str | int, ...], Span], key: tuple[str, ...]) -> dict[tuple[str | int, ...], Span]:
    """The entries at or under ``key``, re-rooted there."""
    cut = len(key)
    return {path[cut:]: span for path, span in spans.items() if path[:cut] == key}


def _select(taint: dict[tuple[str | int, ...], Any], key: tuple[str, ...]) -> dict[tuple[str | int, ...], Any]:
    """The taint of the value at ``key``: paths under it, re-rooted; a tainted ancestor taints it whole."""
    out: dict[tuple[str | int, ...], Any] = {}
    for path, spans in taint.items():
        if path[: len(key)] == key:
            out.setdefault(path[len(key) :], set()).update(spans)
        elif key[: len(path)] == path:
            out.setdefault((), set()).update(spans)
    return out


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _read_regular_file(target: Path, given: str, node: nodes.Directive) -> str:
    """The text of ``target``, which must be a regular file (symlinks followed), as UTF-8.

    Checked before opening (a FIFO blocks open() until a writer comes), and again on the open
    descriptor, opened non-blocking, so a file swapped for a FIFO in between cannot hang us either.
    """
    span = arg_span(node, 0)
    shown = _shown(given)
    try:
        before = os.stat(target)
    except FileNotFoundError:
        raise DirectiveFailed(Diagnostic("TSK243", f"@file: no such file `{shown}`", span)) from None
    except OSError as exc:
        raise DirectiveFailed(Diagnostic("TSK243", f"@file: cannot read `{shown}`: {_reason(exc)}", span)) from None
    if not stat.S_ISREG(before.st_mode):
        raise DirectiveFailed(_not_regular(shown, before.st_mode, span))
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise DirectiveFailed(Diagnostic("TSK243", f"@file: cannot read `{shown}`: {_reason(exc)}", span)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DirectiveFailed(_not_regular(shown, mode, span))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError as exc:
        raise DirectiveFailed(Diagnostic("TSK243", f"@file: cannot read `{shown}`: {_reason(exc)}", span)) from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DirectiveFailed(
            Diagnostic(
                "TSK243",
                f"@file: `{shown}` is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})",
                span,
            )
        ) from None


def _not_regular(shown: str, mode: int, span: Any) -> Diagnostic:
    return Diagnostic(
        "TSK243",
        f"@file: `{shown}` is {_kind(mode)}, not a regular file",
        span,
        hint="@file reads TuskLang files only (symlinks are followed to their target)",
    )


def _shown(path: str) -> str:
    return path if len(path) <= 120 else path[:117] + "..."


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return "a symlink loop" if "loop" in text.lower() else text


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


DIRECTIVE = Directive("file", "include another TuskLang file's data", check, resolve, static=True)
