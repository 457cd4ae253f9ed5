"""Day-of re-planning: an event re-plans the rest of the day with minimal disruption.

Cases that have started (start before ``now``) are locked where they are; the rest of the day
is re-planned with the current schedule as the published baseline (moves are penalised) and
the published order kept where possible. Open rooms held for add-ons cover the share of the day
that is left (the add-on reserve scaled by it). The result lists what moved and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.hospital import Hospital
from engine.plan.params import PlanParams
from engine.timeutil import hhmm_to_minutes
from engine.plan.planner import PlanResult, addon_reserve_minutes, needs_addon_reserve, plan
from engine.contract import UNKNOWN_SURGEON

EVENT_KINDS = ("running_long", "add_on", "room_down", "cancellation")


@dataclass(frozen=True)
class Event:
    """What happened. ``running_long``: case_id, extra_minutes (beyond its P50 from now on);
    ``add_on``: new case fields (case_id, service_line, surgeon_id, p50, p80, required_equipment,
    urgency); ``room_down``: room_id (from ``now`` on); ``cancellation``: case_id."""

    kind: str
    case_id: str | None = None
    extra_minutes: float = 0.0
    room_id: str | None = None
    add_on: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}, got {self.kind!r}")
        if self.kind in ("running_long", "cancellation") and not self.case_id:
            raise ValueError(f"case_id is required for a {self.kind} event")
        if self.kind == "room_down" and not self.room_id:
            raise ValueError("room_id is required for a room_down event")
        if self.kind == "add_on":
            for k in ("case_id", "service_line", "p50", "p80"):
                if k not in self.add_on:
                    raise ValueError(f"add_on.{k} is required for an add_on event")
        if self.extra_minutes < 0:
            raise ValueError(f"extra_minutes must be >= 0, got {self.extra_minutes!r}")

    def describe(self) -> str:
        return {
            "running_long": f"case {self.case_id} is running {self.extra_minutes:.0f} min long",
            "add_on": f"emergency add-on {self.add_on.get('case_id')} ({self.add_on.get('service_line')})",
            "room_down": f"room {self.room_id} went down",
            "cancellation": f"case {self.case_id} was cancelled",
        }[self.kind]


@dataclass
class ReplanResult:
    result: PlanResult
    changes: pd.DataFrame  # case_id, change, before, after, why
    event: Event


def replan(
    hospital: Hospital,
    forecasts: pd.DataFrame,
    current: pd.DataFrame,
    event: Event,
    now: pd.Timestamp | str,
    params: PlanParams | None = None,
) -> ReplanResult:
    """Re-plan the rest of ``now``'s day after ``event``; ``current`` is the schedule in force."""
    params = (params or PlanParams()).with_(days=1, allow_date_change=False, w_stability_room_case=200.0)
    now = pd.Timestamp(now)
    day = now.normalize()
    now_min = now.hour * 60 + now.minute
    cur = current.copy()
    cur["date"] = pd.to_datetime(cur["date"])
    cur = cur[cur["date"] == day]
    if not len(cur):
        raise InputError(f"the current schedule has no cases on {day:%Y-%m-%d}", file="schedule.csv")
    cases = hospital.cases[hospital.cases["case_id"].isin(cur["case_id"])].copy()
    fc = forecasts[forecasts["case_id"].isin(cur["case_id"])].copy()
    started = cur[(cur["status"] == "scheduled") & (pd.to_datetime(cur["start"]) < now)]
    if event.kind == "running_long":
        # Cases planned after the long-running one in its room cannot have started yet.
        long_row = cur[cur["case_id"] == event.case_id].iloc[0]
        behind = (started["room_id"] == long_row["room_id"]) & (pd.to_datetime(started["start"]) > pd.Timestamp(long_row["start"]))
        started = started[~behind]
    locks = started[["case_id", "date", "room_id", "start"]].assign(started=True)
    downtime = None
    if event.kind in ("running_long", "cancellation") and event.case_id not in set(cur["case_id"]):
        raise InputError(f"case {event.case_id} is not in the schedule of {day:%Y-%m-%d}", file="event")
    if event.kind == "running_long":
        row = cur.set_index("case_id").loc[event.case_id]
        i = fc.index[fc["case_id"] == event.case_id]
        if pd.notna(row["start"]) and pd.Timestamp(row["start"]) < now:
            elapsed = (now - pd.Timestamp(row["start"])).total_seconds() / 60
            remaining = max(float(fc.loc[i, "p50"].iloc[0]) - elapsed, 0.0) + event.extra_minutes
            new50 = elapsed + remaining
        else:
            new50 = float(fc.loc[i, "p50"].iloc[0]) + event.extra_minutes
        spread = float(fc.loc[i, "p80"].iloc[0] - fc.loc[i, "p50"].iloc[0])
        fc.loc[i, "p50"] = new50
        fc.loc[i, "p80"] = new50 + spread
        if "p95" in fc.columns:
            fc.loc[i, "p95"] = np.maximum(fc.loc[i, "p95"], new50 + 2 * spread)
    elif event.kind == "cancellation":
        cases = cases[cases["case_id"] != event.case_id]
        locks = locks[locks["case_id"] != event.case_id]
    elif event.kind == "room_down":
        # A case already running in the downed room finishes; nothing new starts there.
        running = started[started["room_id"] == event.room_id]
        ends = pd.to_datetime(running["end_p80"]) if len(running) else pd.Series(dtype="datetime64[ns]")
        from_min = max([now_min] + [t.hour * 60 + t.minute for t in ends])
        downtime = [(day, event.room_id, from_min)]
    elif event.kind == "add_on":
        a = event.add_on
        new = {col: np.nan for col in cases.columns}
        new.update({"case_id": a["case_id"], "surgery_date": day, "status": "booked", "service_line": a["service_line"],
                    "procedure_code": a.get("procedure_code", "ADDON"), "procedure_name": a.get("procedure_name", "emergency add-on"),
                    "surgeon_id": a.get("surgeon_id", UNKNOWN_SURGEON), "urgency": a.get("urgency", "emergent"),
                    "required_equipment": a.get("required_equipment", ""), "booked_at": now})
        cases = pd.concat([cases, pd.DataFrame([new]).astype({c: cases[c].dtype for c in cases.columns if c in ("surgery_date", "booked_at")})],
                          ignore_index=True)
        fc = pd.concat([fc, pd.DataFrame([{"case_id": a["case_id"], "p50": float(a["p50"]), "p80": float(a["p80"]),
                                           "p95": float(a.get("p95", a["p80"])), "cancel_prob": 0.0}])], ignore_index=True)
    cases = cases.assign(status="booked", surgery_date=day)
    published = cur[["case_id", "date", "room_id", "start"]]
    reserve = None
    if needs_addon_reserve(params):
        # Rooms held for add-ons cover what is left of the day: the reserve shrinks with it.
        opens = [hhmm_to_minutes(t) for t in hospital.rooms["open_time"]]
        closes = [hhmm_to_minutes(t) for t in hospital.rooms["close_time"]]
        left = float(np.clip((max(closes) - now_min) / max(max(closes) - min(opens), 1), 0.0, 1.0))
        full = addon_reserve_minutes(hospital, day, 1)
        reserve = full.assign(reserve_minutes=full["reserve_minutes"] * left)
    res = plan(hospital, fc, day, params, published=published, locks=locks, cases=cases, downtime=downtime,
               not_before_min=now_min, order="published", addon_reserve=reserve)
    return ReplanResult(res, _changes(cur, res.schedule, event), event)


