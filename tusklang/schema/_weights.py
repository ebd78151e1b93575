"""A variant weight as the seed writes it: a number (fraction or percent) or ``{ weight, description }``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from ._base import ConfigModel


class WeightedVariant(ConfigModel):
    weight: Annotated[float, Field(ge=0)]
    description: str | None = None


def _weight_kind(value: Any) -> str:
    return "object" if isinstance(value, dict | WeightedVariant) else "number"


VariantWeight = Annotated[
    Annotated[Annotated[float, Field(ge=0)], Tag("number")] | Annotated[WeightedVariant, Tag("object")],
    Discriminator(_weight_kind),
]


def weight_of(value: float | WeightedVariant) -> float:
    return value.weight if isinstance(value, WeightedVariant) else float(value)
