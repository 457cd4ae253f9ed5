"""Independent feasibility checker for schedule.csv (docs/hard-rules.md, rules H1..H10).

This module deliberately shares no code with the optimizer (nothing from ``engine.plan``, and
``tests/engine/governance/test_feasibility_gate.py`` checks that importing it loads no
``engine.plan`` module): it reads the hospital through :func:`engine.hospital.load_hospital`
only, and re-derives every rule from docs/hard-rules.md and CONTRACTS.md sections 1 and 2. It
checks the *exported* times. The tests use it on every schedule they produce (through the
re-export ``tests/feasibility.py``); governance runs it as the ``hard_rules`` gate on every
version before publication (``engine/governance/gates.py``).

API
---
``read_schedule(path_or_df)``
    schedule.csv (a path or a DataFrame) -> DataFrame with the contract columns parsed: text
    columns stripped (empty -> missing), ``date`` as datetime64 at midnight (the project's date
    convention, as in ``Hospital``), ``start, end_p50, end_p80, pacu_in, pacu_out`` as
    datetime64. Values that do not parse become missing and are listed in
    ``df.attrs["schedule_problems"]`` (``(row, column, message)``; rows are 1-based data rows);
    :func:`check_schedule` reports them under H1. Calling it on its own output is a no-op.
``check_schedule(hospital, schedule, horizon_dates=None, locked=None, allow_open_time=True,
tolerance_minutes=0.5, plan_date=None) -> list[Violation]``
    ``hospital`` is a ``Hospital``, a ``LoadedHospital`` or a folder path. An empty list means
    feasible. Violations come sorted by rule (H1..H10), then in a stable order.
``assert_feasible(hospital, schedule, **kw)``
    raises AssertionError listing the first 20 violations.

Readings of docs/hard-rules.md (where it is ambiguous the stricter reading is taken)
--------------------------------------------------------------------------------------
General
  * The tolerance (0.5 minute by default) is applied to every comparison of times, always in
    the schedule's favour (it only absorbs the rounding of exported times), never to dates.
  * A case's surgeon, service line and required equipment are taken from cases.csv, not from
    the schedule's copy: a schedule cannot pass a rule by misreporting them. A ``surgeon_id``
    or ``service_line`` cell that differs from cases.csv is itself an H1 violation ("as in
    cases.csv"). Rows whose case_id is unknown to the hospital use the schedule's values.
  * Only rows with ``status == "scheduled"`` (exactly, case-sensitive) occupy rooms, surgeons
    and beds. When a case_id appears more than once, H1 reports it and only its first row is
    used by H2..H10 (so a duplicate does not also flood H4/H8).
  * A rule that needs a value a row lacks (H1 reports the missing value) skips that row.
  * A ``room_id`` that is not in rooms.csv is reported under H1 and the room-based rules
    (H2, H3, H6, H9) skip the row; it still counts for H4, H5, H7 and H8.

H1  The expected set is the booked cases (status ``booked`` in cases.csv) whose
    ``surgery_date`` is one of the horizon dates; the schedule's case_ids must equal it, each
    exactly once (missing, duplicated, unknown, not-booked and out-of-horizon ids are each
    reported). ``status`` must be exactly ``scheduled`` or ``deferred``. A scheduled row needs
    date, room_id, start, end_p50, end_p80, pacu_in, pacu_out; a deferred row needs an empty
    room_id; every row needs a non-empty reason. Values that do not parse (a datetime with a
    time-zone offset, a date with a time of day, a date-only ``start``, ...) and missing
    contract columns are H1 problems too. The notation's order ``start < end_p50 <= end_p80``
    is checked here as well (a row that breaks it is not a well-formed scheduled case).
    Default horizon (``horizon_dates=None``): the distinct ``surgery_date`` (cases.csv) of the
    booked cases listed in the schedule; when the schedule lists none, its distinct ``date``
    values. This default cannot see a day with no booked case in the schedule; pass the plan's
    real horizon (``--date`` .. ``--date + --days - 1``) whenever you have it.
H2  The room's capabilities must contain every item of the case's required_equipment (both
    are lowercase ``;``-lists after loading).
H3  ``start >= date + open_time - tol`` and ``start < date + close_time`` (no case is planned to
    start at or after the room's close); ``end_p80 <= date + close_time + overtime_cap_minutes
    + tol`` (settings, default 120; the room's close, not the block's end); start, end_p50 and
    end_p80 all lie on ``date`` (``date <= start`` and ``end <= date + 24h + tol``, so a case
    ending exactly at midnight still ends on its date).
H4  Per room and date, sorted by start: each start is at least the *largest* end_p50 of the
    earlier cases plus turnover_minutes (equal to the consecutive rule whenever every case has
    end_p50 > start; the running maximum also catches a case nested inside another).
H5  For one surgeon, intervals ``[start, end_p80)`` in different rooms must be disjoint. All of
    a surgeon's cases are compared, across dates too (the rule says "on one date"; cases on
    different dates can only overlap when H3 is broken, so this is only stricter). Surgeon
    ``unknown`` (allowed in cases.csv) is not one person and is not checked.
H6  Read per room-date ("surgeon days"): the case's room on its date must either hold a block
    the case may use -- a surgeon block with ``blocks.surgeon_id`` equal to the case's surgeon
    (whatever the block's service line; surgeon ``unknown`` owns no block) or a service block
    (empty surgeon_id) of the case's service line -- or hold no block at all (open time), and
    open time only when ``allow_open_time``. Open time is strictly "a room-date with no block
    at all": the unblocked hours of a room-date that has some block are NOT open time. A
    surgeon block never counts for another surgeon, even of the same service line. Whether
    the case's time lies inside such a block is H9's check.
H9  For a case that passes H6 on a blocked room-date: ``[start, end_p50)`` must lie inside ONE
    usable block (contiguous usable blocks are not merged): ``block start - tol <= start < block end`` and
    ``end_p50 <= block end + tol``, or, only when the block runs to the room's close (block end
    >= close_time), ``end_p50 <= close_time + overtime_cap_minutes + tol``. On open time H9
    adds nothing (the room's hours and the cap are H3's). A case that fails H6 is not reported
    again under H9.
H7  Per date, the number of distinct rooms with a scheduled case must be at most
    staffed_rooms and at most anesthesia_teams. This per-day count bounds any count of rooms
    running at the same moment, so it is the stricter reading and no sweep is needed; one violation per date names the limits exceeded. A date
    without a staffing row has capacity 0 (any case on it is a violation); duplicate rows for a
    date use the smallest values.
H8  Sweep-line over ``[pacu_in, pacu_out)`` (ends processed before starts at equal times, ends
    moved ``tol`` earlier): at every moment the number of occupied beds is at most the
    ``pacu_beds`` of that moment's calendar date (a stay crossing midnight counts against the
    next date's beds; a date without a staffing row has 0 beds). One violation per
    over-capacity episode, naming the cases present at its peak. The notation is checked too:
    ``pacu_in == end_p50`` and ``pacu_out == pacu_in + pacu_minutes`` within tol (a shorter
    stay would hide occupancy; a longer one is not the documented notation either).
H10 Every row that has a ``date`` (deferred rows too) must have it in the horizon and not
    before the planning date (``plan_date``, default the first horizon date). "surgery_date is
    not moved before the planning date" is read literally as that: moving a case EARLIER than
    its own surgery_date but inside the horizon is not a violation. With ``locked`` (columns
    case_id, date, room_id, start), each locked case must be in the schedule as
    ``scheduled`` with the same date, room_id and start (within tol); a missing value in a
    lock row leaves that field free; a lock cell that does not parse raises ValueError (the
    caller's input is broken, not the schedule).

Not checked (not in the hard rules): the site of a room vs the case's site, prime time,
P50/P80 values themselves (only their exported order), soft goals.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from engine.hospital import Hospital, load_hospital

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


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- rules


def _h1(c: _Ctx) -> list[Violation]:
    s, out = c.s, []
    for row, col, msg in s.attrs.get("schedule_problems", []):
        cid = s.at[row - 1, "case_id"] if row is not None and row - 1 in s.index else None
        where = f"row {row}, column {col}" if row is not None else f"column {col}"
        out.append(_v("H1", f"schedule.csv {where}: {msg}", [cid]))

    for r in s[s["case_id"].isna()].itertuples():
        out.append(_v("H1", f"row {r.x_row} has no case_id", [], r.date, r.room_id))
    dup = s[s["case_id"].notna() & s["case_id"].duplicated(keep=False)]
    for cid, g in dup.groupby("case_id", sort=True):
        rows = ", ".join(str(x) for x in g["x_row"])
        out.append(_v("H1", f"case {cid} appears {len(g)} times (rows {rows}); it must appear exactly once", [cid]))

    cases = c.h.cases
    booked = cases[cases["status"] == "booked"]
    expected = booked[booked["surgery_date"].map(lambda d: pd.Timestamp(d).normalize() in c.horizon if pd.notna(d) else False)]
    present = set(s["case_id"].dropna())
    for r in expected[~expected["case_id"].isin(list(present))].sort_values(["surgery_date", "case_id"]).itertuples():
        out.append(
            _v("H1", f"booked case {r.case_id} (surgery_date {r.surgery_date:%Y-%m-%d}) of the horizon is missing from the schedule", [r.case_id], r.surgery_date)
        )
    by_id = cases.drop_duplicates("case_id").set_index("case_id")
    expected_ids = set(expected["case_id"])
    for r in s[s["case_id"].notna() & s["x_first"]].itertuples():
        if r.case_id in expected_ids:
            continue
        if r.case_id not in by_id.index:
            why = "is not a case of cases.csv"
        elif by_id.at[r.case_id, "status"] != "booked":
            why = f"has status {by_id.at[r.case_id, 'status']!r} in cases.csv, not 'booked'"
        else:
            why = f"has surgery_date {by_id.at[r.case_id, 'surgery_date']:%Y-%m-%d}, outside the horizon"
        out.append(_v("H1", f"case {r.case_id} (row {r.x_row}) {why}: only the booked cases of the horizon belong in the schedule", [r.case_id], r.date, r.room_id))

    for r in s.itertuples():
        cid = [r.case_id]
        if r.status not in STATUSES:
            shown = "empty" if r.status is None else repr(r.status)
            out.append(_v("H1", f"row {r.x_row}: status is {shown}; it must be 'scheduled' or 'deferred'", cid, r.date, r.room_id))
        if r.status == "scheduled":
            missing = [col for col in SCHEDULED_NEEDS if pd.isna(getattr(r, col)) or getattr(r, col) is None]
            if missing:
                out.append(_v("H1", f"row {r.x_row}: a scheduled row needs {', '.join(missing)} (empty or invalid here)", cid, r.date, r.room_id))
            if r.room_id is not None and r.room_id not in c.rooms:
                out.append(_v("H1", f"row {r.x_row}: room {r.room_id!r} is not in rooms.csv", cid, r.date, r.room_id))
            if pd.notna(r.start) and pd.notna(r.end_p50) and not r.end_p50 > r.start:
                out.append(_v("H1", f"row {r.x_row}: end_p50 {_t(r.end_p50)} is not after start {_t(r.start)}", cid, r.date, r.room_id))
            if pd.notna(r.end_p50) and pd.notna(r.end_p80) and r.end_p80 < r.end_p50:
                out.append(_v("H1", f"row {r.x_row}: end_p80 {_t(r.end_p80)} is before end_p50 {_t(r.end_p50)}", cid, r.date, r.room_id))
        if r.status == "deferred" and r.room_id is not None:
            out.append(_v("H1", f"row {r.x_row}: a deferred case must have an empty room_id, it has {r.room_id!r}", cid, r.date, r.room_id))
        if r.reason is None:
            out.append(_v("H1", f"row {r.x_row}: reason is empty; every row needs a plain-language reason", cid, r.date, r.room_id))
        if r.x_known:
            for col, truth in (("surgeon_id", by_id.at[r.case_id, "surgeon_id"]), ("service_line", by_id.at[r.case_id, "service_line"])):
                given = getattr(r, col)
                if _text(given) != _text(truth):
                    out.append(_v("H1", f"row {r.x_row}: {col} is {given!r} but cases.csv says {_text(truth)!r}", cid, r.date, r.room_id))
    return out


def _h2(c: _Ctx) -> list[Violation]:
    out = []
    for r in c.use[c.use["room_id"].isin(list(c.rooms))].itertuples():
        lacking = sorted(r.x_equipment - c.rooms[r.room_id]["caps"])
        if lacking:
            caps = ";".join(sorted(c.rooms[r.room_id]["caps"])) or "none"
            out.append(
                _v("H2", f"case {r.case_id} needs {', '.join(lacking)} but room {r.room_id} has capabilities: {caps}", [r.case_id], r.date, r.room_id)
            )
    return out


def _h3(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use[c.use["room_id"].isin(list(c.rooms)) & c.use["date"].notna()]
    for r in u.itertuples():
        room = c.rooms[r.room_id]
        open_at = r.date + pd.Timedelta(minutes=room["open"])
        close_at = r.date + pd.Timedelta(minutes=room["close"])
        cid = [r.case_id]
        if pd.notna(r.start) and r.start < open_at - c.tol:
            out.append(_v("H3", f"case {r.case_id} starts {_t(r.start)}, before room {r.room_id} opens at {_t(open_at)}", cid, r.date, r.room_id))
        if pd.notna(r.start) and r.start >= close_at:
            out.append(_v("H3", f"case {r.case_id} starts {_t(r.start)}, at or after room {r.room_id}'s close at {_t(close_at)}",
                          cid, r.date, r.room_id))
        if pd.notna(r.end_p80) and r.end_p80 > close_at + c.cap + c.tol:
            out.append(
                _v(
                    "H3",
                    f"case {r.case_id} ends at P80 {_t(r.end_p80)}, past room {r.room_id}'s close {_hm(close_at)} plus the "
                    f"{_minutes(c.cap)} overtime cap ({_t(close_at + c.cap)})",
                    cid,
                    r.date,
                    r.room_id,
                )
            )
        off = [
            f"{col} {_t(getattr(r, col))}"
            for col in ("start", "end_p50", "end_p80")
            if pd.notna(getattr(r, col)) and not (r.date <= getattr(r, col) and getattr(r, col) <= r.date + _DAY + c.tol)
        ]
        if off:
            out.append(_v("H3", f"case {r.case_id} must start and end on its date {r.date:%Y-%m-%d}: {', '.join(off)}", cid, r.date, r.room_id))
    return out


def _h4(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["room_id", "date", "start", "end_p50"])
    for (room, date), g in u.groupby(["room_id", "date"], sort=True):
        g = g.sort_values(["start", "end_p50", "x_row"], kind="stable")
        prev_end, prev_id = None, None
        for r in g.itertuples():
            if prev_end is not None and r.start < prev_end + c.turnover - c.tol:
                gap = r.start - prev_end
                out.append(
                    _v(
                        "H4",
                        f"in room {room} case {r.case_id} starts {_hm(r.start)}, {_minutes(gap)} after case {prev_id} ends (P50 "
                        f"{_hm(prev_end)}); the turnover needs {_minutes(c.turnover)}",
                        [prev_id, r.case_id],
                        date,
                        room,
                    )
                )
            if prev_end is None or r.end_p50 > prev_end:
                prev_end, prev_id = r.end_p50, r.case_id
    return out


def _h5(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["room_id", "start", "end_p80", "x_surgeon"])
    u = u[u["x_surgeon"] != "unknown"]
    for surgeon, g in u.groupby("x_surgeon", sort=True):
        rows = list(g.sort_values(["start", "x_row"], kind="stable").itertuples())
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if b.start >= a.end_p80 - c.tol:
                    break  # sorted by start: b and every later case start after a ends
                if b.room_id != a.room_id and a.start < b.end_p80 - c.tol:
                    out.append(
                        _v(
                            "H5",
                            f"surgeon {surgeon} is in two rooms at once: case {a.case_id} in {a.room_id} "
                            f"{_hm(a.start)}-{_hm(a.end_p80)} (P80) overlaps case {b.case_id} in {b.room_id} {_hm(b.start)}-{_hm(b.end_p80)}",
                            [a.case_id, b.case_id],
                            a.date,
                            None,
                        )
                    )
    return out


def _usable(c: _Ctx, r: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(all blocks of the case's room-date, the ones this case may use)."""
    blocks = c.blocks.get((r.room_id, r.date), [])
    surgeon, service = r.x_surgeon, r.x_service
    usable = [
        b
        for b in blocks
        if (b["surgeon_id"] is not None and surgeon not in (None, "unknown") and b["surgeon_id"] == surgeon)
        or (b["surgeon_id"] is None and service is not None and b["service_line"] == service)
    ]
    return blocks, usable


