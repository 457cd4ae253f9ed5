"""Overrides: move, defer or lock a case with a justification code; applying them to a schedule; rates.

Applying overrides to a schedule version gives a new schedule (the next proposed version) and the
cumulative ``locks`` frame that :func:`engine.plan.plan` accepts (case_id, date, room_id, start):
a moved case is locked where it was moved, a locked case where it is, a deferred case is unlocked
and listed as deferred by override (re-planning should leave it out).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.governance.catalog import Catalog
from engine.governance.errors import OverrideError
from engine.contract import SCHEDULE_TIME_COLUMNS, UNKNOWN_SURGEON

ACTIONS = ("move", "defer", "lock")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
LOCK_COLUMNS = ["case_id", "date", "room_id", "start"]


@dataclass(frozen=True)
class Override:
    """One case override. ``move`` takes any of ``date``, ``room_id``, ``start`` (a datetime, or ``HH:MM``
    on the case's (new) date); ``text`` is the free-text justification (required for code ``other``);
    ``rule_id`` names a catalog rule the override knowingly departs from (checked against its override role)."""

    case_id: str
    action: str
    code: str
    text: str = ""
    date: Any = None
    room_id: str | None = None
    start: Any = None
    rule_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.case_id, str) or not self.case_id:
            raise OverrideError("an override needs the case_id of the case it changes")
        if self.action not in ACTIONS:
            raise OverrideError(f"action must be one of {', '.join(ACTIONS)}, got {self.action!r}")
        if self.action == "move" and self.date is None and self.room_id is None and self.start is None:
            raise OverrideError(f"moving case {self.case_id} needs a new date, room or start time")
        if self.room_id is not None and (not isinstance(self.room_id, str) or not self.room_id.strip()):
            raise OverrideError(f"room_id of the override of case {self.case_id}: {self.room_id!r} is not a room id")
        if self.start is not None:
            parse_start(self.start, None, self.case_id)
        if self.date is not None:
            parse_date(self.date, self.case_id)

    def validate(self, catalog: Catalog) -> None:
        """The code must be in the catalog; codes that require text (``other``) need a non-empty explanation."""
        j = catalog.justifications.get(self.code)
        if j is None:
            raise OverrideError(f"justification code {self.code!r} is not in the catalog; use one of "
                                f"{', '.join(catalog.justifications)}")
        if j.requires_text and not (self.text or "").strip():
            raise OverrideError(f"justification {self.code!r} ({j.label}) needs a free-text explanation of the override "
                                f"of case {self.case_id}")
        if self.rule_id is not None and self.rule_id not in catalog.rules:
            raise OverrideError(f"rule {self.rule_id!r} is not in the rules catalog")


def parse_date(value: Any, case_id: str = "") -> pd.Timestamp:
    """An override's ``date`` (YYYY-MM-DD or a date) as midnight; OverrideError naming the field otherwise."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts) or ts != ts.normalize():
        raise OverrideError(f"date of the override of case {case_id}: {value!r} is not a date (YYYY-MM-DD)")
    return ts


def parse_start(value: Any, day: pd.Timestamp | None, case_id: str = "") -> pd.Timestamp | None:
    """An override's ``start``: ``HH:MM`` (00:00-23:59) on ``day``, or a full local datetime.

    "25:99" and other impossible clock times are refused with OverrideError naming the field
    (they used to roll over into the next day). ``day=None`` only validates (returns None for HH:MM).
    """
    if isinstance(value, str):
        text = value.strip()
        if ":" in text and len(text) <= 5:
            m = _HHMM.match(text)
            if not m:
                raise OverrideError(f"start of the override of case {case_id}: {value!r} is not a time of day "
                                    "(HH:MM, 00:00 to 23:59)")
            return None if day is None else day + pd.Timedelta(hours=int(m.group(1)), minutes=int(m.group(2)))
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts):
        raise OverrideError(f"start of the override of case {case_id}: {value!r} is not a time (HH:MM) or a local "
                            "datetime (YYYY-MM-DDTHH:MM)")
    if ts.tzinfo is not None:
        raise OverrideError(f"start of the override of case {case_id}: {value!r} has a time-zone offset; give local "
                            "wall-clock time")
    return ts


def empty_locks() -> pd.DataFrame:
    return pd.DataFrame({"case_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[us]"),
                         "room_id": pd.Series(dtype=object), "start": pd.Series(dtype="datetime64[us]")})


def _start_of(value: Any, day: pd.Timestamp, case_id: str = "") -> pd.Timestamp:
    return parse_start(value, day, case_id)


