"""Governance over the API: the same engine calls (and checks) as the dashboard and ``gov`` commands."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from engine.api.auth import current_user
from engine.api.service import Service
from engine.governance import Override, User, require, rules_schedule


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=4000)


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str = Field(min_length=1)
    action: Literal["move", "defer", "lock"] = "move"
    code: str = Field(min_length=1, description="justification code from the rules catalog")
    note: str = Field("", max_length=4000)
    date: dt.date | None = None
    room_id: str | None = None
    start: str | None = Field(None, description="HH:MM")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: dt.date
    to: Literal["last_approved", "rules"] = "last_approved"
    reason: str = Field(min_length=1, max_length=4000)
    emergency: bool = False


def version_view(ver: Any) -> dict[str, Any]:
    from engine.govcli import version_json

    return version_json(ver)


def add_governance_routes(app: FastAPI, svc: Service, http: Callable[[BaseException], HTTPException]) -> None:
    gov = svc.gov

    def run(fn: Callable[[], Any]) -> dict[str, Any]:
        try:
            return version_view(fn())
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's refusals become 403/404/409/422
            raise http(exc) from exc

    def same_hospital(vid: int) -> None:
        try:
            ver = gov.version(vid)
        except KeyError as exc:
            raise HTTPException(404, detail=f"no schedule version {vid}") from exc
        if ver.hospital_id != svc.hospital_id:
            raise HTTPException(404, detail=f"version {vid} belongs to another hospital")

    @app.get("/api/v1/versions/{vid}", tags=["governance"])
    def get_version(vid: int, user: User = Depends(current_user)) -> dict[str, Any]:
        same_hospital(vid)
        return run(lambda: (require(user, "view_schedule", gov.roles), gov.version(vid))[1])

    @app.post("/api/v1/versions/{vid}/approve", tags=["governance"])
    def approve(vid: int, req: NoteRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        same_hospital(vid)
        return run(lambda: gov.approve(vid, user, req.note))

    @app.post("/api/v1/versions/{vid}/reject", tags=["governance"])
    def reject(vid: int, req: NoteRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        same_hospital(vid)
        return run(lambda: gov.reject(vid, user, req.note))

    @app.post("/api/v1/versions/{vid}/publish", tags=["governance"])
    def publish(vid: int, user: User = Depends(current_user)) -> dict[str, Any]:
        """Run the safety gates (audited) and publish when they are clear (409 naming the failed gates)."""
        same_hospital(vid)

        def go():
            require(user, "publish", gov.roles)
            ver = gov.version(vid)
            model = None
            if ver.model_version:
                from engine.forecast import Registry

                model = Registry(svc.params.models_dir).load(svc.hospital_id)
            gates = gov.check_gates(vid, user, svc.loaded, model=model)
            return gov.publish(vid, user, gates, hospital=svc.loaded)

        return run(go)

    @app.post("/api/v1/versions/{vid}/override", tags=["governance"])
    def override(vid: int, req: OverrideRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        same_hospital(vid)
        ov = Override(req.case_id, req.action, req.code, text=req.note, date=f"{req.date:%Y-%m-%d}" if req.date else None,
                      room_id=req.room_id, start=req.start)
        return run(lambda: gov.override(vid, ov, user, hospital=svc.loaded, note=req.note,
                                        pacu_minutes=svc.hospital.settings.get("pacu_minutes")))

    @app.post("/api/v1/rollback", tags=["governance"])
    def rollback(req: RollbackRequest, user: User = Depends(current_user)) -> dict[str, Any]:
        day = pd.Timestamp(req.date)

        def go():
            rules = None
            if req.to == "rules":
                cur = gov.published_version(svc.hospital_id, day)
                days = 1 if cur is None else len(cur.horizon)
                start = day if cur is None else cur.horizon_start
                rules = rules_schedule(svc.hospital, start, days, catalog=gov.catalog)
            return gov.rollback(svc.hospital_id, day, user, to=req.to, reason=req.reason, rules=rules,
                                hospital=svc.loaded, emergency=req.emergency)

        return run(go)
