"""iCalendar (RFC 5545) feeds of the published schedule, per surgeon and per room (``icalendar``).

One VEVENT per scheduled case: case id, service line, room / surgeon, planned wheels-in to the P80
wheels-out (the time to keep free), the P50 in the description. No patient details, procedure names
or free-text reasons ever go into a calendar. Times carry the hospital's ``timezone`` when
settings.toml names one, else they are floating local times.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from engine.api.auth import needs
from engine.api.service import Service
from engine.governance import User

ICS_TYPE = "text/calendar; charset=utf-8"


def _tz(svc: Service):
    name = svc.hospital.settings.timezone
    if not name:
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _when(ts: Any, tz) -> dt.datetime:
    t = pd.Timestamp(ts).to_pydatetime()
    return t.replace(tzinfo=tz) if tz is not None else t


def calendar_for(svc: Service, rows: pd.DataFrame, title: str, versions: list[dict], who: str) -> bytes:
    """The VCALENDAR of ``rows`` (scheduled rows of the published schedule)."""
    from icalendar import Calendar, Event

    tz = _tz(svc)
    cal = Calendar()
    cal.add("prodid", "-//Predictive OR allocation//engine.api//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", title)
    stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    vid_of = {v["date"]: v["version_id"] for v in versions}
    for r in rows.sort_values("start").itertuples(index=False):
        ev = Event()
        ev.add("uid", f"{r.case_id}@{svc.hospital_id}.or-allocation")
        ev.add("dtstamp", stamp)
        ev.add("dtstart", _when(r.start, tz))
        ev.add("dtend", _when(r.end_p80, tz))
        other = f"room {r.room_id}" if who == "surgeon" else f"surgeon {r.surgeon_id}"
        ev.add("summary", f"Case {r.case_id}: {r.service_line}, {other}")
        ev.add("location", str(r.room_id))
        day = f"{pd.Timestamp(r.date):%Y-%m-%d}"
        ev.add("description", f"Planned wheels-in {pd.Timestamp(r.start):%H:%M}; wheels-out {pd.Timestamp(r.end_p50):%H:%M} "
                              f"(P50), {pd.Timestamp(r.end_p80):%H:%M} (P80). Published schedule version {vid_of.get(day)}.")
        ev.add("status", "CONFIRMED")
        ev.add("transp", "OPAQUE")
        cal.add_component(ev)
    if tz is not None:
        cal.add_missing_timezones()
    return cal.to_ical()


def make_router(svc: Service, apply: Callable[..., Any]) -> APIRouter:
    from engine.api.app import _day

    router = APIRouter(tags=["calendars"])

    def feed(kind: str, ident: str, date: str | None, days: int) -> Response:
        col, table = ("surgeon_id", svc.hospital.surgeons) if kind == "surgeon" else ("room_id", svc.hospital.rooms)
        if ident not in set(table[col].astype(str)):
            raise HTTPException(404, detail=f"unknown {kind} {ident!r}")
        start = _day(date, "date") if date else svc.hospital.as_of().normalize()

        def build() -> bytes:
            df, used = svc.schedule(start, days, published_only=True)
            rows = df[(df["status"] == "scheduled") & (df[col].astype(str) == ident)] if len(df) else df
            return calendar_for(svc, rows, f"OR schedule: {kind} {ident}", used, kind)

        body = svc.cached(("ical", kind, ident, f"{start:%Y-%m-%d}", days), build)
        return Response(body, media_type=ICS_TYPE, headers={"Content-Disposition": f'inline; filename="{kind}-{ident}.ics"'})

    @router.get("/ical/surgeon/{surgeon_id}.ics", response_class=Response)
    def surgeon_feed(surgeon_id: str, date: str | None = Query(None, description="first day, default the hospital's today"),
                     days: int = Query(7, ge=1, le=31), user: User = Depends(needs("view_schedule"))) -> Response:
        """The surgeon's published cases as an iCalendar feed (no patient details)."""
        return feed("surgeon", surgeon_id, date, days)

    @router.get("/ical/room/{room_id}.ics", response_class=Response)
    def room_feed(room_id: str, date: str | None = Query(None, description="first day, default the hospital's today"),
                  days: int = Query(7, ge=1, le=31), user: User = Depends(needs("view_schedule"))) -> Response:
        """The room's published cases as an iCalendar feed (no patient details)."""
        return feed("room", room_id, date, days)

    return router
