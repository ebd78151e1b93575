"""The compiler: TuskLang project -> validated, versioned JSON flag snapshot. See docs/config.md."""

from __future__ import annotations

from .lint import RULES, LintOptions
from .pipeline import CompileResult, build_snapshot, check_document, compile_files

__all__ = ["RULES", "CompileResult", "LintOptions", "build_snapshot", "check_document", "compile_files"]