def _h6_h9(c: _Ctx) -> tuple[list[Violation], list[Violation]]:
    h6, h9 = [], []
    u = c.use[c.use["room_id"].isin(list(c.rooms)) & c.use["date"].notna()]
    for r in u.itertuples():
        blocks, usable = _usable(c, r)
        who = f"surgeon {r.x_surgeon} ({r.x_service})"
        if not blocks:
            if not c.allow_open_time:
                h6.append(
                    _v("H6", f"case {r.case_id} of {who} uses open time (room {r.room_id} has no block on {r.date:%Y-%m-%d}) but open time is not allowed", [r.case_id], r.date, r.room_id)
                )
            continue
        if not usable:
            owners = "; ".join(b["label"] for b in blocks)
            h6.append(
                _v(
                    "H6",
                    f"case {r.case_id} of {who} is in room {r.room_id} on {r.date:%Y-%m-%d}, where neither a block of the surgeon nor a "
                    f"service block of {r.x_service} exists (blocks there: {owners}) and there is no open time",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
            continue
        if pd.isna(r.start) or pd.isna(r.end_p50):
            continue
        close = c.rooms[r.room_id]["close"]
        ok = False
        for b in usable:
            b_start = r.date + pd.Timedelta(minutes=b["start"])
            b_end = r.date + pd.Timedelta(minutes=b["end"])
            if r.start < b_start - c.tol or r.start >= b_end:
                continue
            if r.end_p50 <= b_end + c.tol:
                ok = True
            elif b["end"] >= close and r.end_p50 <= r.date + pd.Timedelta(minutes=close) + c.cap + c.tol:
                ok = True
            if ok:
                break
        if not ok:
            labels = "; ".join(b["label"] for b in usable)
            h9.append(
                _v(
                    "H9",
                    f"case {r.case_id} of {who} runs {_clock(r.start, r.date)}-{_clock(r.end_p50, r.date)} (P50), not inside one block it may use in room "
                    f"{r.room_id} ({labels}); running past a block's end is allowed only when the block runs to the room's close",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
    return h6, h9


def _h7(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use.dropna(subset=["date", "room_id"])
    for date, g in u.groupby("date", sort=True):
        rooms = sorted(set(g["room_id"]))
        n = len(rooms)
        st = c.staffing.get(date)
        if st is None:
            out.append(_v("H7", f"{n} room(s) used ({', '.join(rooms)}) on {date:%Y-%m-%d}, a date without a staffing row (no capacity)", g["case_id"], date))
            continue
        short = [f"{st[key]:g} {what}" for key, what in (("staffed_rooms", "staffed rooms"), ("anesthesia_teams", "anesthesia teams")) if n > st[key]]
        if short:
            out.append(_v("H7", f"{n} rooms used ({', '.join(rooms)}) on {date:%Y-%m-%d} but only {' and '.join(short)}", (), date))
    return out


def _h8(c: _Ctx) -> list[Violation]:
    out = []
    u = c.use
    for r in u.itertuples():
        if pd.notna(r.pacu_in) and pd.notna(r.end_p50) and abs(r.pacu_in - r.end_p50) > c.tol:
            out.append(_v("H8", f"case {r.case_id}: pacu_in {_t(r.pacu_in)} must equal end_p50 {_t(r.end_p50)}", [r.case_id], r.date, r.room_id))
        if pd.notna(r.pacu_in) and pd.notna(r.pacu_out) and abs((r.pacu_out - r.pacu_in) - c.pacu) > c.tol:
            out.append(
                _v(
                    "H8",
                    f"case {r.case_id}: PACU stay {_hm(r.pacu_in)}-{_hm(r.pacu_out)} lasts {_minutes(r.pacu_out - r.pacu_in)}, "
                    f"not pacu_minutes = {_minutes(c.pacu)}",
                    [r.case_id],
                    r.date,
                    r.room_id,
                )
            )
    # Split every stay at midnights: a moment counts against the beds of its own calendar date.
    pieces: dict[pd.Timestamp, list[tuple[pd.Timestamp, pd.Timestamp, str]]] = defaultdict(list)
    for r in u.dropna(subset=["pacu_in", "pacu_out"]).itertuples():
        d = r.pacu_in.normalize()
        while d < r.pacu_out:
            a, b = max(r.pacu_in, d), min(r.pacu_out, d + _DAY)
            if b - c.tol > a:
                pieces[d].append((a, b - c.tol, r.case_id))
            d += _DAY
    for date in sorted(pieces):
        beds = c.staffing.get(date, {}).get("pacu_beds", 0.0)
        events = sorted(
            [(a, 1, cid) for a, _b, cid in pieces[date]] + [(b, -1, cid) for _a, b, cid in pieces[date]],
            key=lambda e: (e[0], e[1]),
        )
        active: list[str] = []
        episode: dict[str, Any] | None = None
        i = 0
        while i < len(events):
            t = events[i][0]
            while i < len(events) and events[i][0] == t:
                _, delta, cid = events[i]
                if delta > 0:
                    active.append(cid)
                else:
                    active.remove(cid)
                i += 1
            n = len(active)
            if n > beds:
                if episode is None:
                    episode = {"start": t, "peak": n, "at": t, "cases": list(active)}
                elif n > episode["peak"]:
                    episode.update(peak=n, at=t, cases=list(active))
            elif episode is not None:
                out.append(_pacu_violation(date, beds, episode, t, c))
                episode = None
        if episode is not None:
            out.append(_pacu_violation(date, beds, episode, None, c))
    return out


def _pacu_violation(date: pd.Timestamp, beds: float, ep: dict[str, Any], end: pd.Timestamp | None, c: _Ctx) -> Violation:
    until = f" until {_hm(end + c.tol)}" if end is not None else ""
    no_row = "" if date in c.staffing else " (no staffing row for this date: no beds)"
    return _v(
        "H8",
        f"PACU over capacity from {_hm(ep['start'])}{until}: {ep['peak']} patients at {_hm(ep['at'])} "
        f"({', '.join(ep['cases'])}) for {beds:g} beds{no_row}",
        ep["cases"],
        date,
    )


def _h10(c: _Ctx, locked: pd.DataFrame | None) -> list[Violation]:
    out = []
    horizon = ", ".join(f"{d:%Y-%m-%d}" for d in sorted(c.horizon)) or "none"
    for r in c.s[c.s["date"].notna() & c.s["x_first"]].itertuples():
        if c.plan_date is not None and r.date < c.plan_date:
            out.append(_v("H10", f"case {r.case_id} is planned on {r.date:%Y-%m-%d}, before the planning date {c.plan_date:%Y-%m-%d}", [r.case_id], r.date, r.room_id))
        elif r.date not in c.horizon:
            out.append(_v("H10", f"case {r.case_id} is planned on {r.date:%Y-%m-%d}, outside the planning horizon ({horizon})", [r.case_id], r.date, r.room_id))
    if locked is None:
        return out
    problems: list[tuple[int | None, str, str]] = []
    lk = _parse_columns(locked.reset_index(drop=True), {"case_id": "text", "date": "date", "room_id": "text", "start": "datetime"}, problems)
    if problems:
        raise ValueError("locked cases do not parse: " + "; ".join(f"row {r} {col}: {m}" for r, col, m in problems))
    first = c.s[c.s["x_first"] & c.s["case_id"].notna()].set_index("case_id")
    for lrow in lk.itertuples():
        cid = lrow.case_id
        want = []
        if lrow.date is not None and pd.notna(lrow.date):
            want.append(f"date {lrow.date:%Y-%m-%d}")
        if lrow.room_id is not None:
            want.append(f"room {lrow.room_id}")
        if pd.notna(lrow.start):
            want.append(f"start {_t(lrow.start)}")
        if cid not in first.index:
            out.append(_v("H10", f"locked case {cid} ({', '.join(want)}) is not in the schedule", [cid], lrow.date, lrow.room_id))
            continue
        r = first.loc[cid]
        diffs = []
        if r["status"] != "scheduled":
            diffs.append(f"status is {r['status']!r}, not 'scheduled'")
        if pd.notna(lrow.date) and (pd.isna(r["date"]) or r["date"] != lrow.date):
            diffs.append(f"date {r['date']:%Y-%m-%d}" if pd.notna(r["date"]) else "no date")
        if lrow.room_id is not None and r["room_id"] != lrow.room_id:
            diffs.append(f"room {r['room_id']}" if r["room_id"] is not None else "no room")
        if pd.notna(lrow.start) and (pd.isna(r["start"]) or abs(r["start"] - lrow.start) > c.tol):
            diffs.append(f"start {_t(r['start'])}" if pd.notna(r["start"]) else "no start")
        if diffs:
            out.append(
                _v("H10", f"locked case {cid} must keep {', '.join(want)}; the schedule has {', '.join(diffs)}", [cid], r["date"] if pd.notna(r["date"]) else lrow.date, r["room_id"])
            )
    return out


# --------------------------------------------------------------------------- API


def check_schedule(
    hospital: Any,
    schedule: pd.DataFrame | str | Path,
    horizon_dates: list | None = None,
    locked: pd.DataFrame | None = None,
    allow_open_time: bool = True,
    tolerance_minutes: float = 0.5,
    plan_date: Any = None,
) -> list[Violation]:
    """Every violation of the hard rules H1..H10 (docs/hard-rules.md); [] when feasible."""
    h = _as_hospital(hospital)
    s = read_schedule(schedule)
    c = _context(h, s, horizon_dates, plan_date, allow_open_time, tolerance_minutes)
    c.s.attrs["schedule_problems"] = s.attrs.get("schedule_problems", [])
    h6, h9 = _h6_h9(c)
    out = [*_h1(c), *_h2(c), *_h3(c), *_h4(c), *_h5(c), *h6, *_h7(c), *_h8(c), *h9, *_h10(c, locked)]
    return sorted(out, key=lambda v: int(v.rule[1:]))


def assert_feasible(hospital: Any, schedule: pd.DataFrame | str | Path, **kw: Any) -> None:
    """Raise AssertionError listing the first 20 violations when the schedule is not feasible."""
    violations = check_schedule(hospital, schedule, **kw)
    if violations:
        shown = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        raise AssertionError(f"schedule breaks {len(violations)} hard rule(s):\n{shown}{more}")


def rules_broken(violations: Iterable[Violation]) -> set[str]:
    """The set of rule ids in ``violations`` (handy in tests)."""
    return {v.rule for v in violations}
