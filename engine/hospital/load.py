"""Steps 2 and 3 of validation per file and across files (references, block overlaps), the
quarantine of bad case rows, and :func:`load_hospital` / :func:`load_cases`."""
from __future__ import annotations

import logging
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from engine import contract as C
from engine.errors import InputError, Problem
from engine.hospital.model import FileReport, Hospital, LoadedHospital, QualityReport, quarantine_frame, ValidationParams
from engine.hospital.reading import _bad_byte, _parse_frame, _read_text_csv
from engine.hospital.schemas import _cases_schema, _empty_frame, _minutes, _schema_problems, _SCHEMAS
from engine.settings import HospitalSettings, parse_settings

log = logging.getLogger("engine.hospital")


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


# What an optional file's absence means downstream, said where it is noticed.
_ABSENT_MEANS = {"staffing.csv": ": no room is staffed on any date, so a plan defers every case "
                                 "(`import` infers staffing from history)"}


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
        # One column holding the whole header: the file is separated by something else than commas.
        sep = next((s for s in (";", "\t", "|") if s in str(df_text.columns[0])), None) if len(df_text.columns) == 1 else None
        if sep is not None:
            missing.insert(0, Problem(fname, None, None, f"the header is one column holding {sep!r}: the hospital "
                                      f"folder's CSV files are comma-separated (a file with {sep!r} between "
                                      f"columns goes through `import` with a mapping, or is saved as CSV with commas)"))
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
                rep.warnings.append("file not given (optional)" + _ABSENT_MEANS.get(fname, ""))
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
