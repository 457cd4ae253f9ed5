"""Step 2 of validation: the pandera schemas of the contract's files (ranges, known codes,
uniqueness, row rules such as ``wheels_out`` after ``wheels_in``) and their problems in words."""
from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa

from engine import contract as C
from engine.errors import Problem
from engine.hospital.reading import _show
from engine.timeutil import hhmm_to_minutes, room_minutes


# Row rules spanning several columns: check name -> (column to blame, plain message).
_CHECK_TEXT: dict[str, tuple[str, str]] = {
    "completed_has_wheels_in": ("wheels_in", "a completed case needs wheels_in (its room entry time)"),
    "completed_has_wheels_out": ("wheels_out", "a completed case needs wheels_out (its room exit time)"),
    "wheels_order": ("wheels_out", "wheels_out is not after wheels_in"),
    "duration_range": (
        "wheels_out",
        f"room time (wheels_out - wheels_in) is longer than {C.MAX_DURATION_MINUTES:.0f} minutes "
        f"or shorter than {C.MIN_DURATION_MINUTES:.0f}",
    ),
    "procedure_start_within_wheels": ("procedure_start", "procedure_start falls outside wheels_in..wheels_out"),
    "procedure_end_within_wheels": ("procedure_end", "procedure_end falls outside wheels_in..wheels_out"),
    "open_before_close": ("close_time", "close_time is not after open_time"),
    "block_start_before_end": ("end_time", "end_time is not after start_time"),
}


def _schema_problems(schema: pa.DataFrameSchema, df: pd.DataFrame, fname: str) -> list[Problem]:
    """Run a pandera schema lazily and turn its failure cases into row problems.

    Column checks carry their message as pandera ``error`` text ("is not a known status ...");
    the message is the failing value followed by that text.
    """
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems: list[Problem] = []
        seen: set[tuple[Any, ...]] = set()
        firsts: dict[str, dict[Any, int]] = {}
        for rec in exc.failure_cases.itertuples(index=False):
            check = str(rec.check)
            col = rec.column if isinstance(rec.column, str) else None
            idx = rec.index
            row = int(idx) + 1 if idx is not None and not pd.isna(idx) else None
            meta = _CHECK_TEXT.get(check)
            if meta is not None:
                col, text = meta
            elif check == "not_nullable":
                text = "required value is missing"
            elif check == "field_uniqueness":
                if col not in firsts:
                    s = df[col]
                    kept = s[~s.duplicated()].dropna()
                    firsts[col] = dict(zip(kept.values, kept.index))
                first = firsts[col].get(rec.failure_case)
                text = f"duplicate {col} {_show(rec.failure_case)}" + (
                    f": already in row {int(first) + 1} (that row is kept)" if first is not None else ""
                )
            elif check.startswith(("column_in_dataframe", "dtype", "coerce")):
                text = f"{check}"
            else:
                text = f"{_show(rec.failure_case)} {check}"
            # A row rule is reported once per row, not once per column it reads.
            key = (row, col, text if row is None else check)
            if key in seen:
                continue
            seen.add(key)
            problems.append(Problem(fname, row, col, text))
        return problems
    return []


def _minutes(t: pd.Series) -> pd.Series:
    return t.map(hhmm_to_minutes, na_action="ignore").astype("float64")


