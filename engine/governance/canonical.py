"""Canonical JSON (the form audit hashes are taken over) and schedule <-> JSON."""
from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

from engine.hospital import Hospital

from engine.contract import SCHEDULE_COLUMNS
from engine.contract import SCHEDULE_TIME_COLUMNS as _TIME_COLS


def clean(o: Any) -> Any:
    """A JSON-native copy: numpy scalars to Python, times to ISO text, NaN/NaT to None, keys to str."""
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(float(o)) else None
    if isinstance(o, pd.Timestamp):
        return None if pd.isna(o) else o.isoformat()
    if isinstance(o, (datetime, date, time)):
        return o.isoformat()
    if isinstance(o, dict):
        return {str(k): clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        items = [clean(v) for v in o]
        return sorted(items, key=str) if isinstance(o, (set, frozenset)) else items
    if isinstance(o, pd.DataFrame):
        return clean(o.to_dict("records"))
    if o is pd.NaT or o is pd.NA:
        return None
    return str(o)


def canonical(o: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(clean(o), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_data_hash(h: Hospital) -> str:
    """A stable hash of every planning input: the five tables (row order ignored) and the settings."""
    digest = hashlib.sha256()
    for name, df in sorted(h.tables().items()):
        digest.update(name.encode())
        digest.update(canonical(list(df.columns)).encode())
        if len(df):
            rows = np.sort(pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy())
            digest.update(rows.tobytes())
    digest.update(canonical(h.settings).encode())
    return digest.hexdigest()[:16]


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(np.ndim(v) == 0 and pd.isna(v))
    except (TypeError, ValueError):
        return False


def _iso(v: Any, kind: str) -> str | None:
    if _missing(v):
        return None
    ts = pd.Timestamp(v)
    return ts.strftime("%Y-%m-%d") if kind == "date" else ts.strftime("%Y-%m-%dT%H:%M:%S")


def schedule_to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A schedule frame as JSON-native records (dates ``YYYY-MM-DD``, times ``YYYY-MM-DDTHH:MM:SS``)."""
    cols = [c for c in SCHEDULE_COLUMNS if c in df.columns] + [c for c in df.columns if c not in SCHEDULE_COLUMNS]
    out = []
    for rec in df[cols].to_dict("records"):
        row = {}
        for c in cols:
            v = rec[c]
            if c == "date":
                row[c] = _iso(v, "date")
            elif c in _TIME_COLS:
                row[c] = _iso(v, "datetime")
            else:
                row[c] = None if _missing(v) else clean(v)
        out.append(row)
    return out


def schedule_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records back to a typed schedule frame (contract columns first, times as datetimes)."""
    df = pd.DataFrame(records)
    for c in SCHEDULE_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[[*SCHEDULE_COLUMNS, *[c for c in df.columns if c not in SCHEDULE_COLUMNS]]]
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d").astype("datetime64[us]")
    for c in _TIME_COLS:
        df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[us]")
    for c in ("case_id", "surgeon_id", "service_line", "room_id", "status", "reason"):
        df[c] = df[c].astype("str")
    return df.reset_index(drop=True)
