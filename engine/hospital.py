"""Read and validate a hospital folder (CONTRACTS.md section 1).

Every command that reads a hospital goes through :func:`load_hospital`, so every command
validates the same way. Validation is in three steps:

1. read each file as text (a missing or unreadable file, a missing required column or a
   duplicated header rejects the file);
2. parse each column by its contract kind and check values with pandera schemas
   (ranges, known codes, uniqueness, row rules such as ``wheels_out`` after ``wheels_in``);
3. check references between files (a case's ``room_id`` must exist in rooms.csv, ...).

Rows of cases.csv with problems are quarantined with their reasons and counted; when the
quarantined share of a file passes ``ValidationParams.max_quarantine_share`` the whole file is
rejected. The small reference tables (rooms, surgeons, blocks, staffing) are never partially
used: any bad row there rejects the folder, because silently dropping a room or a staffing
day would change capacity.
"""
from __future__ import annotations

import csv
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from engine import contract as C
from engine.errors import InputError, Problem

log = logging.getLogger(__name__)

_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_PRIME_RE = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class ValidationParams:
    """How strict validation is.

    ``max_quarantine_share``: the share (0..1) of a file's rows that may be quarantined before
    the whole file is rejected.
    """

    max_quarantine_share: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_quarantine_share <= 1.0:
            raise ValueError(
                f"max_quarantine_share must be within 0..1, got {self.max_quarantine_share!r}"
            )


@dataclass
class Hospital:
    """A validated hospital: typed frames plus settings.

    Dates are ``datetime64`` at midnight, datetimes ``datetime64``, times ``HH:MM`` strings,
    lists ``;``-separated strings ("" when empty), numbers float.
    """

    name: str
    cases: pd.DataFrame
    rooms: pd.DataFrame
    surgeons: pd.DataFrame
    blocks: pd.DataFrame
    staffing: pd.DataFrame
    settings: dict[str, Any]
    source: str = ""

    def as_of(self) -> pd.Timestamp:
        """The hospital's clock: ``settings.as_of`` when given (demo data), else today."""
        if self.settings.get("as_of"):
            return pd.Timestamp(str(self.settings["as_of"]))
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
    """Validation result for a folder: per-file reports and the quarantined rows."""

    files: dict[str, FileReport] = field(default_factory=dict)
    quarantine: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["file", "row", "case_id", "column", "reason"])
    )

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
            ]
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


