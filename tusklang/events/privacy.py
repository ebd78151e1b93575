"""A data subject's rights on the event store: erasure (`tusk db erase`) and access/portability (`tusk db export`).

A unit's events are the rows whose unit column holds its id: the id itself, or, when the events were
recorded under pii_masking, its keyed hash (HMAC-SHA256 with TUSK_PII_KEY, tusklang/events/masking.py).
Both forms are matched whenever a key is at hand, so one command covers a store written with masking
on, off, or switched in between.

Every table of the store that holds unit ids is listed in UNIT_TABLES; a test checks that no table of
the store has a unit column missing from it, so a new table cannot escape erasure unnoticed.

An erasure is recorded in `tusk_erasures`: when, how many ids, how many rows went, and an optional
request reference. It never holds an id or a hash of one: a hash of a guessable id is personal data
too, and the record must outlive the data it documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .masking import Masker
from .schema import ERASURES_TABLE, Connection, EventStoreError, erasures_ddl

__all__ = [
    "ERASURES_TABLE",
    "UNIT_TABLES",
    "Erasure",
    "ExportedEvent",
    "erase_units",
    "erasures_ddl",
    "export_units",
    "unit_forms",
    "valid_request",
]

# table -> the column holding a unit id (or its keyed hash). Every table of the event store with unit ids.
UNIT_TABLES: Final[dict[str, str]] = {"tusk_events": "unit_id"}
MAX_UNITS: Final = 10_000  # per command: bounds the statement (SQLite allows 32,766 bound values)
_REQUEST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")


def valid_request(text: str) -> bool:
    """A request reference is a ticket-like token (`GDPR-2024-117`), not free text that could hold a name."""
    return bool(_REQUEST.match(text))


def unit_forms(units: Sequence[str], masker: Masker | None) -> dict[str, str]:
    """Every stored form of each id -> the id it stands for: the id, and its keyed hash when a key is given."""
    forms: dict[str, str] = {}
    for unit in units:
        forms.setdefault(unit, unit)
        if masker is not None:
            forms.setdefault(masker.mask(unit), unit)
    return forms


def _check(units: Sequence[str]) -> None:
    if not units:
        raise ValueError("no unit id given")
    if len(units) > MAX_UNITS:
        raise ValueError(f"at most {MAX_UNITS} unit ids per run, got {len(units)}")
    for unit in units:
        if not unit:
            raise ValueError("a unit id is empty")


def _in(column: str, count: int) -> str:
    return f"{column} IN ({', '.join('?' * count)})"


@dataclass(frozen=True)
class Erasure:
    units: int  # ids named by the request
    deleted: dict[str, int]  # table -> rows deleted
    masked_forms: bool  # keyed hashes were matched too (a key was available)
    record_id: int | None  # the tusk_erasures row (None on a dry run)
    erased_at: float

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def erase_units(
    conn: Connection,
    units: Sequence[str],
    *,
    masker: Masker | None,
    now: float,
    request: str | None = None,
    dry_run: bool = False,
) -> Erasure:
    """Delete every row of these units from every table in UNIT_TABLES and log the erasure, in one transaction.

    With ``dry_run`` nothing is deleted or logged: the counts say what would go.
    """
    _check(units)
    if request is not None and not valid_request(request):
        raise ValueError(
            "the request reference must be a ticket-like token (letters, digits, . _ : / # -; at most 64 "
            f"characters), got {request!r}: the erasure record must not hold personal data"
        )
    forms = list(unit_forms(units, masker))
    deleted: dict[str, int] = {}
    record: int | None = None
    conn.begin()
    try:
        for table, column in UNIT_TABLES.items():
            if dry_run:
                found = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {_in(column, len(forms))}", forms)
                deleted[table] = int(found[0][0])
            else:
                deleted[table] = conn.rowcount(f"DELETE FROM {table} WHERE {_in(column, len(forms))}", forms)
        if not dry_run:
            conn.execute(erasures_ddl(conn.dialect))  # a store from before this table: created on first use
            rows = conn.execute(
                f"INSERT INTO {ERASURES_TABLE} (erased_at, units, events_deleted, masked_forms, request) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (now, len(set(units)), sum(deleted.values()), 1 if masker is not None else 0, request),
            )
            record = int(rows[0][0])
            conn.commit()
        else:
            conn.rollback()
    except EventStoreError:
        conn.rollback()
        raise
    return Erasure(len(set(units)), deleted, masker is not None, record, now)


@dataclass(frozen=True)
class ExportedEvent:
    id: int
    kind: str
    occurred_at: float
    flag: str | None
    variant: str | None
    reason: str | None
    event: str | None
    unit: str  # the id as the request named it (never the stored hash)
    value: float | None
    sample_rate: float
    attributes: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        from datetime import UTC, datetime

        return {
            "id": self.id,
            "kind": self.kind,
            "occurred_at": datetime.fromtimestamp(self.occurred_at, UTC).isoformat().replace("+00:00", "Z"),
            "flag": self.flag,
            "variant": self.variant,
            "reason": self.reason,
            "event": self.event,
            "unit": self.unit,
            "value": self.value,
            "sample_rate": self.sample_rate,
            "attributes": self.attributes,
        }


def _attributes(text: object) -> dict[str, Any] | None:
    if text is None:
        return None
    from ..safejson import JSONInputError, loads

    try:
        value = loads(str(text))
    except JSONInputError:
        return {"_unreadable": str(text)}  # exported as stored: the subject gets what is held about them
    return value if isinstance(value, dict) else {"_value": value}


def export_units(conn: Connection, units: Sequence[str], *, masker: Masker | None) -> list[ExportedEvent]:
    """Every event row of these units (either form), oldest first."""
    _check(units)
    forms = unit_forms(units, masker)
    rows = conn.execute(
        "SELECT id, kind, occurred_at, flag, variant, reason, event, unit_id, value, sample_rate, attributes "
        f"FROM tusk_events WHERE {_in('unit_id', len(forms))} ORDER BY occurred_at, id",
        list(forms),
    )
    return [
        ExportedEvent(
            int(r[0]),
            str(r[1]),
            float(r[2]),
            r[3],
            r[4],
            r[5],
            r[6],
            forms[str(r[7])],
            float(r[8]) if r[8] is not None else None,
            float(r[9]),
            _attributes(r[10]),
        )
        for r in rows
    ]


def export_document(events: Sequence[ExportedEvent], units: Sequence[str], masked: bool, now: float) -> dict[str, Any]:
    """The JSON a subject receives: what is held, in a documented, machine-readable shape."""
    from datetime import UTC, datetime

    return {
        "format": "tusklang.events-export/1",
        "exported_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "units": list(dict.fromkeys(units)),
        "masked_forms_matched": masked,
        "count": len(events),
        "events": [event.as_dict() for event in events],
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
