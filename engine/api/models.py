"""Request bodies (pydantic): unknown fields are refused, every error names its field."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EVENT_TYPES = ("case_booked", "case_posted", "case_cancelled", "case_running_long", "room_down",
               "case_started", "staffing_changed", "case_rescheduled", "case_modified")
#: API event type -> the kind it is re-planned as (engine/api/events.py expresses the last four in the
#: re-planner's kinds, engine.plan.replan.EVENT_KINDS)
EVENT_KINDS = {"case_booked": "add_on", "case_posted": "add_on", "case_cancelled": "cancellation",
               "case_running_long": "running_long", "room_down": "room_down", "case_started": "started",
               "staffing_changed": "staffing", "case_rescheduled": "rescheduled", "case_modified": "modified"}


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="first day of the horizon (YYYY-MM-DD)")
    days: int = Field(1, ge=1, le=7, description="horizon length in days")
    solver: Literal["highs", "glpk", "rules"] = "highs"
    time_limit_s: float = Field(30.0, gt=0, le=600)


class EventRequest(BaseModel):
    """One thing that happened today. Which fields a type needs: ``case_cancelled``: case_id;
    ``case_running_long``: case_id, extra_minutes; ``room_down``: room_id; ``case_booked`` (alias
    ``case_posted``, an add-on for today): case_id, service_line, p50 or booked_minutes; ``case_started``:
    case_id (started_at); ``staffing_changed``: staffed_rooms / anesthesia_teams / pacu_beds;
    ``case_rescheduled``: case_id, new_start; ``case_modified``: case_id, booked_minutes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    idempotency_key: str = Field(min_length=1, max_length=200)
    at: dt.datetime | None = Field(None, description="when it happened (local time); default: now on the hospital's clock")
    case_id: str | None = Field(None, min_length=1, max_length=100)
    room_id: str | None = Field(None, min_length=1, max_length=100)
    extra_minutes: float | None = Field(None, ge=0, le=24 * 60)
    service_line: str | None = Field(None, min_length=1)
    surgeon_id: str | None = None
    procedure_code: str | None = None
    booked_minutes: float | None = Field(None, gt=0, le=24 * 60)
    p50: float | None = Field(None, gt=0, le=24 * 60)
    p80: float | None = Field(None, gt=0, le=24 * 60)
    urgency: Literal["elective", "urgent", "emergent"] | None = None
    required_equipment: str | None = None
    started_at: dt.datetime | None = Field(None, description="case_started: the real wheels-in (default: at)")
    new_start: dt.datetime | None = Field(None, description="case_rescheduled: the new planned start (another day)")
    staffed_rooms: int | None = Field(None, ge=0, le=500, description="staffing_changed: staffed rooms of the day")
    anesthesia_teams: int | None = Field(None, ge=0, le=500, description="staffing_changed: anesthesia teams")
    pacu_beds: int | None = Field(None, ge=0, le=1000, description="staffing_changed: PACU beds")
