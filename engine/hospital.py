"""Read and validate a hospital folder (CONTRACTS.md section 1).

Every command that reads a hospital goes through :func:`load_hospital`, so every command
validates the same way. Validation is in three steps:

1. read each file as text (a missing or unreadable file, a file that is not UTF-8, a quote that
   is never closed, a missing required column or a duplicated header rejects the file);
2. parse each column by its contract kind and check values with pandera schemas
   (ranges, known codes, uniqueness, row rules such as ``wheels_out`` after ``wheels_in``);
3. check references between files (a case's ``room_id`` must exist in rooms.csv, ...).

Rows of cases.csv with problems are quarantined with their reasons and counted; when the
quarantined share of a file passes ``ValidationParams.max_quarantine_share`` the whole file is
rejected. The small reference tables (rooms, surgeons, blocks, staffing) are never partially
used: any bad row there rejects the folder, because silently dropping a room or a staffing
day would change capacity.

Row numbers in problems are 1-based data rows (the header and rows with no value at all are
not counted), as :class:`engine.errors.Problem` documents; where blank rows or multi-line cells
put a row on another line than ``row + 1``, the message names its line. Each row and column is
blamed once: a value that does not parse is not reported again as missing.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from engine import contract as C
from engine.errors import InputError, Problem
from engine.settings import HospitalSettings, parse_settings
from engine.timeutil import hhmm_to_minutes, room_minutes

log = logging.getLogger(__name__)

_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# A time-zone suffix after a time of day: "...T07:30Z", "...T07:30+01:00".
_TZ_RE = re.compile(r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)

QUARANTINE_COLUMNS = ("file", "row", "case_id", "column", "reason")


def quarantine_frame(records: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The quarantine table with its fixed columns and dtypes (row int64, the rest str)."""
    df = pd.DataFrame(records or [], columns=list(QUARANTINE_COLUMNS))
    df["row"] = df["row"].astype("int64")
    for col in ("file", "case_id", "column", "reason"):
        df[col] = df[col].astype("str")
    return df


@dataclass(frozen=True)
class ValidationParams:
    """How strict validation is.

    ``max_quarantine_share``: the share (0..1) of a file's rows that may be quarantined before
    the whole file is rejected.
    """

    max_quarantine_share: float = 0.05

    def __post_init__(self) -> None:
        v = self.max_quarantine_share
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not 0.0 <= v <= 1.0:
            raise ValueError(f"max_quarantine_share must be a number within 0..1, got {v!r}")


@dataclass
class Hospital:
    """A validated hospital: typed frames plus settings.

    Dates are ``datetime64`` at midnight, datetimes ``datetime64``, times ``HH:MM`` strings,
    lists ``;``-separated strings ("" when empty), numbers float. Columns come in contract
    order, then any extra columns of the file (kept as text) in file order.
    """

    name: str
    cases: pd.DataFrame
    rooms: pd.DataFrame
    surgeons: pd.DataFrame
    blocks: pd.DataFrame
    staffing: pd.DataFrame
    settings: HospitalSettings
    source: str = ""

    def as_of(self) -> pd.Timestamp:
        """The hospital's clock: ``settings.as_of`` when given (demo data), else today."""
        if self.settings.as_of:
            return pd.Timestamp(self.settings.as_of)
        return pd.Timestamp.now().normalize()

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "cases": self.cases,
            "rooms": self.rooms,
            "surgeons": self.surgeons,
            "blocks": self.blocks,
            "staffing": self.staffing,
        }


@dataclass
class FileReport:
    """Quality of one file: rows read, rows quarantined, and every problem found."""

    file: str
    n_rows: int = 0
    n_quarantined: int = 0
    rejected: bool = False
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_valid(self) -> int:
        return self.n_rows - self.n_quarantined


