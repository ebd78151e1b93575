"""Serving snapshots over HTTP: the OpenFeature Remote Evaluation Protocol (OFREP)."""

from __future__ import annotations

from .ofrep import ACCESS_LOGGER, DEFAULT_MAX_BODY_BYTES, create_app

__all__ = ["ACCESS_LOGGER", "DEFAULT_MAX_BODY_BYTES", "create_app"]
