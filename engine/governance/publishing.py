"""The publish state machine: propose, approve, reject, run the gates, publish (the hard rules re-checked)."""
from __future__ import annotations

import json
import logging
from datetime import date as date_t
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import run_tx
from engine.governance.canonical import canonical, clean, input_data_hash, schedule_to_records, sha256
from engine.governance.errors import PublicationWithheld, WorkflowError
from engine.governance.gates import CHECKS, GATE_RULES, GateParams, GateResult, evaluate_gates, gate_hard_rules
from engine.governance.roles import User
from engine.governance.versions import ScheduleVersion, VersionStore

log = logging.getLogger(__name__)


class PublishFlow(VersionStore):
    """propose -> approve (four eyes) -> gates -> publish, the state machine of a version; the hard rules
    gate every publication (engine/checker/)."""

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
        is checked now (engine/checker/), else the hard-rules result audited by :meth:`check_gates`
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
        published = self._published_hard_rules(version_id)
        if published is not None:
            return published
        return GateResult("hard_rules", False,
                          f"The hard rules were never checked for version {version_id}, so it cannot be published.",
                          "Run the safety gates on this version (they include the hard-rules check), then publish.",
                          True, GATE_RULES["hard_rules"], {"checked": False}, CHECKS["hard_rules"])

    def _published_hard_rules(self, version_id: int) -> GateResult | None:
        """The hard-rules result audited when this version was published (a check made at publication)."""
        lg = self.t["gov_audit_log"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(lg.c.payload_json).where(lg.c.version_id == int(version_id), lg.c.kind == "publish")
                               .order_by(lg.c.entry_id.desc()).limit(1)).first()
        if row is None:
            return None
        g = next((x for x in json.loads(row.payload_json).get("gates", []) if x.get("gate") == "hard_rules"), None)
        if g is None or not g.get("passed"):
            return None
        return GateResult("hard_rules", True, g["message"], "", True, GATE_RULES["hard_rules"], {"checked": True},
                          g.get("checked") or CHECKS["hard_rules"])

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

    def check_gates(self, version_id: int, actor: User, hospital: Any, *, model: Any = None, quality: Any = None,
                    params: GateParams | None = None, as_of: Any = None, freshness: Any = None) -> list[GateResult]:
        """Evaluate every safety gate for a version and audit the decision (one entry with every gate).

        The outcome gate reads the monitored days kept in this store (engine.pilot.monitor.latest_outcomes)."""
        self._require(actor, "run_gates")
        if quality is None and hasattr(hospital, "report"):
            quality = hospital.report  # a LoadedHospital carries its import quality report
        hospital = getattr(hospital, "hospital", hospital)
        ver = self.version(version_id)
        rate, breakdown = self.version_override_rate(version_id)
        params = params or GateParams.from_catalog(self.catalog)
        from engine.pilot.monitor import latest_outcomes  # the observed outcomes the `monitor` command kept (G-OUTCOMES)

        outcomes = latest_outcomes(self.engine, ver.hospital_id, params.outcome_window_days)
        results = evaluate_gates(hospital, model=model, quality=quality, override_rate=rate, override_breakdown=breakdown,
                                 version=ver, params=params, as_of=as_of, freshness=freshness, hospital_id=ver.hospital_id,
                                 outcomes=outcomes)
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
