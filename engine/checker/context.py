"""What every rule reads, gathered once: the hospital (:func:`_as_hospital`), the schedule with its
helper columns, rooms, blocks, staffing and settings in :class:`_Ctx` (:func:`_context`); the
time formats of the messages, and :func:`_v`, which makes a :class:`Violation`."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from engine.checker.reading import DEFAULT_OVERTIME_CAP_MINUTES, Violation, _missing, _text
from engine.hospital import Hospital, load_hospital


def _as_hospital(hospital: Any) -> Hospital:
    if isinstance(hospital, (str, Path)):
        return load_hospital(hospital).hospital
    if hasattr(hospital, "hospital") and not isinstance(hospital, Hospital):
        return hospital.hospital
    return hospital


def _hhmm(t: str) -> int:
    h, m = str(t).split(":")
    return int(h) * 60 + int(m)


def _day(ts: pd.Timestamp | None) -> dt.date | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).date()


def _t(ts: pd.Timestamp) -> str:
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d %H:%M" + (":%S" if ts.second or ts.microsecond else ""))


def _hm(ts: pd.Timestamp) -> str:
    ts = pd.Timestamp(ts)
    return ts.strftime("%H:%M" + (":%S" if ts.second or ts.microsecond else ""))


def _clock(ts: pd.Timestamp, date: pd.Timestamp) -> str:
    """HH:MM when ``ts`` is on ``date``, else the full date and time."""
    return _hm(ts) if pd.Timestamp(ts).normalize() == date else _t(ts)


def _minutes(td: pd.Timedelta) -> str:
    m = td / pd.Timedelta(minutes=1)
    return f"{m:g} min"


def _ids(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values if not _missing(v))


@dataclass
class _Ctx:
    h: Hospital
    s: pd.DataFrame  # parsed schedule, one row per row of the input, with helper columns
    use: pd.DataFrame  # first row of each case with status "scheduled"
    horizon: set[pd.Timestamp]
    plan_date: pd.Timestamp | None
    tol: pd.Timedelta
    turnover: pd.Timedelta
    pacu: pd.Timedelta
    cap: pd.Timedelta
    rooms: dict[str, dict[str, Any]]
    blocks: dict[tuple[str, pd.Timestamp], list[dict[str, Any]]]
    staffing: dict[pd.Timestamp, dict[str, float]]
    allow_open_time: bool


def _setting_minutes(settings: dict[str, Any], key: str, default: float | None) -> pd.Timedelta:
    v = settings.get(key, default)
    if v is None:
        raise ValueError(f"settings.toml has no {key}")
    return pd.Timedelta(minutes=float(v))


def _context(
    h: Hospital,
    s: pd.DataFrame,
    horizon_dates: Iterable[Any] | None,
    plan_date: Any,
    allow_open_time: bool,
    tolerance_minutes: float,
) -> _Ctx:
    cases = h.cases.drop_duplicates("case_id").set_index("case_id")
    known = s["case_id"].isin(list(cases.index)) & s["case_id"].notna()
    ids = s["case_id"].where(known)

    def from_cases(col: str, fallback: pd.Series) -> pd.Series:
        vals = ids.map(lambda c: cases.at[c, col] if isinstance(c, str) else None)
        return vals.where(known, fallback)

    s = s.copy()
    s["x_row"] = range(1, len(s) + 1)
    s["x_known"] = known
    s["x_surgeon"] = from_cases("surgeon_id", s["surgeon_id"]).map(_text)
    s["x_service"] = from_cases("service_line", s["service_line"]).map(_text)
    s["x_equipment"] = from_cases("required_equipment", pd.Series("", index=s.index)).map(
        lambda v: frozenset(p.strip().lower() for p in str(v or "").split(";") if p.strip())
    )
    s["x_first"] = ~s["case_id"].duplicated() | s["case_id"].isna()
    use = s[(s["status"] == "scheduled") & s["x_first"]]

    if horizon_dates is None:
        booked = h.cases[h.cases["status"] == "booked"]
        listed = booked[booked["case_id"].isin(list(s["case_id"].dropna()))]
        dates = listed["surgery_date"].dropna()
        if not len(dates):
            dates = s["date"].dropna()
        horizon = {pd.Timestamp(d).normalize() for d in dates}
    else:
        horizon = {pd.Timestamp(d).normalize() for d in horizon_dates}
    if plan_date is not None:
        plan = pd.Timestamp(plan_date).normalize()
    else:
        plan = min(horizon) if horizon else None

    rooms = {}
    for r in h.rooms.itertuples(index=False):
        caps = frozenset(p.strip().lower() for p in str(r.capabilities or "").split(";") if p.strip())
        rooms[r.room_id] = {"caps": caps, "open": _hhmm(r.open_time), "close": _hhmm(r.close_time)}
    blocks: dict[tuple[str, pd.Timestamp], list[dict[str, Any]]] = defaultdict(list)
    # Only the blocks of dates the schedule or the horizon names are ever looked up (the whole
    # history's blocks made this the slowest part of a check); positions stay those of blocks.csv.
    wanted = {pd.Timestamp(d).normalize() for d in s["date"].dropna()} | set(horizon)
    bdates = pd.to_datetime(h.blocks["date"]).dt.normalize() if len(h.blocks) else pd.Series(dtype="datetime64[ns]")
    positions = [i for i, keep in enumerate(bdates.isin(list(wanted)).to_numpy()) if keep]
    for i, b in zip(positions, h.blocks.iloc[positions].itertuples(index=False)):
        blocks[(b.room_id, pd.Timestamp(b.date).normalize())].append(
            {
                "row": i + 1,
                "service_line": _text(b.service_line),
                "surgeon_id": _text(b.surgeon_id),
                "start": _hhmm(b.start_time),
                "end": _hhmm(b.end_time),
                "label": f"{b.start_time}-{b.end_time} "
                + (f"surgeon {_text(b.surgeon_id)} ({b.service_line})" if _text(b.surgeon_id) else f"service {b.service_line}"),
            }
        )
    staffing: dict[pd.Timestamp, dict[str, float]] = {}
    for r in h.staffing.itertuples(index=False):
        d = pd.Timestamp(r.date).normalize()
        vals = {k: float(getattr(r, k)) if pd.notna(getattr(r, k)) else 0.0 for k in ("staffed_rooms", "anesthesia_teams", "pacu_beds")}
        if d in staffing:
            vals = {k: min(v, staffing[d][k]) for k, v in vals.items()}
        staffing[d] = vals
    st = h.settings
    return _Ctx(
        h=h,
        s=s,
        use=use,
        horizon=horizon,
        plan_date=plan,
        tol=pd.Timedelta(minutes=float(tolerance_minutes)),
        turnover=_setting_minutes(st, "turnover_minutes", None),
        pacu=_setting_minutes(st, "pacu_minutes", None),
        cap=_setting_minutes(st, "overtime_cap_minutes", DEFAULT_OVERTIME_CAP_MINUTES),
        rooms=rooms,
        blocks=dict(blocks),
        staffing=staffing,
        allow_open_time=allow_open_time,
    )


def _v(rule: str, message: str, cases: Iterable[Any] = (), date: Any = None, room: Any = None) -> Violation:
    return Violation(rule, _ids(cases), _day(date), _text(room), message)