def _cases_schema(timezone: str | None = None) -> pa.DataFrameSchema:
    """cases.csv's value and row rules; room time is the real elapsed time in ``timezone`` (the
    hospital's ``settings.timezone``), so a case across a daylight-saving change is judged on it."""
    def completed_has(col: str):
        def check(d: pd.DataFrame) -> pd.Series:
            return ~(d["status"] == "completed").fillna(False) | d[col].notna()

        return check

    def wheels_ok(d: pd.DataFrame) -> pd.Series:
        return d["wheels_in"].notna() & d["wheels_out"].notna() & (d["wheels_out"] > d["wheels_in"])

    def wheels_order(d: pd.DataFrame) -> pd.Series:
        both = d["wheels_in"].notna() & d["wheels_out"].notna()
        return ~both | (d["wheels_out"] > d["wheels_in"])

    def duration_range(d: pd.DataFrame) -> pd.Series:
        return ~wheels_ok(d) | room_minutes(d, timezone).between(C.MIN_DURATION_MINUTES, C.MAX_DURATION_MINUTES)

    def within_wheels(col: str):
        def check(d: pd.DataFrame) -> pd.Series:
            v = d[col]
            test = v.notna() & wheels_ok(d)
            return ~test | ((v >= d["wheels_in"]) & (v <= d["wheels_out"]))

        return check

    num = {"nullable": True, "required": False}
    return pa.DataFrameSchema(
        {
            "case_id": pa.Column(str, unique=True, report_duplicates="exclude_first", nullable=False),
            "surgery_date": pa.Column("datetime64[us]", nullable=False, coerce=True),
            "status": pa.Column(
                str,
                pa.Check.isin(list(C.CASE_STATUSES), error=f"is not a known status (allowed: {', '.join(C.CASE_STATUSES)})"),
                nullable=False,
            ),
            "service_line": pa.Column(str, nullable=False),
            "procedure_code": pa.Column(str, nullable=False),
            "surgeon_id": pa.Column(str, nullable=False),
            "booked_minutes": pa.Column(
                float, pa.Check.in_range(1, 1440, error="is out of range: booked_minutes must be within 1..1440 minutes"), **num
            ),
            "urgency": pa.Column(
                str, pa.Check.isin(list(C.URGENCIES), error=f"is not a known urgency (allowed: {', '.join(C.URGENCIES)})"), **num
            ),
            "patient_age": pa.Column(
                float, pa.Check.in_range(0, 120, error="is out of range: patient_age must be within 0..120 years"), **num
            ),
            "asa_class": pa.Column(
                float, pa.Check.isin([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], error="is not a known ASA class (allowed: 1 to 6)"), **num
            ),
            "bmi": pa.Column(float, pa.Check.in_range(8, 120, error="is out of range: bmi must be within 8..120"), **num),
        },
        checks=[
            pa.Check(completed_has("wheels_in"), name="completed_has_wheels_in"),
            pa.Check(completed_has("wheels_out"), name="completed_has_wheels_out"),
            pa.Check(wheels_order, name="wheels_order"),
            pa.Check(duration_range, name="duration_range"),
            pa.Check(within_wheels("procedure_start"), name="procedure_start_within_wheels"),
            pa.Check(within_wheels("procedure_end"), name="procedure_end_within_wheels"),
        ],
    )


def _time_order(start: str, end: str):
    """A row rule: ``end`` after ``start`` where both are given (missing ones are reported apart)."""

    def check(d: pd.DataFrame) -> pd.Series:
        s, e = _minutes(d[start]), _minutes(d[end])
        return s.isna() | e.isna() | (e > s)

    return check


def _rooms_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "room_id": pa.Column(str, unique=True, report_duplicates="exclude_first", nullable=False),
            "site": pa.Column(str, nullable=False),
            "open_time": pa.Column(str, nullable=False),
            "close_time": pa.Column(str, nullable=False),
        },
        checks=[pa.Check(_time_order("open_time", "close_time"), name="open_before_close")],
    )


def _surgeons_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "surgeon_id": pa.Column(str, unique=True, report_duplicates="exclude_first", nullable=False),
            "service_line": pa.Column(str, nullable=False),
        }
    )


def _blocks_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "date": pa.Column("datetime64[us]", nullable=False, coerce=True),
            "room_id": pa.Column(str, nullable=False),
            "service_line": pa.Column(str, nullable=False),
            "start_time": pa.Column(str, nullable=False),
            "end_time": pa.Column(str, nullable=False),
        },
        checks=[pa.Check(_time_order("start_time", "end_time"), name="block_start_before_end")],
    )


def _staffing_schema() -> pa.DataFrameSchema:
    def count() -> pa.Column:
        # Whole numbers are enforced when parsing (kind "int"); here only the sign.
        return pa.Column(float, pa.Check.ge(0, error="is negative: staffing counts must be whole numbers >= 0"), nullable=False)

    return pa.DataFrameSchema(
        {
            "date": pa.Column("datetime64[us]", unique=True, report_duplicates="exclude_first", coerce=True, nullable=False),
            "staffed_rooms": count(),
            "anesthesia_teams": count(),
            "pacu_beds": count(),
        }
    )


_SCHEMAS = {
    "cases.csv": _cases_schema,
    "rooms.csv": _rooms_schema,
    "surgeons.csv": _surgeons_schema,
    "blocks.csv": _blocks_schema,
    "staffing.csv": _staffing_schema,
}


def _empty_frame(kinds: dict[str, str]) -> pd.DataFrame:
    cols: dict[str, pd.Series] = {}
    for col, kind in kinds.items():
        if kind in ("date", "datetime"):
            cols[col] = pd.Series(dtype="datetime64[us]")
        elif kind in ("float", "int"):
            cols[col] = pd.Series(dtype="float64")
        else:
            cols[col] = pd.Series(dtype="str")
    return pd.DataFrame(cols)
