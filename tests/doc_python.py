"""The Python side of tests/doc_blocks.py: one process per page runs that page's python blocks in order,
in one namespace, so a snippet's global state (an OpenFeature provider, watcher threads, environment
variables) never reaches the test session.

Protocol: a JSON request per line on stdin, `{"code", "filename", "line"}`; a JSON reply per line on the
file descriptor given as argv[1], `{"ok", "stdout", "error", "line"}`. The block's own stdout is captured;
anything written straight to the process's stdout or stderr (child processes, logging) is left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from typing import Any


def run_block(request: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    filename, line = request["filename"], request["line"]
    out = io.StringIO()
    try:
        # Padded with blank lines so that a traceback's line numbers are the page's own.
        code = compile("\n" * line + request["code"] + "\n", filename, "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)  # running the page's own example is the point
    except BaseException as exc:  # reported with the page's line; SystemExit included
        where = line
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename and frame.lineno is not None:
                where = frame.lineno
        if isinstance(exc, SyntaxError) and exc.filename == filename and exc.lineno:
            where = exc.lineno
        return {"ok": False, "stdout": out.getvalue(), "error": f"{type(exc).__name__}: {exc}", "line": where}
    return {"ok": True, "stdout": out.getvalue(), "error": None, "line": line}


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for raw in sys.stdin:
        replies.write(json.dumps(run_block(json.loads(raw), namespace)) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
