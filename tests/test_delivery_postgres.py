"""The same canary scenario with PostgreSQL as metric source and state store."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tusklang.delivery import (
    Action,
    CanaryController,
    RolloutStore,
    Sample,
    SqlMetricSource,
    drive,
    load_policy,
)
from tusklang.delivery.db import Database

pytestmark = pytest.mark.postgres
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def pg(postgres_url: str):
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    db = Database(postgres_url, prefix)
    yield db
    for table in ("metric_samples", "rollout_state", "rollout_audit"):
        db.execute(f"DROP TABLE IF EXISTS {db.table(table)}")
    db.close()


def test_climbing_error_rate_rolls_back_with_postgres(pg: Database, fixtures_dir: Path) -> None:
    block = json.loads((fixtures_dir / "delivery/seed_policy.json").read_text())["progressive_delivery"]
    source, store = SqlMetricSource(pg), RolloutStore(pg)
    source.ensure_schema()
    store.ensure_schema()
    for minute in range(40):
        at = T0 + timedelta(minutes=minute, seconds=30)
        source.record(Sample(at, "canary", "error_rate", 0.01 if minute < 10 else 0.2))
        source.record(Sample(at, "canary", "response_time", 300.0))
        source.record(Sample(at, "canary", "throughput", 5000.0))
        source.record(Sample(at, "stable", "error_rate", 0.9))  # never judged: the stable target
    state, decision = CanaryController(load_policy(block)).start("pg-app", T0)
    store.commit(state, block, decision)
    actions = []
    for minute in range(1, 41):
        state, raw = store.load("pg-app")  # type: ignore[misc]
        new, decision = drive(CanaryController(load_policy(raw)), state, source, T0 + timedelta(minutes=minute))
        if decision is not None:
            store.commit(new, raw, decision)
            actions.append(decision.action)
    assert actions == [Action.ADVANCE, Action.ADVANCE, Action.HOLD, Action.HOLD, Action.ROLLBACK]
    history = store.history("pg-app", limit=50)
    assert history[-1]["action"] == "rollback" and history[-1]["canary_percent"] == 0
    assert history[-1]["checks"][0]["mean"] == pytest.approx(0.2)
    assert len(source.fetch("canary", ["error_rate"], T0, T0 + timedelta(minutes=5))) == 5
