"""FHIR R4 out: ``Appointment`` (a searchset Bundle for a date), ``Slot`` and ``Schedule`` (room time).

Built and validated with ``fhir.resources`` (its R4B models: R4B is R4 with ballot fixes, and the
fields used here are R4's). Every resource is validated on the way out; a resource that does not
validate is a bug and fails the request (500) rather than sending something a receiver would reject.

Mapping: one Appointment per case of the published schedule (status ``booked``; ``waitlist`` when
deferred, without times) and per case cancelled that day (``cancelled``: in cases.csv, or by a
cancellation event while the schedule without it is published); its room is a
``Location`` participant, its surgeon a ``Practitioner`` participant, the service line the
``serviceType``, the procedure code the ``reasonCode`` (the procedure name only for clinical roles).
Times carry the hospital's ``timezone`` offset when settings.toml names one, else UTC (+00:00;
documented in docs/api.md). One Schedule per room; one Slot per block (``busy`` when the published
schedule places a case in it, else ``free``).
"""
from __future__ import annotations

import re
from typing import Any, Callable

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from engine.api.auth import needs
from engine.api.service import Service
from engine.governance import User, is_clinical
from engine.contract import UNKNOWN_SURGEON

FHIR_JSON = "application/fhir+json"
PROC_SYSTEM = "urn:or-allocation:procedure-code"
SERVICE_SYSTEM = "urn:or-allocation:service-line"


