"""What a team arriving from another flag system writes, and our name for it: hints for TSK301 and TSK304.

Spelling suggestions (difflib) cannot see that LaunchDarkly's `semVerGreaterThan`, Unleash's
`NUM_GTE`, Flipt's `isoneof` or GrowthBook's `$regex` are our `semver_gt`, `>=`, `in` and `matches`:
the names share too few letters. These tables say so once, for the validator's hints (compiler/locate.py).
"""

from __future__ import annotations

from collections.abc import Sequence

# Keyed by the normalised spelling (_normal): case, `$`, `_`, `-` and spaces do not matter, so one entry
# covers `semVerEqual`, `SEMVER_EQ` and `semver-eq`. Grouped by meaning, several to a line.
# fmt: off
_OPERATORS: dict[str, str] = {
    # equality (Flipt, GrowthBook, generic)
    "eq": "==", "equal": "==", "equals": "==", "is": "==", "=": "==", "===": "==", "numeq": "==",
    "ne": "!=", "neq": "!=", "notequal": "!=", "notequals": "!=", "isnot": "!=", "<>": "!=", "!==": "!=",
    # order (LaunchDarkly, Unleash, Flipt, GrowthBook)
    "lt": "<", "lessthan": "<", "numlt": "<",
    "lte": "<=", "le": "<=", "lessthanorequal": "<=", "numlte": "<=",
    "gt": ">", "greaterthan": ">", "numgt": ">",
    "gte": ">=", "ge": ">=", "greaterthanorequal": ">=", "numgte": ">=",
    # membership (Flipt's isoneof, GrowthBook's $nin)
    "isoneof": "in", "oneof": "in", "inlist": "in",
    "isnotoneof": "not_in", "notoneof": "not_in", "nin": "not_in", "notin": "not_in",
    # strings (Unleash's STR_*, Flipt's prefix/suffix, GrowthBook's $regex)
    "startswith": "starts_with", "strstartswith": "starts_with", "prefix": "starts_with",
    "endswith": "ends_with", "strendswith": "ends_with", "suffix": "ends_with",
    "strcontains": "contains", "includes": "contains",
    "regex": "matches", "regexp": "matches", "match": "matches", "matchesregex": "matches",
    # versions (LaunchDarkly's semVer*, Unleash's SEMVER_*, GrowthBook's $v*)
    "semverequal": "semver_eq", "veq": "semver_eq",
    "semvernotequal": "semver_ne", "vne": "semver_ne",
    "semverlessthan": "semver_lt", "vlt": "semver_lt",
    "semverlte": "semver_le", "vlte": "semver_le",
    "semvergreaterthan": "semver_gt", "vgt": "semver_gt",
    "semvergte": "semver_ge", "vgte": "semver_ge",
    # dates (Unleash)
    "dateafter": "after", "datebefore": "before",
    # presence (Flipt, GrowthBook)
    "present": "exists", "ispresent": "exists", "notpresent": "not_exists", "isnotpresent": "not_exists",
    "notexists": "not_exists", "doesnotexist": "not_exists",
    # lists (GrowthBook's $all)
    "all": "contains_all", "containsany": "contains_any", "containsall": "contains_all",
}
# fmt: on

# Keys of a flag as other systems name them. Only names that are not misspellings of ours: those get
# "did you mean" from difflib already.
_FLAG_KEYS: dict[str, str] = {
    "on": "`enabled = true` switches a flag on",
    "active": "`enabled = true` switches a flag on",
    "state": "`enabled = true` or `false` switches a flag",
    "percentage": "a flag's share of units is `rollout_percentage` (0-100)",
    "rollout": "a flag's share of units is `rollout_percentage` (0-100); a rule has its own `rollout`",
    "default": "the value served when no rule matches is `fallback`",
    "defaultvariant": "the variant served when no rule matches is `fallback`",
    "defaultvalue": "the value served when no rule matches is `fallback`",
    "offvariation": "the variant served when no rule matches is `fallback`",
    "fallthrough": "the variant served when no rule matches is `fallback`",
    "split": "a flag splits by its variants' weights (`variants = { a = { weight = 50 }, b = { weight = 50 } }`), "
    "a rule by its `split = { a = 50, b = 50 }`",
    "weights": "a flag splits by its variants' weights (`variants = { a = { weight = 50 }, b = { weight = 50 } }`)",
    "targetingrules": 'rules are `rules = [ { when = {...}, serve = "variant" }, ... ]`',
    "constraints": 'rules are `rules = [ { when = {...}, serve = "variant" }, ... ]`',
    "segments": 'rules name segments with `when = { segment = "name" }`',
    "prerequisites": "prerequisites are `requires = { other_flag = true }`",
    "dependencies": "prerequisites are `requires = { other_flag = true }`",
    "description": 'a flag\'s description, owner and tags go in `metadata = { description = "..." }`',
    "owner": 'a flag\'s description, owner and tags go in `metadata = { owner = "..." }`',
    "tags": "a flag's description, owner and tags go in `metadata = { tags = [...] }`",
    "stickiness": "the attribute units are bucketed by is `bucket_by`",
    "hashattribute": "the attribute units are bucketed by is `bucket_by`",
    "bucketby": "the attribute units are bucketed by is `bucket_by`",
}


def _normal(name: str) -> str:
    return name.lower().replace("$", "").replace("_", "").replace("-", "").replace(" ", "")


def operator_for(value: str, options: Sequence[str]) -> str | None:
    """Our operator for another system's name of it (`semVerGreaterThan` -> `semver_gt`), if it is one of
    ``options`` (the values the field accepts)."""
    normal = _normal(value)
    for option in options:  # ours in another case or separator: `SEMVER_EQ`, `notIn`, `Starts-With`
        if _normal(option) == normal:
            return option
    ours = _OPERATORS.get(normal)
    return ours if ours in options else None


def flag_key_hint(key: str, known: Sequence[str]) -> str | None:
    """Where another system's flag key goes here (`defaultVariant` -> `fallback`), for a flag's keys."""
    hint = _FLAG_KEYS.get(_normal(key))
    if hint is None or "enabled" not in known or "fallback" not in known:  # only at a flag's own level
        return None
    return hint
