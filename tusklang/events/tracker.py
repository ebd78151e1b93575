"""`EventTracker`: the `tusklang.evaluate.Tracker` that turns evaluations and conversions into event rows.

    store = EventStore("postgresql://...")
    tracker = EventTracker(store, snapshot=snapshot_json, config=resolved_config)
    client = Client(snapshot_json, tracker=tracker)
    client.evaluate("checkout_optimization", {"user_id": "u1"})   # evaluation (sampled) + exposure row
    client.track("purchase", {"user_id": "u1"}, 49.0)            # conversion row

What is written (docs/events.md):
- every `evaluate()` is an `evaluation` row with probability `sampling_rate`, which the row records;
- an experiment (or a flag rule with a variant `split`) that assigns the unit by SPLIT also writes an
  `exposure` row, never sampled, once per (flag, unit, variant) per process (the report counts distinct
  units from each unit's first exposure, so repeats add nothing);
- `track()` writes a `conversion` row, never sampled (dropping conversions would bias rates).

The unit id is the flag's `bucket_by` attribute (what the evaluator hashed), else OpenFeature's
`targetingKey`; conversions use `unit_attribute` (default `user_id`), else `targetingKey`. Both are
replaced by their keyed hash under `pii_masking`. Nothing from the context is stored except the unit id
and the `attributes` named in the constructor (default none).

Every call returns quickly and never raises (the Tracker protocol): a failure is logged once and counted.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..evaluate import reasons as r
from ..evaluate.result import EvaluationResult
from ..schema.durations import parse_duration
from ..snapshot import Snapshot, load_snapshot
from .consent import DEFAULT_ATTRIBUTE, allows_analytics
from .masking import Masker
from .store import EventStore

log = logging.getLogger("tusklang.events")

_DEDUPE_LIMIT = 200_000
_SPLIT = r.SPLIT
CONFIG_KEYS = ("feature_analytics_config", "security_config")


@dataclass(frozen=True)
class TrackingConfig:
    """What `feature_analytics_config` and `security_config` say about tracking; None = not configured."""

    sampling_rate: float | None = None
    evaluations: bool | None = None
    exposures: bool | None = None
    pii_masking: bool | None = None
    retention: timedelta | None = None
    # security_config.compliance.consent_tracking: the context attribute holding consent; None = not required
    consent_attribute: str | None = None


def tracking_config(config: Mapping[str, Any] | None) -> TrackingConfig:
    """Read the tracking settings from a resolved config (or snapshot) mapping.

    The evaluation sampling rate is `feature_analytics_config.tracking.performance_impact.sampling_rate`:
    it is the only sampling rate the config language has (`flag_evaluations` takes none), and the
    evaluation rows are what the performance-impact analysis samples. `flag_evaluations.enabled = false`
    and `user_exposure.enabled = false` turn those rows off; `security_config.data_protection` gives
    `pii_masking` and `data_retention`.
    """
    if not config:
        return TrackingConfig()
    analytics = _mapping(config.get("feature_analytics_config"))
    tracking = _mapping(analytics.get("tracking"))
    perf = _mapping(tracking.get("performance_impact"))
    evaluations = _mapping(tracking.get("flag_evaluations"))
    exposures = _mapping(tracking.get("user_exposure"))
    security = _mapping(config.get("security_config"))
    protection = _mapping(security.get("data_protection"))
    compliance = _mapping(security.get("compliance"))

    rate = perf.get("sampling_rate") if perf.get("enabled", True) is not False else None
    retention = protection.get("data_retention")
    return TrackingConfig(
        sampling_rate=_rate(rate, "feature_analytics_config.tracking.performance_impact.sampling_rate")
        if rate is not None
        else None,
        evaluations=_bool(evaluations.get("enabled"), "flag_evaluations.enabled"),
        exposures=_bool(exposures.get("enabled"), "user_exposure.enabled"),
        pii_masking=_bool(protection.get("pii_masking"), "security_config.data_protection.pii_masking"),
        retention=parse_duration(retention) if retention is not None else None,
        consent_attribute=_consent_attribute(compliance),
    )


def _consent_attribute(compliance: Mapping[str, Any]) -> str | None:
    on = _bool(compliance.get("consent_tracking"), "security_config.compliance.consent_tracking")
    if not on:
        return None
    name = compliance.get("consent_attribute", DEFAULT_ATTRIBUTE)
    if not isinstance(name, str) or not name:
        raise ValueError(f"security_config.compliance.consent_attribute must be a non-empty string, got {name!r}")
    return name


def runtime_tracking(snapshot: str | bytes | Mapping[str, Any] | Snapshot) -> TrackingConfig:
    """The tracking settings a compiled snapshot carries in `runtime` (docs/snapshot.md)."""
    model = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)  # type: ignore[arg-type]
    runtime = model.runtime
    if runtime is None:
        return TrackingConfig()
    tracking, protection = runtime.tracking, runtime.data_protection
    retention = protection.retention_seconds if protection is not None else None
    return TrackingConfig(
        sampling_rate=tracking.sampling_rate if tracking is not None else None,
        evaluations=tracking.evaluations if tracking is not None else None,
        exposures=tracking.exposures if tracking is not None else None,
        pii_masking=protection.pii_masking if protection is not None else None,
        retention=timedelta(seconds=retention) if retention is not None else None,
        consent_attribute=protection.consent_attribute if protection is not None else None,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _rate(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value <= 1.0):
        raise ValueError(f"{key} must be a number between 0 and 1, got {value!r}")
    return float(value)


class EventTracker:
    """Implements `tusklang.evaluate.Tracker` on top of an `EventStore`.

    Settings from ``config`` (a resolved TuskLang config holding `feature_analytics_config` /
    `security_config`, or a snapshot dict carrying those keys) win over the constructor's ``sampling_rate``
    (default 1.0); ``pii_masking`` is on if either the config or the constructor turns it on.
    ``snapshot`` tells the tracker each flag's `bucket_by` and which rules split variants; without it
    every SPLIT result counts as an exposure and the unit is `unit_attribute`.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        snapshot: str | bytes | Mapping[str, Any] | Snapshot | None = None,
        config: Mapping[str, Any] | None = None,
        sampling_rate: float | None = None,
        pii_masking: bool | None = None,
        pii_key: str | bytes | None = None,
        attributes: Iterable[str] = (),
        unit_attribute: str = "user_id",
        consent_tracking: bool | None = None,
        consent_attribute: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        if isinstance(snapshot, Mapping) and any(k in snapshot for k in CONFIG_KEYS):
            # A snapshot carrying its tracking config: read it, validate the rest as a snapshot.
            if config is None:
                config = {k: snapshot[k] for k in CONFIG_KEYS if k in snapshot}
            snapshot = {k: v for k, v in snapshot.items() if k not in CONFIG_KEYS}
        if config is None and snapshot is not None:
            configured = runtime_tracking(snapshot)
        else:
            configured = tracking_config(config)
        if configured.sampling_rate is not None:
            rate = configured.sampling_rate
        else:
            rate = 1.0 if sampling_rate is None else _rate(sampling_rate, "sampling_rate")
        self.sampling_rate = rate
        self.track_evaluations = configured.evaluations is not False and rate > 0
        self.track_exposures = configured.exposures is not False
        self.retention = configured.retention
        self.unit_attribute = unit_attribute
        self.attributes = tuple(dict.fromkeys(attributes))
        self.pii_masking = bool(configured.pii_masking) or bool(pii_masking)
        # Consent, like masking, is on if either the config or the constructor turns it on; the
        # constructor's attribute name wins over the config's.
        consent_on = configured.consent_attribute is not None or bool(consent_tracking)
        self.consent_attribute: str | None = (
            (consent_attribute or configured.consent_attribute or DEFAULT_ATTRIBUTE) if consent_on else None
        )
        self._no_consent = 0
        self._masker = Masker(pii_key) if self.pii_masking else None
        self._flags: dict[str, tuple[str, frozenset[str] | None]] = {}
        if snapshot is not None:
            self.use_snapshot(snapshot)
        if self._masker is not None:
            ids = {unit_attribute, "targetingKey", *(b for b, _ in self._flags.values())}
            leaking = sorted(ids.intersection(self.attributes))
            if leaking:
                raise ValueError(
                    f"pii_masking is on but attributes would store the unit id unmasked: {', '.join(leaking)}"
                )
        self._random = (rng or random.Random()).random
        self._sample_all = self.track_evaluations and rate >= 1.0
        self._put = store.put
        self._clock = clock
        self._exposed: set[tuple[str, str, str | None]] = set()
        self._errors = 0

    def use_snapshot(self, snapshot: str | bytes | Mapping[str, Any] | Snapshot) -> None:
        """Learn bucket_by and split rules from a snapshot (call after `Client.reload` with a new one)."""
        model = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)  # type: ignore[arg-type]
        flags: dict[str, tuple[str, frozenset[str] | None]] = {}
        for key, flag in model.flags.items():
            flags[key] = (flag.bucket_by, frozenset(rule.id for rule in flag.rules if rule.split is not None))
        for key, experiment in model.experiments.items():
            flags[key] = (experiment.bucket_by, None)  # None: every SPLIT of an experiment is an exposure
        self._flags = flags

    # --- the Tracker protocol ----------------------------------------------------------------------

    # Client passes `at` (the evaluation's `now=`, epoch seconds) to trackers that say they take it.
    accepts_time = True

    def evaluation(self, context: Mapping[str, Any], result: EvaluationResult, at: float | None = None) -> None:
        # The hot path: most results are no exposure, and with sampling most are not recorded at all.
        try:
            consent = self.consent_attribute
            if consent is not None and not allows_analytics(context.get(consent)):
                self._no_consent += 1  # the evaluation was served as usual; only its record is left out
                return
            if result.reason == _SPLIT and self.track_exposures:
                self._split(context, result, at)
            elif self._sample_all or (self.track_evaluations and self._random() < self.sampling_rate):
                info = self._flags.get(result.flag)
                unit = self._unit_for(context, info[0] if info is not None else self.unit_attribute)
                attrs = self._attributes(context) if self.attributes else None
                self._put(
                    (
                        "evaluation",
                        self._clock() if at is None else at,
                        result.flag,
                        result.variant,
                        result.reason,
                        None,
                        unit,
                        None,
                        self.sampling_rate,
                        attrs,
                    )
                )
        except Exception:
            self._failure("evaluation")

    def _split(self, context: Mapping[str, Any], result: EvaluationResult, at: float | None = None) -> None:
        """A SPLIT result: an exposure when a variant split (or an experiment) chose it, plus the sampled row."""
        info = self._flags.get(result.flag)
        exposure = info is None or info[1] is None or result.rule in info[1]
        sampled = self._sample_all or (self.track_evaluations and self._random() < self.sampling_rate)
        if not (sampled or exposure):
            return
        unit = self._unit_for(context, info[0] if info is not None else self.unit_attribute)
        now = self._clock() if at is None else at
        attrs = self._attributes(context) if self.attributes else None
        flag, variant, reason = result.flag, result.variant, result.reason
        if sampled:
            self._put(("evaluation", now, flag, variant, reason, None, unit, None, self.sampling_rate, attrs))
        if exposure and unit:
            seen = (flag, unit, variant)
            exposed = self._exposed
            if seen not in exposed:
                if len(exposed) >= _DEDUPE_LIMIT:
                    exposed.clear()  # bounded memory; a repeated exposure row is harmless to the report
                exposed.add(seen)
                self._put(("exposure", now, flag, variant, reason, None, unit, None, 1.0, attrs))

    def _unit_for(self, context: Mapping[str, Any], attribute: str) -> str:
        unit = _unit(context, attribute)
        if unit is None:
            unit = _unit(context, self.unit_attribute) or ""  # an anonymous evaluation is still counted
        if self._masker is not None and unit:
            unit = self._masker.mask(unit)
        return unit

    def conversion(self, event: str, context: Mapping[str, Any], value: float | None, at: float | None = None) -> None:
        try:
            consent = self.consent_attribute
            if consent is not None and not allows_analytics(context.get(consent)):
                self._no_consent += 1
                return
            unit = _unit(context, self.unit_attribute)
            if unit is None or not isinstance(event, str) or not event:
                self._errors += 1
                return  # a conversion nobody can be credited with is useless to every report
            if self._masker is not None:
                unit = self._masker.mask(unit)
            number: float | None = None
            if value is not None and not isinstance(value, bool) and isinstance(value, int | float):
                number = float(value) if math.isfinite(value) else None
            attrs = self._attributes(context) if self.attributes else None
            when = self._clock() if at is None else at
            self.store.put(("conversion", when, None, None, None, event, unit, number, 1.0, attrs))
        except Exception:
            self._failure("conversion")

    # --- helpers -------------------------------------------------------------------------------------

    @property
    def errors(self) -> int:
        """Calls that recorded nothing because of bad input (no unit id, no event name) or a bug."""
        return self._errors

    @property
    def without_consent(self) -> int:
        """Evaluations and conversions not recorded because their context did not allow analytics."""
        return self._no_consent

    def _attributes(self, context: Mapping[str, Any]) -> str | None:
        kept: dict[str, str | int | float | None] = {}
        for name in self.attributes:
            value = context.get(name)
            if value is None or isinstance(value, str | int | bool):
                kept[name] = value
            elif isinstance(value, float) and math.isfinite(value):
                kept[name] = value
            # Anything else (objects, lists) is left out: only named scalar attributes are kept.
        kept = {k: v for k, v in kept.items() if v is not None}
        return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if kept else None

    def _failure(self, what: str) -> None:
        self._errors += 1
        if self._errors == 1:
            log.exception("event tracker: recording a %s failed (logged once)", what)

    def close(self) -> None:
        """Close the store (flushing it)."""
        self.store.close()

    def __enter__(self) -> EventTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unit(context: Mapping[str, Any], attribute: str) -> str | None:
    """The unit id as the evaluator sees it: a string, or an integer as its decimal text."""
    value = context.get(attribute)
    if value is None:
        value = context.get("targetingKey")
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None
