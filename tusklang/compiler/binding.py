"""A rollout bound to a flag: which rule of which flag the controller moves, and how (docs/delivery.md).

The binding is resolved once, against the compiled snapshot, when the rollout starts, and stored with
the rollout's state; every decision after that becomes one override record patch
(``Binding.patch(percent)``), written through the runtime override layer (``tusklang.overrides``).

Which rule, for a flag with several rules (the rule order is the evaluation order, docs/evaluation.md):

1. the rule the binding names (``rule = "..."`` in the policy, ``--rule`` on the command line);
2. else the rule with id ``rollout``: the rule the compiler makes of a flag's targeting and its
   ``rollout_percentage`` (always the last, after ``override/<variant>`` lists and a flag's own
   ``rules``), so the number docs/config.md says the canary controller changes is the one it changes;
3. else the flag's only rule that carries a rollout gate (percentage or schedule);
4. else, when no rule carries one, the flag's last rule: the earlier ones are exceptions (override
   lists, beta testers) and the last is the flag's general targeting;
5. several rules with a rollout gate, none of them `rollout`, and none named: refused (TSK823),
   naming them.

How: a rule with a variant split is moved by its weights (``mode = "split"``: the canary variant gets
the canary percentage, the stable variant the rest, any other variant of the split 0); any other rule
by its rollout percentage (``mode = "rollout"``: the units the gate admits are served the rule's
variant, the canary; the others pass on to the next rules and usually get the default variant).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..diagnostics import Diagnostic, TuskError
from ..schema.delivery import FlagBinding
from ..suggest import did_you_mean

if TYPE_CHECKING:  # the snapshot models are imported only when a policy binds a flag (issue 19: `tusk check`)
    from ..schema.project import ProjectConfig
    from ..snapshot.models import Flag, Rule, Snapshot

BINDING_CODE = "TSK823"
MAIN_RULE = "rollout"  # the id of the rule the compiler makes of targeting + rollout_percentage


@dataclass(frozen=True, slots=True)
class Binding:
    """A resolved binding: everything a controller needs to write the flag's override."""

    flag: str
    rule: str
    mode: Literal["rollout", "split"]
    canary_variant: str
    stable_variant: str
    prefix: str  # the override layer's Redis key prefix

    def patch(self, percent: float) -> dict[str, Any]:
        """The override record content that puts ``percent`` of the rule's traffic on the canary."""
        canary = _number(percent)
        if self.mode == "rollout":
            return {"rollout": {self.rule: canary}}
        stable = _number(100 - float(percent))
        return {"weights": {self.rule: [[self.stable_variant, stable], [self.canary_variant, canary]]}}

    def percent_of(self, record: dict[str, Any] | None) -> float | None:
        """The canary percentage an override record sets for this binding's rule (None: it sets none)."""
        if not record:
            return None
        if self.mode == "rollout":
            value = (record.get("rollout") or {}).get(self.rule)
            return float(value) if isinstance(value, int | float) else None
        pairs = (record.get("weights") or {}).get(self.rule) or []
        for pair in pairs:
            if isinstance(pair, list) and len(pair) == 2 and pair[0] == self.canary_variant:
                return float(pair[1])
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binding:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        how = (
            f"rollout of rule `{self.rule}` (canary variant `{self.canary_variant}`)"
            if self.mode == "rollout"
            else f"split of rule `{self.rule}` ({self.canary_variant} vs {self.stable_variant})"
        )
        return f"flag `{self.flag}`: {how}, overrides under {self.prefix!r}"


def _number(value: float) -> int | float:
    value = round(float(value), 9)
    return int(value) if value.is_integer() else value


def _problem(message: str, hint: str | None = None) -> TuskError:
    return TuskError([Diagnostic(BINDING_CODE, message, hint=hint)])


def _pick_rule(flag: Flag, wanted: str | None) -> Rule:
    if not flag.rules:
        raise _problem(
            f"flag `{flag.key}` has no rules, so there is no traffic to split",
            "give the flag a rule in the config (e.g. rollout_percentage), compile, and start again",
        )
    ids = [r.id for r in flag.rules]
    if wanted is not None:
        for rule in flag.rules:
            if rule.id == wanted:
                return rule
        close = did_you_mean(wanted, ids)
        raise _problem(
            f"flag `{flag.key}` has no rule `{wanted}`",
            f"did you mean `{close}`?" if close else f"its rules: {', '.join(ids)}",
        )
    for rule in flag.rules:
        if rule.id == MAIN_RULE:
            return rule
    gated = [r for r in flag.rules if r.rollout is not None]
    if len(gated) == 1:
        return gated[0]
    if not gated:
        return flag.rules[-1]
    raise _problem(
        f"flag `{flag.key}` has {len(gated)} rules with a rollout ({', '.join(r.id for r in gated)}); "
        "the controller moves one",
        'name it: rule = "..." in the policy\'s flag binding, or --rule',
    )


