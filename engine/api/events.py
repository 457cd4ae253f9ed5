"""API events -> the re-planner's events (``engine.plan.replan.Event``), validated, naming the field.

The re-planner knows four kinds (running_long, add_on, room_down, cancellation). The API's other
events are expressed in them, and labelled with what happened (the label is what the audit entry,
the proposal's note and every change's ``why`` say):

- ``case_started`` {case_id, started_at (default ``at``)}: the case's end moves with its real start:
  a running-long event whose extra minutes make the P50 wheels-out ``started_at + P50`` (a late start
  pushes the rest of its room; an early or on-time start changes no end). The re-plan runs from
  ``max(at, planned start + 1 min)``, so the started case counts as started and is locked.
- ``staffing_changed`` {staffed_rooms, anesthesia_teams, pacu_beds: any of them}: the day's staffing
  row is replaced and the rest of the day re-planned with it (kind ``staffing``, no case event);
  later events and plan jobs of that day keep it (``Service.staffing_by_events``).
- ``case_rescheduled`` {case_id, new_start} (HL7 S13): to another day, the case leaves this day's
  schedule (a cancellation labelled "rescheduled to ..."); a same-day time change is an override.
- ``case_modified`` {case_id, booked_minutes} (HL7 S14): booked longer than its forecast P50, the case
  is re-planned at the booked length (running long by the difference); otherwise nothing to re-plan.

Events needing the day's schedule (started, staffing, rescheduled, modified) are :class:`Pending` until
``Service.apply_event`` holds the working version; the others are plain Events at once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from engine.api.models import EVENT_KINDS, EventRequest
from engine.errors import InputError, Problem
from engine.plan.replan import Event
from engine.contract import UNKNOWN_SURGEON

STAFFING_FIELDS = ("staffed_rooms", "anesthesia_teams", "pacu_beds")


class BadEvent(Exception):
    """An event refused before anything is looked up: ``field`` names the request field (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LabelledEvent(Event):
    """A re-planner Event that says what happened in the hospital's words (``label``). Kind ``staffing``
    (a re-plan with no case event: only the day's staffing changed) is allowed besides the re-planner's."""

    label: str = ""

    def __post_init__(self) -> None:
        if self.kind != "staffing":
            super().__post_init__()

    def describe(self) -> str:
        return self.label or super().describe()


@dataclass
class Resolved:
    """What a Pending event becomes once the day's schedule is known."""

    event: Event
    now: pd.Timestamp
    hospital: Any = None  # a changed hospital (staffing), else the service's
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # added to the answer (and stored)


@dataclass
class Pending:
    """An event resolved against the working schedule: ``resolve(current, forecasts, at, hospital)``."""

    type: str
    case_id: str | None
    resolve: Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp, Any], Resolved]


def _refuse(column: str, message: str) -> InputError:
    return InputError([Problem("event", None, column, message)])


def _row(current: pd.DataFrame, case_id: str, day: pd.Timestamp) -> pd.Series:
    hit = current[current["case_id"] == case_id]
    if not len(hit):
        raise _refuse("case_id", f"case {case_id!r} is not in the schedule of {day:%Y-%m-%d}")
    return hit.iloc[0]


def _p50(fc: pd.DataFrame, case_id: str) -> float:
    hit = fc.loc[fc["case_id"] == case_id, "p50"]
    if not len(hit):
        raise _refuse("case_id", f"case {case_id!r} has no forecast")
    return float(hit.iloc[0])


