"""The base of every config model: unknown keys are errors, and values are not silently coerced."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .durations import parse_duration, parse_size


# defer_build: a model's validator is built when it first validates, not when its module is imported, so
# `tusk check` of a file without (say) an ab_testing_config block never builds that block's models
# (building every model at import was most of `tusk check`'s start-up, issue 19). A default written as an
# instance (`targeting: X = X.model_construct()`) is constructed, not validated, for the same reason.
class ConfigModel(BaseModel):
    # strict: "true" never becomes True and 1 never becomes "1"; extra="forbid": a typo such as
    # `rollout_percantage` is an error with "did you mean", never an ignored key.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class RowModel(BaseModel):
    """Rows from @query: database drivers hand back 0/1 for booleans, so coercion is allowed here."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, defer_build=True)


Percent = Annotated[float, Field(ge=0, le=100)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Names = Annotated[list[str], Field(min_length=0)]
FreeForm = dict[str, Any]
