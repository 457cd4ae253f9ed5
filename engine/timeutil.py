"""Clock helpers: the one home of HH:MM parsing, minutes of the day and DST-correct durations.

Times in the hospital files are local wall-clock times without an offset (CONTRACTS.md). Where
settings name a time zone, elapsed minutes between two wall-clock times are computed in that
zone, so a case running across a daylight-saving change is not an hour off.
"""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

HHMM_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def hhmm_to_minutes(t: str) -> int:
    """"07:30" (or "7:30") -> 450. Raises ValueError naming the value when it is not a time."""
    m = HHMM_RE.match(str(t))
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59 or (int(m.group(1)) == 24 and int(m.group(2))):
        raise ValueError(f"{t!r} is not a time of day (HH:MM)")
    return int(m.group(1)) * 60 + int(m.group(2))


def minutes_to_hhmm(minutes: float) -> str:
    """450 -> "07:30" (minutes of the day, rounded to the minute)."""
    m = int(round(float(minutes)))
    return f"{m // 60:02d}:{m % 60:02d}"


def parse_window(text: str) -> tuple[int, int]:
    """"07:30-15:30" -> (450, 930). Raises ValueError when malformed or start >= end."""
    m = WINDOW_RE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} must look like \"07:30-15:30\" (HH:MM-HH:MM)")
    a = hhmm_to_minutes(f"{m.group(1)}:{m.group(2)}")
    b = hhmm_to_minutes(f"{m.group(3)}:{m.group(4)}")
    if a >= b:
        raise ValueError(f"{text!r} must start before it ends")
    return a, b


def at_minute(date: pd.Timestamp, minutes: float) -> pd.Timestamp:
    """The wall-clock time ``minutes`` after midnight of ``date``."""
    return pd.Timestamp(date).normalize() + pd.Timedelta(minutes=float(minutes))


def elapsed_minutes(start: pd.Series, end: pd.Series, timezone: str | None = None) -> pd.Series:
    """Minutes from ``start`` to ``end`` (naive local wall-clock datetimes).

    Without a time zone this is the plain difference. With one, both ends are localised in it
    (ambiguous times of the autumn change read as the first occurrence, times that do not exist
    in spring are shifted forward), so the difference is the real elapsed time.
    """
    s = pd.to_datetime(start)
    e = pd.to_datetime(end)
    if timezone:
        tz = ZoneInfo(timezone)
        s = s.dt.tz_localize(tz, ambiguous=np.ones(len(s), dtype=bool), nonexistent="shift_forward")
        e = e.dt.tz_localize(tz, ambiguous=np.ones(len(e), dtype=bool), nonexistent="shift_forward")
    return (e - s).dt.total_seconds() / 60.0


def room_minutes(cases: pd.DataFrame, timezone: str | None = None) -> pd.Series:
    """Room time of ``cases`` (``wheels_in`` to ``wheels_out``) in minutes; NaN where either is missing.

    The one place room time is computed: ``timezone`` is the hospital's (``settings.timezone``), so a
    case running across a daylight-saving change gets its real elapsed minutes; None keeps the plain
    wall-clock difference.
    """
    return elapsed_minutes(cases["wheels_in"], cases["wheels_out"], timezone)
