"""Step 1 of validation: each file read as text (encoding, quotes, headers) and each column parsed
by its contract kind, with every problem naming the file, row and column."""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InputError, Problem


_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# A time-zone suffix after a time of day: "...T07:30Z", "...T07:30+01:00".
_TZ_RE = re.compile(r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


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
