"""schedule.csv (CONTRACTS.md section 2): column kinds for writing and reading."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.contract import SCHEDULE_COLUMNS, SCHEDULE_KINDS


def read_schedule(path: str | Path) -> pd.DataFrame:
    """Read a contract schedule.csv with typed dates and times."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    for col, kind in SCHEDULE_KINDS.items():
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], format="%Y-%m-%d" if kind == "date" else "ISO8601")
    return df
