"""Pydantic models of the TuskLang flag configuration (one module per seed block). See docs/config.md."""

from __future__ import annotations

from .project import ProjectConfig

__all__ = ["ProjectConfig"]
