"""Generated inputs for the benchmarks: N flags in the seed's style, as TuskLang, TOML and JSON.

``seed_style_flags(n)`` holds the easy shapes (plain strings, small ints, booleans, arrays of plain
strings). ``rich=True`` adds, per flag, the shapes that take a parser's slow paths: an array of ints,
a string with escapes (quotes, a backslash, a tab) and a multi-line string, written as a triple-quoted block in
both TuskLang and TOML.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any


def seed_style_flags(count: int, seed: int = 7, rich: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    flags: dict[str, Any] = {}
    for i in range(count):
        flag: dict[str, Any] = {
            "enabled": rng.random() < 0.8,
            "rollout_strategy": "percentage",
            "rollout_percentage": rng.randint(0, 100),
            "targeting": {
                "user_segments": ["early_adopters", "premium_users"],
                "environments": ["staging", "production"],
                "regions": ["us-east", "eu-west"],
            },
            "fallback": False,
            "metadata": {
                "description": f"Generated flag number {i} for the benchmark",
                "owner": f"team-{i % 17}",
                "created_at": "2024-01-15",
                "expected_rollout": "2024-02-01",
            },
        }
        if rich:
            flag["metadata"].update(
                {
                    "buckets": [rng.randint(0, 10_000) for _ in range(8)],
                    "note": f'Ask "team-{i % 17}" first\tthen check C:\\flags\\{i}.log',
                    "runbook": f"Step 1: open the dashboard of flag {i}\n"
                    "Step 2: compare the error rates of both sides\n"
                    "Step 3: roll back with `tusk rollout` if they differ\n",
                }
            )
        flags[f"flag_{i:05d}"] = flag
    return {"feature_flags": {"enabled": True, "flags": flags}}


def as_tusk(data: dict[str, Any]) -> str:
    """``tusklang.dumps``, with each multi-line string written as a triple-quoted block."""
    from tusklang import dumps
    from tusklang.syntax.strings import quote

    blocks = {quote(value): '"""\n' + value + '"""' for value in _multiline_strings(data)}
    text = dumps(data)
    if not blocks:
        return text
    # One pass over the text: a replace per string would be quadratic at 50,000 flags.
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', lambda m: blocks.get(m.group(), m.group()), text)


def _multiline_strings(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for value in data.values():
            found |= _multiline_strings(value)
    elif isinstance(data, list):
        for value in data:
            found |= _multiline_strings(value)
    elif isinstance(data, str) and _block_safe(data):
        found.add(data)
    return found


def _block_safe(value: str) -> bool:
    """A multi-line string that reads the same as a triple-quoted block in TuskLang and TOML."""
    return "\n" in value and "\\" not in value and '"""' not in value and not value.endswith('"')


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)


def as_toml(data: dict[str, Any]) -> str:
    """TOML with one [table] per object, the way people write it by hand."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            if _block_safe(v):
                return '"""\n' + v + '"""'
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(v)

    def table(path: list[str], obj: dict[str, Any]) -> None:
        scalars = {k: v for k, v in obj.items() if not isinstance(v, dict)}
        if path and scalars:
            lines.append(f"[{'.'.join(path)}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {value(v)}")
        for k, v in obj.items():
            if isinstance(v, dict):
                table([*path, k], v)

    table([], data)
    return "\n".join(lines) + "\n"
