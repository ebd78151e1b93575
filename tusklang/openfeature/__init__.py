"""OpenFeature integration: the in-process provider (``TuskProvider``) and the context mapping it
shares with the OFREP server. The provider needs the optional ``openfeature-sdk`` package
(``pip install 'tusklang[openfeature]'``); the mapping needs nothing."""

from __future__ import annotations

from typing import Any

from .mapping import TargetingKey, definition, flag_metadata, with_targeting_key

__all__ = ["TargetingKey", "TuskProvider", "definition", "flag_metadata", "with_targeting_key"]


def __getattr__(name: str) -> Any:
    if name == "TuskProvider":  # imported lazily: only the provider needs openfeature-sdk
        from .provider import TuskProvider

        return TuskProvider
    raise AttributeError(name)
