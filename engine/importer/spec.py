"""The import mapping's format: its constants and the typed mapping (what :func:`engine.importer.mapping.load_mapping`
builds from the YAML and :func:`engine.importer.apply.apply_mapping` reads)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.contract import CASES_COLUMNS, SETTINGS_FILE
from engine.importer.clean import CleanRules

# ---------------------------------------------------------------------------------------------
# Constants of the mapping format

SOURCE_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet",
                  ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel"}
DERIVE_KINDS = ("minutes_between", "regex", "split", "concat", "from_datetime_date")
UNMAPPED_POLICIES = ("keep", "error", "missing")
BAD_VALUE_POLICIES = ("quarantine", "blank")
EXTRA_COLUMN_POLICIES = ("drop", "keep")
EXTRA_KINDS = ("str", "date", "datetime", "float", "int", "list")
# Extra contract files the mapping may point at (copied as they are).
FILE_KEYS = {"rooms": "rooms.csv", "surgeons": "surgeons.csv", "blocks": "blocks.csv",
             "staffing": "staffing.csv", "settings": SETTINGS_FILE}

DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "date": ("%m/%d/%Y",),
    "time": ("%H:%M", "%I:%M %p"),
    "datetime": ("%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p"),
}
# Unambiguous ISO forms are always accepted after the configured formats: they are what
# Excel and Parquet cells of date/time type become in read_source, and what the contract uses.
_ISO_DATETIME = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")
_ISO_DATE = ("%Y-%m-%d",)
_ISO_TIME = ("%H:%M", "%H:%M:%S", "%H:%M:%S.%f")
# Excel serial day numbers: day 0 is 1899-12-30; 2958465 is 9999-12-31.
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2958466
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# ---------------------------------------------------------------------------------------------
# The typed mapping

@dataclass(frozen=True)
class SourceOptions:
    """How to read the source file (``source:`` section)."""

    format: str | None = None  # csv | parquet | excel; None = by file extension
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | int = 0
    header_row: int = 1  # 1-based line (CSV) or row (Excel) holding the column names


@dataclass(frozen=True)
class FieldSpec:
    """How one output column is made. ``how`` is column | combine | derive.

    Source columns are named by ``column`` / ``columns`` / ``date_column`` / ``time_column``;
    other output columns (already computed) by ``start`` / ``end`` / ``from_target`` / ``after``.
    """

    target: str
    kind: str
    key: str  # mapping key path, for messages
    how: str
    column: str | None = None
    columns: tuple[str, ...] = ()
    date_column: str | None = None
    time_column: str | None = None
    derive: str | None = None
    start: str | None = None
    end: str | None = None
    from_target: str | None = None
    pattern: re.Pattern[str] | None = None
    group: int | str = 1
    sep: str | None = None
    index: int = 0
    formats: tuple[str, ...] = ()
    date_formats: tuple[str, ...] = ()
    time_formats: tuple[str, ...] = ()
    datetime_formats: tuple[str, ...] = ()  # a time cell may hold a whole datetime
    value_map: dict[str, str | None] | None = None
    unmapped: str = "keep"
    if_missing_value: Any = None
    if_missing_spec: FieldSpec | None = None
    optional: bool = False
    roll_over_midnight: bool = False
    max_roll_over_hours: float = 18.0
    after: str | None = None
    list_sep: str = ";"

    def source_columns(self) -> tuple[str, ...]:
        """Every source column this spec (and its fallback) reads."""
        cols: list[str] = []
        if self.column:
            cols.append(self.column)
        cols.extend(self.columns)
        for c in (self.date_column, self.time_column):
            if c:
                cols.append(c)
        if self.if_missing_spec is not None:
            cols.extend(self.if_missing_spec.source_columns())
        return tuple(dict.fromkeys(cols))

    def target_refs(self) -> tuple[str, ...]:
        """Other output columns this spec (and its fallback) needs first."""
        refs = [r for r in (self.start, self.end, self.from_target, self.after) if r]
        if self.if_missing_spec is not None:
            refs.extend(self.if_missing_spec.target_refs())
        return tuple(dict.fromkeys(refs))


@dataclass(frozen=True)
class RoomRule:
    """Room attributes for room ids matching ``pattern`` (``rooms.patterns`` entries)."""

    pattern: re.Pattern[str]
    values: dict[str, str]


@dataclass(frozen=True)
class RoomsSpec:
    """Defaults used to derive rooms.csv from the room ids seen in the cases."""

    site: str | None = None  # None: the room's most common case site, else "Main"
    open_time: str = "07:00"
    close_time: str = "17:00"
    capabilities: str = ""
    rules: tuple[RoomRule, ...] = ()
    ids: tuple[str, ...] = ()  # rooms to list even when no case ran in them


@dataclass(frozen=True)
class Mapping:
    """A validated import mapping (see data/mappings/README.md)."""

    path: Path
    source: SourceOptions
    formats: dict[str, tuple[str, ...]]
    fields: dict[str, FieldSpec]  # contract cases column -> spec
    constants: dict[str, Any]
    extras: dict[str, FieldSpec]  # non-contract output column -> spec
    order: tuple[str, ...]  # evaluation order over fields + extras (dependencies first)
    extra_columns: str = "drop"
    bad_values: str = "quarantine"
    max_bad_row_fraction: float = 0.05
    settings: dict[str, Any] = field(default_factory=dict)
    rooms: RoomsSpec = field(default_factory=RoomsSpec)
    files: dict[str, Path] = field(default_factory=dict)  # contract file name -> path
    # blocks/staffing inferred from history when not given (engine.onboard.infer); see _parse_infer
    infer: dict[str, Any] = field(default_factory=lambda: {"blocks": True, "staffing": True})
    clean: CleanRules | None = None  # entity clean-up (engine.importer.clean); None = none

    @property
    def name(self) -> str:
        return str(self.path)

    def output_columns(self) -> list[str]:
        """Contract columns this mapping produces, in contract order, then the extras."""
        made = set(self.fields) | set(self.constants)
        return [c for c in CASES_COLUMNS if c in made] + list(self.extras)

    def used_source_columns(self) -> set[str]:
        used: set[str] = set()
        for spec in list(self.fields.values()) + list(self.extras.values()):
            used.update(spec.source_columns())
        return used
