"""The service's state: one hospital, its store and governance ledger, forecasts, idempotent events.

Everything here calls the engine; nothing here knows HTTP (app.py maps errors to status codes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa
import sqlalchemy.exc

from engine.errors import InputError, Problem
from engine.governance import (Governance, User, booked_forecasts, plan_params_from_catalog, replan_day, replan_plan_json,
                               require)
from engine.governance.canonical import schedule_from_records, schedule_to_records
from engine.plan import PlanParams, plan
from engine.api.events import Pending, with_staffing
from engine.plan.replan import Event
from engine.store import Store, default_url

log = logging.getLogger(__name__)

SOLVERS = ("highs", "glpk", "rules")
LIVE_STATUSES = ("proposed", "approved", "published")


@dataclass(frozen=True)
class ServiceParams:
    """How the service runs. ``db_url`` None: ``DATABASE_URL`` or the embedded SQLite file (as the
    dashboard); ``models_dir`` None: the default registry. ``event_solver`` / ``event_time_limit_s``: the
    re-plan an event triggers. ``max_body_bytes``: larger request bodies get 413. ``hl7_drop_dir``: a folder
    of HL7 messages to poll (as the user of the ``OR_DROP_TOKEN`` token). ``event_retry_s``: how long an
    event accepted as a job (202) waits out a database outage, retrying, before it fails."""

    data_dir: Path
    db_url: str | None = None
    hospital_id: str | None = None
    models_dir: Path | None = None
    event_solver: str = "highs"
    event_time_limit_s: float = 10.0
    max_body_bytes: int = 1_000_000
    hl7_drop_dir: Path | None = None
    hl7_drop_interval_s: float = 2.0
    event_retry_s: float = 60.0

    def __post_init__(self) -> None:
        if not Path(self.data_dir).is_dir():
            raise ValueError(f"data_dir must be a hospital folder, {str(self.data_dir)!r} is not a folder")
        if self.event_solver not in SOLVERS:
            raise ValueError(f"event_solver must be one of {', '.join(SOLVERS)}, got {self.event_solver!r}")
        if not 0 < self.event_time_limit_s <= 600:
            raise ValueError(f"event_time_limit_s must be within (0, 600], got {self.event_time_limit_s!r}")
        if not 0 < self.hl7_drop_interval_s <= 3600:
            raise ValueError(f"hl7_drop_interval_s must be within (0, 3600], got {self.hl7_drop_interval_s!r}")
        if not 0 <= self.event_retry_s <= 3600:
            raise ValueError(f"event_retry_s must be within [0, 3600], got {self.event_retry_s!r}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be >= 1024, got {self.max_body_bytes!r}")


def _events_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        "api_events", md,
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("hospital_id", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("response_json", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )


class DuplicateKey(Exception):
    """An idempotency key already used for a different request, or still being applied elsewhere."""


class Service:
    """One hospital served: ingested into the store on start (when the store lacks it or the folder is newer)."""

    def __init__(self, params: ServiceParams) -> None:
        from engine.ingest import folder_mtime, ingest_folder

        self.params = params
        self.store = Store(params.db_url or default_url())
        self.gov = Governance(self.store)
        folder = Path(params.data_dir).resolve()
        self.hospital_id = params.hospital_id or folder.name
        listed = self.store.list_hospitals()
        row = listed[listed["hospital_id"] == self.hospital_id]
        if len(row) and pd.Timestamp(row["loaded_at"].iloc[0]).timestamp() >= folder_mtime(folder):
            self.loaded = self.store.load_hospital(self.hospital_id)
        else:
            _, self.loaded = ingest_folder(folder, self.store, name=self.hospital_id)
        self.hospital = self.loaded.hospital
        md = sa.MetaData()
        self._events = _events_table(md)
        md.create_all(self.gov.engine)
        self._write_lock = threading.Lock()  # events and proposals one at a time: each builds on the last version
        # The database going away mid-event (docs/api.md, "Database outage"): keys whose reservation could not
        # be released (nothing was proposed; this process may take them over), and answers of events applied
        # whose answer could not be stored yet (key -> (request hash, answer); stored on the next event).
        self._orphans: set[str] = set()
        self._unstored: dict[str, tuple[str, dict[str, Any]]] = {}
        self._read_cache: dict[tuple, tuple[tuple, Any]] = {}  # key -> (fingerprint, value): Service.cached
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._cache_lock = threading.Lock()
        self._forecasts: dict[str, tuple[pd.DataFrame, Any]] = {}

    def close(self) -> None:
        self.gov.close()
        self.store.close()

    # ------------------------------------------------------------------ reading

    def now(self) -> pd.Timestamp:
        """The hospital's clock: the demo's ``as_of`` date at today's wall-clock time, else now."""
        wall = pd.Timestamp.now().floor("min")
        if self.hospital.settings.as_of:
            return pd.Timestamp(self.hospital.settings.as_of).normalize() + (wall - wall.normalize())
        return wall

    def forecasts(self, start: pd.Timestamp) -> tuple[pd.DataFrame, Any, str]:
        """(forecasts of the booked cases, model or None, source): the registered model's, else booked minutes."""
        key = f"{start:%Y-%m-%d}"
        if key not in self._forecasts:
            from engine.forecast import Registry

            model = Registry(self.params.models_dir).load(self.hospital_id)
            h = self.hospital
            if model is None:
                fc = booked_forecasts(h)
            else:
                booked = h.cases[h.cases["status"] == "booked"]
                fc = model.forecaster.predict(booked, h.cases, as_of=min(h.as_of(), start))
            self._forecasts[key] = (fc, model)
        fc, model = self._forecasts[key]
        return fc, model, ("model " + str(getattr(model, "version", ""))) if model is not None else "booked minutes"

    def _versions_covering(self, day: pd.Timestamp) -> pd.DataFrame:
        hist = self.gov.history(self.hospital_id)
        if not len(hist):
            return hist
        d = day.date()
        hs = pd.to_datetime(hist["horizon_start"]).dt.date
        he = pd.to_datetime(hist["horizon_end"]).dt.date
        return hist[(hs <= d) & (he >= d)]

    def fingerprint(self) -> tuple:
        """What the reads depend on, cheaply: every version's (id, status, successor) and the number of stored
        event answers. Any approve, publish, rollback, proposal or event changes it, from any process."""
        v, t = self.gov.t["gov_schedule_versions"], self._events
        with self.gov.engine.connect() as conn:
            rows = conn.execute(sa.select(v.c.version_id, v.c.status, v.c.successor_id, v.c.superseded_by)
                                .where(v.c.hospital_id == self.hospital_id)).all()
            n = conn.execute(sa.select(sa.func.count()).select_from(t)
                             .where(t.c.hospital_id == self.hospital_id, t.c.response_json != "")).scalar_one()
        return hash(tuple(sorted(tuple(r) for r in rows))), int(n), len(self._unstored)

    def cached(self, key: tuple, fn: Callable[[], Any]) -> Any:
        """``fn()``, reused while :meth:`fingerprint` is unchanged (reads of an unchanged ledger cost one small
        query). The value is shared: callers must not modify it."""
        fp = self.fingerprint()
        hit = self._read_cache.get(key)
        if hit is not None and hit[0] == fp:
            return hit[1]
        with self._cache_lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:  # one thread computes a missed key; the others wait for its value (no stampede after a change)
            hit = self._read_cache.get(key)
            if hit is not None and hit[0] == fp:
                return hit[1]
            value = fn()
            if len(self._read_cache) > 512:
                self._read_cache.clear()
            self._read_cache[key] = (fp, value)
        return value

    def schedule(self, start: pd.Timestamp, days: int, published_only: bool = False) -> tuple[pd.DataFrame, list[dict]]:
        """Per day: the published version in force, else (unless ``published_only``) the newest proposed one.
        Returns (schedule.csv rows, [{date, version_id, status}]) (a copy: callers may modify it)."""
        df, used = self.cached(("schedule", f"{start:%Y-%m-%d}", days, published_only),
                               lambda: self._schedule(start, days, published_only))
        return df.copy(), [dict(u) for u in used]

    def _schedule(self, start: pd.Timestamp, days: int, published_only: bool) -> tuple[pd.DataFrame, list[dict]]:
        parts, used = [], []
        for i in range(days):
            d = start + pd.Timedelta(days=i)
            ver = self.gov.published_version(self.hospital_id, d)
            if ver is None and not published_only:
                cov = self._versions_covering(d)
                cov = cov[cov["status"].isin(["proposed", "approved"])]
                ver = self.gov.version(int(cov["version_id"].max())) if len(cov) else None
            used.append({"date": f"{d:%Y-%m-%d}", "version_id": ver.version_id if ver else None,
                         "status": ver.status if ver else None})
            if ver is not None:
                s = ver.schedule
                parts.append(s[pd.to_datetime(s["date"]).dt.normalize() == d])
        out = pd.concat(parts, ignore_index=True) if parts else schedule_from_records([])
        return out, used

    def working_version(self, day: pd.Timestamp):
        """The version an event re-plans from: the newest live version covering ``day`` that is not older than
        the published one (events chain on each other's proposals), else None."""
        pub = self.gov.published_version(self.hospital_id, day)
        cov = self._versions_covering(day)
        cov = cov[cov["status"].isin(LIVE_STATUSES) & cov["successor_id"].isna()]
        if pub is not None:
            cov = cov[cov["version_id"] >= pub.version_id]
        return self.gov.version(int(cov["version_id"].max())) if len(cov) else pub

    # ------------------------------------------------------------------ acting

    def propose_plan(self, user: User, start: pd.Timestamp, days: int, solver: str, time_limit_s: float,
                     progress: Callable[[float, str], None]) -> dict[str, Any]:
        """Plan the horizon and propose it through governance (role ``propose``, audited ``recommendation``)."""
        require(user, "propose", self.gov.roles)
        progress(0.1, "forecasting")
        fc, model, source = self.forecasts(start)
        params = plan_params_from_catalog(self.gov.catalog, PlanParams(days=days, solver=solver, time_limit_s=time_limit_s))
        progress(0.3, f"planning ({solver})")
        h = self.with_event_cancellations(start, days)
        result = plan(h, fc, start, params)
        progress(0.9, "proposing")
        with self._write_lock:
            ver = self.gov.propose(self.hospital_id, result, user, hospital=self.hospital, model=model,
                                   horizon=(start, start + pd.Timedelta(days=days - 1)), note=f"API plan ({source})")
        return {"version_id": ver.version_id, "status": ver.status, "forecasts": source, "plan": result.to_json(),
                "cancelled_by_events": sorted(set(h.cases["case_id"][h.cases["status"] == "cancelled"])
                                              - set(self.hospital.cases["case_id"][self.hospital.cases["status"] == "cancelled"]))}

    def with_event_cancellations(self, start: pd.Timestamp, days: int):
        """The hospital with the cases that cancellation events removed in the horizon marked cancelled, and the
        staffing that staffing events set: a plan made after an event does not undo it (the events do not
        rewrite the folder)."""
        import dataclasses

        gone: set[str] = set()
        h = self.hospital
        for i in range(days):
            gone |= self.cancelled_by_events(start + pd.Timedelta(days=i))
            h = self.hospital_for(start + pd.Timedelta(days=i), h)  # and the staffing events left
        if not gone:
            return h
        c = h.cases
        hit = c["case_id"].isin(gone) & (c["status"] == "booked")
        return dataclasses.replace(h, cases=c.assign(status=c["status"].where(~hit, "cancelled")))

    def _request_hash(self, body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def replayed(self, key: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The stored answer of an event already applied under ``key``; DuplicateKey when the key was used for
        a different event."""
        unstored = self._unstored.get(key)
        if unstored is not None:
            if unstored[0] != self._request_hash(body):
                raise DuplicateKey(f"idempotency_key {key!r} was already used for a different event")
            return unstored[1]
        t = self._events
        with self.gov.engine.connect() as conn:
            r = conn.execute(sa.select(t).where(t.c.idempotency_key == key)).first()
        if r is None:
            return None
        if r.request_sha256 != self._request_hash(body) or r.hospital_id != self.hospital_id:
            raise DuplicateKey(f"idempotency_key {key!r} was already used for a different event")
        if not r.response_json and key in self._orphans:
            return None  # this process's own reservation, left by a failure: apply_event takes it over
        if not r.response_json:
            raise DuplicateKey(f"idempotency_key {key!r}: this event is being applied by another request since "
                               f"{r.at:%H:%M:%S} UTC; ask again shortly")
        return json.loads(r.response_json)

    def apply_event(self, user: User, key: str, body: dict[str, Any], event: "Event | Pending",
                    at: pd.Timestamp) -> tuple[dict, bool]:
        """Re-plan ``at``'s day after ``event`` (``replan_day``: role ``replan``, audited) and propose the result.

        Idempotent by ``key``: the same event again returns the first answer and does nothing
        (second value True). Bad input raises InputError naming the field, before anything is written.
        """
        with self._write_lock:
            self._store_unstored()
            old = self.replayed(key, body)
            if old is not None:
                return old, True
            require(user, "replan", self.gov.roles)
            day = at.normalize()
            base = self.working_version(day)
            if base is None:
                raise InputError([Problem("event", None, "at", f"nothing is proposed or published for {day:%Y-%m-%d}: "
                                                               "plan the day first (POST /api/v1/plan)")])
            s = base.schedule
            current = s[pd.to_datetime(s["date"]).dt.normalize() == day]
            fc, _, source = self.forecasts(day)
            hospital, extra, event_type = self.hospital_for(day), {}, getattr(event, "type", None)
            if isinstance(event, Pending):  # needs the day's schedule: case_started, staffing_changed, ...
                r = event.resolve(current, fc, at, hospital)
                event, at, hospital, extra = r.event, r.now, r.hospital or hospital, r.extra
            if event.case_id and event.kind in ("cancellation", "running_long") and event.case_id not in set(current["case_id"]):
                raise InputError([Problem("event", None, "case_id", f"case {event.case_id!r} is not in the schedule of "
                                                                    f"{day:%Y-%m-%d} (version {base.version_id})")])
            if event.kind == "add_on" and event.case_id in set(current["case_id"]):
                raise InputError([Problem("event", None, "case_id", f"case {event.case_id!r} is already in the schedule of "
                                                                    f"{day:%Y-%m-%d}")])
            params = plan_params_from_catalog(self.gov.catalog, PlanParams(
                days=1, solver=self.params.event_solver, time_limit_s=self.params.event_time_limit_s))
            # Reserve the key first (its own transaction): a second service on the same store cannot apply the
            # same event meanwhile (the primary key refuses it); a failure releases the key, success fills it.
            t = self._events
            if key in self._orphans:  # ours, left reserved when the database went away: nothing was proposed
                with self.gov.engine.begin() as conn:
                    conn.execute(t.delete().where(t.c.idempotency_key == key, t.c.response_json == ""))
                self._orphans.discard(key)
            try:
                with self.gov.engine.begin() as conn:
                    conn.execute(t.insert().values(idempotency_key=key, hospital_id=self.hospital_id,
                                                   request_sha256=self._request_hash(body), actor=user.name, response_json="",
                                                   at=datetime.now(timezone.utc).replace(tzinfo=None)))
            except sa.exc.IntegrityError:
                old = self.replayed(key, body)  # raises while the other request is still at work
                if old is not None:
                    return old, True
                raise
            try:
                rr = replan_day(user, hospital, fc, current, event, at, params, hospital_id=self.hospital_id,
                                ledger=self.gov)
                pj = replan_plan_json(rr, current, at)
                ver = self.gov.propose(self.hospital_id, rr.result, user, hospital=hospital, plan_json=pj,
                                       horizon=(day, day), parent_id=base.version_id, note=f"API event: {event.describe()}")
            except BaseException:
                try:
                    with self.gov.engine.begin() as conn:
                        conn.execute(t.delete().where(t.c.idempotency_key == key, t.c.response_json == ""))
                except sa.exc.SQLAlchemyError:  # the database is away: release it when the key comes again
                    self._orphans.add(key)
                raise
            changes = rr.changes.astype(object).where(rr.changes.notna(), None)
            answer = {"event": event.describe(), "event_kind": event.kind, "event_type": event_type or body.get("type"),
                      "case_id": event.case_id, "idempotency_key": key,
                      "date": f"{day:%Y-%m-%d}", "at": at.isoformat(), "base_version_id": base.version_id,
                      "version_id": ver.version_id, "status": ver.status, "n_changes": int(len(changes)),
                      "changes": changes.to_dict("records"), "solver": pj.get("solver"),
                      "fallback_used": pj.get("fallback_used"), "forecasts": source, **extra}
            answer = json.loads(json.dumps(answer, default=str))
            try:
                self._store_answer(key, answer)
            except sa.exc.SQLAlchemyError as exc:  # applied (the proposal is committed): keep the answer, store it later
                log.warning("event %s applied, its answer not stored yet (%s): kept in memory", key, exc)
                self._unstored[key] = (self._request_hash(body), answer)
            return answer, False

    def _store_answer(self, key: str, answer: dict[str, Any]) -> None:
        t = self._events
        with self.gov.engine.begin() as conn:
            conn.execute(t.update().where(t.c.idempotency_key == key).values(response_json=json.dumps(answer, default=str)))

    def _store_unstored(self) -> None:
        """Store the answers an outage kept in memory (under the write lock); those that fail wait again."""
        for key, (_, answer) in list(self._unstored.items()):
            try:
                self._store_answer(key, answer)
            except sa.exc.SQLAlchemyError:
                return
            del self._unstored[key]


    def _answers(self, day: pd.Timestamp) -> list[dict[str, Any]]:
        """The stored answers of the events applied to ``day``, in the order they were applied."""
        t = self._events
        with self.gov.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.response_json).where(t.c.hospital_id == self.hospital_id)
                                .order_by(t.c.at)).all()
        out = [json.loads(text) for (text,) in rows if text] + [a for _, a in list(self._unstored.values())]
        return [a for a in out if a.get("date") == f"{day:%Y-%m-%d}"]

    def cancelled_by_events(self, day: pd.Timestamp) -> set[str]:
        """Case ids a cancellation event (API or HL7; a reschedule to another day too) removed from ``day``'s schedule."""
        return {str(a["case_id"]) for a in self._answers(day) if a.get("event_kind") == "cancellation" and a.get("case_id")}

    def staffing_by_events(self, day: pd.Timestamp) -> dict[str, int] | None:
        """``day``'s staffing as the last staffing_changed event left it (None: as staffing.csv says)."""
        last = [a["staffing"] for a in self._answers(day) if a.get("staffing")]
        return last[-1] if last else None

    def hospital_for(self, day: pd.Timestamp, hospital: Any = None):
        """The hospital as the events of ``day`` left its staffing (a plan or event of the day keeps a change)."""
        h = hospital if hospital is not None else self.hospital
        st = self.staffing_by_events(day)
        return h if st is None else with_staffing(h, day, st)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """schedule.csv rows as JSON records (contract columns first)."""
    return schedule_to_records(df)
