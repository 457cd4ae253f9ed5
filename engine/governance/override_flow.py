"""Overrides as new proposed versions (optimistic concurrency on the version overridden), override log and rates."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
import sqlalchemy as sa

from engine.governance.audit_store import EDITABLE_STATUSES, run_tx
from engine.governance.canonical import canonical, schedule_to_records, sha256
from engine.governance.errors import ConflictError, HardRuleViolation, OverrideError, WorkflowError
from engine.governance.gates import GateParams
from engine.governance.overrides import Override, apply_overrides, override_rates
from engine.governance.roles import User, mask_for_role
from engine.governance.versions import ScheduleVersion, VersionStore


class OverrideFlow(VersionStore):
    """Overrides: validated when entered (times, rooms, hard rules), saved as new proposed versions; rates."""

    def override(self, version_id: int, overrides: Override | list[Override], actor: User, *,
                 forecasts: pd.DataFrame | None = None, pacu_minutes: float | None = None, note: str = "",
                 hospital: Any = None, allow_violations: bool = False) -> ScheduleVersion:
        """Apply overrides to version ``version_id`` (the one the user was looking at), giving a new proposed version.

        Validated when entered: the start must be a real clock time (``HH:MM``, "25:99" is refused
        naming the field) and, with ``hospital``, the room must exist and the new schedule is checked
        against the hard rules (engine/checker/). A finding the override introduces (double
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


def _where(r: pd.Series) -> str:
    if r["status"] != "scheduled":
        return "deferred"
    return f"{r['room_id']} {pd.Timestamp(r['date']):%Y-%m-%d} {pd.Timestamp(r['start']):%H:%M}"
