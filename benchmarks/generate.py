"""Generated inputs for the benchmarks: N flags in the seed's style, as TuskLang, TOML and JSON."""

from __future__ import annotations

import json
import random
from typing import Any


def seed_style_flags(count: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    flags: dict[str, Any] = {}
    for i in range(count):
        flags[f"flag_{i:05d}"] = {
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
    return {"feature_flags": {"enabled": True, "flags": flags}}


def as_tusk(data: dict[str, Any]) -> str:
    from tusklang import dumps

    return dumps(data)


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