@dataclass
class QualityReport:
    """Validation result for a folder: per-file reports and the quarantined rows.

    ``quarantine`` has one row per problem (a row with two problems appears twice) with the
    columns of :data:`QUARANTINE_COLUMNS`.
    """

    files: dict[str, FileReport] = field(default_factory=dict)
    quarantine: pd.DataFrame = field(default_factory=quarantine_frame)

    @property
    def n_quarantined(self) -> int:
        return sum(f.n_quarantined for f in self.files.values())

    @property
    def rejected(self) -> bool:
        return any(f.rejected for f in self.files.values())

    def errors(self) -> list[Problem]:
        return [p for f in self.files.values() if f.rejected for p in f.problems]

    def summary(self) -> pd.DataFrame:
        """One row per file: rows, valid, quarantined, status."""
        return pd.DataFrame(
            [
                {
                    "file": f.file,
                    "rows": f.n_rows,
                    "valid": f.n_valid,
                    "quarantined": f.n_quarantined,
                    "status": "rejected" if f.rejected else ("warnings" if f.warnings else "ok"),
                    "notes": "; ".join(f.warnings),
                }
                for f in self.files.values()
            ],
            columns=["file", "rows", "valid", "quarantined", "status", "notes"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_quarantined": self.n_quarantined,
            "files": {
                name: {
                    "rows": f.n_rows,
                    "quarantined": f.n_quarantined,
                    "rejected": f.rejected,
                    "warnings": f.warnings,
                }
                for name, f in self.files.items()
            },
        }


@dataclass
class LoadedHospital:
    hospital: Hospital
    report: QualityReport


# --------------------------------------------------------------------------- reading


def _show(v: Any) -> str:
    """A value as a message shows it: 7 not 7.0, dates without a time of midnight."""
    if isinstance(v, pd.Timestamp):
        return repr(v.strftime("%Y-%m-%d") if v == v.normalize() else v.strftime("%Y-%m-%dT%H:%M"))
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (np.generic,)):
        v = v.item()
    return repr(v)


def _bad_byte(raw: bytes, exc: UnicodeDecodeError) -> tuple[int, str]:
    line = raw.count(b"\n", 0, exc.start) + 1
    return line, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} cannot be decoded (save the file as UTF-8)"


class _BrokenCsv(Exception):
    """A CSV that cannot be split into records: ``row`` (data row) and ``line`` where it broke."""

    def __init__(self, row: int | None, what: str) -> None:
        super().__init__(what)
        self.row, self.what = row, what


