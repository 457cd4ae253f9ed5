"""Schedule versions and the ledger's plumbing (engine/governance/GOVERNANCE.md, table gov_schedule_versions).

Versions are immutable content: every change writes a new version; nothing is deleted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit import append_entry
from engine.governance.audit_store import ensure_tables, resolve_engine, tables
from engine.governance.canonical import canonical, schedule_from_records, schedule_to_records
from engine.governance.catalog import Catalog, load_catalog
from engine.governance.errors import ConflictError
from engine.governance.overrides import from_lock_records, to_lock_records
from engine.governance.roles import Roles, User, load_roles, require


@dataclass
class ScheduleVersion:
    version_id: int
    hospital_id: str
    horizon_start: pd.Timestamp
    horizon_end: pd.Timestamp
    status: str
    source: str
    parent_id: int | None
    successor_id: int | None
    rollback_of: int | None
    superseded_by: int | None
    created_by: str
    created_role: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    published_by: str | None
    published_at: datetime | None
    status_by: str | None
    status_at: datetime | None
    status_note: str | None
    plan: dict[str, Any]
    data_hash: str | None
    model_version: str | None
    model_data_hash: str | None
    rules_version: str | None
    schedule: pd.DataFrame
    locks: pd.DataFrame
    deferred: list[str] = field(default_factory=list)
    n_cases: int = 0
    note: str | None = None

    @property
    def horizon(self) -> list[pd.Timestamp]:
        return list(pd.date_range(self.horizon_start, self.horizon_end, freq="D"))


def _version_from_row(r: sa.Row) -> ScheduleVersion:
    m = r._mapping
    return ScheduleVersion(
        version_id=int(m["version_id"]), hospital_id=m["hospital_id"],
        horizon_start=pd.Timestamp(m["horizon_start"]), horizon_end=pd.Timestamp(m["horizon_end"]),
        status=m["status"], source=m["source"], parent_id=m["parent_id"], successor_id=m["successor_id"],
        rollback_of=m["rollback_of"], superseded_by=m["superseded_by"], created_by=m["created_by"],
        created_role=m["created_role"], created_at=m["created_at"], approved_by=m["approved_by"],
        approved_at=m["approved_at"], published_by=m["published_by"], published_at=m["published_at"],
        status_by=m["status_by"], status_at=m["status_at"], status_note=m["status_note"],
        plan=json.loads(m["plan_json"]), data_hash=m["data_hash"], model_version=m["model_version"],
        model_data_hash=m["model_data_hash"], rules_version=m["rules_version"],
        schedule=schedule_from_records(json.loads(m["schedule_json"])), locks=from_lock_records(json.loads(m["locks_json"])),
        deferred=list(json.loads(m["deferred_json"])), n_cases=int(m["n_cases"]), note=m["note"],
    )


HISTORY_COLUMNS = ["version_id", "hospital_id", "horizon_start", "horizon_end", "status", "source", "parent_id",
                   "successor_id", "rollback_of", "superseded_by", "created_by", "created_role", "created_at",
                   "approved_by", "approved_at", "published_by", "published_at", "status_by", "status_at", "status_note",
                   "data_hash", "model_version", "rules_version", "n_cases", "note"]


class VersionStore:
    """The ledger's plumbing and its versions: the tables on the store's database, reading and writing
    versions, the version in force per date, the audit entry of each change (one transaction each).

    ``Governance`` (engine/governance/workflow.py) adds the workflows on top of it.
    """

    def __init__(self, store_or_url: Any = None, *, catalog: Catalog | None = None, roles: Roles | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine, self._owned = resolve_engine(store_or_url)
        ensure_tables(self.engine)
        self._catalog, self._roles = catalog, roles
        self.clock = clock or (lambda: datetime.now(timezone.utc).replace(tzinfo=None))
        self.t = tables()

    @property
    def catalog(self) -> Catalog:
        return self._catalog or load_catalog(roles=self.roles)

    @property
    def roles(self) -> Roles:
        return self._roles or load_roles()

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()

    def __enter__(self) -> "VersionStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _require(self, actor: User, action: str) -> None:
        if not isinstance(actor, User):
            raise PermissionError("Sign in first: every governance action needs a signed-in user.")
        require(actor, action, self.roles)

    def _audit(self, conn: sa.Connection, hospital_id: str, kind: str, actor: User, payload: dict[str, Any],
               version_id: int | None = None) -> None:
        append_entry(conn, hospital_id, kind, actor.name, actor.role, payload, version_id)

    def _row(self, conn: sa.Connection, version_id: int) -> sa.Row:
        v = self.t["gov_schedule_versions"]
        r = conn.execute(sa.select(v).where(v.c.version_id == int(version_id))).first()
        if r is None:
            raise KeyError(f"no schedule version {version_id}")
        return r

    def version(self, version_id: int) -> ScheduleVersion:
        """One version with its schedule, locks and provenance (KeyError if absent)."""
        with self.engine.connect() as conn:
            return _version_from_row(self._row(conn, version_id))

    def history(self, hospital_id: str) -> pd.DataFrame:
        """Every version of the hospital (newest last), without the schedules: the published history."""
        v = self.t["gov_schedule_versions"]
        cols = [v.c[c] for c in HISTORY_COLUMNS]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).where(v.c.hospital_id == hospital_id).order_by(v.c.version_id)).all()
        return pd.DataFrame([dict(r._mapping) for r in rows], columns=HISTORY_COLUMNS)

    def _insert_version(self, conn: sa.Connection, **values: Any) -> int:
        sched: pd.DataFrame = values.pop("schedule")
        locks: pd.DataFrame | None = values.pop("locks", None)
        recs = schedule_to_records(sched)
        values.update(
            schedule_json=canonical(recs),
            locks_json=canonical(to_lock_records(locks) if locks is not None and len(locks) else []),
            deferred_json=canonical(values.pop("deferred", []) or []),
            plan_json=canonical(values.pop("plan", {}) or {}),
            n_cases=len(sched),
        )
        return int(conn.execute(self.t["gov_schedule_versions"].insert().values(**values)).inserted_primary_key[0])

    def _changed_message(self, r: sa.Row, what: str) -> ConflictError:
        m = r._mapping
        if m["successor_id"] is not None:
            succ = self.version(m["successor_id"])
            return ConflictError(
                f"The schedule changed while you were working on it: version {m['version_id']} was already changed by "
                f"{succ.created_by} at {succ.created_at:%H:%M} UTC (it is now version {succ.version_id}). Nothing was saved; "
                f"reload version {succ.version_id} and {what} again.", m["version_id"], succ.version_id)
        who = f" by {m['status_by']} at {m['status_at']:%H:%M} UTC" if m["status_by"] and m["status_at"] else ""
        return ConflictError(
            f"The schedule changed while you were working on it: version {m['version_id']} is now {m['status']}{who}. "
            f"Nothing was saved; reload the current schedule and {what} again.", m["version_id"], m["superseded_by"])

    def published_version(self, hospital_id: str, day: Any) -> ScheduleVersion | None:
        """The version in force on ``day``: the most recently published one whose horizon covers it."""
        v = self.t["gov_schedule_versions"]
        d = pd.Timestamp(day).date()
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(v).where(v.c.hospital_id == hospital_id, v.c.status == "published", v.c.horizon_start <= d,
                                   v.c.horizon_end >= d)
                .order_by(v.c.published_at.desc(), v.c.version_id.desc()).limit(1)
            ).first()
        return _version_from_row(r) if r is not None else None

    def current_published(self, hospital_id: str, day: Any, days: int = 1) -> pd.DataFrame:
        """The published schedule for ``days`` days from ``day`` in schedule.csv form: the re-planning baseline.

        Each date comes from the version in force on it; ``attrs['version_ids']`` names them. Empty
        (with the contract columns) when nothing is published.
        """
        start = pd.Timestamp(day).normalize()
        parts, ids = [], []
        cache: dict[int, ScheduleVersion] = {}
        for i in range(days):
            d = start + pd.Timedelta(days=i)
            ver = self.published_version(hospital_id, d)
            if ver is None:
                continue
            ver = cache.setdefault(ver.version_id, ver)
            s = ver.schedule
            parts.append(s[pd.to_datetime(s["date"]).dt.normalize() == d])
            ids.append(ver.version_id)
        if not parts:
            out = schedule_from_records([])
        else:
            out = pd.concat(parts, ignore_index=True)
        out.attrs["version_ids"] = sorted(set(ids))
        return out

    def lineage(self, version_id: int) -> list[int]:
        """The version and its override ancestors back to the recommendation it started from."""
        out, cur = [], self.version(version_id)
        while True:
            out.append(cur.version_id)
            if cur.source != "override" or cur.parent_id is None:
                return out
            cur = self.version(cur.parent_id)

    def locks(self, version_id: int) -> pd.DataFrame:
        """The version's override locks as ``plan(locks=...)`` takes them (case_id, date, room_id, start)."""
        return self.version(version_id).locks