def _pacu_minutes(schedule: pd.DataFrame, given: float | None) -> float:
    if given is not None:
        return float(given)
    s = schedule[schedule["status"] == "scheduled"]
    if len(s):
        return float(((pd.to_datetime(s["pacu_out"]) - pd.to_datetime(s["pacu_in"])).dt.total_seconds() / 60).median())
    raise OverrideError("the PACU stay is unknown: pass pacu_minutes (settings.toml) to place a deferred case")


def apply_overrides(
    schedule: pd.DataFrame,
    overrides: list[Override],
    locks: pd.DataFrame | None = None,
    deferred: list[str] | None = None,
    forecasts: pd.DataFrame | None = None,
    pacu_minutes: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """(new schedule, locks, case ids deferred by override, warnings). Nothing is changed in place.

    A moved scheduled case keeps its P50/P80 durations and PACU stay; a deferred case placed by a
    move takes them from ``forecasts`` (case_id, p50, p80) and ``pacu_minutes``. Warnings name
    room or surgeon clashes the move creates; re-planning with the returned locks resolves them.
    """
    sched = schedule.copy().reset_index(drop=True)
    for c in (*SCHEDULE_TIME_COLUMNS, "date"):
        sched[c] = pd.to_datetime(sched[c])
    sched["room_id"] = sched["room_id"].astype(object)
    lk = (locks.copy() if locks is not None and len(locks) else empty_locks())[LOCK_COLUMNS]
    lk = lk.astype({"case_id": object, "room_id": object})
    deferred_ids = list(deferred or [])
    warnings: list[str] = []
    for ov in overrides:
        hit = sched.index[sched["case_id"] == ov.case_id]
        if not len(hit):
            raise OverrideError(f"case {ov.case_id} is not in this schedule version")
        i = hit[0]
        row = sched.loc[i]
        lk = lk[lk["case_id"] != ov.case_id]
        if ov.action == "defer":
            sched.loc[i, ["room_id"]] = [None]
            sched.loc[i, list(SCHEDULE_TIME_COLUMNS)] = pd.NaT
            sched.loc[i, "status"] = "deferred"
            sched.loc[i, "reason"] = f"deferred by override ({ov.code})"
            if ov.case_id not in deferred_ids:
                deferred_ids.append(ov.case_id)
            continue
        if ov.action == "lock":
            if row["status"] != "scheduled":
                raise OverrideError(f"case {ov.case_id} is deferred: there is no place to lock it; move it instead")
            lk = pd.concat([lk, pd.DataFrame([{"case_id": ov.case_id, "date": row["date"], "room_id": row["room_id"],
                                                "start": row["start"]}])], ignore_index=True)
            sched.loc[i, "reason"] = f"{row['reason']}; locked by override ({ov.code})"
            continue
        # move
        scheduled = row["status"] == "scheduled"
        day = parse_date(ov.date, ov.case_id) if ov.date is not None else pd.Timestamp(row["date"]).normalize()
        if ov.start is not None:
            start = _start_of(ov.start, day, ov.case_id)
            if ov.date is None:
                day = start.normalize()
            elif start.normalize() != day:
                raise OverrideError(f"case {ov.case_id}: start {start:%Y-%m-%d %H:%M} is not on the new date {day:%Y-%m-%d}")
        elif scheduled:
            old = pd.Timestamp(row["start"])
            start = day + (old - old.normalize())
        else:
            raise OverrideError(f"case {ov.case_id} is deferred: moving it needs a start time")
        room = ov.room_id or (row["room_id"] if scheduled else None)
        if not room:
            raise OverrideError(f"case {ov.case_id} is deferred: moving it needs a room")
        if scheduled:
            d50 = pd.Timestamp(row["end_p50"]) - pd.Timestamp(row["start"])
            d80 = pd.Timestamp(row["end_p80"]) - pd.Timestamp(row["start"])
            pacu = pd.Timestamp(row["pacu_out"]) - pd.Timestamp(row["pacu_in"])
        else:
            if forecasts is None or ov.case_id not in set(forecasts["case_id"]):
                raise OverrideError(f"case {ov.case_id} is deferred: its P50/P80 forecast is needed to place it")
            f = forecasts.set_index("case_id").loc[ov.case_id]
            p50 = math.ceil(float(f["p50"]))
            d50 = pd.Timedelta(minutes=p50)
            d80 = pd.Timedelta(minutes=max(math.ceil(float(f["p80"])), p50))
            pacu = pd.Timedelta(minutes=round(_pacu_minutes(sched, pacu_minutes)))
        sched.loc[i, ["room_id"]] = [room]
        sched.loc[i, "date"] = day
        sched.loc[i, "status"] = "scheduled"
        sched.loc[i, "start"] = start
        sched.loc[i, "end_p50"] = start + d50
        sched.loc[i, "end_p80"] = start + d80
        sched.loc[i, "pacu_in"] = start + d50
        sched.loc[i, "pacu_out"] = start + d50 + pacu
        sched.loc[i, "reason"] = f"moved by override to {room} on {day:%Y-%m-%d} at {start:%H:%M} ({ov.code})"
        deferred_ids = [c for c in deferred_ids if c != ov.case_id]
        lk = pd.concat([lk, pd.DataFrame([{"case_id": ov.case_id, "date": day, "room_id": room, "start": start}])],
                       ignore_index=True)
        warnings += _clashes(sched, i)
    lk = lk.reset_index(drop=True)
    lk["date"] = pd.to_datetime(lk["date"])
    lk["start"] = pd.to_datetime(lk["start"])
    return sched, lk, deferred_ids, warnings


def _clashes(sched: pd.DataFrame, i: int) -> list[str]:
    """Room and surgeon overlaps of the moved row with the rest of its date."""
    r = sched.loc[i]
    other = sched[(sched.index != i) & (sched["status"] == "scheduled") & (sched["date"] == r["date"])]
    out = []
    same_room = other[(other["room_id"] == r["room_id"]) & (other["start"] < r["end_p50"]) & (other["end_p50"] > r["start"])]
    for o in same_room.itertuples():
        out.append(f"case {r['case_id']} now overlaps case {o.case_id} in {r['room_id']} on {r['date']:%Y-%m-%d}; "
                   "re-plan with the lock to resolve it")
    same_surgeon = other[(other["surgeon_id"] == r["surgeon_id"]) & (other["room_id"] != r["room_id"])
                         & (other["start"] < r["end_p80"]) & (other["end_p80"] > r["start"]) & (r["surgeon_id"] != UNKNOWN_SURGEON)]
    for o in same_surgeon.itertuples():
        out.append(f"surgeon {r['surgeon_id']} would be in {r['room_id']} and {o.room_id} at once "
                   f"(cases {r['case_id']} and {o.case_id})")
    return out


def override_rates(overrides: pd.DataFrame, recommended: pd.DataFrame, by: str | None = "service_line") -> pd.DataFrame:
    """Override rates. ``overrides``: one row per override (case_id, service_line, code, ...);
    ``recommended``: the cases the system recommended (case_id, service_line), each counted once.

    By ``service_line`` (or surgeon_id): overridden cases / recommended cases of the group. By ``code``
    (or action, actor): overridden cases with that code / all recommended cases, plus each code's
    share of all overrides. ``by=None``: one overall row.
    """
    cols = [by or "group", "n_overrides", "n_cases_overridden", "n_cases", "rate", "share_of_overrides"]
    rec = recommended.drop_duplicates("case_id")
    n_all = len(rec)
    ov = overrides.copy()
    if by is None:
        ov["group"], rec = "all", rec.assign(group="all")
        by_col = "group"
    else:
        by_col = by
    if not len(ov) and not len(rec):
        return pd.DataFrame(columns=cols)
    total_ov = max(len(ov), 1)
    groups = sorted(set(ov[by_col].dropna()) | (set(rec[by_col].dropna()) if by_col in rec.columns else set()), key=str)
    rows = []
    for g in groups:
        o = ov[ov[by_col] == g]
        n_cases = int((rec[by_col] == g).sum()) if by_col in rec.columns else n_all
        n_cov = int(o["case_id"].nunique())
        rows.append({by_col: g, "n_overrides": int(len(o)), "n_cases_overridden": n_cov, "n_cases": n_cases,
                     "rate": round(n_cov / n_cases, 4) if n_cases else float("nan"),
                     "share_of_overrides": round(len(o) / total_ov, 4) if len(ov) else 0.0})
    out = pd.DataFrame(rows, columns=[by_col, *cols[1:]])
    return out.sort_values(["rate", by_col], ascending=[False, True], na_position="last").reset_index(drop=True)


def to_lock_records(locks: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in locks.to_dict("records"):
        out.append({"case_id": r["case_id"],
                    "date": None if pd.isna(r["date"]) else pd.Timestamp(r["date"]).strftime("%Y-%m-%d"),
                    "room_id": r["room_id"] if isinstance(r["room_id"], str) else None,
                    "start": None if pd.isna(r["start"]) else pd.Timestamp(r["start"]).strftime("%Y-%m-%dT%H:%M:%S")})
    return out


def from_lock_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    if not records:
        return empty_locks()
    df = pd.DataFrame(records, columns=LOCK_COLUMNS)
    df["date"] = pd.to_datetime(df["date"])
    df["start"] = pd.to_datetime(df["start"])
    return df.astype({"case_id": object, "room_id": object})