def _split_records(text: str) -> tuple[list[str] | None, list[list[str]], list[int], int]:
    """CSV text -> (header, records, start line of each record, blank rows skipped).

    Cells are stripped. Rows with no value at all are skipped, as pandas does; they do not count
    as data rows. Raises _BrokenCsv on a quote that is never closed (or other CSV damage).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    header: list[str] | None = None
    records: list[list[str]] = []
    starts: list[int] = []
    n_blank = 0
    last_line = 0
    try:
        for rec in reader:
            start, last_line = last_line + 1, reader.line_num
            cells = [c.strip() for c in rec]
            if not any(cells):
                n_blank += header is not None
            elif header is None:
                header = cells
            else:
                records.append(cells)
                starts.append(start)
    except csv.Error as exc:
        start = last_line + 1
        what = (
            f"a quoted field opened on line {start} is never closed"
            if "end of data" in str(exc)
            else f"{exc} (line {reader.line_num})"
        )
        raise _BrokenCsv(len(records) + 1 if header is not None else None, f"malformed CSV: {what}") from exc
    return header, records, starts, n_blank


def _undecodable(raw: bytes, exc: UnicodeDecodeError, fname: str) -> Problem:
    """Locate a byte that is not UTF-8: its line, and the data row and column holding it."""
    line, text = _bad_byte(raw, exc)
    if line == 1:
        return Problem(fname, None, None, text)
    try:
        header, _records, starts, _ = _split_records(raw.decode("utf-8-sig", "replace"))
    except _BrokenCsv:
        return Problem(fname, None, None, text)
    row = sum(1 for s in starts if s <= line) or None
    col = None
    if header and row is not None and starts[row - 1] == line:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        before = raw[line_start:exc.start].decode("utf-8", "replace")
        idx = len(next(csv.reader([before]), [""])) - 1 if before else 0
        col = header[idx] if 0 <= idx < len(header) else None
    return Problem(fname, row, col, text)


def _read_text_csv(path: Path, fname: str) -> tuple[pd.DataFrame, list[Problem], list[str], list[int]]:
    """Read a CSV as text; returns (frame, row problems, warnings, start line of each row).

    The frame is indexed by data row - 1, values are stripped strings, empty cells missing.
    Raises InputError for problems that spoil the whole file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=fname) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(_undecodable(raw, exc, fname)) from exc
    try:
        header, records, starts, n_blank = _split_records(text)
    except _BrokenCsv as exc:
        raise InputError(Problem(fname, exc.row, None, exc.what)) from exc
    if header is None:
        raise InputError("file is empty: no header row", file=fname)
    dups = sorted({n for n in header if n and header.count(n) > 1})
    if dups:
        raise InputError(
            [Problem(fname, None, d, "column name appears more than once in the header") for d in dups]
        )
    problems: list[Problem] = []
    width = len(header)
    for i, cells in enumerate(records):
        if len(cells) != width:
            problems.append(
                Problem(
                    fname,
                    i + 1,
                    None,
                    f"malformed row: {len(cells)} fields, the header has {width} (an unquoted comma, or a missing field?)",
                )
            )
            records[i] = (cells + [""] * width)[:width]
    df = pd.DataFrame(
        [[c or None for c in cells] for cells in records], columns=header, index=pd.RangeIndex(len(records)), dtype="str"
    )
    warnings = [f"{n_blank} empty row{'s' if n_blank > 1 else ''} skipped"] if n_blank else []
    unnamed = [i for i, n in enumerate(header) if not n]
    with_values = [i for i in unnamed if df.iloc[:, i].notna().any()]
    if with_values:
        raise InputError(
            [Problem(fname, None, f"#{i + 1}", "column has values but no name in the header") for i in with_values]
        )
    if unnamed:
        # Spreadsheets leave trailing empty columns without a name: drop them.
        df = df.iloc[:, [i for i, n in enumerate(header) if n]]
    if not len(df):
        warnings.append("file has a header but no rows")
    return df, problems, warnings, starts


def _parse_column(
    raw: pd.Series, kind: str, fname: str, col: str
) -> tuple[pd.Series, list[Problem]]:
    """Parse one text column to its contract kind; report each value that does not parse."""
    present = raw.notna()
    problems: list[Problem] = []
    if kind == "date":
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce").astype("datetime64[us]")
        what = "a date (YYYY-MM-DD)"
    elif kind == "datetime":
        tz = raw.str.contains(_TZ_RE, na=False).astype(bool)
        for i in raw.index[tz]:
            problems.append(
                Problem(fname, int(i) + 1, col, f"{raw[i]!r} has a time-zone offset: give local wall-clock time (YYYY-MM-DDTHH:MM)")
            )
        present &= ~tz
        parsed = pd.to_datetime(raw.where(~tz), format="ISO8601", errors="coerce").astype("datetime64[us]")
        what = "a datetime (YYYY-MM-DDTHH:MM)"
    elif kind in ("float", "int"):
        parsed = pd.to_numeric(raw, errors="coerce").astype("float64")
        parsed = parsed.where(np.isfinite(parsed))
        what = "a number"
        if kind == "int":
            frac = parsed.notna() & (parsed != parsed.round())
            problems += [Problem(fname, int(i) + 1, col, f"{raw[i]!r} is not a whole number") for i in raw.index[frac]]
            present &= ~frac
            parsed = parsed.where(~frac)
    elif kind == "time":
        ok = raw.fillna("").str.match(_TIME_RE).astype(bool)
        parsed = raw.where(ok)
        parsed = parsed.map(lambda t: f"{int(t.split(':')[0]):02d}:{t.split(':')[1]}", na_action="ignore").astype("str")
        what = "a time of day (HH:MM, 00:00 to 23:59)"
    elif kind == "list":
        parsed = raw.fillna("").map(
            lambda v: ";".join(sorted({p.strip().lower() for p in v.split(";") if p.strip()}))
        ).astype("str")
        return parsed, []
    else:
        return raw, []
    bad = present & parsed.isna()
    problems += [Problem(fname, int(i) + 1, col, f"{raw[i]!r} is not {what}") for i in raw.index[bad]]
    return parsed, problems


