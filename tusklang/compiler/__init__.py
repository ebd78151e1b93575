"""The compiler: TuskLang project -> validated, versioned JSON flag snapshot. See docs/config.md."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .options import RULES, LintOptions

if TYPE_CHECKING:
    from .pipeline import CompileResult, build_snapshot, check_document, compile_files

__all__ = ["RULES", "CompileResult", "LintOptions", "build_snapshot", "check_document", "compile_files"]

# The pipeline imports the schema (pydantic), so it is imported on first use: importing
# `tusklang.compiler.check` or `.options` must not pay for it (a cached `tusk check`, issue 19).
_PIPELINE = frozenset({"CompileResult", "build_snapshot", "check_document", "compile_files"})


def __getattr__(name: str) -> Any:
    if name not in _PIPELINE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.pipeline"), name)
    globals()[name] = value
    return value
