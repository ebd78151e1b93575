"""Every diagnostic code tusklang emits: its one-line title and the severity it is emitted with.

One registry, so a command line can tell a real code from a typo (`tusk check --error` with a code
that does not exist is a usage error, not a gate that silently checks nothing), an editor can show
what a code means, and a test can hold the code base to it: every `TSKnnn` literal under tusklang/
must be registered here, and every registered code must be documented in docs/diagnostics.md
(tests/test_cli_codes.py).

`severity` is what the code is emitted with before any `--error` promotes it. A code emitted only as
an error cannot be `--ignore`d: dropping an error would let a broken project through a CI gate.
Stage 1 (foundation): imports nothing above `diagnostics`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .diagnostics import Severity
from .limits import MAX_DEPTH

E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741 (short for the table below)


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    title: str
    severity: Severity

    @property
    def ignorable(self) -> bool:
        return self.severity is not Severity.ERROR


_TABLE: Final[tuple[tuple[str, Severity, str], ...]] = (
    # reading input
    ("TSK001", E, "input is not UTF-8 text (or holds a lone surrogate)"),
    # syntax
    ("TSK100", E, "unexpected token"),
    ("TSK101", E, "malformed or misplaced `[section]` header"),
    ("TSK102", E, "mismatched or stray closing bracket"),
    ("TSK103", E, "unclosed bracket or block"),
    ("TSK104", E, "missing newline or `,` between members"),
    ("TSK105", E, "unterminated string or comment"),
    ("TSK106", E, "malformed or out-of-range number"),
    ("TSK107", E, "unexpected character"),
    ("TSK108", E, "malformed `${...}` interpolation"),
    ("TSK109", E, "bad escape sequence in a string"),
    ("TSK110", E, "a `- item` line outside a list opened by `key:`"),
    ("TSK111", E, "chained comparison"),
    ("TSK112", E, f"nested more than {MAX_DEPTH} levels deep"),
    ("TSK113", E, "inconsistent indentation in an indentation block (or tabs and spaces mixed)"),
    ("TSK120", E, "duplicate key or section"),
    ("TSK121", E, "duplicate variable"),
    ("TSK122", E, "a key that already holds a value cannot also hold keys"),
    ("TSK130", E, "a value `dumps` cannot write as TuskLang"),
    # resolving
    ("TSK200", E, "unknown variable"),
    ("TSK201", E, "variable used before its definition"),
    ("TSK202", E, "unknown bare name: no earlier key of the section has it"),
    ("TSK203", E, "member access (`.name`) on a value without that key"),
    ("TSK210", E, "type error in an expression (or a sum too large for a number)"),
    ("TSK211", E, f"a variable's or directive's value nested past {MAX_DEPTH} levels"),
    ("TSK212", E, "variables, `+` or interpolation build more than 10 million values"),
    ("TSK220", E, "unknown directive"),
    ("TSK221", E, "runtime-only directive at compile time (no longer emitted: see TSK229)"),
    ("TSK222", E, "bad @env arguments"),
    ("TSK223", E, "environment variable not set and no default"),
    ("TSK224", E, "environment variable of the wrong kind for its default"),
    ("TSK225", E, "bad @query SQL argument"),
    ("TSK226", E, "bad @query parameter"),
    ("TSK227", E, "bad @date arguments"),
    ("TSK228", E, "bad SOURCE_DATE_EPOCH for @date"),
    ("TSK229", E, "runtime-only: cannot be resolved at compile time"),
    ("TSK230", E, "@query without a configured database"),
    ("TSK231", E, "@query cannot connect to its database"),
    ("TSK232", E, "@query failed"),
    ("TSK240", E, "bad @file arguments"),
    ("TSK241", E, "@file path leaves the project root"),
    ("TSK242", E, "@file include cycle"),
    ("TSK243", E, "@file target cannot be read"),
    ("TSK244", E, "@file key path not found in the included file"),
    # databases and the event store
    ("TSK250", E, "unsupported or malformed database URL"),
    ("TSK251", E, "cannot connect to or open the database"),
    ("TSK252", E, "statement refused (not one read-only query)"),
    ("TSK253", E, "query failed"),
    ("TSK254", E, "a database value with no JSON form"),
    ("TSK255", E, "a database write failed"),
    ("TSK256", E, "event tables newer than this tusklang"),
    ("TSK257", E, "PII masking key missing or too short"),
    # secrets
    ("TSK270", W, "a value from @env left out of the snapshot (metadata, description)"),
    ("TSK271", E, "a value from @env in metadata or a description under --strict-secrets"),
    ("TSK272", E, "a value from @env where the snapshot would copy it verbatim"),
    ("TSK273", E, "an @env value that is not UTF-8 text"),
    # schema and compile
    ("TSK301", E, "unknown key"),
    ("TSK302", E, "wrong type"),
    ("TSK303", E, "value out of range"),
    ("TSK304", E, "invalid value"),
    ("TSK305", E, "required key missing"),
    ("TSK310", E, "variant weights do not sum to 1 or 100"),
    ("TSK311", E, "percentage finer than the snapshot's scale"),
    ("TSK312", E, "bad rollout schedule step"),
    ("TSK313", E, "gradual rollout or experiment duration without a start"),
    ("TSK314", E, "segment criterion outside the grammar"),
    ("TSK315", E, "bad time of day, empty window or unknown time zone"),
    ("TSK316", E, "unknown segment close to a defined one"),
    ("TSK317", E, "unknown environment"),
    ("TSK318", E, "defined twice"),
    ("TSK319", E, "fallback, variant, control or override problem"),
    ("TSK320", E, "rollout strategy without what it needs"),
    ("TSK321", E, "not an ISO-8601 date"),
    ("TSK330", W, "segment not defined here: computed by the application"),
    ("TSK331", W, "validated but not acted on downstream"),
    ("TSK332", I, "directive not run by a static check: its value is not checked"),
    ("TSK333", E, "`feature_usage` key not min_<x> or max_<x>"),
    ("TSK340", E, "a value of another type than the flag's"),
    ("TSK341", W, "the value a variant serves is derived, not declared"),
    ("TSK342", E, "a rule clause with an operand its operator cannot use (regex, version, type, list)"),
    ("TSK343", E, "a prerequisite naming an unknown flag, or a variant or value it does not have"),
    ("TSK344", E, f"prerequisites in a cycle, or a chain of more than {MAX_DEPTH}"),
    ("TSK350", W, "access control settings that grant nothing (no role, an undeclared approver role)"),
    # lint rules (docs/lint.md; severities as in tusklang.compiler.lint.RULES)
    ("TSK401", W, "missing-documentation: a required metadata field is missing"),
    ("TSK402", W, "approval-missing: a production flag without an approval"),
    ("TSK403", W, "stale-flag: older than the cleanup threshold"),
    ("TSK404", W, "fully-rolled-out: at 100% and ready to remove"),
    ("TSK405", I, "implicit-threshold-direction: a threshold whose direction is guessed"),
    ("TSK406", W, "empty-targeting: a targeting list that matches nobody"),
    ("TSK407", W, "overlapping-targeting: a targeting list names a value twice"),
    # runtime overrides (tusk flags)
    ("TSK700", E, "override of an unknown flag or experiment"),
    ("TSK701", E, "rollout percentage not a number in 0..100, or finer than the snapshot's resolution"),
    ("TSK702", E, "the flag has no rules to gate"),
    ("TSK703", E, "--rule names no rule of the flag"),
    ("TSK704", E, "variant weights for a flag or rule without a split"),
    ("TSK705", E, "unknown variant"),
    ("TSK706", E, "weights negative, finer than the snapshot's resolution, or not summing to 100"),
    ("TSK707", E, "an argument that is not VARIANT=PERCENT, or a variant given twice"),
    ("TSK708", E, "the snapshot with the override would not validate"),
    ("TSK709", E, "override write outside the writer's roles"),
    ("TSK710", E, "no valid identity: token missing or malformed, key unknown, retired or revoked"),
    ("TSK711", E, "the change needs approval: propose it"),
    ("TSK712", E, "a proposal that cannot be approved (unknown, expired, stale, decided, own, not an approver)"),
    ("TSK713", E, "the override audit stream fails verification"),
    ("TSK714", E, "keyring problem (unreadable, malformed, unknown key or identity)"),
    # progressive delivery
    ("TSK800", E, "delivery policy invalid"),
    ("TSK801", E, "delivery block missing or disabled"),
    ("TSK802", E, "delivery config unreadable"),
    ("TSK810", E, "bad delivery table prefix"),
    ("TSK811", E, "bad metric sample"),
    ("TSK812", E, "bad metrics CSV line"),
    ("TSK820", E, "release transition not allowed"),
    ("TSK821", E, "release changed by another controller meanwhile"),
    ("TSK822", E, "release driven by another controller (its lease is held)"),
    ("TSK823", E, "release cannot be bound to the flag"),
    # statistics, reports and dashboards
    ("TSK901", E, "statistics input invalid"),
    ("TSK940", E, "no `real_time_feature_dashboard` block"),
    ("TSK941", E, "the real-time dashboard is turned off"),
    ("TSK942", W, "dashboard selection names no panel or widget"),
    ("TSK943", I, "`real_time_dashboard.refresh_interval` is not used"),
    ("TSK944", E, "a dashboard widget's query failed"),
    ("TSK945", E, "an experiment report cannot be produced"),
    ("TSK946", E, "rows that do not fit a dashboard widget"),
    ("TSK947", E, "a dashboard --param naming no widget"),
    # editor only (tusk lsp)
    # snapshots and the flagd export
    ("snapshot-json", E, "the snapshot is not JSON"),
    ("snapshot-format", E, "the snapshot's format version is not supported"),
    ("snapshot-invalid", E, "the snapshot does not validate"),
    ("flagd-unsupported", E, "a flag flagd cannot express with the same meaning"),
    ("flagd-variant-types", W, "an object flag has a list variant (flagd's schema wants objects)"),
    ("flagd-time-horizon", I, "a time window's zone offsets are exact only within the horizon"),
)

CODES: Final[Mapping[str, Code]] = MappingProxyType({c: Code(c, title, sev) for c, sev, title in _TABLE})

_TSK = re.compile(r"tsk\d{3}", re.IGNORECASE)


def normalise(code: str) -> str:
    """`tsk401` and ` TSK401 ` mean TSK401; other codes (`flagd-unsupported`) are lower case."""
    code = code.strip()
    return code.upper() if _TSK.fullmatch(code) else code.lower()


def lookup(code: str) -> Code | None:
    return CODES.get(normalise(code))