def _parse_frame(
    df: pd.DataFrame, kinds: dict[str, str], fname: str
) -> tuple[pd.DataFrame, list[Problem]]:
    out = df.copy()
    problems: list[Problem] = []
    for col, kind in kinds.items():
        if col in out.columns:
            out[col], probs = _parse_column(df[col], kind, fname, col)
            problems += probs
    return out, problems


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


# --------------------------------------------------------------------------- per file


def _normalise_cases(df: pd.DataFrame, report: FileReport) -> pd.DataFrame:
    """Lenient fixes that lose nothing: case of codes, 'unknown' surgeons, default urgency."""
    for col in ("status", "urgency", "anesthesia_type", "admission_type"):
        if col in df.columns:
            df[col] = df[col].str.lower()
    if "surgeon_id" not in df.columns:
        report.warnings.append("no surgeon_id column: every case is treated as surgeon 'unknown'")
        df["surgeon_id"] = "unknown"
    else:
        missing = int(df["surgeon_id"].isna().sum())
        if missing:
            report.warnings.append(f"{missing} cases without surgeon_id set to 'unknown'")
        df["surgeon_id"] = df["surgeon_id"].fillna("unknown")
    if "urgency" not in df.columns:
        df["urgency"] = "elective"
    else:
        df["urgency"] = df["urgency"].fillna("elective")
    return df


def _missing_column(fname: str, col: str, columns: pd.Index, why: str = "") -> Problem:
    text = "required column is missing" + why
    near = [c for c in columns if c.lower().replace(" ", "_") == col]
    if near:
        text += f" (found {near[0]!r}: column names are case-sensitive)"
    return Problem(fname, None, col, text)


