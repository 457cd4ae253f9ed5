"""The publish workflow: propose -> approve -> publish, overrides, rollback; every step audited.

A :class:`Governance` object works on the store's database. Each state change and its audit
entry are written in one transaction, so the log and the versions never disagree. Concurrency is
optimistic: an override names the version it was made against and is saved only if that version
has not been changed meanwhile (a compare-and-set on ``successor_id``); otherwise the second
person gets a :class:`ConflictError` and nothing is lost or half-written.

Statuses: ``proposed`` -> ``approved`` -> ``published`` -> ``superseded`` (a newer publication
covers its horizon) or ``rolled_back``; ``proposed``/``approved`` -> ``rejected``. Nothing is
deleted: every version stays, with who and when.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date as date_t
from datetime import datetime, timezone
from typing import Any, Callable

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit import append_entry, read_log
from engine.governance.audit_store import EDITABLE_STATUSES, ensure_tables, resolve_engine, run_tx, tables
from engine.governance.canonical import canonical, clean, input_data_hash, schedule_from_records, schedule_to_records, sha256
from engine.governance.catalog import Catalog, load_catalog
from engine.governance.errors import ConflictError, HardRuleViolation, OverrideError, PublicationWithheld, WorkflowError
from engine.governance.gates import CHECKS, GATE_RULES, GateParams, GateResult, evaluate_gates, gate_hard_rules
from engine.governance.overrides import Override, apply_overrides, from_lock_records, override_rates, to_lock_records
from engine.governance.roles import Roles, User, load_roles, mask_for_role, mask_payload, require

log = logging.getLogger(__name__)


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


class Governance:
    """The governance ledger on the store's database (a Store, an Engine, a URL, or None for the default)."""

    def __init__(self, store_or_url: Any = None, *, catalog: Catalog | None = None, roles: Roles | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine, self._owned = resolve_engine(store_or_url)
        ensure_tables(self.engine)
        self._catalog, self._roles = catalog, roles
        self.clock = clock or (lambda: datetime.now(timezone.utc).replace(tzinfo=None))
        self.t = tables()

    # ------------------------------------------------------------------ plumbing

    @property
    def catalog(self) -> Catalog:
        return self._catalog or load_catalog(roles=self.roles)

    @property
    def roles(self) -> Roles:
        return self._roles or load_roles()

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()

    def __enter__(self) -> "Governance":
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

    # ------------------------------------------------------------------ propose / approve / reject / publish

    def propose(
        self,
        hospital_id: str,
        schedule: Any,
        actor: User,
        *,
        plan_json: dict[str, Any] | None = None,
        horizon: tuple[Any, Any] | None = None,
        hospital: Any = None,
        model: Any = None,
        data_hash: str | None = None,
        model_version: str | None = None,
        model_data_hash: str | None = None,
        rules_version: str | None = None,
        source: str | None = None,
        parent_id: int | None = None,
        locks: pd.DataFrame | None = None,
        note: str = "",
    ) -> ScheduleVersion:
        """Record a recommendation as a proposed version and audit it (input data hash, model, rules, solver).

        ``schedule`` is a PlanResult (plan JSON and horizon are taken from it) or a schedule.csv frame.
        ``hospital`` gives the input data hash, ``model`` (registry ModelVersion) the model version.
        The parent defaults to the version published for the horizon's first day (the baseline).
        """
        self._require(actor, "propose")
        if hasattr(schedule, "schedule") and hasattr(schedule, "to_json"):
            result = schedule
            plan_json = plan_json or result.to_json()
            if getattr(result, "params", None) is not None and "allow_open_time" not in plan_json:
                plan_json = {**plan_json, "allow_open_time": bool(result.params.allow_open_time)}
            if horizon is None and getattr(result, "instance", None) is not None:
                horizon = (result.instance.dates[0], result.instance.dates[-1])
            schedule = result.schedule
        if not isinstance(schedule, pd.DataFrame):
            raise TypeError("schedule must be a PlanResult or a schedule.csv DataFrame")
        plan_json = clean(plan_json or {"status": "manual", "solver": "manual", "fallback_used": False})
        if horizon is None:
            if not len(schedule):
                raise WorkflowError("an empty schedule needs its horizon dates")
            dates = pd.to_datetime(schedule["date"])
            horizon = (dates.min(), dates.max())
        h0, h1 = pd.Timestamp(horizon[0]).normalize(), pd.Timestamp(horizon[1]).normalize()
        if h1 < h0:
            raise WorkflowError(f"the horizon ends ({h1:%Y-%m-%d}) before it starts ({h0:%Y-%m-%d})")
        if data_hash is None and hospital is not None:
            data_hash = input_data_hash(hospital)
        if model is not None:
            meta = getattr(model, "meta", model) or {}
            model_version = model_version or meta.get("version") or getattr(model, "version", None)
            model_data_hash = model_data_hash or meta.get("data_hash")
        rules_version = rules_version or self.catalog.rules_version
        if source is None:
            source = "rules" if plan_json.get("solver") == "rules" else ("manual" if plan_json.get("solver") == "manual" else "optimizer")
        if parent_id is None:
            base = self.published_version(hospital_id, h0)
            parent_id = base.version_id if base else None
        recs = schedule_to_records(schedule)
        now = self.clock()

        def tx(conn: sa.Connection) -> int:
            vid = self._insert_version(
                conn, hospital_id=hospital_id, horizon_start=h0.date(), horizon_end=h1.date(), status="proposed",
                source=source, parent_id=parent_id, created_by=actor.name, created_role=actor.role, created_at=now,
                plan=plan_json, data_hash=data_hash, model_version=model_version, model_data_hash=model_data_hash,
                rules_version=rules_version, schedule=schedule, locks=locks, note=note or None)
            n_sched = sum(1 for r in recs if r.get("status") == "scheduled")
            self._audit(conn, hospital_id, "recommendation", actor, {
                "version_id": vid, "parent_id": parent_id, "source": source,
                "horizon": [f"{h0:%Y-%m-%d}", f"{h1:%Y-%m-%d}"], "input_data_hash": data_hash,
                "model_version": model_version, "model_data_hash": model_data_hash, "rules_version": rules_version,
                "solver": plan_json.get("solver"), "status": plan_json.get("status"), "objective": plan_json.get("objective"),
                "mip_gap": plan_json.get("mip_gap"), "fallback_used": plan_json.get("fallback_used"),
                "fallback_reason": plan_json.get("fallback_reason"), "n_cases": len(recs), "n_scheduled": n_sched,
                "n_deferred": len(recs) - n_sched, "schedule_sha256": sha256(canonical(recs)), "note": note or None,
            }, vid)
            return vid

        vid = run_tx(self.engine, tx)
        log.info("hospital %s: version %d proposed by %s", hospital_id, vid, actor.name)
        return self.version(vid)

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

    def approve(self, version_id: int, actor: User, note: str = "") -> ScheduleVersion:
        """Approve a proposed version. Four eyes: whoever created the version may not approve it."""
        self._require(actor, "approve")
        v = self.t["gov_schedule_versions"]
        now = self.clock()

        def tx(conn: sa.Connection) -> None:
            r = self._row(conn, version_id)
            if r.successor_id is not None:
                raise self._changed_message(r, "review it")
            if r.status != "proposed":
                raise WorkflowError(f"Version {version_id} is {r.status}: only a proposed schedule can be approved.")
            if r.created_by == actor.name:
                raise PermissionError(f"{actor.name} created version {version_id}; another person must approve it (four eyes).")
            res = conn.execute(v.update().where(v.c.version_id == version_id, v.c.status == "proposed", v.c.successor_id.is_(None))
                               .values(status="approved", approved_by=actor.name, approved_at=now, status_by=actor.name,
                                       status_at=now, status_note=note or None))
            if res.rowcount != 1:
                raise self._changed_message(self._row(conn, version_id), "review it")
            self._audit(conn, r.hospital_id, "approve", actor, {"version_id": version_id, "note": note or None}, version_id)

        run_tx(self.engine, tx)
        return self.version(version_id)

    def reject(self, version_id: int, actor: User, note: str) -> ScheduleVersion:
        """Reject a proposed or approved version (a reason is required); its parent may be overridden again."""
        self._require(actor, "reject")
        if not (note or "").strip():
            raise WorkflowError("Say why the schedule is rejected (a note is required).")
        v = self.t["gov_schedule_versions"]
        now = self.clock()

        def tx(conn: sa.Connection) -> None:
            r = self._row(conn, version_id)
            if r.status not in ("proposed", "approved"):
                raise WorkflowError(f"Version {version_id} is {r.status}: only a proposed or approved schedule can be rejected.")
            res = conn.execute(v.update().where(v.c.version_id == version_id, v.c.status == r.status)
                               .values(status="rejected", status_by=actor.name, status_at=now, status_note=note))
            if res.rowcount != 1:
                raise self._changed_message(self._row(conn, version_id), "review it")
            if r.parent_id is not None:
                conn.execute(v.update().where(v.c.version_id == r.parent_id, v.c.successor_id == version_id).values(successor_id=None))
            self._audit(conn, r.hospital_id, "reject", actor, {"version_id": version_id, "note": note}, version_id)

        run_tx(self.engine, tx)
        return self.version(version_id)

    def publish(self, version_id: int, actor: User, gates: list[GateResult] | None = None, *,
                hospital: Any = None) -> ScheduleVersion:
        """Publish an approved version if no blocking gate failed; else audit the refusal and raise PublicationWithheld.

        ``gates`` is the result of :meth:`check_gates` (or :func:`evaluate_gates`) for this version;
        None uses the last gate decision recorded in the audit log for this version (there must be one).
        The hard rules are never taken from the caller's list: with ``hospital`` the version's schedule
        is checked now (engine/checker.py), else the hard-rules result audited by :meth:`check_gates`
        for this version is used, and without either publication is withheld.
        Published versions whose horizon lies inside this one become ``superseded``.
        """
        self._require(actor, "publish")
        if gates is None:
            gates = self.recorded_gates(version_id)
        if not gates or not all(isinstance(g, GateResult) for g in gates):
            raise WorkflowError("Run the safety gates for this version first (check_gates) and pass their results.")
        hard = self.hard_rules_gate(version_id, hospital)
        gates = [hard, *[g for g in gates if g.gate != "hard_rules"]]
        v = self.t["gov_schedule_versions"]
        now = self.clock()
        failed = [g for g in gates if g.withholds]
        summary = [{"gate": g.gate, "passed": g.passed, "blocking": g.blocking, "message": g.message, "checked": g.checked}
                   for g in gates]
        if failed:
            def refuse(conn: sa.Connection) -> None:
                r = self._row(conn, version_id)
                self._audit(conn, r.hospital_id, "publish_withheld", actor,
                            {"version_id": version_id, "failed": [g.gate for g in failed], "gates": summary}, version_id)

            run_tx(self.engine, refuse)
            raise PublicationWithheld(failed)

        def tx(conn: sa.Connection) -> None:
            r = self._row(conn, version_id)
            if r.successor_id is not None:
                raise self._changed_message(r, "publish it")
            if r.status != "approved":
                raise WorkflowError(f"Version {version_id} is {r.status}: only an approved schedule can be published"
                                    + (" (leadership approves it first)." if r.status == "proposed" else "."))
            res = conn.execute(v.update().where(v.c.version_id == version_id, v.c.status == "approved", v.c.successor_id.is_(None))
                               .values(status="published", published_by=actor.name, published_at=now, status_by=actor.name, status_at=now))
            if res.rowcount != 1:
                raise self._changed_message(self._row(conn, version_id), "publish it")
            rolled_back = None
            if r.rollback_of is not None:
                # A rollback that went through approval: the version it rolls back (if still in force) is rolled back.
                res = conn.execute(v.update().where(v.c.version_id == r.rollback_of, v.c.status == "published")
                                   .values(status="rolled_back", superseded_by=version_id, status_by=actor.name, status_at=now,
                                           status_note=f"rolled back by version {version_id}: {r.note or ''}".strip()))
                rolled_back = r.rollback_of if res.rowcount == 1 else None
            superseded = self._supersede(conn, r.hospital_id, version_id, r.horizon_start, r.horizon_end, actor, now)
            self._audit(conn, r.hospital_id, "publish", actor,
                        {"version_id": version_id, "superseded": superseded, "rolled_back": rolled_back, "gates": summary},
                        version_id)

        run_tx(self.engine, tx)
        return self.version(version_id)

    def hard_rules_gate(self, version_id: int, hospital: Any = None) -> GateResult:
        """The hard-rules result publication relies on for a version (see :meth:`publish`)."""
        ver = self.version(version_id)
        if hospital is not None:
            return self._check_hard_rules(ver, hospital)
        recorded = [g for g in self.recorded_gates(version_id) if g.gate == "hard_rules"]
        if recorded:
            return recorded[0]
        return GateResult("hard_rules", False,
                          f"The hard rules were never checked for version {version_id}, so it cannot be published.",
                          "Run the safety gates on this version (they include the hard-rules check), then publish.",
                          True, GATE_RULES["hard_rules"], {"checked": False}, CHECKS["hard_rules"])

    def _check_hard_rules(self, ver: ScheduleVersion, hospital: Any) -> GateResult:
        h = getattr(hospital, "hospital", hospital)
        r = gate_hard_rules(h, ver.schedule, ver, GateParams.from_catalog(self.catalog))
        return GateResult(r.gate, r.passed, r.message, r.inspect_next, True, GATE_RULES["hard_rules"], r.details, CHECKS["hard_rules"])

    def _supersede(self, conn: sa.Connection, hospital_id: str, version_id: int, start: date_t, end: date_t, actor: User,
                   now: datetime) -> list[int]:
        v = self.t["gov_schedule_versions"]
        cond = [v.c.hospital_id == hospital_id, v.c.status == "published", v.c.version_id != version_id,
                v.c.horizon_start >= start, v.c.horizon_end <= end]
        ids = [int(x) for x in conn.execute(sa.select(v.c.version_id).where(*cond)).scalars()]
        if ids:
            conn.execute(v.update().where(*cond).values(status="superseded", superseded_by=version_id, status_by=actor.name,
                                                         status_at=now, status_note=f"superseded by version {version_id}"))
        return ids

    # ------------------------------------------------------------------ the baseline

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

    # ------------------------------------------------------------------ overrides

    def override(self, version_id: int, overrides: Override | list[Override], actor: User, *,
                 forecasts: pd.DataFrame | None = None, pacu_minutes: float | None = None, note: str = "",
                 hospital: Any = None, allow_violations: bool = False) -> ScheduleVersion:
        """Apply overrides to version ``version_id`` (the one the user was looking at), giving a new proposed version.

        Validated when entered: the start must be a real clock time (``HH:MM``, "25:99" is refused
        naming the field) and, with ``hospital``, the room must exist and the new schedule is checked
        against the hard rules (engine/checker.py). A finding the override introduces (double
        booking, surgeon in two rooms, room capability, hours, PACU, ...) raises
        :class:`HardRuleViolation` naming the rule, and nothing is saved; with
        ``allow_violations=True`` the version is saved instead, marked as breaking those rules
        (``plan["hard_rule_violations"]``), and the hard-rules gate keeps it from publication until a
        later override or re-plan fixes it. Without ``hospital`` the hard rules are checked by the gate only.

        Optimistic concurrency: if that version was changed meanwhile (another override, a rejection,
        supersession, rollback), ConflictError tells the user to reload; nothing is saved.
        """
        self._require(actor, "override")
        ovs = [overrides] if isinstance(overrides, Override) else list(overrides)
        if not ovs:
            raise WorkflowError("no override given")
        cat = self.catalog
        for ov in ovs:
            ov.validate(cat)
            if ov.rule_id is not None and not cat.may_override(ov.rule_id, actor.role):
                rule = cat.rule(ov.rule_id)
                who = "nobody (a hard rule)" if rule.override_role == "none" else f"the {rule.override_role} role only"
                raise PermissionError(f"Rule {rule.id} ({rule.name}) may be overridden by {who}, not by {actor.role}.")
        base = self.version(version_id)
        with self.engine.connect() as conn:
            r = self._row(conn, version_id)
        if r.successor_id is not None or r.status not in EDITABLE_STATUSES:
            raise self._changed_message(r, "apply your change")
        h = getattr(hospital, "hospital", hospital)
        if h is not None:
            known = set(h.rooms["room_id"])
            for ov in ovs:
                if ov.room_id is not None and ov.room_id not in known:
                    raise OverrideError(f"room_id of the override of case {ov.case_id}: room {ov.room_id!r} is not in "
                                        f"rooms.csv (rooms: {', '.join(sorted(known))})")
        sched, locks, deferred, warnings = apply_overrides(base.schedule, ovs, base.locks, base.deferred, forecasts, pacu_minutes)
        n_before = int((base.plan or {}).get("n_overrides") or 0)
        plan = {**(base.plan or {}), "edited": True, "n_overrides": n_before + len(ovs), "edited_from_version": base.version_id}
        plan.pop("hard_rule_violations", None)
        introduced: list[Any] = []
        if h is not None:
            introduced = self._introduced_violations(h, base, sched, locks)
            plan["hard_rules_checked_at_entry"] = True
            if introduced and not allow_violations:
                shown = "; ".join(str(x) for x in introduced[:5]) + (f"; ... and {len(introduced) - 5} more" if len(introduced) > 5 else "")
                rules = sorted({x.rule for x in introduced}, key=lambda r: int(r[1:]))
                raise HardRuleViolation(f"Override refused: it breaks hard rule(s) {', '.join(rules)}: {shown}. "
                                        "Nothing was saved.", introduced)
            if introduced:
                plan["hard_rule_violations"] = [{"rule": x.rule, "case_ids": list(x.case_ids), "message": str(x)} for x in introduced]
                warnings = [*warnings, *[f"breaks hard rule {x}; this version cannot be published until it is fixed"
                                         for x in introduced]]
        else:
            plan["hard_rules_checked_at_entry"] = False
        rows = base.schedule.set_index("case_id")
        now = self.clock()
        v, o = self.t["gov_schedule_versions"], self.t["gov_overrides"]

        def tx(conn: sa.Connection) -> int:
            new_id = self._insert_version(
                conn, hospital_id=base.hospital_id, horizon_start=base.horizon_start.date(), horizon_end=base.horizon_end.date(),
                status="proposed", source="override", parent_id=base.version_id, created_by=actor.name,
                created_role=actor.role, created_at=now, plan=plan, data_hash=base.data_hash,
                model_version=base.model_version, model_data_hash=base.model_data_hash, rules_version=cat.rules_version,
                schedule=sched, locks=locks, deferred=deferred, note=note or None)
            res = conn.execute(v.update().where(v.c.version_id == base.version_id, v.c.successor_id.is_(None),
                                                v.c.status.in_(EDITABLE_STATUSES)).values(successor_id=new_id))
            if res.rowcount != 1:
                raise self._changed_message(self._row(conn, base.version_id), "apply your change")
            details = []
            for ov in ovs:
                before = rows.loc[ov.case_id]
                after = sched.set_index("case_id").loc[ov.case_id]
                rec = {
                    "hospital_id": base.hospital_id, "base_version_id": base.version_id, "new_version_id": new_id,
                    "case_id": ov.case_id, "service_line": before["service_line"], "surgeon_id": before["surgeon_id"],
                    "action": ov.action, "code": ov.code, "justification_text": (ov.text or "").strip() or None,
                    "rule_id": ov.rule_id,
                    "new_date": None if pd.isna(after["date"]) else f"{pd.Timestamp(after['date']):%Y-%m-%d}",
                    "new_room_id": after["room_id"] if isinstance(after["room_id"], str) else None,
                    "new_start": None if pd.isna(after["start"]) else f"{pd.Timestamp(after['start']):%Y-%m-%dT%H:%M:%S}",
                    "actor": actor.name, "role": actor.role, "at": now,
                }
                conn.execute(o.insert().values(**rec))
                details.append({k: rec[k] for k in ("case_id", "service_line", "action", "code", "justification_text", "rule_id",
                                                    "new_date", "new_room_id", "new_start")}
                               | {"before": _where(before)})
            self._audit(conn, base.hospital_id, "override", actor, {
                "base_version_id": base.version_id, "new_version_id": new_id, "overrides": details, "warnings": warnings,
                "hard_rules_checked": h is not None, "publishable": not introduced,
                "hard_rule_violations": plan.get("hard_rule_violations", []),
                "rules_version": cat.rules_version, "schedule_sha256": sha256(canonical(schedule_to_records(sched))),
                "note": note or None}, new_id)
            return new_id

        new_id = run_tx(self.engine, tx)
        return self.version(new_id)

    def _introduced_violations(self, h: Any, base: ScheduleVersion, sched: pd.DataFrame, locks: pd.DataFrame) -> list[Any]:
        """Hard-rule findings of the overridden schedule that the base version did not have."""
        from engine.checker import check_schedule

        params = GateParams.from_catalog(self.catalog)
        allow_open = params.allow_open_time and bool((base.plan or {}).get("allow_open_time", True))
        kw = dict(horizon_dates=base.horizon, allow_open_time=allow_open, plan_date=base.horizon[0])
        before = {str(x) for x in check_schedule(h, base.schedule, locked=base.locks if len(base.locks) else None, **kw)}
        after = check_schedule(h, sched, locked=locks if len(locks) else None, **kw)
        return [x for x in after if str(x) not in before]

    def locks(self, version_id: int) -> pd.DataFrame:
        """The version's override locks as ``plan(locks=...)`` takes them (case_id, date, room_id, start)."""
        return self.version(version_id).locks

    def overrides(self, hospital_id: str, actor: User | None = None) -> pd.DataFrame:
        """Every override of the hospital (free text masked for non-clinical roles when ``actor`` is given)."""
        o = self.t["gov_overrides"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(o).where(o.c.hospital_id == hospital_id).order_by(o.c.override_id)).all()
        df = pd.DataFrame([dict(r._mapping) for r in rows], columns=[c.name for c in o.columns])
        if actor is not None:
            self._require(actor, "view_schedule")
            df = mask_for_role(df, actor, self.roles)
        return df

    def lineage(self, version_id: int) -> list[int]:
        """The version and its override ancestors back to the recommendation it started from."""
        out, cur = [], self.version(version_id)
        while True:
            out.append(cur.version_id)
            if cur.source != "override" or cur.parent_id is None:
                return out
            cur = self.version(cur.parent_id)

    def version_override_rate(self, version_id: int) -> tuple[float, pd.DataFrame]:
        """(share of the version's cases changed by override since its recommendation, those overrides)."""
        ver = self.version(version_id)
        ids = self.lineage(version_id)
        ov = self.overrides(ver.hospital_id)
        ov = ov[ov["new_version_id"].isin(ids)]
        n = max(ver.n_cases, 1)
        return (ov["case_id"].nunique() / n if len(ov) else 0.0), ov.reset_index(drop=True)

    def override_rates(self, hospital_id: str, by: str | None = "service_line", since: Any = None, until: Any = None,
                       actor: User | None = None) -> pd.DataFrame:
        """Override rates by service line, code (or action, actor, surgeon_id; None: overall) over recommendations
        created in [since, until): overridden cases / cases the system recommended (each case once)."""
        if actor is not None:
            self._require(actor, "view_override_rates")
        v = self.t["gov_schedule_versions"]
        cond = [v.c.hospital_id == hospital_id, v.c.source.in_(("optimizer", "rules"))]
        lo = pd.Timestamp(since).to_pydatetime() if since is not None else None
        hi = pd.Timestamp(until).to_pydatetime() if until is not None else None
        if lo is not None:
            cond.append(v.c.created_at >= lo)
        if hi is not None:
            cond.append(v.c.created_at < hi)
        with self.engine.connect() as conn:
            scheds = conn.execute(sa.select(v.c.schedule_json).where(*cond)).scalars().all()
        recs = [r for s in scheds for r in json.loads(s)]
        recommended = pd.DataFrame(recs, columns=None) if recs else pd.DataFrame(columns=["case_id", "service_line", "surgeon_id"])
        ov = self.overrides(hospital_id)
        if lo is not None:
            ov = ov[pd.to_datetime(ov["at"]) >= lo]
        if hi is not None:
            ov = ov[pd.to_datetime(ov["at"]) < hi]
        return override_rates(ov, recommended, by)

    # ------------------------------------------------------------------ gates

    def check_gates(self, version_id: int, actor: User, hospital: Any, *, model: Any = None, quality: Any = None,
                    params: GateParams | None = None, as_of: Any = None, freshness: Any = None) -> list[GateResult]:
        """Evaluate every safety gate for a version and audit the decision (one entry with every gate)."""
        self._require(actor, "run_gates")
        if quality is None and hasattr(hospital, "report"):
            quality = hospital.report  # a LoadedHospital carries its import quality report
        hospital = getattr(hospital, "hospital", hospital)
        ver = self.version(version_id)
        rate, breakdown = self.version_override_rate(version_id)
        results = evaluate_gates(hospital, model=model, quality=quality, override_rate=rate, override_breakdown=breakdown,
                                 version=ver, params=params or GateParams.from_catalog(self.catalog), as_of=as_of,
                                 freshness=freshness, hospital_id=ver.hospital_id)
        blocked = [g.gate for g in results if g.withholds]
        payload = {"version_id": version_id, "decision": "withhold" if blocked else "clear", "failed": blocked,
                   "schedule_sha256": sha256(canonical(schedule_to_records(ver.schedule))),
                   "gates": [{"gate": g.gate, "rule_id": g.rule_id, "passed": g.passed, "blocking": g.blocking,
                              "message": g.message, "inspect_next": g.inspect_next, "checked": g.checked,
                              **({"details": clean(g.details)} if g.gate == "hard_rules" else {})} for g in results]}
        run_tx(self.engine, lambda conn: self._audit(conn, ver.hospital_id, "gate_decision", actor, payload, version_id))
        return results

    def recorded_gates(self, version_id: int) -> list[GateResult]:
        """The gate results of the last gate decision audited for this version ([] when none)."""
        lg = self.t["gov_audit_log"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(lg.c.payload_json).where(lg.c.version_id == int(version_id), lg.c.kind == "gate_decision")
                               .order_by(lg.c.entry_id.desc()).limit(1)).first()
        if row is None:
            return []
        return [GateResult(g["gate"], bool(g["passed"]), g["message"], g.get("inspect_next", ""), bool(g.get("blocking", True)),
                           g.get("rule_id", ""), g.get("details") or {}, g.get("checked", ""))
                for g in json.loads(row.payload_json)["gates"]]

    # ------------------------------------------------------------------ rollback

    def rollback(self, hospital_id: str, day: Any, actor: User, *, to: str = "last_approved", reason: str,
                 rules: Any = None, hospital: Any = None, emergency: bool = False) -> ScheduleVersion:
        """Return the schedule in force on ``day`` to the last approved schedule or to the rules-based one.

        ``to="last_approved"``: one action; the version in force is marked ``rolled_back`` (kept) and a
        new published version copies the last version approved before it (an approved schedule, its
        approval carried). ``to="rules"`` (``rules`` is a PlanResult or schedule frame, e.g. from
        :func:`engine.governance.rules_schedule`): the rules-based schedule is a different day than
        the one in force, so it goes through the same approval path: it is recorded as a *proposed*
        version (``rollback_of`` = the version in force) that leadership approves, the gates check and
        someone publishes; on publication the version in force becomes ``rolled_back``. Only an
        emergency (``emergency=True``, the reason says why; audited as ``emergency_rollback``)
        publishes the rules schedule at once. Whatever is published here must pass the hard rules:
        with ``hospital`` they are checked now, else (last approved only) the target's audited check is
        used; an emergency needs ``hospital``. Audited; nothing is deleted.
        """
        self._require(actor, "rollback")
        if to not in ("last_approved", "rules"):
            raise ValueError(f"to must be 'last_approved' or 'rules', got {to!r}")
        if not (reason or "").strip():
            raise WorkflowError("Say why you roll back (a reason is required)." if not emergency else
                                "An emergency rollback needs a note saying what the emergency is (a reason is required).")
        cur = self.published_version(hospital_id, day)
        if cur is None:
            raise WorkflowError(f"Nothing is published for {pd.Timestamp(day):%Y-%m-%d}: there is nothing to roll back.")
        v = self.t["gov_schedule_versions"]
        now = self.clock()
        if to == "last_approved":
            target = self._last_approved_before(cur)
            if target is None:
                raise WorkflowError(f"No schedule approved before version {cur.version_id} covers "
                                    f"{cur.horizon_start:%Y-%m-%d}..{cur.horizon_end:%Y-%m-%d}; roll back to the rules-based "
                                    "schedule instead.")
            hard = self.hard_rules_gate(target.version_id, hospital)
            values = dict(hospital_id=hospital_id, horizon_start=target.horizon_start.date(),
                          horizon_end=target.horizon_end.date(), source="rollback", parent_id=target.version_id,
                          plan=target.plan, data_hash=target.data_hash, model_version=target.model_version,
                          model_data_hash=target.model_data_hash, rules_version=target.rules_version,
                          schedule=target.schedule, locks=target.locks, deferred=target.deferred,
                          approved_by=target.approved_by, approved_at=target.approved_at)
            to_txt = f"version {target.version_id} (approved by {target.approved_by})"
        else:
            if rules is None:
                raise WorkflowError("Pass the rules-based schedule (engine.governance.rules_schedule) to roll back to it.")
            is_result = hasattr(rules, "schedule") and not isinstance(rules, pd.DataFrame)
            plan_json = rules.to_json() if is_result else {"status": "rules", "solver": "rules", "fallback_used": False}
            sched = rules.schedule if is_result else rules
            dates = pd.to_datetime(sched["date"]).dt.normalize()
            if len(sched) and (dates.min() < cur.horizon_start or dates.max() > cur.horizon_end):
                raise WorkflowError(f"The rules-based schedule covers {dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d}, outside the "
                                    f"horizon {cur.horizon_start:%Y-%m-%d}..{cur.horizon_end:%Y-%m-%d} of version {cur.version_id}.")
            values = dict(hospital_id=hospital_id, horizon_start=cur.horizon_start.date(), horizon_end=cur.horizon_end.date(),
                          source="rules", plan=clean({**plan_json, "rollback_of": cur.version_id}), data_hash=cur.data_hash,
                          model_version=None, model_data_hash=None, rules_version=self.catalog.rules_version, schedule=sched,
                          locks=None, deferred=[])
            to_txt = "the rules-based block schedule"
            if not emergency:
                return self._propose_rules_rollback(cur, values, actor, reason, now)
            if hospital is None:
                raise WorkflowError("An emergency rollback publishes the rules-based schedule at once, so it must be checked "
                                    "against the hard rules first: pass the hospital.")
            hard = self._check_hard_rules(self._unsaved_version(cur, values), hospital)
            values.update(parent_id=None, approved_by=None, approved_at=None)
        if not hard.passed:
            def refuse(conn: sa.Connection) -> None:
                self._audit(conn, hospital_id, "rollback_withheld", actor, {
                    "version_in_force": cur.version_id, "to": to, "emergency": bool(emergency), "reason": reason,
                    "failed": ["hard_rules"], "gates": [{"gate": hard.gate, "passed": False, "message": hard.message}]},
                    cur.version_id)

            run_tx(self.engine, refuse)
            raise PublicationWithheld([hard])
        kind = "emergency_rollback" if emergency else "rollback"

        def tx(conn: sa.Connection) -> int:
            res = conn.execute(v.update().where(v.c.version_id == cur.version_id, v.c.status == "published")
                               .values(status="rolled_back", status_by=actor.name, status_at=now, status_note=reason))
            if res.rowcount != 1:
                raise self._changed_message(self._row(conn, cur.version_id), "roll back")
            label = "EMERGENCY rollback" if emergency else "rollback"
            new_id = self._insert_version(conn, status="published", rollback_of=cur.version_id, created_by=actor.name,
                                          created_role=actor.role, created_at=now, published_by=actor.name, published_at=now,
                                          status_by=actor.name, status_at=now,
                                          note=f"{label} of version {cur.version_id} to {to_txt}: {reason}", **values)
            conn.execute(v.update().where(v.c.version_id == cur.version_id).values(superseded_by=new_id))
            self._audit(conn, hospital_id, kind, actor, {
                "rolled_back": cur.version_id, "to": to, "target_version_id": values["parent_id"], "new_version_id": new_id,
                "reason": reason, "emergency": bool(emergency), "approval": "carried from the target" if to == "last_approved"
                else "none: emergency exception", "hard_rules": hard.message,
                "schedule_sha256": sha256(canonical(schedule_to_records(values["schedule"]))),
                "solver": values["plan"].get("solver") if isinstance(values["plan"], dict) else None}, new_id)
            return new_id

        new_id = run_tx(self.engine, tx)
        log.warning("hospital %s: version %d rolled back to %s by %s%s", hospital_id, cur.version_id, to_txt, actor.name,
                    " (EMERGENCY)" if emergency else "")
        return self.version(new_id)

    def _unsaved_version(self, cur: ScheduleVersion, values: dict[str, Any]) -> ScheduleVersion:
        """A ScheduleVersion for a schedule not saved yet (to check it before it is written)."""
        return ScheduleVersion(
            version_id=0, hospital_id=cur.hospital_id, horizon_start=pd.Timestamp(values["horizon_start"]),
            horizon_end=pd.Timestamp(values["horizon_end"]), status="unsaved", source=values["source"], parent_id=None,
            successor_id=None, rollback_of=cur.version_id, superseded_by=None, created_by="", created_role="",
            created_at=self.clock(), approved_by=None, approved_at=None, published_by=None, published_at=None, status_by=None,
            status_at=None, status_note=None, plan=values["plan"], data_hash=values["data_hash"], model_version=None,
            model_data_hash=None, rules_version=values["rules_version"], schedule=values["schedule"],
            locks=from_lock_records([]))

    def _propose_rules_rollback(self, cur: ScheduleVersion, values: dict[str, Any], actor: User, reason: str,
                                now: datetime) -> ScheduleVersion:
        """The rules-based schedule as a proposed version that rolls ``cur`` back once approved and published."""
        def tx(conn: sa.Connection) -> int:
            new_id = self._insert_version(conn, status="proposed", rollback_of=cur.version_id, parent_id=cur.version_id,
                                          created_by=actor.name, created_role=actor.role, created_at=now,
                                          note=f"rollback of version {cur.version_id} to the rules-based block schedule "
                                               f"(awaiting approval): {reason}", **values)
            recs = schedule_to_records(values["schedule"])
            self._audit(conn, cur.hospital_id, "rollback_proposed", actor, {
                "version_in_force": cur.version_id, "to": "rules", "new_version_id": new_id, "reason": reason,
                "emergency": False, "next": "approval, gates and publication; the version in force stays until then",
                "rules_version": values["rules_version"], "n_cases": len(recs),
                "schedule_sha256": sha256(canonical(recs))}, new_id)
            return new_id

        new_id = run_tx(self.engine, tx)
        log.info("hospital %s: rules-based rollback of version %d proposed by %s as version %d", cur.hospital_id,
                 cur.version_id, actor.name, new_id)
        return self.version(new_id)

    def _last_approved_before(self, cur: ScheduleVersion) -> ScheduleVersion | None:
        v = self.t["gov_schedule_versions"]
        exclude = {cur.version_id}
        if cur.source == "rollback" and cur.parent_id is not None:
            exclude.add(cur.parent_id)  # rolling back a rollback goes further back, not to the same schedule
        cutoff = cur.published_at or cur.created_at
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(v).where(v.c.hospital_id == cur.hospital_id, v.c.approved_at.is_not(None),
                                   v.c.approved_at <= cutoff, v.c.status.not_in(("rolled_back", "rejected")),
                                   v.c.version_id.not_in(list(exclude)), v.c.horizon_start <= cur.horizon_end.date(),
                                   v.c.horizon_end >= cur.horizon_start.date())
                .order_by(v.c.approved_at.desc(), v.c.version_id.desc())
            ).all()
        for r in rows:
            ver = _version_from_row(r)
            if ver.source == "rollback" and ver.parent_id in exclude:
                continue
            return ver
        return None

    # ------------------------------------------------------------------ audit

    def record_sign_in(self, actor: User, hospital_id: str = "_system", method: str = "password") -> None:
        """Audit a successful sign-in (the dashboard calls this after :func:`authenticate`)."""
        run_tx(self.engine, lambda conn: self._audit(conn, hospital_id, "sign_in", actor, {"method": method}))

    def audit_log(self, hospital_id: str | None, actor: User) -> pd.DataFrame:
        """The audit log for reading (free text masked for non-clinical roles)."""
        self._require(actor, "view_audit")
        df = read_log(self.engine, hospital_id)
        df["payload"] = df["payload"].map(lambda p: mask_payload(p, actor, self.roles))
        return df

    def verify(self, actor: User | None = None, hospital_id: str | None = None):
        from engine.governance.audit import verify_chain

        if actor is not None:
            self._require(actor, "verify_audit")
        return verify_chain(self.engine, hospital_id)

    def export_audit(self, path: Any, actor: User, hospital_id: str | None = None) -> int:
        """Export as JSON lines; non-clinical roles get free text masked (a masked file no longer verifies)."""
        from engine.governance.audit import export_jsonl

        self._require(actor, "export_audit")
        roles = self.roles
        transform = None if roles.can(actor.role, "view_patient_details") else (
            lambda rec: rec | {"payload": mask_payload(rec["payload"], actor, roles)})
        n = export_jsonl(self.engine, path, hospital_id, transform)
        return n


def _where(r: pd.Series) -> str:
    if r["status"] != "scheduled":
        return "deferred"
    return f"{r['room_id']} {pd.Timestamp(r['date']):%Y-%m-%d} {pd.Timestamp(r['start']):%H:%M}"