def _read_text_csv(path: Path, fname: str) -> pd.DataFrame:
    """Read a CSV as text. Raises InputError for unreadable files and duplicated headers."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=fname) from exc
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=fname) from exc
    if not header or all(not h.strip() for h in header):
        raise InputError("file is empty: no header row", file=fname)
    names = [h.strip() for h in header]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputError(
            [Problem(fname, None, d, "column name appears more than once in the header") for d in dups]
        )
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) - 1 if m else None
        raise InputError(
            Problem(fname, row, None, f"malformed CSV: {exc}".splitlines()[0])
        ) from exc
    df.columns = names
    for col in df.columns:
        df[col] = df[col].str.strip().replace("", pd.NA)
    return df


def _parse_column(
    raw: pd.Series, kind: str, fname: str, col: str
) -> tuple[pd.Series, list[Problem]]:
    """Parse one text column to its contract kind; report each value that does not parse."""
    present = raw.notna()
    if kind == "date":
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        what = "a date (YYYY-MM-DD)"
    elif kind == "datetime":
        parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
        what = "a datetime (YYYY-MM-DDTHH:MM)"
    elif kind in ("float", "int"):
        parsed = pd.to_numeric(raw, errors="coerce").astype("float64")
        what = "a number"
    elif kind == "time":
        ok = raw.fillna("").str.match(_TIME_RE)
        parsed = raw.where(ok)
        parsed = parsed.map(lambda t: f"{int(t.split(':')[0]):02d}:{t.split(':')[1]}", na_action="ignore")
        what = "a time of day (HH:MM)"
    elif kind == "list":
        parsed = raw.fillna("").map(
            lambda v: ";".join(sorted({p.strip().lower() for p in v.split(";") if p.strip()}))
        )
        return parsed, []
    else:
        return raw, []
    bad = present & parsed.isna()
    problems = [
        Problem(fname, int(i) + 1, col, f"{raw[i]!r} is not {what}") for i in raw.index[bad]
    ]
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


def _schema_problems(schema: pa.DataFrameSchema, df: pd.DataFrame, fname: str) -> list[Problem]:
    """Run a pandera schema lazily and turn its failure cases into row problems."""
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        problems: list[Problem] = []
        seen: set[tuple[Any, str]] = set()
        for rec in fc.itertuples(index=False):
            check = str(rec.check)
            col = rec.column if isinstance(rec.column, str) else None
            idx = rec.index
            row = int(idx) + 1 if idx is not None and not pd.isna(idx) else None
            meta = _CHECK_TEXT.get(check)
            if meta is not None:
                col = meta[0]
            key = (row, check if meta is not None else f"{check}:{col}")
            if key in seen:
                continue
            seen.add(key)
            if meta is not None:
                text = meta[1]
            elif check == "field_uniqueness":
                text = f"duplicate value {rec.failure_case!r}: {col} must be unique"
            elif check == "not_nullable":
                text = "required value is missing"
            elif check.startswith("in_range") or check.startswith("greater") or check.startswith("less"):
                text = f"value {rec.failure_case!r} is out of range ({check})"
            elif check.startswith("isin"):
                text = f"unknown value {rec.failure_case!r}; allowed: {check[5:-1]}"
            else:
                text = f"{rec.failure_case!r} fails {check}"
            problems.append(Problem(fname, row, col, text))
        return problems
    return []


# Row rules spanning several columns: check name -> (column to blame, plain message).
_CHECK_TEXT: dict[str, tuple[str, str]] = {
    "completed_has_wheels": ("wheels_in", "a completed case needs wheels_in and wheels_out"),
    "wheels_order": ("wheels_out", "wheels_out is not after wheels_in"),
    "duration_range": (
        "wheels_out",
        f"room time (wheels_out - wheels_in) is outside {C.MIN_DURATION_MINUTES:.0f}.."
        f"{C.MAX_DURATION_MINUTES:.0f} minutes",
    ),
    "procedure_within_wheels": (
        "procedure_start",
        "procedure_start/procedure_end fall outside wheels_in..wheels_out",
    ),
    "open_before_close": ("close_time", "close_time is not after open_time"),
    "block_start_before_end": ("end_time", "end_time is not after start_time"),
    "teams_nonnegative": ("anesthesia_teams", "staffing counts must be whole numbers >= 0"),
}


def _minutes(t: pd.Series) -> pd.Series:
    return t.map(lambda v: int(v[:2]) * 60 + int(v[3:]), na_action="ignore").astype("float64")


def _cases_schema() -> pa.DataFrameSchema:
    def completed_has_wheels(d: pd.DataFrame) -> pd.Series:
        done = d["status"] == "completed"
        return ~done | (d["wheels_in"].notna() & d["wheels_out"].notna())

    def wheels_order(d: pd.DataFrame) -> pd.Series:
        both = d["wheels_in"].notna() & d["wheels_out"].notna()
        return ~both | (d["wheels_out"] > d["wheels_in"])

    def duration_range(d: pd.DataFrame) -> pd.Series:
        both = d["wheels_in"].notna() & d["wheels_out"].notna() & (d["wheels_out"] > d["wheels_in"])
        minutes = (d["wheels_out"] - d["wheels_in"]).dt.total_seconds() / 60
        ok = minutes.between(C.MIN_DURATION_MINUTES, C.MAX_DURATION_MINUTES)
        return ~both | ok

    def procedure_within_wheels(d: pd.DataFrame) -> pd.Series:
        ok = pd.Series(True, index=d.index)
        for col in ("procedure_start", "procedure_end"):
            if col in d.columns:
                v = d[col]
                test = v.notna() & d["wheels_in"].notna() & d["wheels_out"].notna()
                ok &= ~test | ((v >= d["wheels_in"]) & (v <= d["wheels_out"]))
        return ok

    num = {"nullable": True, "required": False}
    return pa.DataFrameSchema(
        {
            "case_id": pa.Column(str, unique=True, nullable=False),
            "surgery_date": pa.Column("datetime64[us]", nullable=False, coerce=True),
            "status": pa.Column(str, pa.Check.isin(list(C.CASE_STATUSES)), nullable=False),
            "service_line": pa.Column(str, nullable=False),
            "procedure_code": pa.Column(str, nullable=False),
            "surgeon_id": pa.Column(str, nullable=False),
            "booked_minutes": pa.Column(float, pa.Check.in_range(1, 1440), **num),
            "urgency": pa.Column(str, pa.Check.isin(list(C.URGENCIES)), **num),
            "patient_age": pa.Column(float, pa.Check.in_range(0, 120), **num),
            "asa_class": pa.Column(float, pa.Check.isin([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), **num),
            "bmi": pa.Column(float, pa.Check.in_range(8, 120), **num),
        },
        checks=[
            pa.Check(completed_has_wheels, name="completed_has_wheels"),
            pa.Check(wheels_order, name="wheels_order"),
            pa.Check(duration_range, name="duration_range"),
            pa.Check(procedure_within_wheels, name="procedure_within_wheels"),
        ],
    )


def _rooms_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "room_id": pa.Column(str, unique=True, nullable=False),
            "site": pa.Column(str, nullable=False),
            "open_time": pa.Column(str, nullable=False),
            "close_time": pa.Column(str, nullable=False),
        },
        checks=[
            pa.Check(
                lambda d: _minutes(d["close_time"]) > _minutes(d["open_time"]),
                name="open_before_close",
            )
        ],
    )


def _surgeons_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "surgeon_id": pa.Column(str, unique=True, nullable=False),
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
        checks=[
            pa.Check(
                lambda d: _minutes(d["end_time"]) > _minutes(d["start_time"]),
                name="block_start_before_end",
            )
        ],
    )


def _staffing_schema() -> pa.DataFrameSchema:
    def whole_nonneg(d: pd.DataFrame) -> pd.Series:
        ok = pd.Series(True, index=d.index)
        for col in ("staffed_rooms", "anesthesia_teams", "pacu_beds"):
            ok &= (d[col] >= 0) & (d[col] == d[col].round())
        return ok

    cnt = {"nullable": False}
    return pa.DataFrameSchema(
        {
            "date": pa.Column("datetime64[us]", unique=True, coerce=True, **cnt),
            "staffed_rooms": pa.Column(float, **cnt),
            "anesthesia_teams": pa.Column(float, **cnt),
            "pacu_beds": pa.Column(float, **cnt),
        },
        checks=[pa.Check(whole_nonneg, name="teams_nonnegative")],
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


def _validate_file(
    fname: str,
    df_text: pd.DataFrame,
    report: FileReport,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse and check one file; returns the typed frame and row problems."""
    kinds, required, _ = C.FILES[fname]
    missing = [c for c in required if c not in df_text.columns and not (fname == "cases.csv" and c == "surgeon_id")]
    if missing:
        raise InputError(
            [Problem(fname, None, c, "required column is missing") for c in missing]
        )
    df, problems = _parse_frame(df_text, kinds, fname)
    if fname == "cases.csv":
        df = _normalise_cases(df, report)
    # Add absent optional columns so later code can rely on them.
    for col, kind in kinds.items():
        if col not in df.columns:
            df[col] = _empty_frame({col: kind})[col].reindex(df.index)
            if kind == "list":
                df[col] = ""
    problems += _schema_problems(_SCHEMAS[fname](), df, fname)
    return df, problems


