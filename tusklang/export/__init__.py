"""Exports of a compiled snapshot to other flag systems' formats (docs/flagd.md)."""

from __future__ import annotations

from .flagd import FLAGD_SCHEMA, dumps_flagd, to_flagd

__all__ = ["FLAGD_SCHEMA", "dumps_flagd", "to_flagd"]