def _changes(before: pd.DataFrame, after: pd.DataFrame, event: Event) -> pd.DataFrame:
    b = before.set_index("case_id")
    a = after.set_index("case_id")
    rows = []
    why = f"re-planned after: {event.describe()}"
    for cid in b.index.union(a.index):
        if cid not in a.index:
            rows.append({"case_id": cid, "change": "removed", "before": _where(b.loc[cid]), "after": "", "why": why})
            continue
        if cid not in b.index:
            rows.append({"case_id": cid, "change": "added", "before": "", "after": _where(a.loc[cid]), "why": why})
            continue
        x, y = b.loc[cid], a.loc[cid]
        if x["status"] != y["status"]:
            change = "deferred" if y["status"] == "deferred" else "reinstated"
            rows.append({"case_id": cid, "change": change, "before": _where(x), "after": _where(y),
                         "why": y["reason"] if y["status"] == "deferred" else why})
        elif y["status"] == "scheduled" and (x["room_id"] != y["room_id"] or pd.Timestamp(x["start"]) != pd.Timestamp(y["start"])):
            delta = (pd.Timestamp(y["start"]) - pd.Timestamp(x["start"])).total_seconds() / 60
            change = "moved room" if x["room_id"] != y["room_id"] else ("later" if delta > 0 else "earlier")
            rows.append({"case_id": cid, "change": change, "before": _where(x), "after": _where(y), "why": why,
                         "minutes": delta})
    return pd.DataFrame(rows, columns=["case_id", "change", "before", "after", "why", "minutes"])


def _where(r: pd.Series) -> str:
    if r["status"] != "scheduled":
        return "deferred"
    return f"{r['room_id']} {pd.Timestamp(r['start']):%H:%M}"
