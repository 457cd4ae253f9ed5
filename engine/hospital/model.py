"""The loaded hospital and its quality report: :class:`Hospital`, :class:`LoadedHospital`,
:class:`QualityReport`, :class:`FileReport`, :class:`ValidationParams` and the quarantine table."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.errors import Problem
from engine.settings import HospitalSettings


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
