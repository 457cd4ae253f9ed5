"""Blocks, staffing and PACU beds inferred from case history, for exports that have none.

The rules (issue 17), each a plain count over the recent weeks of history (``InferParams.weeks``,
default 8, ending at the last day with a completed or cancelled case):

- **Blocks**: for each room and weekday, the service line that used the room on that weekday
  (by booked or room minutes of completed and cancelled cases). The weekday is that service's
  block when the room ran on at least ``min_used_share`` of those weekdays and the same service
  owned at least ``min_owner_share`` of the days it ran; when one surgeon also owned at least
  ``min_surgeon_share`` of them, it is that surgeon's block. Anything else (no stable owner, a
  rarely used room) stays open time. A block spans the room's hours (rooms.csv).
- **Staffing**: for each weekday, the rooms running (rooms with a case) and, as the anesthesia
  teams, the same number: the median over the window's days of that weekday, or the number of rooms
  the booked cases of a date already name if more. Weekdays with no history get 0 (closed).
- **PACU beds**: the peak number of patients in recovery at once (``pacu_in`` / ``pacu_out``
  columns, as the suggested mapping keeps them), the ``pacu_quantile`` of the daily peaks; without
  PACU times, the ``pacu_beds`` setting; without that, ``pacu_beds_per_room`` per staffed room.

The template is written for every date from the first day after history through the last booked
date (at least ``days_ahead`` days), so the booked cases have rooms, blocks and staff. Inferred
files are marked in settings.toml (``[inferred]``: file -> how), and a provided file always wins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.timeutil import room_minutes

__all__ = ["InferParams", "infer_blocks", "infer_staffing", "pacu_peak"]


@dataclass(frozen=True)
class InferParams:
    """Thresholds of the inference rules (shares are fractions 0..1)."""

    weeks: int = 8
    min_used_share: float = 0.5
    min_owner_share: float = 0.6
    min_surgeon_share: float = 0.8
    pacu_quantile: float = 0.9
    pacu_beds_per_room: float = 1.5
    days_ahead: int = 14

    def __post_init__(self) -> None:
        if self.weeks < 1:
            raise ValueError(f"weeks must be >= 1, got {self.weeks!r}")
        for name in ("min_used_share", "min_owner_share", "min_surgeon_share", "pacu_quantile"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
        if self.pacu_beds_per_room < 0 or self.days_ahead < 0:
            raise ValueError("pacu_beds_per_room and days_ahead must be >= 0")


def _history(cases: pd.DataFrame, params: InferParams, timezone: str | None = None
             ) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """The window's completed and cancelled cases with a room, and the last history day; ``_minutes``
    is each case's room time (real elapsed minutes in ``timezone``), else its booked minutes, else 60."""
    c = cases[cases["status"].isin(["completed", "cancelled"]) & cases["room_id"].notna()
              & (cases["room_id"].astype(str).str.len() > 0)].copy()
    c["surgery_date"] = pd.to_datetime(c["surgery_date"])
    if not len(c):
        return c, None
    last = c["surgery_date"].max().normalize()
    c = c[c["surgery_date"] > last - pd.Timedelta(weeks=params.weeks)]
    minutes = room_minutes(c, timezone) if {"wheels_in", "wheels_out"} <= set(c.columns) else pd.Series(np.nan, index=c.index)
    booked = pd.to_numeric(c["booked_minutes"], errors="coerce") if "booked_minutes" in c else np.nan
    c["_minutes"] = minutes.fillna(booked).fillna(60.0)
    c["_weekday"] = c["surgery_date"].dt.day_of_week
    return c, last


def _horizon(cases: pd.DataFrame, last: pd.Timestamp | None, params: InferParams) -> pd.DatetimeIndex:
    booked = pd.to_datetime(cases.loc[cases["status"] == "booked", "surgery_date"])
    start = (last + pd.Timedelta(days=1)) if last is not None else (booked.min() if len(booked) else None)
    if start is None:
        return pd.DatetimeIndex([])
    if len(booked):
        start = min(start, booked.min().normalize())
    end = max(start + pd.Timedelta(days=params.days_ahead - 1), booked.max() if len(booked) else start)
    return pd.date_range(start.normalize(), end.normalize(), freq="D")


def weekly_template(cases: pd.DataFrame, params: InferParams = InferParams(), timezone: str | None = None) -> pd.DataFrame:
    """Room x weekday -> owner: ``room_id, weekday, service_line, surgeon_id, used_share, owner_share``
    (only the room-weekdays with a stable owner; minutes of room time in ``timezone``, the hospital's
    settings ``timezone``, None = the wall-clock difference)."""
    c, last = _history(cases, params, timezone)
    cols = ["room_id", "weekday", "service_line", "surgeon_id", "used_share", "owner_share"]
    if last is None:
        return pd.DataFrame(columns=cols)
    days = pd.date_range(c["surgery_date"].min(), last, freq="D")
    n_weekdays = pd.Series(days.day_of_week).value_counts()
    # the owner of each room-day: the service (and surgeon) with most minutes that day
    per_day = c.groupby(["room_id", "surgery_date", "_weekday", "service_line"], as_index=False)["_minutes"].sum()
    per_day = per_day.sort_values("_minutes", ascending=False, kind="stable").drop_duplicates(["room_id", "surgery_date"])
    surg = c.groupby(["room_id", "surgery_date", "surgeon_id"], as_index=False)["_minutes"].sum()
    surg = surg.sort_values("_minutes", ascending=False, kind="stable").drop_duplicates(["room_id", "surgery_date"])
    per_day = per_day.merge(surg[["room_id", "surgery_date", "surgeon_id"]], on=["room_id", "surgery_date"], how="left")
    rows = []
    for (room, wd), g in per_day.groupby(["room_id", "_weekday"]):
        used = len(g) / max(int(n_weekdays.get(wd, 0)), 1)
        top = g["service_line"].value_counts()
        owner, share = top.index[0], top.iloc[0] / len(g)
        if used < params.min_used_share or share < params.min_owner_share:
            continue
        mine = g[g["service_line"] == owner]["surgeon_id"].value_counts()
        surgeon = ""
        if len(mine) and mine.index[0] != "unknown" and mine.iloc[0] / len(g) >= params.min_surgeon_share:
            surgeon = str(mine.index[0])
        rows.append({"room_id": room, "weekday": int(wd), "service_line": owner, "surgeon_id": surgeon,
                     "used_share": round(used, 3), "owner_share": round(float(share), 3)})
    return pd.DataFrame(rows, columns=cols)