def fhir_id(value: Any) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) for a local identifier."""
    s = re.sub(r"[^A-Za-z0-9\-.]", "-", str(value))[:64]
    return s or "x"


def outcome(status: int, message: str, field: str | None = None) -> JSONResponse:
    """An OperationOutcome error response naming the field (FHIRPath-ish ``expression``)."""
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    issue: dict[str, Any] = {"severity": "error", "code": "invalid" if status == 422 else "not-found" if status == 404 else
                             "exception", "diagnostics": message}
    if field:
        issue["expression"] = [field]
    oo = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": [issue]})
    return JSONResponse(oo.model_dump(mode="json", exclude_none=True), status, media_type=FHIR_JSON)


class _Bad(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def _search_date(value: str | None) -> pd.Timestamp:
    """A FHIR date search value: ``YYYY-MM-DD`` with an optional ``eq`` prefix (other prefixes are not supported)."""
    import datetime as dt

    if not value:
        raise _Bad(422, "the date search parameter is required (date=YYYY-MM-DD)", "date")
    v = value[2:] if value.startswith("eq") else value
    try:
        if len(v) == 10:
            return pd.Timestamp(dt.date.fromisoformat(v))
    except ValueError:
        pass
    raise _Bad(422, f"{value!r} is not a supported date search (YYYY-MM-DD or eqYYYY-MM-DD)", "date")


def _offset(svc: Service):
    name = svc.hospital.settings.timezone
    if name:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    import datetime as dt

    return dt.timezone.utc


def _instant(ts: Any, tz) -> str:
    return pd.Timestamp(ts).to_pydatetime().replace(tzinfo=tz).isoformat()


def appointments(svc: Service, day: pd.Timestamp, user: User) -> list[dict[str, Any]]:
    """The date's Appointment resources (as validated JSON dicts)."""
    from fhir.resources.R4B.appointment import Appointment

    tz = _offset(svc)
    sched, used = svc.schedule(day, 1, published_only=True)
    cases = svc.hospital.cases.set_index("case_id")
    clinical = is_clinical(user)
    out = []

    def resource(cid: str, status: str, surgeon: Any, line: Any, room: Any, start: Any, end: Any, note: str | None) -> dict:
        c = cases.loc[cid] if cid in cases.index else None
        participants = []
        if isinstance(room, str) and room:
            participants.append({"actor": {"reference": f"Location/{fhir_id(room)}", "display": room}, "status": "accepted"})
        if isinstance(surgeon, str) and surgeon and surgeon != UNKNOWN_SURGEON:
            participants.append({"actor": {"reference": f"Practitioner/{fhir_id(surgeon)}", "display": surgeon},
                                 "status": "accepted"})
        if not participants:
            participants.append({"type": [{"text": "surgeon"}], "status": "needs-action"})
        res: dict[str, Any] = {"resourceType": "Appointment", "id": fhir_id(cid), "status": status,
                               "identifier": [{"system": "urn:or-allocation:case-id", "value": str(cid)}],
                               "serviceType": [{"coding": [{"system": SERVICE_SYSTEM, "code": str(line)}], "text": str(line)}],
                               "participant": participants}
        if c is not None and isinstance(c.get("procedure_code"), str):
            coding = {"system": PROC_SYSTEM, "code": c["procedure_code"]}
            name = c.get("procedure_name")
            if clinical and isinstance(name, str) and name:
                coding["display"] = name
            res["reasonCode"] = [{"coding": [coding], "text": coding.get("display", c["procedure_code"])}]
        if start is not None and pd.notna(start):
            res["start"], res["end"] = _instant(start, tz), _instant(end, tz)
            res["minutesDuration"] = max(int(round((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 60)), 1)
        if note:
            res["comment"] = note
        return Appointment.model_validate(res).model_dump(mode="json", exclude_none=True)

    vid = used[0]["version_id"]
    for r in sched.itertuples(index=False):
        if r.status == "scheduled":
            out.append(resource(r.case_id, "booked", r.surgeon_id, r.service_line, r.room_id, r.start, r.end_p50,
                                f"Published schedule version {vid}; end is the P50 wheels-out (P80 "
                                f"{pd.Timestamp(r.end_p80):%H:%M})."))
        else:
            out.append(resource(r.case_id, "waitlist", r.surgeon_id, r.service_line, None, None, None,
                                f"Deferred in published schedule version {vid}."))
    seen = set(sched["case_id"]) if len(sched) else set()
    c = svc.hospital.cases
    gone = c[(c["status"] == "cancelled") & (pd.to_datetime(c["surgery_date"]).dt.normalize() == day) & ~c["case_id"].isin(seen)]
    for r in gone.itertuples(index=False):
        out.append(resource(r.case_id, "cancelled", r.surgeon_id, r.service_line, r.room_id if isinstance(r.room_id, str) else None,
                            None, None, None))
    # cancelled today by an event (API or HL7): gone from the re-planned schedule, still an Appointment
    for cid in sorted(svc.cancelled_by_events(day) - seen - set(gone["case_id"])):
        if cid in cases.index:
            c0 = cases.loc[cid]
            out.append(resource(cid, "cancelled", c0["surgeon_id"], c0["service_line"], None, None, None,
                                "Cancelled today (event)."))
    return out


def bundle(entries: list[dict[str, Any]], base: str, kind: str) -> dict[str, Any]:
    from fhir.resources.R4B.bundle import Bundle

    b = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
         "entry": [{"fullUrl": f"{base}/fhir/{kind}/{e['id']}", "resource": e, "search": {"mode": "match"}} for e in entries]}
    return Bundle.model_validate(b).model_dump(mode="json", exclude_none=True)


def schedules(svc: Service) -> list[dict[str, Any]]:
    """One Schedule per room, its planning horizon the room's block dates."""
    from fhir.resources.R4B.schedule import Schedule

    b = svc.hospital.blocks
    out = []
    for room in svc.hospital.rooms.itertuples(index=False):
        rb = b[b["room_id"] == room.room_id]
        res: dict[str, Any] = {"resourceType": "Schedule", "id": fhir_id(room.room_id), "active": True,
                               "actor": [{"reference": f"Location/{fhir_id(room.room_id)}", "display": room.room_id}],
                               "comment": f"Operating room {room.room_id} ({room.site}), open {room.open_time}-{room.close_time}"}
        if len(rb):
            d = pd.to_datetime(rb["date"])
            res["planningHorizon"] = {"start": f"{d.min():%Y-%m-%d}T00:00:00+00:00", "end": f"{d.max():%Y-%m-%d}T23:59:59+00:00"}
        out.append(Schedule.model_validate(res).model_dump(mode="json", exclude_none=True))
    return out