def _read_settings(folder: Path) -> dict[str, Any]:
    path = folder / C.SETTINGS_FILE
    fname = C.SETTINGS_FILE
    if not path.exists():
        raise InputError("required file is missing", file=fname)
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise InputError(
            Problem(fname, int(m.group(1)) - 1 if m else None, None, f"not valid TOML: {exc}")
        ) from exc
    problems = [Problem(fname, None, k, "required setting is missing") for k in C.SETTINGS_REQUIRED if k not in settings]
    for key, lo, hi in (("turnover_minutes", 0, 240), ("pacu_minutes", 0, 1440)):
        v = settings.get(key)
        if key in settings and (not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi):
            problems.append(Problem(fname, None, key, f"{v!r} must be a number of minutes within {lo}..{hi}"))
    if "prime_time" in settings:
        m = _PRIME_RE.match(str(settings["prime_time"]))
        if not m or (int(m.group(1)) * 60 + int(m.group(2))) >= (int(m.group(3)) * 60 + int(m.group(4))):
            problems.append(
                Problem(fname, None, "prime_time", f"{settings['prime_time']!r} must look like \"07:30-15:30\" with start before end")
            )
    if "as_of" in settings:
        try:
            pd.Timestamp(str(settings["as_of"]))
        except ValueError:
            problems.append(Problem(fname, None, "as_of", f"{settings['as_of']!r} is not a date"))
    if problems:
        raise InputError(problems)
    return settings