def infer_blocks(cases: pd.DataFrame, rooms: pd.DataFrame, params: InferParams = InferParams(),
                 timezone: str | None = None) -> pd.DataFrame:
    """blocks.csv rows (contract columns) for the horizon, from the weekly template (``timezone``: the
    hospital's, for the room minutes that pick each room-weekday's owner)."""
    template = weekly_template(cases, params, timezone)
    _, last = _history(cases, params)
    dates = _horizon(cases, last, params)
    hours = rooms.set_index("room_id")[["open_time", "close_time"]]
    rows = []
    for d in dates:
        for rec in template[template["weekday"] == d.day_of_week].itertuples():
            if rec.room_id not in hours.index:
                continue
            rows.append({"date": d, "room_id": rec.room_id, "service_line": rec.service_line,
                         "surgeon_id": rec.surgeon_id, "start_time": hours.at[rec.room_id, "open_time"],
                         "end_time": hours.at[rec.room_id, "close_time"]})
    return pd.DataFrame(rows, columns=["date", "room_id", "service_line", "surgeon_id", "start_time", "end_time"])


def pacu_peak(cases: pd.DataFrame, params: InferParams = InferParams()) -> int | None:
    """The ``pacu_quantile`` of the daily peak count of patients in recovery at once, from
    ``pacu_in``/``pacu_out`` (None when the cases have no PACU times)."""
    if not {"pacu_in", "pacu_out"} <= set(cases.columns):
        return None
    p_in = pd.to_datetime(cases["pacu_in"], errors="coerce")
    p_out = pd.to_datetime(cases["pacu_out"], errors="coerce")
    ok = p_in.notna() & p_out.notna() & (p_out > p_in)
    if ok.sum() < 10:
        return None
    ev = pd.concat([pd.DataFrame({"t": p_in[ok], "d": 1}), pd.DataFrame({"t": p_out[ok], "d": -1})])
    ev = ev.sort_values(["t", "d"], kind="stable")  # a bed freed at t can take the patient arriving at t
    ev["n"] = ev["d"].cumsum()
    peaks = ev.groupby(ev["t"].dt.normalize())["n"].max()
    return int(math.ceil(float(peaks.quantile(params.pacu_quantile))))


def infer_staffing(cases: pd.DataFrame, params: InferParams = InferParams(),
                   pacu_beds_setting: int | None = None) -> tuple[pd.DataFrame, str]:
    """staffing.csv rows for the horizon, and how the PACU beds were found (for the [inferred] note)."""
    c, last = _history(cases, params)
    dates = _horizon(cases, last, params)
    cols = ["date", "staffed_rooms", "anesthesia_teams", "pacu_beds"]
    if last is None:
        return pd.DataFrame(columns=cols), "no history"
    running = c.groupby(["surgery_date", "_weekday"])["room_id"].nunique().reset_index()
    all_days = pd.DataFrame({"surgery_date": pd.date_range(c["surgery_date"].min(), last, freq="D")})
    all_days["_weekday"] = all_days["surgery_date"].dt.day_of_week
    running = all_days.merge(running, on=["surgery_date", "_weekday"], how="left").fillna({"room_id": 0})
    per_weekday = running.groupby("_weekday")["room_id"].median()
    peak = pacu_peak(cases, params)
    if peak is not None:
        beds_for = lambda rooms_: peak  # noqa: E731
        how = f"peak patients in recovery at once (P{round(params.pacu_quantile * 100)} of daily peaks from pacu_in/pacu_out)"
    elif pacu_beds_setting is not None:
        beds_for = lambda rooms_: int(pacu_beds_setting)  # noqa: E731
        how = "the pacu_beds setting"
    else:
        beds_for = lambda rooms_: int(math.ceil(params.pacu_beds_per_room * rooms_))  # noqa: E731
        how = f"{params.pacu_beds_per_room:g} beds per staffed room (no PACU times, no pacu_beds setting)"
    booked = cases[cases["status"] == "booked"]
    booked_rooms = booked.assign(_d=pd.to_datetime(booked["surgery_date"])).groupby("_d")["room_id"].nunique() \
        if "room_id" in booked else pd.Series(dtype=float)
    rows = []
    for d in dates:
        # the weekday's usual count, or the rooms the booked cases of that date already name
        n = max(int(round(float(per_weekday.get(d.day_of_week, 0.0)))), int(booked_rooms.get(d, 0)))
        rows.append({"date": d, "staffed_rooms": n, "anesthesia_teams": n, "pacu_beds": beds_for(n) if n else 0})
    return pd.DataFrame(rows, columns=cols), how