def _started(req: EventRequest) -> Pending:
    def resolve(current: pd.DataFrame, fc: pd.DataFrame, at: pd.Timestamp, hospital: Any) -> Resolved:
        day = at.normalize()
        row = _row(current, req.case_id, day)  # type: ignore[arg-type]
        if row["status"] != "scheduled":
            raise _refuse("case_id", f"case {req.case_id!r} is deferred in the schedule of {day:%Y-%m-%d}: "
                                     "post it as case_booked to place it")
        started = pd.Timestamp(req.started_at) if req.started_at is not None else at
        if started.normalize() != day:
            raise _refuse("started_at", f"started_at {started:%Y-%m-%d %H:%M} is not on the event's day {day:%Y-%m-%d}")
        if started > at:
            raise _refuse("started_at", f"started_at {started:%H:%M} is after the event time {at:%H:%M}")
        if req.room_id and req.room_id != row["room_id"]:
            raise _refuse("room_id", f"case {req.case_id!r} is planned in {row['room_id']}, not {req.room_id!r}: a case "
                                     "started in another room is a coordinator's override")
        planned = pd.Timestamp(row["start"])
        now = max(at, planned + pd.Timedelta(minutes=1))
        p50 = _p50(fc, req.case_id)  # type: ignore[arg-type]
        late = (started - planned).total_seconds() / 60
        elapsed = (now - planned).total_seconds() / 60
        # replan: new P50 (from the planned start) = max(p50, elapsed) + extra; wanted: max(late, 0) + p50
        extra = max(0.0, max(late, 0.0) + p50 - max(p50, elapsed))
        how = f"{late:.0f} min late" if late >= 1 else ("on time" if late > -1 else f"{-late:.0f} min early")
        label = f"case {req.case_id} started at {started:%H:%M} in {row['room_id']} ({how})"
        return Resolved(LabelledEvent("running_long", case_id=req.case_id, extra_minutes=extra, label=label), now,
                        extra={"started_at": started.isoformat(), "minutes_late": round(late, 1)})

    return Pending("case_started", req.case_id, resolve)


def day_staffing(hospital: Any, day: pd.Timestamp) -> dict[str, int]:
    """``day``'s row of staffing.csv (zeros when it has none)."""
    st = hospital.staffing
    row = st[pd.to_datetime(st["date"]).dt.normalize() == day] if len(st) else st
    return {f: int(row[f].iloc[0]) if len(row) else 0 for f in STAFFING_FIELDS}


def with_staffing(hospital: Any, day: pd.Timestamp, values: dict[str, int]) -> Any:
    """The hospital with ``day``'s staffing row replaced by ``values`` (the folder is not rewritten)."""
    st = hospital.staffing
    same = pd.to_datetime(st["date"]).dt.normalize() == day if len(st) else pd.Series(dtype=bool)
    row = {"date": st["date"][same].iloc[0] if same.any() else day, **{f: int(values[f]) for f in STAFFING_FIELDS}}
    new = pd.concat([st[~same] if len(st) else st,
                     pd.DataFrame([row]).astype({f: st[f].dtype for f in STAFFING_FIELDS if f in st})], ignore_index=True)
    return dataclasses.replace(hospital, staffing=new)


def _staffing(req: EventRequest) -> Pending:
    given = {f: getattr(req, f) for f in STAFFING_FIELDS if getattr(req, f) is not None}
    if not given:
        raise BadEvent("staffed_rooms", "staffing_changed needs at least one of " + ", ".join(STAFFING_FIELDS))

    def resolve(current: pd.DataFrame, fc: pd.DataFrame, at: pd.Timestamp, hospital: Any) -> Resolved:
        day = at.normalize()
        before = day_staffing(hospital, day)
        after = {**before, **{f: int(v) for f, v in given.items()}}
        running = current[(current["status"] == "scheduled") & (pd.to_datetime(current["start"]) < at)]
        busy = int(running["room_id"].nunique())
        cap = min(after["staffed_rooms"], after["anesthesia_teams"])
        if cap < busy:
            field = "staffed_rooms" if after["staffed_rooms"] <= after["anesthesia_teams"] else "anesthesia_teams"
            raise _refuse(field, f"{cap} staffed rooms, but cases have started in {busy} rooms by {at:%H:%M}: a room "
                                 "that closes after its running case is a room_down event")
        changed = ", ".join(f"{f.replace('_', ' ')} {before[f]} -> {after[f]}" for f in given)
        label = f"staffing of {day:%Y-%m-%d} changed: {changed}"
        return Resolved(LabelledEvent("staffing", label=label), at, with_staffing(hospital, day, after),
                        {"staffing": {"date": f"{day:%Y-%m-%d}", **after}, "staffing_before": before})

    return Pending("staffing_changed", None, resolve)


