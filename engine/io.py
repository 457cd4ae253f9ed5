"""Whole-or-nothing file output: nothing is ever half-written."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd


def format_for_contract(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Render typed columns in the contract's text forms.

    ``kinds`` maps column -> kind as in ``engine.contract`` (date, datetime, time, ...);
    dates become ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM``. Other columns pass through.
    """
    out = df.copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            continue
        s = out[col]
        if kind in ("date", "datetime") and pd.api.types.is_datetime64_any_dtype(s):
            fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M"
            out[col] = s.dt.strftime(fmt)
    return out


def write_csv(df: pd.DataFrame, path: Path, kinds: dict[str, str] | None = None) -> None:
    """Write a contract CSV: no index, ISO dates, empty cells for missing values."""
    if kinds:
        df = format_for_contract(df, kinds)
    df.to_csv(path, index=False, na_rep="")


def atomic_write_file(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only if it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, payload: dict[str, Any]) -> None:
    atomic_write_file(path, lambda p: p.write_text(json.dumps(payload, indent=2, default=str)))


def atomic_write_folder(out_dir: str | Path, write: Callable[[Path], None]) -> None:
    """Build a whole folder in a sibling temp dir, then swap it in.

    ``write(tmp_dir)`` fills the temp dir. If it raises, ``out_dir`` is left exactly as it was.
    An existing ``out_dir`` is replaced only after the new one is complete.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