def _reference_problems(
    frames: dict[str, pd.DataFrame], settings: dict[str, Any]
) -> dict[str, list[Problem]]:
    """References between files: rooms, surgeons and service lines must be known."""
    out: dict[str, list[Problem]] = {name: [] for name in frames}
    rooms = set(frames["rooms.csv"]["room_id"].dropna())
    surgeons = frames["surgeons.csv"]
    known_surgeons = set(surgeons["surgeon_id"].dropna()) | {"unknown"}
    service_lines = set(surgeons["service_line"].dropna()) | set(settings.get("service_lines", []))
    cases = frames["cases.csv"]

    def rows_not_in(df: pd.DataFrame, col: str, known: set[str]) -> pd.Index:
        v = df[col]
        return df.index[v.notna() & ~v.isin(list(known))]

    for i in rows_not_in(cases, "room_id", rooms):
        out["cases.csv"].append(Problem("cases.csv", int(i) + 1, "room_id", f"room {cases.at[i, 'room_id']!r} is not in rooms.csv"))
    for i in rows_not_in(cases, "surgeon_id", known_surgeons):
        out["cases.csv"].append(Problem("cases.csv", int(i) + 1, "surgeon_id", f"surgeon {cases.at[i, 'surgeon_id']!r} is not in surgeons.csv"))
    for i in rows_not_in(cases, "service_line", service_lines):
        out["cases.csv"].append(
            Problem("cases.csv", int(i) + 1, "service_line", f"unknown service line {cases.at[i, 'service_line']!r} (not in surgeons.csv or settings.service_lines)")
        )
    blocks = frames.get("blocks.csv")
    if blocks is not None and len(blocks):
        for i in rows_not_in(blocks, "room_id", rooms):
            out["blocks.csv"].append(Problem("blocks.csv", int(i) + 1, "room_id", f"room {blocks.at[i, 'room_id']!r} is not in rooms.csv"))
        for i in rows_not_in(blocks, "service_line", service_lines):
            out["blocks.csv"].append(Problem("blocks.csv", int(i) + 1, "service_line", f"unknown service line {blocks.at[i, 'service_line']!r}"))
        for i in rows_not_in(blocks, "surgeon_id", known_surgeons):
            out["blocks.csv"].append(Problem("blocks.csv", int(i) + 1, "surgeon_id", f"surgeon {blocks.at[i, 'surgeon_id']!r} is not in surgeons.csv"))
        out["blocks.csv"] += _block_overlaps(blocks)
    return out


def _block_overlaps(blocks: pd.DataFrame) -> list[Problem]:
    b = blocks.assign(_s=_minutes(blocks["start_time"]), _e=_minutes(blocks["end_time"]))
    b = b.sort_values(["room_id", "date", "_s"])
    prev_end = b.groupby(["room_id", "date"])["_e"].shift()
    clash = b.index[(b["_s"] < prev_end).fillna(False)]
    return [
        Problem("blocks.csv", int(i) + 1, "start_time", f"block overlaps an earlier block in room {blocks.at[i, 'room_id']} on the same date")
        for i in clash
    ]


