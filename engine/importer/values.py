"""Parsing values: dates, datetimes and times in the configured formats, ISO forms and Excel serials."""
from __future__ import annotations

import datetime as dt
import math

from engine.importer.spec import _EXCEL_EPOCH, _EXCEL_MAX_SERIAL, _ISO_DATE, _ISO_DATETIME, _ISO_TIME


# ---------------------------------------------------------------------------------------------
# Parsing values

def _strptime_any(value: str, formats: tuple[str, ...]) -> dt.datetime | None:
    for f in formats:
        try:
            return dt.datetime.strptime(value, f)
        except ValueError:
            continue
    return None


def _excel_serial(value: str) -> float | None:
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _parse_date(value: str, formats: tuple[str, ...]) -> dt.datetime | None:
    got = _strptime_any(value, formats) or _strptime_any(value, _ISO_DATE + _ISO_DATETIME)
    if got is not None:
        return dt.datetime(got.year, got.month, got.day)
    x = _excel_serial(value)
    if x is not None and 1 <= x < _EXCEL_MAX_SERIAL:
        return _EXCEL_EPOCH + dt.timedelta(days=math.floor(x))
    return None


def _parse_datetime(value: str, formats: tuple[str, ...]) -> dt.datetime | None:
    got = _strptime_any(value, formats) or _strptime_any(value, _ISO_DATETIME + _ISO_DATE)
    if got is not None:
        return got
    x = _excel_serial(value)
    if x is not None and 1 <= x < _EXCEL_MAX_SERIAL:
        return _EXCEL_EPOCH + dt.timedelta(seconds=round(x * 86400))
    return None


def _parse_time(value: str, formats: tuple[str, ...],
                datetime_formats: tuple[str, ...] = ()) -> dt.timedelta | dt.datetime | None:
    """A time of day as a timedelta since midnight; a full datetime passes through as is."""
    got = _strptime_any(value, formats) or _strptime_any(value, _ISO_TIME)
    if got is not None:
        return dt.timedelta(hours=got.hour, minutes=got.minute, seconds=got.second)
    full = _strptime_any(value, datetime_formats + _ISO_DATETIME)
    if full is not None:
        if full.date() <= dt.date(1900, 1, 1):  # Excel time cells on its day zero
            return dt.timedelta(hours=full.hour, minutes=full.minute, seconds=full.second)
        return full
    x = _excel_serial(value)
    if x is not None and 0 <= x < 1:
        return dt.timedelta(seconds=round(x * 86400))
    return None


def _describe_formats(formats: tuple[str, ...]) -> str:
    return ", ".join(f"'{f}'" for f in formats) if formats else "ISO only"
