"""Reading schedule.csv: the contract's schedule columns, the rule ids, :class:`Violation`, and
:func:`read_schedule` with its cell parsers (a value that does not parse becomes missing and an
H1 problem)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SCHEDULE_COLUMNS = (
    "case_id",
    "surgeon_id",
    "service_line",
    "date",
    "room_id",
    "status",
    "start",
    "end_p50",
    "end_p80",
    "pacu_in",
    "pacu_out",
    "reason",
)
TIME_COLUMNS = ("start", "end_p50", "end_p80", "pacu_in", "pacu_out")
TEXT_COLUMNS = ("case_id", "surgeon_id", "service_line", "room_id", "status", "reason")
SCHEDULED_NEEDS = ("date", "room_id", *TIME_COLUMNS)
STATUSES = ("scheduled", "deferred")
RULES = {
    "H1": "completeness",
    "H2": "equipment",
    "H3": "room hours",
    "H4": "turnover",
    "H5": "surgeon",
    "H6": "surgeon days",
    "H7": "staffing",
    "H8": "PACU",
    "H9": "block ownership",
    "H10": "horizon",
}
DEFAULT_OVERTIME_CAP_MINUTES = 120.0

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_TZ_RE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Violation:
    """One broken hard rule: ``rule`` is "H1".."H10"; ``message`` says it in plain words."""

    rule: str
    case_ids: tuple[str, ...] = ()
    date: dt.date | None = None
    room_id: str | None = None
    message: str = ""

    @property
    def case_id(self) -> str | None:
        return self.case_ids[0] if self.case_ids else None

    def __str__(self) -> str:
        where = [x for x in (self.date.isoformat() if self.date else None, self.room_id) if x]
        head = f"{self.rule} {RULES.get(self.rule, '')}".strip()
        cases = f" [{', '.join(self.case_ids)}]" if self.case_ids else ""
        return f"{head}{' ' + ' '.join(where) if where else ''}{cases}: {self.message}"


def _missing(v: Any) -> bool:
    """None, NaN, NaT (NaT is a datetime subclass, so test it first), but never a string."""
    if v is None or v is pd.NaT:
        return True
    if isinstance(v, str):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _text(v: Any) -> str | None:
    if _missing(v):
        return None
    s = str(v).strip()
    return s or None


def _parse_date(v: Any) -> tuple[pd.Timestamp | None, str | None]:
    """A date cell -> (midnight Timestamp or None, problem or None)."""
    if _missing(v):
        return None, None
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None, None
        if not _DATE_RE.match(s):
            return None, f"{s!r} is not a date (YYYY-MM-DD)"
        try:
            return pd.Timestamp(s), None
        except ValueError:
            return None, f"{s!r} is not a date (YYYY-MM-DD)"
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None, f"{v!r} is not a date"
    if ts.tzinfo is not None:
        return None, f"{v!r} has a time zone: give a local date"
    if ts != ts.normalize():
        return None, f"{ts.isoformat()!r} has a time of day: a date is YYYY-MM-DD"
    return ts, None


def _parse_datetime(v: Any) -> tuple[pd.Timestamp | None, str | None]:
    """A datetime cell -> (naive Timestamp or None, problem or None)."""
    if _missing(v):
        return None, None
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return None, None
        if not _DATETIME_RE.match(s):
            if _DATETIME_RE.match(_TZ_RE.sub("", s)):
                return None, f"{s!r} has a time-zone offset: give local wall-clock time (YYYY-MM-DDTHH:MM)"
            return None, f"{s!r} is not a datetime (YYYY-MM-DDTHH:MM)"
        try:
            return pd.Timestamp(s), None
        except ValueError:
            return None, f"{s!r} is not a datetime (YYYY-MM-DDTHH:MM)"
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return None, f"{v.isoformat()!r} is a date, not a datetime (YYYY-MM-DDTHH:MM)"
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None, f"{v!r} is not a datetime"
    if ts.tzinfo is not None:
        return None, f"{ts.isoformat()!r} has a time-zone offset: give local wall-clock time"
    return ts, None


def _parse_columns(df: pd.DataFrame, kinds: dict[str, str], problems: list[tuple[int | None, str, str]]) -> pd.DataFrame:
    out = df.copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            problems.append((None, col, "required column is missing"))
            out[col] = None
        raw = out[col].tolist()
        if kind == "text":
            out[col] = pd.Series([_text(v) for v in raw], index=out.index, dtype="object")
            continue
        parse = _parse_date if kind == "date" else _parse_datetime
        values = []
        for i, v in enumerate(raw):
            ts, err = parse(v)
            if err:
                problems.append((i + 1, col, err))
            values.append(ts)
        out[col] = pd.Series(pd.to_datetime(pd.Series(values, dtype="object")).to_numpy(), index=out.index).astype(
            "datetime64[us]"
        )
    return out


def read_schedule(path_or_df: str | Path | pd.DataFrame) -> pd.DataFrame:
    """schedule.csv (path or DataFrame) -> parsed DataFrame (see the module docstring)."""
    if isinstance(path_or_df, pd.DataFrame):
        raw = path_or_df.copy()
        problems = list(path_or_df.attrs.get("schedule_problems", []))
    else:
        raw = pd.read_csv(path_or_df, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8-sig")
        problems = []
    raw = raw.reset_index(drop=True)
    kinds = {c: "text" for c in TEXT_COLUMNS} | {"date": "date"} | {c: "datetime" for c in TIME_COLUMNS}
    new_problems: list[tuple[int | None, str, str]] = []
    df = _parse_columns(raw, kinds, new_problems)
    seen = set(problems)
    problems += [p for p in new_problems if p not in seen]
    df = df[[*SCHEDULE_COLUMNS, *[c for c in df.columns if c not in SCHEDULE_COLUMNS]]]
    df.attrs["schedule_problems"] = problems
    return df
