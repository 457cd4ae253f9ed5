"""Pilot tables in the store's database (their own MetaData, created on first use like the governance tables).

- ``pilot_shadow_runs``: one row per shadow run (issue 19, shadow mode): the day, the scope, the shadow
  version (1, 2, ... per hospital and day), the recommendation (schedule rows and the forecasts it used,
  JSON) and the seq of its audit entry, whose ``schedule_sha256`` must match the stored schedule.
- ``pilot_monitor_days``: one row per hospital and day monitored (planned against actual): the day's
  gaps between the published plan and what happened (JSON) and the seq of its audit entry. A day
  monitored again replaces its row (the audit log keeps every run).

No foreign keys to other tables; plain portable types. Alembic revision 0003 creates the same tables;
``create_all`` on first use keeps a database made without migrations working.
"""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import resolve_engine
from engine.governance.canonical import clean

_MD = sa.MetaData()
SHADOW_RUNS = sa.Table(
    "pilot_shadow_runs",
    _MD,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("hospital_id", sa.String(200), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("shadow_version", sa.Integer, nullable=False),
    sa.Column("scope_json", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(200)),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("summary_json", sa.Text, nullable=False),
    sa.Column("schedule_json", sa.Text, nullable=False),
    sa.Column("forecasts_json", sa.Text, nullable=False),
    sa.Column("audit_seq", sa.Integer),
    sa.UniqueConstraint("hospital_id", "day", "shadow_version", name="uq_pilot_shadow_day_version"),
)
MONITOR_DAYS = sa.Table(
    "pilot_monitor_days",
    _MD,
    sa.Column("hospital_id", sa.String(200), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("version_id", sa.Integer),  # the published version compared (None: the hospital's booked schedule)
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("metrics_json", sa.Text, nullable=False),
    sa.Column("audit_seq", sa.Integer),
)

_created: set[str] = set()
_lock = threading.Lock()


def engine_with(metadata: sa.MetaData, store_or_url: Any) -> tuple[sa.Engine, bool]:
    """(engine, owned) of a Store / Governance / Engine / URL / None, with the governance tables and
    ``metadata``'s tables created (once per database and process). The pilot tables here, the canary's
    (engine/pilot/canary.py) and the incidents' (engine/pilot/incident.py) are all made this way."""
    from engine.governance.audit_store import ensure_tables

    eng, owned = resolve_engine(store_or_url)
    key = f"{id(metadata)}:{id(eng)}:{eng.url.render_as_string(hide_password=True)}"
    if key not in _created:
        with _lock:
            ensure_tables(eng)
            try:
                metadata.create_all(eng)
            except sa.exc.DBAPIError:  # another process created them meanwhile
                metadata.create_all(eng)
            _created.add(key)
    return eng, owned


def pilot_engine(store_or_url: Any) -> tuple[sa.Engine, bool]:
    """(engine, owned) with the pilot tables (shadow runs, monitored days) created."""
    return engine_with(_MD, store_or_url)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _dumps(o: Any) -> str:
    return json.dumps(clean(o), sort_keys=True, separators=(",", ":"))


def next_shadow_version(conn: sa.Connection, hospital_id: str, day: date) -> int:
    t = SHADOW_RUNS
    cur = conn.execute(sa.select(sa.func.max(t.c.shadow_version)).where(t.c.hospital_id == hospital_id, t.c.day == day)).scalar()
    return int(cur or 0) + 1


def insert_shadow_run(conn: sa.Connection, hospital_id: str, day: date, version: int, *, scope: dict[str, Any],
                      model_version: str | None, actor: str, summary: dict[str, Any], schedule: list[dict[str, Any]],
                      forecasts: list[dict[str, Any]], audit_seq: int | None) -> int:
    res = conn.execute(SHADOW_RUNS.insert().values(
        hospital_id=hospital_id, day=day, shadow_version=version, scope_json=_dumps(scope), model_version=model_version,
        actor=actor, created_at=_now(), summary_json=_dumps(summary), schedule_json=_dumps(schedule),
        forecasts_json=_dumps(forecasts), audit_seq=audit_seq))
    return int(res.inserted_primary_key[0])


def shadow_rows(store_or_url: Any, hospital_id: str, day: Any = None) -> list[dict[str, Any]]:
    """The stored shadow runs of a hospital (oldest first), each a dict with the JSON columns parsed."""
    eng, owned = pilot_engine(store_or_url)
    t = SHADOW_RUNS
    q = sa.select(t).where(t.c.hospital_id == hospital_id)
    if day is not None:
        q = q.where(t.c.day == pd.Timestamp(day).date())
    try:
        with eng.connect() as conn:
            rows = conn.execute(q.order_by(t.c.day, t.c.shadow_version)).mappings().all()
    finally:
        if owned:
            eng.dispose()
    out = []
    for r in rows:
        d = dict(r)
        for k in ("scope", "summary", "schedule", "forecasts"):
            d[k] = json.loads(d.pop(f"{k}_json"))
        out.append(d)
    return out


def save_monitor_day(store_or_url: Any, hospital_id: str, day: Any, metrics: dict[str, Any], version_id: int | None,
                     audit_seq: int | None) -> None:
    """Keep (insert or replace) the day's planned-against-actual metrics."""
    eng, owned = pilot_engine(store_or_url)
    t, d = MONITOR_DAYS, pd.Timestamp(day).date()
    try:
        with eng.begin() as conn:
            conn.execute(t.delete().where(t.c.hospital_id == hospital_id, t.c.day == d))
            conn.execute(t.insert().values(hospital_id=hospital_id, day=d, version_id=version_id, created_at=_now(),
                                           metrics_json=_dumps(metrics), audit_seq=audit_seq))
    finally:
        if owned:
            eng.dispose()


def monitor_days(store_or_url: Any, hospital_id: str, start: Any = None, end: Any = None) -> list[dict[str, Any]]:
    """The kept monitoring days (oldest first) within [start, end], metrics parsed."""
    eng, owned = pilot_engine(store_or_url)
    t = MONITOR_DAYS
    q = sa.select(t).where(t.c.hospital_id == hospital_id)
    if start is not None:
        q = q.where(t.c.day >= pd.Timestamp(start).date())
    if end is not None:
        q = q.where(t.c.day <= pd.Timestamp(end).date())
    try:
        with eng.connect() as conn:
            rows = conn.execute(q.order_by(t.c.day)).mappings().all()
    finally:
        if owned:
            eng.dispose()
    return [{**{k: v for k, v in dict(r).items() if k != "metrics_json"}, "metrics": json.loads(r["metrics_json"])} for r in rows]