def _validate_file(
    contract_file: str,
    df_text: pd.DataFrame,
    report: FileReport,
    fname: str | None = None,
    timezone: str | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse and check one file against ``contract_file``'s rules; returns the typed frame and
    row problems. Problems name ``fname`` (default: the contract file name); ``timezone`` is the
    hospital's, for the cases' room time."""
    fname = fname or contract_file
    kinds, required, _ = C.FILES[contract_file]
    is_cases = contract_file == "cases.csv"
    missing = [
        _missing_column(fname, c, df_text.columns)
        for c in required
        if c not in df_text.columns and not (is_cases and c == "surgeon_id")
    ]
    if is_cases and "status" in df_text.columns and df_text["status"].str.lower().eq("completed").any():
        missing += [
            _missing_column(fname, c, df_text.columns, ": completed cases need wheels_in and wheels_out")
            for c in ("wheels_in", "wheels_out")
            if c not in df_text.columns
        ]
    if missing:
        raise InputError(missing)
    absent = [c for c in kinds if c not in df_text.columns and c not in required]
    if absent:
        report.warnings.append("optional columns not given: " + ", ".join(absent))
    df, problems = _parse_frame(df_text, kinds, fname)
    if is_cases:
        df = _normalise_cases(df, report)
    # Absent optional columns are added so later code can rely on them.
    for col, kind in kinds.items():
        if col not in df.columns:
            df[col] = "" if kind == "list" else _empty_frame({col: kind})[col].reindex(df.index)
    extras = [c for c in df.columns if c not in kinds]
    df = df[[*kinds, *extras]]
    schema = _cases_schema(timezone) if is_cases else _SCHEMAS[contract_file]()
    problems += _schema_problems(schema, df, fname)
    return df, problems


def _load_file(
    path: Path, contract_file: str, rep: FileReport, fname: str | None = None, timezone: str | None = None
) -> tuple[pd.DataFrame, list[Problem], list[int]]:
    """Read and check one file: (typed frame, row problems, start line of each row)."""
    fname = fname or contract_file
    text, problems, warnings, starts = _read_text_csv(path, fname)
    rep.n_rows = len(text)
    rep.warnings += warnings
    df, more = _validate_file(contract_file, text, rep, fname, timezone)
    return df, problems + more, starts


def _read_settings(folder: Path) -> tuple[dict[str, Any], HospitalSettings | None, list[Problem]]:
    """settings.toml -> (raw mapping, typed settings or None, problems naming the key)."""
    path = folder / C.SETTINGS_FILE
    fname = C.SETTINGS_FILE
    if not path.exists():
        return {}, None, [Problem(fname, None, None, "required file is missing")]
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return {}, None, [Problem(fname, None, None, _bad_byte(path.read_bytes(), exc)[1])]
    except tomllib.TOMLDecodeError as exc:
        # TOML has lines, not rows: the line is in tomllib's message ("at line 6, column 5").
        return {}, None, [Problem(fname, None, None, f"not valid TOML: {exc}")]
    settings, problems = parse_settings(raw, fname)
    return raw, settings, problems


def _reference_problems(
    frames: dict[str, pd.DataFrame], extra_lines: list[str]
) -> dict[str, list[Problem]]:
    """References between files: rooms, surgeons and service lines must be known."""
    out: dict[str, list[Problem]] = {name: [] for name in frames}
    if not {"cases.csv", "rooms.csv", "surgeons.csv"} <= frames.keys():
        return out  # a file that cannot be read is reported as such; references wait for it
    rooms = set(frames["rooms.csv"]["room_id"].dropna())
    surgeons = frames["surgeons.csv"]
    known_surgeons = set(surgeons["surgeon_id"].dropna()) | {"unknown"}
    service_lines = set(surgeons["service_line"].dropna()) | set(extra_lines)

    def check(fname: str, col: str, known: set[str], text: str) -> None:
        df = frames[fname]
        v = df[col]
        for i in df.index[v.notna() & ~v.isin(list(known))]:
            out[fname].append(Problem(fname, int(i) + 1, col, text.format(v=df.at[i, col])))

    sl_text = "unknown service line {v!r}: not a service line of surgeons.csv (nor of settings.service_lines)"
    check("cases.csv", "room_id", rooms, "room {v!r} is not in rooms.csv")
    check("cases.csv", "surgeon_id", known_surgeons, "surgeon {v!r} is not in surgeons.csv")
    check("cases.csv", "service_line", service_lines, sl_text)
    if "blocks.csv" in frames and len(frames["blocks.csv"]):
        check("blocks.csv", "room_id", rooms, "room {v!r} is not in rooms.csv")
        check("blocks.csv", "service_line", service_lines, sl_text)
        check("blocks.csv", "surgeon_id", known_surgeons, "surgeon {v!r} is not in surgeons.csv")
        out["blocks.csv"] += _block_overlaps(frames["blocks.csv"])
    return out


def _block_overlaps(blocks: pd.DataFrame) -> list[Problem]:
    """Blocks of one room and date must not overlap; each clash names the block it hits."""
    b = blocks.assign(_s=_minutes(blocks["start_time"]), _e=_minutes(blocks["end_time"]))
    b = b.dropna(subset=["room_id", "date", "_s", "_e"]).sort_values(["room_id", "date", "_s"], kind="stable")
    # Fast path (vectorised): no block starts before the latest end of the earlier ones of its room-day.
    latest = b.assign(_m=b.groupby(["room_id", "date"], sort=False)["_e"].cummax()).groupby(
        ["room_id", "date"], sort=False)["_m"].shift()
    if not (b["_s"] < latest).any():
        return []
    problems = []
    for _, g in b.groupby(["room_id", "date"], sort=False):
        end, owner = -1.0, None
        for i, s, e in zip(g.index, g["_s"], g["_e"]):
            if owner is not None and s < end:
                problems.append(
                    Problem(
                        "blocks.csv",
                        int(i) + 1,
                        "start_time",
                        f"block {blocks.at[i, 'start_time']}-{blocks.at[i, 'end_time']} overlaps the block in row "
                        f"{int(owner) + 1} ({blocks.at[owner, 'start_time']}-{blocks.at[owner, 'end_time']}) "
                        f"in room {blocks.at[i, 'room_id']} on {blocks.at[i, 'date']:%Y-%m-%d}",
                    )
                )
            if e > end:
                end, owner = e, i
    return sorted(problems, key=lambda p: p.row or 0)


def _dedupe(problems: list[Problem], starts: list[int] | None = None) -> list[Problem]:
    """One problem per row and column (the first found: a value that does not parse is not
    reported again as missing); file-level problems once each. Sorted by row, stable.

    Where blank rows or multi-line cells put a row on another line than ``row + 1``, the
    problem says which line.
    """
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.row, p.column) if p.row is not None else (None, p.column, p.problem)
        if key in seen:
            continue
        seen.add(key)
        if starts and p.row is not None and 0 < p.row <= len(starts) and starts[p.row - 1] != p.row + 1:
            p = replace(p, problem=f"{p.problem} [row {p.row} is on line {starts[p.row - 1]} of the file]")
        out.append(p)
    return sorted(out, key=lambda p: -1 if p.row is None else p.row)


def _quarantine(
    contract_file: str,
    df: pd.DataFrame,
    problems: list[Problem],
    report: FileReport,
    params: ValidationParams,
    fname: str | None = None,
    starts: list[int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set aside rows with problems; reject the file when too many rows are bad.

    ``df`` is indexed by row - 1. Only cases.csv is ever partially used.
    """
    fname = fname or contract_file
    problems = _dedupe(problems, starts)
    rows = sorted({p.row for p in problems if p.row is not None})
    header: list[Problem] = []
    if any(p.row is None for p in problems):
        report.rejected = True
    n = len(df)
    share = len(rows) / max(n, 1)
    if rows and contract_file != "cases.csv":
        report.rejected = True
        header.append(
            Problem(fname, None, None, f"{len(rows)} of {n} rows have problems: any bad row rejects {fname} (it is never partially used)")
        )
    elif rows and share > params.max_quarantine_share:
        report.rejected = True
        by_col = Counter(p.column for p in {(p.row, p.column): p for p in problems if p.row is not None}.values())
        common = ", ".join(f"'{c}' {k}" for c, k in by_col.most_common(3) if c is not None)
        header.append(
            Problem(
                fname,
                None,
                None,
                f"{len(rows)} of {n} rows ({share:.1%}) have problems, more than the allowed "
                f"{params.max_quarantine_share:.1%}: the file is rejected"
                + (f" (rows with problems by column: {common})" if common else ""),
            )
        )
    report.problems += header + problems
    report.n_quarantined = 0 if report.rejected else len(rows)
    has_id = "case_id" in df.columns
    qrows = quarantine_frame(
        [
            {
                "file": fname,
                "row": p.row,
                "case_id": df.at[p.row - 1, "case_id"] if has_id and p.row - 1 in df.index else None,
                "column": p.column,
                "reason": p.problem,
            }
            for p in problems
            if p.row is not None
        ]
    )
    return df.drop(index=[r - 1 for r in rows if r - 1 in df.index]).reset_index(drop=True), qrows


def load_hospital(folder: str | Path, params: ValidationParams | None = None) -> LoadedHospital:
    """Read and validate a hospital folder.

    Raises :class:`InputError` (exit 2) naming file, row and column for every problem that
    rejects the folder. Rows that can be set aside are quarantined and listed in the report.
    """
    params = params or ValidationParams()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"hospital folder {str(folder)!r} does not exist", file=str(folder))
    report = QualityReport()
    frames: dict[str, pd.DataFrame] = {}
    row_problems: dict[str, list[Problem]] = {}
    starts: dict[str, list[int]] = {}
    # Settings first: the cases' room time is measured in the hospital's time zone.
    raw_settings, settings, setting_problems = _read_settings(folder)
    timezone = settings.timezone if settings else None
    for fname, (kinds, _req, required) in C.FILES.items():
        path = folder / fname
        rep = report.files.setdefault(fname, FileReport(fname))
        if not path.exists():
            if required:
                rep.rejected = True
                rep.problems.append(Problem(fname, None, None, "required file is missing"))
            else:
                rep.warnings.append("file not given (optional)")
                frames[fname] = _empty_frame(kinds)
                row_problems[fname] = []
            continue
        try:
            frames[fname], row_problems[fname], starts[fname] = _load_file(path, fname, rep, timezone=timezone)
        except InputError as exc:
            rep.rejected = True
            rep.problems += exc.problems
    # Every file is checked as far as it can be, so one run lists every problem.
    # Reference checks still run when settings.toml is broken, so one run lists every problem.
    raw_lines = raw_settings.get("service_lines")
    extra_lines = settings.service_lines if settings else [s for s in raw_lines if isinstance(s, str)] if isinstance(raw_lines, list) else []
    for fname, probs in _reference_problems(frames, extra_lines).items():
        row_problems[fname] += probs
    quarantined = []
    for fname in frames:
        frames[fname], q = _quarantine(
            fname, frames[fname], row_problems[fname], report.files[fname], params, starts=starts.get(fname)
        )
        quarantined.append(q)
    # Reference tables first: their problems are often the cause of the cases' problems.
    order = ["rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv", "cases.csv"]
    files = sorted(report.files.values(), key=lambda f: order.index(f.file) if f.file in order else len(order))
    errors = setting_problems + [p for f in files if f.rejected for p in f.problems]
    if errors:
        raise InputError(errors)
    report.quarantine = pd.concat(quarantined, ignore_index=True) if any(len(q) for q in quarantined) else quarantine_frame()
    if report.n_quarantined:
        log.warning("%s: %d rows quarantined", folder, report.n_quarantined)
    hospital = Hospital(
        name=str(settings.hospital_name or folder.name),
        cases=frames["cases.csv"],
        rooms=frames["rooms.csv"],
        surgeons=frames["surgeons.csv"],
        blocks=frames["blocks.csv"],
        staffing=frames["staffing.csv"],
        settings=settings,
        source=str(folder.resolve()),
    )
    return LoadedHospital(hospital, report)


def load_cases(path: str | Path, params: ValidationParams | None = None) -> tuple[pd.DataFrame, QualityReport]:
    """Read and validate a lone cases.csv (no reference checks): for ``evaluate`` on case tables."""
    params = params or ValidationParams()
    path = Path(path)
    fname = path.name
    if not path.is_file():
        raise InputError("file does not exist", file=str(path))
    report = QualityReport()
    rep = report.files.setdefault("cases.csv", FileReport(fname))
    df, problems, starts = _load_file(path, "cases.csv", rep, fname)
    df, q = _quarantine("cases.csv", df, problems, rep, params, fname, starts)
    if rep.rejected:
        raise InputError(rep.problems)
    report.quarantine = q
    return df, report
