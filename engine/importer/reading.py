"""Reading the source: CSV, Parquet or Excel into a frame of trimmed strings."""
from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InputError, Problem
from engine.importer.spec import SOURCE_FORMATS, Mapping, SourceOptions


# ---------------------------------------------------------------------------------------------
# Reading the source

def _cell_text(value: Any) -> Any:
    """A typed cell (Excel, Parquet) as the text the CSV reader would have produced."""
    if value is None or value is pd.NaT:
        return pd.NA
    if isinstance(value, float):
        if math.isnan(value):
            return pd.NA
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, np.floating):
        return _cell_text(float(value))
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, (dt.timedelta, pd.Timedelta)):
        # Excel durations / Parquet time-of-day as timedelta: render as HH:MM:SS.
        secs = int(pd.Timedelta(value).total_seconds())
        return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if pd.isna(value) if not isinstance(value, (list, tuple, dict, np.ndarray)) else False:
        return pd.NA
    return str(value)


def _clean_text(s: pd.Series) -> pd.Series:
    """Any cells -> trimmed text; empty strings become missing. Result: object Series of str/NA."""
    s = s.astype(object)
    if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        s = s.map(_cell_text)
    present = s.notna()
    out = pd.Series(pd.NA, index=s.index, dtype=object)
    if present.any():
        out[present] = s[present].str.strip()
    return out.where(out != "", pd.NA) if present.any() else out


def _frame_from_rows(header: list[Any], rows: list[list[Any]], file: str,
                     warnings: list[Problem] | None) -> pd.DataFrame:
    """Build the string frame; name blank headers, report duplicated ones."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        name = _cell_text(h)
        name = "" if name is pd.NA else str(name).replace("\ufeff", "").strip()
        if not name:
            name = f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            new = f"{name} ({seen[name]})"
            if warnings is not None:
                warnings.append(Problem(file, None, name, f"duplicated header name: column "
                                        f"{i + 1} is read as '{new}'"))
            name = new
        else:
            seen[name] = 1
        names.append(name)
    width = len(names)
    fixed = []
    for i, r in enumerate(rows):
        extra = [v for v in r[width:] if _cell_text(v) is not pd.NA and str(_cell_text(v)).strip()]
        if extra and warnings is not None:
            warnings.append(Problem(file, i + 1, None, f"the row has {len(r)} fields, the header "
                                    f"{width}: values past the last column are ignored"))
        fixed.append(list(r[:width]) + [None] * (width - len(r)))
    df = pd.DataFrame(fixed, columns=names, dtype=object) if fixed else \
        pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    for c in df.columns:
        df[c] = _clean_text(df[c])
    # Rows that are entirely empty (blank lines, Excel formatting) are not data. The index
    # keeps each row's place in the file, so problems name the row the user sees.
    df = df[df.notna().any(axis=1)] if len(df) else df
    df.attrs["duplicated_headers"] = [n for n, k in seen.items() if k > 1]
    return df


def _source_format(path: Path, mapping: Mapping | None) -> str:
    if mapping is not None and mapping.source.format:
        return mapping.source.format
    fmt = SOURCE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(Problem(str(path), None, None,
                                 f"unknown file type '{path.suffix}' (known: "
                                 f"{', '.join(sorted(SOURCE_FORMATS))}; or set source.format)"))
    return fmt


def read_source(path: str | Path, mapping: Mapping | None = None,
                warnings: list[Problem] | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or Excel export into a frame of trimmed strings.

    Every cell becomes text (typed Excel/Parquet cells are rendered in ISO forms: dates
    ``YYYY-MM-DD``, datetimes ``YYYY-MM-DD HH:MM:SS``, times ``HH:MM:SS``, whole numbers
    without ``.0``); empty cells are ``NA``. Duplicated header names are renamed ``Name (2)``
    and reported in ``warnings`` (and ``df.attrs["duplicated_headers"]``). Unknown file type or
    an unreadable file raises ``InputError`` naming the file.
    """
    path = Path(path)
    opts = mapping.source if mapping is not None else SourceOptions()
    fmt = _source_format(path, mapping)
    file = str(path)
    if not path.is_file():
        raise InputError(Problem(file, None, None, "source file not found"))
    skip = opts.header_row - 1
    try:
        if fmt == "csv":
            delimiter = opts.delimiter
            if mapping is None or mapping.source.format is None:
                if path.suffix.lower() == ".tsv" and delimiter == ",":
                    delimiter = "\t"
            with open(path, newline="", encoding=opts.encoding) as fh:
                rows = list(csv.reader(fh, delimiter=delimiter))
            rows = rows[skip:]
            if not rows:
                raise InputError(Problem(file, None, None, "the file is empty (no header row)"))
            return _frame_from_rows(rows[0], rows[1:], file, warnings)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            header = list(table.column_names)
            cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
            rows = [list(r) for r in zip(*cols)] if cols else []
            return _frame_from_rows(header, rows, file, warnings)
        # Excel: openpyxl gives typed cells (datetime, time, float); _cell_text renders them.
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            if isinstance(opts.sheet, int):
                if opts.sheet >= len(wb.sheetnames):
                    raise InputError(Problem(file, None, None, f"no sheet number {opts.sheet} "
                                             f"(the workbook has {len(wb.sheetnames)})"))
                ws = wb.worksheets[opts.sheet]
            else:
                if opts.sheet not in wb.sheetnames:
                    raise InputError(Problem(file, None, None, f"no sheet named '{opts.sheet}' "
                                             f"(sheets: {', '.join(wb.sheetnames)})"))
                ws = wb[opts.sheet]
            rows = [list(r) for r in ws.iter_rows(values_only=True)][skip:]
        finally:
            wb.close()
        if not rows:
            raise InputError(Problem(file, None, None, "the sheet is empty (no header row)"))
        return _frame_from_rows(rows[0], rows[1:], file, warnings)
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(Problem(file, None, None, f"cannot decode the file as "
                                 f"{opts.encoding} ({exc.reason} at byte {exc.start}); set "
                                 "source.encoding in the mapping")) from exc
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault
        raise InputError(Problem(file, None, None,
                                 f"cannot read as {fmt}: {type(exc).__name__}: {exc}")) from exc
