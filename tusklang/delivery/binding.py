"""A rollout bound to a flag: the resolution lives with the compiler (tusklang/compiler/binding.py), which
checks every policy's binding against the flags it compiles, so `tusk check`/`tusk compile` refuse a binding
that `tusk rollout start` would refuse. Re-exported here for the controllers."""

from ..compiler.binding import BINDING_CODE, MAIN_RULE, Binding, resolve_binding

__all__ = ["BINDING_CODE", "MAIN_RULE", "Binding", "resolve_binding"]
