"""OpenFeature-style evaluation reasons and error codes (strings, so results serialise as-is)."""

from __future__ import annotations

STATIC = "STATIC"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DEFAULT = "DEFAULT"
DISABLED = "DISABLED"
# Not one of OpenFeature's predefined reasons (the spec allows others): a prerequisite flag did not serve
# one of the listed variants, so the flag serves its off variant (docs/snapshot.md, "Prerequisites").
PREREQUISITE_FAILED = "PREREQUISITE_FAILED"
ERROR = "ERROR"

REASONS = (STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED, PREREQUISITE_FAILED, ERROR)

FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
TYPE_MISMATCH = "TYPE_MISMATCH"
INVALID_CONTEXT = "INVALID_CONTEXT"
TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
PARSE_ERROR = "PARSE_ERROR"
GENERAL = "GENERAL"

ERROR_CODES = (FLAG_NOT_FOUND, TYPE_MISMATCH, INVALID_CONTEXT, TARGETING_KEY_MISSING, PARSE_ERROR, GENERAL)
