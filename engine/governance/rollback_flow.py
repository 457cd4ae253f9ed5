"""Rollback: publishes only an approved version, or the rules-based schedule through the same approval path;
the emergency exception is audited as one (engine/governance/GOVERNANCE.md).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import run_tx
from engine.governance.canonical import canonical, clean, schedule_to_records, sha256
from engine.governance.errors import PublicationWithheld, WorkflowError
from engine.governance.overrides import from_lock_records
from engine.governance.publishing import PublishFlow
from engine.governance.roles import User
from engine.governance.versions import ScheduleVersion, _version_from_row

log = logging.getLogger(__name__)


class RollbackFlow(PublishFlow):
    """Rollback to the last approved version, or to the rules schedule through approval (or an audited emergency)."""

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