def _check_variant(flag: Flag, variant: str, what: str) -> None:
    if variant not in flag.variants:
        close = did_you_mean(variant, list(flag.variants))
        raise _problem(
            f"{what} `{variant}` is not a variant of `{flag.key}`",
            f"did you mean `{close}`?" if close else f"its variants: {', '.join(flag.variants)}",
        )


def resolve_binding(snapshot: Snapshot, wanted: FlagBinding, prefix: str) -> Binding:
    """The binding of ``wanted`` against ``snapshot``; TSK823 when it cannot be made."""
    flag = snapshot.flags.get(wanted.key) or snapshot.experiments.get(wanted.key)
    if flag is None:
        close = did_you_mean(wanted.key, [*snapshot.flags, *snapshot.experiments])
        raise _problem(
            f"no flag or experiment `{wanted.key}` in the snapshot",
            f"did you mean `{close}`?" if close else "bind the rollout to a flag the snapshot defines",
        )
    rule = _pick_rule(flag, wanted.rule)
    for variant, what in ((wanted.canary_variant, "canary_variant"), (wanted.stable_variant, "stable_variant")):
        if variant is not None:
            _check_variant(flag, variant, what)
    if rule.split is not None:
        if wanted.canary_variant is None or wanted.stable_variant is None:
            raise _problem(
                f"rule `{rule.id}` of `{flag.key}` splits traffic between variants "
                f"({', '.join(v for v, _ in rule.split.weights)}); the controller needs to know which is which",
                "name both: canary_variant and stable_variant (--canary-variant, --stable-variant)",
            )
        if wanted.canary_variant == wanted.stable_variant:
            raise _problem("canary_variant and stable_variant must differ")
        return Binding(flag.key, rule.id, "split", wanted.canary_variant, wanted.stable_variant, prefix)
    served = rule.serve
    if served is None:  # a rule serves a variant or splits; the model allows neither only in theory
        raise _problem(f"rule `{rule.id}` of `{flag.key}` serves no variant")
    if wanted.canary_variant is not None and wanted.canary_variant != served:
        raise _problem(
            f"rule `{rule.id}` of `{flag.key}` serves `{served}`, so the canary (the units its rollout admits) "
            f"sees `{served}`, not `{wanted.canary_variant}`",
            "leave canary_variant out, or bind a rule that serves it",
        )
    stable = wanted.stable_variant or flag.default_variant
    if stable == served:
        raise _problem(
            f"rule `{rule.id}` of `{flag.key}` serves `{served}`, which is also the variant of the stable side",
            "a canary needs two variants: the rule's and the one units outside its rollout get",
        )
    return Binding(flag.key, rule.id, "rollout", served, stable, prefix)


# Where a project's delivery policies bind a flag (<progressive_delivery block>.<strategy>.flag).
BOUND_POLICIES = ("canary_deployments", "blue_green_deployments")


def binding_diagnostics(
    config: ProjectConfig, snapshot: dict[str, Any], locator: Any, complete: bool
) -> list[Diagnostic]:
    """TSK823 at a policy's ``flag = ...`` when ``tusk rollout start`` could not bind it to the compiled flags.

    ``complete``: every flag is known (compile, or a check without unknown values); otherwise a missing
    flag may come from a database row the static check did not read, so only the flags present are judged.
    """
    bound: list[tuple[tuple[str, ...], str, FlagBinding]] = []
    for where, delivery in config.delivery_policies():
        for name in BOUND_POLICIES:
            wanted = getattr(getattr(delivery, name, None), "flag", None)
            if wanted is not None:
                bound.append((where, name, wanted))
    if not bound:
        return []
    from ..snapshot.models import Snapshot

    try:
        model = Snapshot.model_validate(snapshot)
    except ValueError:  # the snapshot's own problems are reported elsewhere
        return []
    if not model.flags and not model.experiments:
        # A policy file of its own: its flag is compiled elsewhere (`tusk rollout start --snapshot`).
        return []
    out = []
    for where, name, wanted in bound:
        if not complete and wanted.key not in model.flags and wanted.key not in model.experiments:
            continue
        try:
            resolve_binding(model, wanted, prefix="")
        except TuskError as problem:
            path = (*where, name, "flag")
            for found in problem.diagnostics:
                out.append(Diagnostic(found.code, f"{name}: {found.message}", locator.value(path), hint=found.hint))
    return out
