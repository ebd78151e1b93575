"""A seeded share of benchmarks/fuzz_parser.py: whatever the text, a result or a TuskError, nothing else.

The full run (20,000+ inputs, nesting to depth 100,000) is `python benchmarks/fuzz_parser.py`.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent


def _load_fuzz() -> Any:
    spec = importlib.util.spec_from_file_location("fuzz_parser", ROOT / "benchmarks" / "fuzz_parser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _load_fuzz()
CORPUS = FUZZ.corpus()
PARSER_GENERATORS = [(make, weight) for make, weight in FUZZ.GENERATORS if make is not FUZZ.variables]


def shown(crashes: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['call']}: {c['error']} at {c['where']} for {c['input'][:200]!r}" for c in FUZZ.distinct(crashes)
    )


def test_seeded_fuzz_of_mutations_truncations_soup_nesting_and_odd_text() -> None:
    done, crashes = FUZZ.fuzz(1000, seed=20260, timeout=10.0, generators=PARSER_GENERATORS)
    assert done == 1000
    assert not crashes, shown(crashes)


def test_seeded_fuzz_of_values_built_through_variables() -> None:
    done, crashes = FUZZ.fuzz(40, seed=7, timeout=10.0, generators=[(FUZZ.variables, 1)])
    assert done == 40
    assert not crashes, shown(crashes)


@given(st.randoms(use_true_random=False), st.integers(0, len(CORPUS) - 1))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_fixtures_give_a_result_or_a_diagnostic(rng: random.Random, index: int) -> None:
    text = FUZZ.mutation(rng, [CORPUS[index]])
    assert not FUZZ.run_one(text, 10.0)
