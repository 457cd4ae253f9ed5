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

from typing import Any

import pandas as pd

from engine.governance.audit import read_log
from engine.governance.audit_store import run_tx
from engine.governance.override_flow import OverrideFlow
from engine.governance.roles import User, mask_payload
from engine.governance.rollback_flow import RollbackFlow
from engine.governance.versions import HISTORY_COLUMNS, ScheduleVersion  # noqa: F401 (public names)

__all__ = ["Governance", "HISTORY_COLUMNS", "ScheduleVersion"]


class Governance(RollbackFlow, OverrideFlow):
    """The governance ledger on the store's database (a Store, an Engine, a URL, or None for the default).

    Split along its seams: versions and plumbing (versions.py), the publish state machine and gates
    (publishing.py), rollback (rollback_flow.py), overrides (override_flow.py); the audit views are here.
    """

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
