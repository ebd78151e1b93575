"""A flag's typed variants and its rules on any context attribute (docs/config.md, "Variants and rules").

    variants = { compact = { value = { rows = 50 }, weight = 50 }, roomy = { value = { rows = 20 }, weight = 50 } }
    rules = [
        { id = "benelux", when = { attribute = "country", op = "in", values = ["NL", "BE"] }, serve = "compact" }
        { when = [ { attribute = "app_version", op = "semver_ge", value = "2.1.0" },
                   { not = { attribute = "email", op = "ends_with", value = "@example.com" } } ],
          rollout = 25, serve = "roomy" }
    ]

The shapes are checked here; what needs the whole flag (a variant a rule names, the type of a value, an
operand of the wrong kind for its operator, a regex that does not compile) is the normaliser's, which
reports it at the value's position.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from ._base import ConfigModel, Percent
from ._weights import VariantWeight

FlagType = Literal["boolean", "string", "number", "object"]

# The operators of an attribute clause: the snapshot's own names (docs/snapshot.md, "Conditions"), one
# vocabulary from the config to the evaluator's explanations.
ClauseOp = Literal[
    "in",
    "not_in",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "starts_with",
    "ends_with",
    "contains",
    "matches",
    "semver_eq",
    "semver_ne",
    "semver_lt",
    "semver_le",
    "semver_gt",
    "semver_ge",
    "before",
    "after",
    "contains_any",
    "contains_all",
    "exists",
    "not_exists",
]
LIST_OPS = frozenset({"in", "not_in", "contains_any", "contains_all"})
PRESENCE_OPS = frozenset({"exists", "not_exists"})


class VariantSpec(ConfigModel):
    """A variant written as an object with `value` and/or `weight`."""

    value: Any = Field(default=None, description="What the variant serves (any value of the flag's type).")
    weight: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Share of the flag's split (weights sum to 1 or 100); none: not in the split."
    )
    description: str | None = Field(default=None, description="What this variant is.")


def _variant_kind(value: Any) -> str:
    # An object with `value` or `weight` describes the variant; any other value is what it serves (to
    # serve such an object, wrap it: `{ value = { value = 1 } }`).
    return "<spec>" if isinstance(value, dict) and ("value" in value or "weight" in value) else "<plain>"


# Tags are written `<...>`: pydantic puts them in error locations, and a tag equal to a key of the data
# (a variant named `spec`, a clause's `attribute`) would send the error to the wrong place.
Variant = Annotated[
    Annotated[VariantSpec, Tag("<spec>")] | Annotated[Any, Tag("<plain>")],
    Discriminator(_variant_kind),
]


class AttributeClause(ConfigModel):
    """`{ attribute = "country", op = "in", values = ["NL", "BE"] }`: one test of one context attribute."""

    attribute: Annotated[str, Field(min_length=1)] = Field(description="The context attribute tested.")
    op: ClauseOp = Field(description="The operator (docs/config.md lists what each takes).")
    value: Any = Field(default=None, description="The operand of a single-value operator.")
    values: list[Any] | None = Field(
        default=None, description="The operands of in, not_in, contains_any, contains_all."
    )


class SegmentClause(ConfigModel):
    """`{ segment = "beta_program" }` or a list: the unit belongs to any of the segments."""

    segment: str | Annotated[list[str], Field(min_length=1)] = Field(description="Segment name(s).")


class AllClause(ConfigModel):
    """Every clause of the list holds."""

    all: list[Clause] = Field(description="Clauses that must all hold.")


class AnyClause(ConfigModel):
    """At least one clause of the list holds."""

    any: list[Clause] = Field(description="Clauses of which one must hold.")


class NotClause(ConfigModel):
    """The clause does not hold (also when its attribute is missing)."""

    not_: Clause = Field(alias="not", description="The clause that must not hold.")


def _clause_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("segment", "all", "any", "not"):
            if key in value and "attribute" not in value and "op" not in value:
                return f"<{key}>"
    return "<attribute>"  # also the best error for anything else: its keys are the ones to write


Clause = Annotated[
    Annotated[AttributeClause, Tag("<attribute>")]
    | Annotated[SegmentClause, Tag("<segment>")]
    | Annotated[AllClause, Tag("<all>")]
    | Annotated[AnyClause, Tag("<any>")]
    | Annotated[NotClause, Tag("<not>")],
    Discriminator(_clause_kind),
]


def _when_kind(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<clause>"


When = Annotated[
    Annotated[list[Clause], Tag("<list>")] | Annotated[Clause, Tag("<clause>")],
    Discriminator(_when_kind),
]


class RuleConfig(ConfigModel):
    """One rule of a flag: in order, the first that serves wins."""

    id: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Names the rule in results, explanations and `tusk diff` (default rule-<n>)."
    )
    description: str | None = Field(default=None, description="What the rule is for.")
    when: When | None = Field(
        default=None, description="A clause, or a list of clauses that must all hold; none: every unit."
    )
    serve: Any = Field(default=None, description="The variant served (its name, or its value); default `on`.")
    rollout: Percent | None = Field(default=None, description="Share (0-100) of the matching units served.")
    split: Annotated[dict[str, VariantWeight], Field(min_length=1)] | None = Field(
        default=None, description="Variant weights (summing to 1 or 100) instead of one served variant."
    )


# The three models that refer to Clause before it exists: rebuilt now so that their fields' annotations
# are resolved (the compiler walks them: compiler/locate.py, compiler/secrets.py), which also builds
# their validators. RuleConfig comes after Clause and stays deferred (schema/_base.py).
AllClause.model_rebuild()
AnyClause.model_rebuild()
NotClause.model_rebuild()
