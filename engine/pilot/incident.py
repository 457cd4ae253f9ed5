"""Post-incident review (issue 19, Deliver 5): a record that classifies a failure as a **data**, **model** or
**process** defect and links it to the audit entries that show it.

Records live in ``gov_incidents`` (this module's own MetaData, created on first use like the
governance tables); each one is written in the same transaction as its ``incident`` audit entry, whose
payload repeats the classification and the linked entry ids, so the keyed chain vouches for it. Linked
entries must exist in the hospital's chain (an unknown id is refused, naming it). Recording needs the
right to read the audit log; exporting, the right to export it.

:func:`board` is the governance board's view: incidents and drills (from the audit log) together;
:func:`export_board` writes it as one JSON file, each incident with its linked entries' kind, time,
actor and payload.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine.io import atomic_write_json

DEFECT_CLASSES = ("data", "model", "process")
CLASS_MEANING = {"data": "an input was wrong, late or missing (a feed, a code, an import)",
                 "model": "a forecast or model artefact was wrong or out of date",
                 "process": "a step of the workflow, a service or a person did not do what the design says"}

_MD = sa.MetaData()
INCIDENTS = sa.Table(
    "gov_incidents",
    _MD,
    sa.Column("incident_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hospital_id", sa.String(200), nullable=False, index=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("defect_class", sa.String(20), nullable=False),  # data | model | process
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("remedy", sa.Text),
    sa.Column("occurred_on", sa.Date),
    sa.Column("audit_entry_ids", sa.Text, nullable=False),  # JSON list of gov_audit_log.entry_id
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("recorded_role", sa.String(40), nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("entry_id", sa.Integer),  # this record's own audit entry
)
COLUMNS = ["incident_id", "hospital_id", "title", "defect_class", "description", "remedy", "occurred_on",
           "audit_entry_ids", "recorded_by", "recorded_role", "recorded_at", "entry_id"]


def _engine(store_or_url: Any) -> tuple[sa.Engine, bool]:
    from engine.pilot.store import engine_with

    return engine_with(_MD, store_or_url)


@dataclass(frozen=True)
class IncidentInput:
    """One post-incident record as entered: every field checked, errors name the field."""

    title: str
    defect_class: str
    description: str
    audit_entry_ids: tuple[int, ...] = ()
    remedy: str = ""
    occurred_on: str | None = None

    def __post_init__(self) -> None:
        if not str(self.title or "").strip():
            raise ValueError("title: give the incident a short title")
        if len(self.title) > 300:
            raise ValueError(f"title: at most 300 characters, got {len(self.title)}")
        if self.defect_class not in DEFECT_CLASSES:
            raise ValueError(f"defect_class must be one of {', '.join(DEFECT_CLASSES)}, got {self.defect_class!r}")
        if not str(self.description or "").strip():
            raise ValueError("description: say what failed and how it was found")
        try:
            ids = tuple(int(i) for i in self.audit_entry_ids)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit_entry_ids must be whole numbers, got {list(self.audit_entry_ids)!r}") from exc
        if any(i <= 0 for i in ids):
            raise ValueError(f"audit_entry_ids must be positive, got {list(ids)!r}")
        object.__setattr__(self, "audit_entry_ids", tuple(dict.fromkeys(ids)))
        if self.occurred_on:
            ts = pd.Timestamp(self.occurred_on) if _is_date(self.occurred_on) else None
            if ts is None:
                raise ValueError(f"occurred_on: {self.occurred_on!r} is not a date (YYYY-MM-DD)")
            object.__setattr__(self, "occurred_on", f"{ts:%Y-%m-%d}")


def _is_date(v: Any) -> bool:
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError):
        return False
    return not pd.isna(ts) and ts == ts.normalize()


def add_incident(store_or_url: Any, hospital_id: str, incident: IncidentInput, user: Any) -> dict[str, Any]:
    """Record ``incident`` with its ``incident`` audit entry (one transaction); returns the record."""
    from engine.governance.audit import append_entry
    from engine.governance.audit_store import run_tx, tables
    from engine.pilot.record import require_pilot

    require_pilot(user, "incident")
    eng, owned = _engine(store_or_url)
    log_t = tables()["gov_audit_log"]

    def tx(conn: sa.Connection) -> int:
        if incident.audit_entry_ids:
            found = {r.entry_id for r in conn.execute(sa.select(log_t.c.entry_id).where(
                log_t.c.hospital_id == hospital_id, log_t.c.entry_id.in_(incident.audit_entry_ids)))}
            missing = [i for i in incident.audit_entry_ids if i not in found]
            if missing:
                raise ValueError(f"audit_entry_ids: no audit entry {', '.join(map(str, missing))} in the chain of "
                                 f"{hospital_id} (see `audit export` or the Audit log tab for the ids)")
        iid = conn.execute(INCIDENTS.insert().values(
            hospital_id=hospital_id, title=incident.title.strip(), defect_class=incident.defect_class,
            description=incident.description.strip(), remedy=incident.remedy.strip() or None,
            occurred_on=pd.Timestamp(incident.occurred_on).date() if incident.occurred_on else None,
            audit_entry_ids=json.dumps(list(incident.audit_entry_ids)), recorded_by=user.name, recorded_role=user.role,
            recorded_at=datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0))).inserted_primary_key[0]
        e = append_entry(conn, hospital_id, "incident", user.name, user.role,
                         {"incident_id": int(iid), "title": incident.title.strip(), "defect_class": incident.defect_class,
                          "audit_entry_ids": list(incident.audit_entry_ids), "occurred_on": incident.occurred_on,
                          "description": incident.description.strip(), "remedy": incident.remedy.strip()})
        conn.execute(INCIDENTS.update().where(INCIDENTS.c.incident_id == iid).values(entry_id=e.entry_id))
        return int(iid)

    try:
        iid = run_tx(eng, tx)
        return next(r for r in _list(eng, hospital_id) if r["incident_id"] == iid)
    finally:
        if owned:
            eng.dispose()


def _list(eng: sa.Engine, hospital_id: str | None) -> list[dict[str, Any]]:
    q = sa.select(INCIDENTS).order_by(INCIDENTS.c.incident_id)
    if hospital_id is not None:
        q = q.where(INCIDENTS.c.hospital_id == hospital_id)
    with eng.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["audit_entry_ids"] = json.loads(d["audit_entry_ids"])
        d["occurred_on"] = f"{d['occurred_on']:%Y-%m-%d}" if d["occurred_on"] else None
        d["recorded_at"] = d["recorded_at"].isoformat(timespec="seconds") if d["recorded_at"] else None
        out.append(d)
    return out


def incidents(store_or_url: Any, hospital_id: str | None = None) -> pd.DataFrame:
    """Every incident of the hospital (all hospitals with None), oldest first."""
    eng, owned = _engine(store_or_url)
    try:
        return pd.DataFrame(_list(eng, hospital_id), columns=COLUMNS)
    finally:
        if owned:
            eng.dispose()


def board(store_or_url: Any, hospital_id: str | None = None) -> dict[str, Any]:
    """The governance board: incidents (each with its linked audit entries) and drills, as JSON-native data."""
    from engine.governance.audit import read_log
    from engine.pilot.drill import drills

    log = read_log(store_or_url, hospital_id)
    by_id = {int(r.entry_id): {"entry_id": int(r.entry_id), "kind": r.kind, "at": r.at, "actor": r.actor, "role": r.role,
                               "payload": r.payload} for r in log.itertuples()} if len(log) else {}
    inc = incidents(store_or_url, hospital_id).to_dict(orient="records")
    for i in inc:
        i["linked_entries"] = [by_id.get(int(e), {"entry_id": int(e), "missing": True}) for e in i["audit_entry_ids"]]
    dr = drills(store_or_url, hospital_id)
    counts = {c: sum(1 for i in inc if i["defect_class"] == c) for c in DEFECT_CLASSES}
    return {"hospital_id": hospital_id, "incidents": inc, "drills": dr.to_dict(orient="records"),
            "n_incidents": len(inc), "by_class": counts, "n_drills": int(len(dr)),
            "n_drills_passed": int(dr["passed"].fillna(False).astype(bool).sum()) if len(dr) else 0}


def export_board(store_or_url: Any, path: str | Path, hospital_id: str | None, user: Any) -> dict[str, Any]:
    """Write :func:`board` as JSON to ``path`` (needs the right to export the audit log); returns it."""
    from engine.pilot.record import require_pilot

    require_pilot(user, "export_incidents")
    out = {**board(store_or_url, hospital_id), "exported_by": user.name,
           "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_json(path, out)
    return out
