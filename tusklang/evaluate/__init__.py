"""Reference evaluator of compiled snapshots. See docs/evaluation.md."""

from __future__ import annotations

from . import reasons
from .bucketing import bucket, bucket_hash, cbor_text, pick_variant
from .client import Client, Tracker
from .explain import explain
from .result import EvaluationResult

__all__ = [
    "Client",
    "EvaluationResult",
    "Tracker",
    "bucket",
    "bucket_hash",
    "cbor_text",
    "explain",
    "pick_variant",
    "reasons",
]