def _rescheduled(req: EventRequest) -> Pending:
    if req.new_start is None:
        raise BadEvent("new_start", "new_start (the new planned start) is required for case_rescheduled")

    def resolve(current: pd.DataFrame, fc: pd.DataFrame, at: pd.Timestamp, hospital: Any) -> Resolved:
        day = at.normalize()
        _row(current, req.case_id, day)  # type: ignore[arg-type]
        new = pd.Timestamp(req.new_start)
        if new.normalize() == day:
            raise _refuse("new_start", f"a same-day time change ({new:%H:%M}) is a coordinator's override "
                                       "(POST /api/v1/versions/{id}/override); rescheduling to another day is re-planned")
        label = f"case {req.case_id} was rescheduled to {new:%Y-%m-%d %H:%M}"
        return Resolved(LabelledEvent("cancellation", case_id=req.case_id, label=label), at,
                        extra={"rescheduled_to": new.isoformat()})

    return Pending("case_rescheduled", req.case_id, resolve)


def _modified(req: EventRequest) -> Pending:
    if req.booked_minutes is None:
        raise BadEvent("booked_minutes", "booked_minutes (the new booked length) is required for case_modified")

    def resolve(current: pd.DataFrame, fc: pd.DataFrame, at: pd.Timestamp, hospital: Any) -> Resolved:
        day = at.normalize()
        _row(current, req.case_id, day)  # type: ignore[arg-type]
        p50 = _p50(fc, req.case_id)  # type: ignore[arg-type]
        if float(req.booked_minutes) <= p50:  # type: ignore[arg-type]
            raise _refuse("booked_minutes", f"{req.booked_minutes:g} min is not longer than case {req.case_id}'s "
                                            f"forecast P50 ({p50:.0f} min): nothing to re-plan")
        label = f"case {req.case_id} re-booked for {req.booked_minutes:g} min (forecast P50 {p50:.0f} min)"
        return Resolved(LabelledEvent("running_long", case_id=req.case_id, extra_minutes=float(req.booked_minutes) - p50,  # type: ignore[arg-type]
                                      label=label), at)

    return Pending("case_modified", req.case_id, resolve)


PENDING = {"case_started": _started, "staffing_changed": _staffing, "case_rescheduled": _rescheduled,
           "case_modified": _modified}


def to_event(req: EventRequest, rooms: set[str], surgeons: set[str]) -> Event | Pending:
    """The re-planner's Event for a request (or a Pending one); BadEvent naming the missing or bad field."""
    kind = EVENT_KINDS[req.type]
    if kind in ("cancellation", "running_long", "add_on", "started", "rescheduled", "modified") and not req.case_id:
        raise BadEvent("case_id", f"case_id is required for a {req.type} event")
    if req.type in PENDING:
        return PENDING[req.type](req)
    if kind == "running_long" and req.extra_minutes is None:
        raise BadEvent("extra_minutes", "extra_minutes (minutes beyond the P50 from now on) is required for case_running_long")
    if kind == "room_down":
        if not req.room_id:
            raise BadEvent("room_id", "room_id is required for a room_down event")
        if req.room_id not in rooms:
            raise BadEvent("room_id", f"unknown room {req.room_id!r}")
        return Event("room_down", room_id=req.room_id)
    if kind == "add_on":
        if not req.service_line:
            raise BadEvent("service_line", "service_line is required for a case_booked event")
        p50 = req.p50 or req.booked_minutes
        if p50 is None:
            raise BadEvent("p50", "p50 or booked_minutes (expected minutes) is required for a case_booked event")
        p80 = req.p80 or 1.25 * p50
        if p80 < p50:
            raise BadEvent("p80", f"p80 ({p80}) must be >= p50 ({p50})")
        if req.surgeon_id and req.surgeon_id != UNKNOWN_SURGEON and req.surgeon_id not in surgeons:
            raise BadEvent("surgeon_id", f"unknown surgeon {req.surgeon_id!r}")
        add = {"case_id": req.case_id, "service_line": req.service_line, "p50": float(p50), "p80": float(p80),
               "surgeon_id": req.surgeon_id or UNKNOWN_SURGEON, "urgency": req.urgency or "urgent",
               "required_equipment": req.required_equipment or ""}
        if req.procedure_code:
            add["procedure_code"] = req.procedure_code
        return Event("add_on", add_on=add)
    return Event(kind, case_id=req.case_id, extra_minutes=float(req.extra_minutes or 0.0))