def _quarantine(
    fname: str,
    df: pd.DataFrame,
    problems: list[Problem],
    report: FileReport,
    params: ValidationParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set aside rows with problems; reject the file when too many rows are bad."""
    report.problems += problems
    rows = sorted({p.row for p in problems if p.row is not None})
    file_level = [p for p in problems if p.row is None]
    if file_level:
        report.rejected = True
    idx = [r - 1 for r in rows]
    if fname != "cases.csv" and idx:
        report.rejected = True
    share = len(idx) / max(len(df), 1)
    if idx and share > params.max_quarantine_share:
        report.rejected = True
        report.problems.insert(
            0,
            Problem(
                fname,
                None,
                None,
                f"{len(idx)} of {len(df)} rows ({share:.1%}) have problems, more than the allowed "
                f"{params.max_quarantine_share:.1%}: the file is rejected",
            ),
        )
    report.n_quarantined = len(idx) if not report.rejected else 0
    key = "case_id" if "case_id" in df.columns else None
    qrows = pd.DataFrame(
        [
            {
                "file": fname,
                "row": p.row,
                "case_id": df.at[p.row - 1, key] if key and p.row - 1 in df.index else None,
                "column": p.column,
                "reason": p.problem,
            }
            for p in problems
            if p.row is not None
        ],
        columns=["file", "row", "case_id", "column", "reason"],
    )
    return df.drop(index=idx).reset_index(drop=True), qrows


def load_hospital(folder: str | Path, params: ValidationParams | None = None) -> LoadedHospital:
    """Read and validate a hospital folder.

    Raises :class:`InputError` (exit 2) naming file, row and column for every problem that
    rejects the folder. Rows that can be set aside are quarantined and listed in the report.
    """
    params = params or ValidationParams()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"hospital folder {str(folder)!r} does not exist", file=str(folder))
    settings = _read_settings(folder)
    report = QualityReport()
    frames: dict[str, pd.DataFrame] = {}
    row_problems: dict[str, list[Problem]] = {}
    fatal: list[Problem] = []
    for fname, (kinds, _req, required) in C.FILES.items():
        path = folder / fname
        rep = report.files.setdefault(fname, FileReport(fname))
        if not path.exists():
            if required:
                fatal.append(Problem(fname, None, None, "required file is missing"))
            else:
                rep.warnings.append("file not given (optional)")
                frames[fname] = _empty_frame(kinds)
                row_problems[fname] = []
            continue
        try:
            text = _read_text_csv(path, fname)
            rep.n_rows = len(text)
            frames[fname], row_problems[fname] = _validate_file(fname, text, rep)
        except InputError as exc:
            rep.rejected = True
            rep.problems += exc.problems
            fatal += exc.problems
    if fatal:
        raise InputError(fatal)
    for fname, probs in _reference_problems(frames, settings).items():
        row_problems[fname] += probs
    quarantined = []
    for fname in C.FILES:
        frames[fname], q = _quarantine(fname, frames[fname], row_problems[fname], report.files[fname], params)
        quarantined.append(q)
    if report.rejected:
        raise InputError(report.errors())
    non_empty = [q for q in quarantined if len(q)]
    if non_empty:
        report.quarantine = pd.concat(non_empty, ignore_index=True)
    if report.n_quarantined:
        log.warning("%s: %d rows quarantined", folder, report.n_quarantined)
    hospital = Hospital(
        name=str(settings.get("hospital_name") or folder.name),
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
    text = _read_text_csv(path, fname)
    rep.n_rows = len(text)
    df, problems = _validate_file("cases.csv", text, rep)
    df, q = _quarantine("cases.csv", df, problems, rep, params)
    if rep.rejected:
        raise InputError(rep.problems)
    report.quarantine = q
    return df, report