def slots(svc: Service, day: pd.Timestamp) -> list[dict[str, Any]]:
    """One Slot per block of ``day``: busy when the published schedule places a case in it."""
    from fhir.resources.R4B.slot import Slot

    tz = _offset(svc)
    b = svc.hospital.blocks
    b = b[pd.to_datetime(b["date"]).dt.normalize() == day]
    sched, _ = svc.schedule(day, 1, published_only=True)
    on = sched[sched["status"] == "scheduled"] if len(sched) else sched
    out = []
    for r in b.itertuples(index=False):
        s0 = day + pd.Timedelta(r.start_time + ":00")
        s1 = day + pd.Timedelta(r.end_time + ":00")
        busy = len(on) and bool(((on["room_id"] == r.room_id) & (pd.to_datetime(on["start"]) < s1)
                                 & (pd.to_datetime(on["end_p50"]) > s0)).any())
        owner = r.surgeon_id if isinstance(r.surgeon_id, str) and r.surgeon_id else None
        res = {"resourceType": "Slot", "id": fhir_id(f"{r.room_id}-{day:%Y%m%d}-{r.start_time.replace(':', '')}"),
               "schedule": {"reference": f"Schedule/{fhir_id(r.room_id)}"}, "status": "busy" if busy else "free",
               "start": _instant(s0, tz), "end": _instant(s1, tz),
               "serviceType": [{"coding": [{"system": SERVICE_SYSTEM, "code": r.service_line}], "text": r.service_line}],
               "comment": f"{r.service_line} block" + (f" of surgeon {owner}" if owner else " (service block)")}
        out.append(Slot.model_validate(res).model_dump(mode="json", exclude_none=True))
    return out


def make_router(svc: Service, apply: Callable[..., Any]) -> APIRouter:
    router = APIRouter(tags=["FHIR R4"])

    def answer(fn: Callable[[], dict[str, Any]]) -> JSONResponse:
        try:
            return JSONResponse(fn(), media_type=FHIR_JSON)
        except _Bad as exc:
            return outcome(exc.status, str(exc), exc.field)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @router.get("/fhir/Appointment", response_class=JSONResponse)
    def appointment_search(request: Request, date: str | None = Query(None, description="YYYY-MM-DD (or eqYYYY-MM-DD)"),
                           user: User = Depends(needs("view_schedule"))) -> JSONResponse:
        """A searchset Bundle of the date's Appointments (the published schedule and that day's cancellations)."""
        def build() -> dict[str, Any]:
            day = _search_date(date)
            return svc.cached(("fhir-appointments", f"{day:%Y-%m-%d}", base(request), is_clinical(user)),
                              lambda: bundle(appointments(svc, day, user), base(request), "Appointment"))

        return answer(build)

    @router.get("/fhir/Slot", response_class=JSONResponse)
    def slot_search(request: Request, date: str | None = Query(None, description="YYYY-MM-DD; default the hospital's today"),
                    user: User = Depends(needs("view_schedule"))) -> JSONResponse:
        """A searchset Bundle of the date's Slots (one per block: busy or free)."""
        return answer(lambda: bundle(slots(svc, _search_date(date) if date else svc.hospital.as_of().normalize()),
                                     base(request), "Slot"))

    @router.get("/fhir/Schedule", response_class=JSONResponse)
    def schedule_search(request: Request, user: User = Depends(needs("view_schedule"))) -> JSONResponse:
        """A searchset Bundle of the rooms' Schedules."""
        return answer(lambda: bundle(schedules(svc), base(request), "Schedule"))

    return router
