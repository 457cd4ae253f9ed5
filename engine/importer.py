"""Foreign export -> contract hospital folder, driven by a YAML mapping.

``python -m engine import --source FILE --mapping MAP.yaml --out DIR`` calls
:func:`import_hospital`. The mapping format is documented in ``data/mappings/README.md``;
``data/mappings/or_utilization_export.yaml`` is a worked example.

The pipeline is read -> map -> write -> validate -> swap:

- :func:`load_mapping` parses and checks the YAML up front, so a bad mapping fails before any
  data is read, naming the mapping key at fault.
- :func:`read_source` reads CSV, Parquet or Excel into a frame of trimmed strings (missing =
  ``NA``), whatever types the file had, so every format goes through the same parsers.
- :func:`apply_mapping` builds the contract cases frame and lists every value it could not
  convert, by source file, 1-based data row and source column.
- :func:`import_hospital` writes the folder in a temp dir, validates it with
  ``engine.hospital.load_hospital`` and only then swaps it in at ``out_dir``.
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from engine.contract import (
    CASE_STATUSES,
    CASES_COLUMNS,
    CASES_REQUIRED,
    ROOMS_COLUMNS,
    SETTINGS_FILE,
    SETTINGS_REQUIRED,
    SURGEONS_COLUMNS,
    URGENCIES,
)
from engine.errors import InputError, Problem
from engine.io import atomic_write_folder, write_csv

log = logging.getLogger(__name__)

__all__ = [
    "FieldSpec",
    "ImportResult",
    "Mapping",
    "RoomRule",
    "RoomsSpec",
    "SourceOptions",
    "apply_mapping",
    "derive_rooms",
    "derive_surgeons",
    "import_hospital",
    "load_mapping",
    "parse_mapping",
    "read_source",
]

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

_TOP_KEYS = ("version", "name", "description", "source", "formats", "columns", "constants",
             "extras", "value_maps", "unmapped_values", "extra_columns", "bad_values",
             "max_bad_row_fraction", "settings", "rooms", "files", "infer")
_SPEC_KEYS = {"column", "date", "time", "derive", "format", "date_format", "time_format", "map",
              "unmapped", "if_missing", "optional", "roll_over_midnight", "after", "start",
              "max_roll_over_hours",
              "end", "from", "pattern", "group", "sep", "index", "columns", "list_sep", "kind"}


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


# ---------------------------------------------------------------------------------------------
# Loading the mapping

class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: ``Y``, ``yes``, ``on`` stay strings (value-map keys)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class _MappingErrors:
    """Collects every mapping problem so the user can fix them in one pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(file=str(self.path), row=None, column=key, problem=message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(self.problems)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a YAML mapping file.

    Raises ``InputError`` naming the mapping file and the key for: unreadable file, bad YAML,
    a missing ``columns`` section, unknown keys or target columns, unknown derive kinds,
    bad formats, regexes or settings, and dependency cycles between derived columns.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(str(path), None, None, f"cannot read mapping file: {exc}")) from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise InputError(Problem(str(path), None, None, f"bad YAML{where}: "
                                 f"{getattr(exc, 'problem', None) or exc}")) from exc
    return parse_mapping(data, path)


def parse_mapping(data: Any, path: str | Path = "<mapping>") -> Mapping:
    """Validate an already-parsed mapping document (``load_mapping`` without the file)."""
    path = Path(path)
    errs = _MappingErrors(path)
    if not isinstance(data, dict):
        errs.add("", "the mapping must be a YAML mapping (key: value) at the top level")
        errs.raise_if_any()
    for key in data:
        if key not in _TOP_KEYS:
            errs.add(str(key), f"unknown key (known: {', '.join(_TOP_KEYS)})")

    source = _parse_source(data.get("source"), errs)
    formats = _parse_formats(data.get("formats"), errs)
    value_maps = _parse_value_maps(data.get("value_maps"), errs)
    unmapped_default = _choice(data.get("unmapped_values", "keep"), UNMAPPED_POLICIES,
                               "unmapped_values", errs)

    columns = data.get("columns")
    fields: dict[str, FieldSpec] = {}
    if columns is None:
        errs.add("columns", "missing section: 'columns' maps contract columns to source columns")
    elif not isinstance(columns, dict) or not columns:
        errs.add("columns", "must be a non-empty mapping of contract column -> source spec")
    else:
        for target, raw in columns.items():
            key = f"columns.{target}"
            if target not in CASES_COLUMNS:
                errs.add(key, f"unknown target column '{target}' (cases.csv columns: "
                              f"{', '.join(CASES_COLUMNS)}; put other columns under 'extras')")
                continue
            spec = _parse_spec(raw, str(target), CASES_COLUMNS[target], key, formats,
                               value_maps, unmapped_default, errs)
            if spec is not None:
                fields[str(target)] = spec

    constants: dict[str, Any] = {}
    raw_constants = data.get("constants") or {}
    if not isinstance(raw_constants, dict):
        errs.add("constants", "must be a mapping of contract column -> value")
    else:
        for target, value in raw_constants.items():
            key = f"constants.{target}"
            if target not in CASES_COLUMNS:
                errs.add(key, f"unknown target column '{target}'")
            elif isinstance(value, (dict, list)):
                errs.add(key, "a constant must be a single value")
            else:
                constants[str(target)] = value
                _check_allowed_value(str(target), value, key, errs)

    extras: dict[str, FieldSpec] = {}
    raw_extras = data.get("extras") or {}
    if not isinstance(raw_extras, dict):
        errs.add("extras", "must be a mapping of output column -> source spec")
    else:
        for target, raw in raw_extras.items():
            key = f"extras.{target}"
            if target in CASES_COLUMNS:
                errs.add(key, f"'{target}' is a contract column: map it under 'columns'")
                continue
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(target)):
                errs.add(key, "extra column names must be identifiers (letters, digits, _)")
                continue
            kind = raw.get("kind", "str") if isinstance(raw, dict) else "str"
            if kind not in EXTRA_KINDS:
                errs.add(f"{key}.kind", f"unknown kind '{kind}' (known: {', '.join(EXTRA_KINDS)})")
                continue
            spec = _parse_spec(raw, str(target), kind, key, formats, value_maps,
                               unmapped_default, errs, allow_kind=True)
            if spec is not None:
                extras[str(target)] = spec

    for req in CASES_REQUIRED:
        if isinstance(columns, dict) and req not in columns and req not in constants:
            errs.add(f"columns.{req}", f"required cases.csv column '{req}' is not mapped "
                                       "(map it under 'columns' or give it under 'constants')")

    order = _evaluation_order(fields, extras, constants, errs)

    extra_columns = _choice(data.get("extra_columns", "drop"), EXTRA_COLUMN_POLICIES,
                            "extra_columns", errs)
    bad_values = _choice(data.get("bad_values", "quarantine"), BAD_VALUE_POLICIES,
                         "bad_values", errs)
    max_bad = data.get("max_bad_row_fraction", 0.05)
    if isinstance(max_bad, bool) or not isinstance(max_bad, (int, float)) or not 0 <= max_bad <= 1:
        errs.add("max_bad_row_fraction", f"must be a number between 0 and 1, got {max_bad!r}")
        max_bad = 0.05

    files = _parse_files(data.get("files"), path, errs)
    settings = _parse_settings(data.get("settings"), "settings" in files, errs)
    rooms = _parse_rooms(data.get("rooms"), errs)
    infer = _parse_infer(data.get("infer"), errs)
    errs.raise_if_any()
    return Mapping(path=path, source=source, formats=formats, fields=fields, constants=constants,
                   extras=extras, order=order, extra_columns=extra_columns, bad_values=bad_values,
                   max_bad_row_fraction=float(max_bad), settings=settings, rooms=rooms,
                   files=files, infer=infer)


_INFER_FLAGS = ("blocks", "staffing")


def _parse_infer(raw: Any, errs: _MappingErrors) -> dict[str, Any]:
    """``infer: {blocks: true, staffing: true, pacu_beds: 8, weeks: 8, ...}``: which missing files to
    infer from history, and the rules' thresholds (engine.onboard.infer.InferParams fields)."""
    from dataclasses import fields as dc_fields

    from engine.onboard.infer import InferParams

    out: dict[str, Any] = {"blocks": True, "staffing": True}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        errs.add("infer", "must be a mapping (blocks: true, staffing: true, pacu_beds: N, weeks: N, ...)")
        return out
    known = {f.name for f in dc_fields(InferParams)}
    params = {}
    for k, v in raw.items():
        if k in _INFER_FLAGS:
            if not isinstance(v, bool):
                errs.add(f"infer.{k}", f"must be true or false, got {v!r}")
            out[k] = bool(v)
        elif k == "pacu_beds":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                errs.add("infer.pacu_beds", f"must be a whole number of beds >= 0, got {v!r}")
            out[k] = v
        elif k in known:
            params[k] = v
        else:
            errs.add(f"infer.{k}", f"unknown key (known: {', '.join([*_INFER_FLAGS, 'pacu_beds', *sorted(known)])})")
    try:
        out["params"] = InferParams(**params)
    except (TypeError, ValueError) as exc:
        errs.add("infer", str(exc))
    return out


def _choice(value: Any, allowed: tuple[str, ...], key: str, errs: _MappingErrors) -> str:
    if value not in allowed:
        errs.add(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return allowed[0]
    return str(value)


def _check_allowed_value(target: str, value: Any, key: str, errs: _MappingErrors) -> None:
    allowed = {"status": CASE_STATUSES, "urgency": URGENCIES}.get(target)
    if allowed and value is not None and value not in allowed:
        errs.add(key, f"'{value}' is not a valid {target} (allowed: {', '.join(allowed)})")


def _parse_source(raw: Any, errs: _MappingErrors) -> SourceOptions:
    if raw is None:
        return SourceOptions()
    if not isinstance(raw, dict):
        errs.add("source", "must be a mapping (format, encoding, delimiter, sheet, header_row)")
        return SourceOptions()
    known = {"format", "encoding", "delimiter", "sheet", "header_row"}
    for k in raw:
        if k not in known:
            errs.add(f"source.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    fmt = raw.get("format")
    if fmt is not None and fmt not in ("csv", "parquet", "excel"):
        errs.add("source.format", f"must be csv, parquet or excel, got {fmt!r}")
        fmt = None
    encoding = str(raw.get("encoding", "utf-8"))
    try:
        "".encode(encoding)
    except LookupError:
        errs.add("source.encoding", f"unknown encoding '{encoding}'")
        encoding = "utf-8"
    delimiter = raw.get("delimiter", ",")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        errs.add("source.delimiter", f"must be a single character, got {delimiter!r}")
        delimiter = ","
    sheet = raw.get("sheet", 0)
    if not isinstance(sheet, (str, int)) or isinstance(sheet, bool):
        errs.add("source.sheet", "must be a sheet name or a 0-based sheet index")
        sheet = 0
    header_row = raw.get("header_row", 1)
    if not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1:
        errs.add("source.header_row", "must be a whole number >= 1")
        header_row = 1
    return SourceOptions(format=fmt, encoding=encoding, delimiter=delimiter, sheet=sheet,
                         header_row=header_row)


def _format_list(value: Any, key: str, errs: _MappingErrors) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        errs.add(key, "must be a strptime format or a list of them, e.g. '%m/%d/%Y'")
        return ()
    for v in value:
        if "%" not in v:
            errs.add(key, f"'{v}' has no % directive; strptime formats look like '%m/%d/%Y'")
    return tuple(value)


def _parse_formats(raw: Any, errs: _MappingErrors) -> dict[str, tuple[str, ...]]:
    formats = dict(DEFAULT_FORMATS)
    if raw is None:
        return formats
    if not isinstance(raw, dict):
        errs.add("formats", "must be a mapping with date / time / datetime formats")
        return formats
    for k, v in raw.items():
        if k not in DEFAULT_FORMATS:
            errs.add(f"formats.{k}", "unknown key (known: date, time, datetime)")
            continue
        parsed = _format_list(v, f"formats.{k}", errs)
        if parsed:
            formats[k] = parsed
    return formats


def _map_key(value: Any) -> str:
    """Value-map keys as the text a source cell would hold (YAML may give ints or floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _parse_value_map(raw: Any, key: str, errs: _MappingErrors) -> dict[str, str | None] | None:
    if not isinstance(raw, dict) or not raw:
        errs.add(key, "a value map must be a non-empty mapping of source value -> output value")
        return None
    out: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    for src, dst in raw.items():
        if src is None:
            errs.add(key, "a value-map key is empty; missing values are handled by if_missing")
            continue
        if isinstance(dst, (dict, list)):
            errs.add(f"{key}.{src}", "must map to a single value")
            continue
        folded = _map_key(src).casefold()
        dst_text = None if dst is None else _map_key(dst)
        if folded in out and out[folded] != dst_text:
            errs.add(f"{key}.{src}", f"clashes with '{seen[folded]}' (keys match ignoring case)")
            continue
        out[folded] = dst_text
        seen[folded] = str(src)
    return out


def _parse_value_maps(raw: Any, errs: _MappingErrors) -> dict[str, dict[str, str | None]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errs.add("value_maps", "must be a mapping of map name -> {source value: output value}")
        return {}
    out = {}
    for name, m in raw.items():
        parsed = _parse_value_map(m, f"value_maps.{name}", errs)
        if parsed is not None:
            out[str(name)] = parsed
    return out


def _parse_spec(raw: Any, target: str, kind: str, key: str, formats: dict[str, tuple[str, ...]],
                value_maps: dict[str, dict[str, str | None]], unmapped_default: str,
                errs: _MappingErrors, allow_kind: bool = False) -> FieldSpec | None:
    """One ``columns`` / ``extras`` / ``if_missing`` entry -> FieldSpec (None after an error)."""
    if isinstance(raw, str):
        if not raw.strip():
            errs.add(key, "empty source column name")
            return None
        return FieldSpec(target=target, kind=kind, key=key, how="column", column=raw.strip(),
                         formats=formats.get(kind, ()), unmapped=unmapped_default)
    if not isinstance(raw, dict):
        errs.add(key, "must be a source column name or a mapping (column / date+time / derive)")
        return None
    n_before = len(errs.problems)
    for k in raw:
        if k not in _SPEC_KEYS or (k == "kind" and not allow_kind):
            errs.add(f"{key}.{k}", "unknown key")
    common: dict[str, Any] = {"target": target, "kind": kind, "key": key,
                              "unmapped": unmapped_default}

    def text(k: str) -> str | None:
        v = raw.get(k)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            errs.add(f"{key}.{k}", "must be a non-empty text")
            return None
        return v.strip()

    if "format" in raw:
        common["formats"] = _format_list(raw["format"], f"{key}.format", errs)
    else:
        common["formats"] = formats.get(kind, ())

    if "map" in raw:
        m = raw["map"]
        if isinstance(m, str):
            if m not in value_maps:
                errs.add(f"{key}.map", f"no value map named '{m}' under 'value_maps'")
            else:
                common["value_map"] = value_maps[m]
        else:
            common["value_map"] = _parse_value_map(m, f"{key}.map", errs)
        vm = common.get("value_map")
        if vm and target in ("status", "urgency"):
            allowed = CASE_STATUSES if target == "status" else URGENCIES
            for dst in vm.values():
                if dst is not None and dst not in allowed:
                    errs.add(f"{key}.map", f"maps to '{dst}', which is not a valid {target} "
                                           f"(allowed: {', '.join(allowed)})")
    if "unmapped" in raw:
        common["unmapped"] = _choice(raw["unmapped"], UNMAPPED_POLICIES, f"{key}.unmapped", errs)
        if "map" not in raw:
            errs.add(f"{key}.unmapped", "'unmapped' needs a 'map'")
    if "optional" in raw:
        if not isinstance(raw["optional"], bool):
            errs.add(f"{key}.optional", "must be true or false")
        common["optional"] = bool(raw["optional"])
    if "list_sep" in raw:
        if not isinstance(raw["list_sep"], str) or not raw["list_sep"]:
            errs.add(f"{key}.list_sep", "must be a non-empty text")
        else:
            common["list_sep"] = raw["list_sep"]
    if "if_missing" in raw:
        fb = raw["if_missing"]
        if isinstance(fb, dict):
            common["if_missing_spec"] = _parse_spec(fb, target, kind, f"{key}.if_missing", formats,
                                                    value_maps, unmapped_default, errs)
        elif isinstance(fb, list):
            errs.add(f"{key}.if_missing", "must be a constant or a spec mapping")
        else:
            common["if_missing_value"] = fb
            _check_allowed_value(target, fb, f"{key}.if_missing", errs)

    spec: FieldSpec | None = None
    if "derive" in raw:
        derive = raw["derive"]
        if derive not in DERIVE_KINDS:
            errs.add(f"{key}.derive", f"unknown derive kind '{derive}' "
                                      f"(known: {', '.join(DERIVE_KINDS)})")
            return None
        common.update(how="derive", derive=derive)
        if derive == "minutes_between":
            start, end = text("start"), text("end")
            if not start or not end:
                errs.add(key, "minutes_between needs 'start' and 'end' (output datetime columns)")
            if kind not in ("float", "int"):
                errs.add(f"{key}.derive", f"minutes_between gives minutes; '{target}' is a {kind}")
            spec = FieldSpec(**common, start=start, end=end)
        elif derive == "from_datetime_date":
            src = text("from")
            if not src:
                errs.add(key, "from_datetime_date needs 'from' (an output datetime column)")
            if kind != "date":
                errs.add(f"{key}.derive", f"from_datetime_date gives a date; '{target}' is a {kind}")
            spec = FieldSpec(**common, from_target=src)
        elif derive == "regex":
            col, pat = text("column"), raw.get("pattern")
            compiled = None
            if not col:
                errs.add(key, "regex needs 'column' (the source column)")
            if not isinstance(pat, str) or not pat:
                errs.add(f"{key}.pattern", "regex needs a 'pattern'")
            else:
                try:
                    compiled = re.compile(pat)
                except re.error as exc:
                    errs.add(f"{key}.pattern", f"bad regular expression: {exc}")
            group = raw.get("group", 1)
            if compiled is not None:
                if isinstance(group, int) and not isinstance(group, bool):
                    if not 0 <= group <= compiled.groups:
                        errs.add(f"{key}.group", f"the pattern has {compiled.groups} groups")
                elif not isinstance(group, str) or group not in compiled.groupindex:
                    errs.add(f"{key}.group", f"no group {group!r} in the pattern")
            spec = FieldSpec(**common, column=col, pattern=compiled, group=group)
        elif derive == "split":
            col, sep = text("column"), raw.get("sep")
            index = raw.get("index", 0)
            if not col:
                errs.add(key, "split needs 'column' (the source column)")
            if not isinstance(sep, str) or not sep:
                errs.add(f"{key}.sep", "split needs a non-empty 'sep'")
            if not isinstance(index, int) or isinstance(index, bool):
                errs.add(f"{key}.index", "must be a whole number (0 = first part, -1 = last)")
                index = 0
            spec = FieldSpec(**common, column=col, sep=sep, index=index)
        elif derive == "concat":
            cols = raw.get("columns")
            sep = raw.get("sep", " ")
            if not isinstance(cols, list) or not cols or \
                    not all(isinstance(c, str) and c.strip() for c in cols):
                errs.add(f"{key}.columns", "concat needs 'columns': a list of source columns")
                cols = []
            if not isinstance(sep, str):
                errs.add(f"{key}.sep", "must be a text")
                sep = " "
            spec = FieldSpec(**common, columns=tuple(c.strip() for c in cols), sep=sep)
    elif "date" in raw or "time" in raw:
        dcol, tcol = text("date"), text("time")
        if not dcol or not tcol:
            errs.add(key, "a date+time spec needs both 'date' and 'time' source columns")
        if kind != "datetime":
            errs.add(key, f"date+time gives a datetime; '{target}' is a {kind}")
        roll = raw.get("roll_over_midnight", False)
        if not isinstance(roll, bool):
            errs.add(f"{key}.roll_over_midnight", "must be true or false")
            roll = False
        after = text("after")
        if roll and after is None:
            after = "wheels_in"
        if after is not None and not roll:
            errs.add(f"{key}.after", "'after' only makes sense with roll_over_midnight: true")
        if after == target:
            errs.add(f"{key}.after", f"'{target}' cannot roll over relative to itself; "
                                     "set 'after' to an earlier column")
        max_roll = raw.get("max_roll_over_hours", 18)
        if isinstance(max_roll, bool) or not isinstance(max_roll, (int, float)) \
                or not 0 < max_roll <= 24:
            errs.add(f"{key}.max_roll_over_hours", f"must be a number of hours in (0, 24], "
                                                   f"got {max_roll!r}")
            max_roll = 18
        date_formats = (_format_list(raw["date_format"], f"{key}.date_format", errs)
                        if "date_format" in raw else formats["date"])
        time_formats = (_format_list(raw["time_format"], f"{key}.time_format", errs)
                        if "time_format" in raw else formats["time"])
        spec = FieldSpec(**common, how="combine", date_column=dcol, time_column=tcol,
                         date_formats=date_formats, time_formats=time_formats,
                         datetime_formats=formats["datetime"], roll_over_midnight=roll,
                         max_roll_over_hours=float(max_roll), after=after)
    elif "column" in raw:
        col = text("column")
        spec = FieldSpec(**common, how="column", column=col)
    else:
        errs.add(key, "needs 'column', 'date' + 'time', or 'derive'")
        return None
    for k in ("date_format", "time_format", "roll_over_midnight", "after", "max_roll_over_hours"):
        if k in raw and spec.how != "combine":
            errs.add(f"{key}.{k}", "only for date + time specs")
    if spec.how == "combine" or spec.derive in ("minutes_between", "from_datetime_date"):
        for k in ("format", "map", "unmapped", "list_sep"):
            if k in raw:
                errs.add(f"{key}.{k}", "only for specs that read text (column, regex, split, "
                                       "concat); date + time specs use date_format/time_format")
    return spec if len(errs.problems) == n_before else None


def _evaluation_order(fields: dict[str, FieldSpec], extras: dict[str, FieldSpec],
                      constants: dict[str, Any], errs: _MappingErrors) -> tuple[str, ...]:
    """Dependencies first (derived columns need the columns they read); cycles are errors."""
    specs = {**fields, **extras}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            errs.add(specs[name].key, "derived columns depend on each other in a cycle: "
                                      + " -> ".join(path + [name]))
            return
        state[name] = 1
        for ref in specs[name].target_refs():
            if ref in specs:
                visit(ref, path + [name])
            elif ref not in constants:
                errs.add(specs[name].key, f"refers to output column '{ref}', which the mapping "
                                          "does not define")
        state[name] = 2
        order.append(name)

    for name in specs:
        visit(name, [])
    for name, spec in specs.items():
        for ref in (spec.start, spec.end, spec.from_target, spec.after):
            kind = CASES_COLUMNS.get(ref) if ref in CASES_COLUMNS else \
                (extras[ref].kind if ref in extras else None)
            if ref and kind is not None and kind != "datetime":
                errs.add(spec.key, f"'{ref}' is a {kind}; a datetime column is needed here")
    return tuple(order)


def _parse_files(raw: Any, mapping_path: Path, errs: _MappingErrors) -> dict[str, Path]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errs.add("files", f"must be a mapping of {', '.join(FILE_KEYS)} -> path")
        return {}
    out: dict[str, Path] = {}
    for k, v in raw.items():
        if k not in FILE_KEYS:
            errs.add(f"files.{k}", f"unknown file (known: {', '.join(FILE_KEYS)})")
        elif not isinstance(v, str) or not v.strip():
            errs.add(f"files.{k}", "must be a path")
        else:
            p = Path(v.strip())
            out[FILE_KEYS[k]] = p if p.is_absolute() else mapping_path.parent / p
    return out


def _parse_settings(raw: Any, from_file: bool, errs: _MappingErrors) -> dict[str, Any]:
    if raw is None:
        if not from_file:
            errs.add("settings", "missing section: settings.toml needs "
                                 f"{', '.join(SETTINGS_REQUIRED)} (or point files.settings at one)")
        return {}
    if from_file:
        errs.add("settings", "give either a 'settings' section or 'files.settings', not both")
    if not isinstance(raw, dict):
        errs.add("settings", "must be a mapping (turnover_minutes, pacu_minutes, prime_time, ...)")
        return {}
    # The same model load_hospital uses for settings.toml (one set of rules, errors by key).
    from engine.settings import parse_settings

    _, problems = parse_settings({k: v for k, v in raw.items() if v is not None})
    for p in problems:
        errs.add(f"settings.{p.column}" if p.column else "settings", p.problem)
    for k, v in raw.items():
        if v is None:
            errs.add(f"settings.{k}", "has no value (TOML has no null)")
    return dict(raw)


def _capabilities(value: Any, key: str, errs: _MappingErrors) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        items = value.split(";")
    elif isinstance(value, list):
        items = [str(v) for v in value]
    else:
        errs.add(key, "must be a list or a ';'-separated text")
        return ""
    return ";".join(i.strip() for i in items if i.strip())


def _parse_rooms(raw: Any, errs: _MappingErrors) -> RoomsSpec:
    if raw is None:
        return RoomsSpec()
    if not isinstance(raw, dict):
        errs.add("rooms", "must be a mapping (site, open_time, close_time, capabilities, patterns)")
        return RoomsSpec()
    known = {"site", "open_time", "close_time", "capabilities", "patterns", "ids"}
    for k in raw:
        if k not in known:
            errs.add(f"rooms.{k}", f"unknown key (known: {', '.join(sorted(known))})")

    def room_values(d: dict[str, Any], prefix: str) -> dict[str, str]:
        vals: dict[str, str] = {}
        for k in ("open_time", "close_time"):
            if k in d:
                if not isinstance(d[k], str) or not _HHMM.match(d[k]):
                    errs.add(f"{prefix}.{k}", f"must be HH:MM, got {d[k]!r}")
                else:
                    vals[k] = d[k]
        if "site" in d:
            if not isinstance(d["site"], (str, int)) or d["site"] == "":
                errs.add(f"{prefix}.site", "must be a site name")
            else:
                vals["site"] = str(d["site"])
        if "capabilities" in d:
            vals["capabilities"] = _capabilities(d["capabilities"], f"{prefix}.capabilities", errs)
        return vals

    base = room_values(raw, "rooms")
    rules: list[RoomRule] = []
    patterns = raw.get("patterns") or []
    if not isinstance(patterns, list):
        errs.add("rooms.patterns", "must be a list of {match: REGEX, ...room fields}")
        patterns = []
    for i, p in enumerate(patterns):
        key = f"rooms.patterns[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("match"), str):
            errs.add(key, "each pattern needs 'match' (a regular expression on room_id)")
            continue
        for k in p:
            if k not in {"match", "site", "open_time", "close_time", "capabilities"}:
                errs.add(f"{key}.{k}", "unknown key")
        try:
            rx = re.compile(p["match"])
        except re.error as exc:
            errs.add(f"{key}.match", f"bad regular expression: {exc}")
            continue
        rules.append(RoomRule(pattern=rx, values=room_values(p, key)))
    ids = raw.get("ids") or []
    if not isinstance(ids, list):
        errs.add("rooms.ids", "must be a list of room ids")
        ids = []
    return RoomsSpec(site=base.get("site"), open_time=base.get("open_time", "07:00"),
                     close_time=base.get("close_time", "17:00"),
                     capabilities=base.get("capabilities", ""), rules=tuple(rules),
                     ids=tuple(str(i).strip() for i in ids))


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


# ---------------------------------------------------------------------------------------------
# Applying the mapping

@dataclass
class _Context:
    df: pd.DataFrame
    mapping: Mapping
    file: str
    resolved: dict[str, str]  # mapping's source column name -> actual frame column
    values: dict[str, pd.Series] = field(default_factory=dict)  # target -> typed series
    problems: dict[tuple[int, str], Problem] = field(default_factory=dict)

    def problem(self, idx: int, column: str, message: str) -> None:
        # One problem per cell: a bad 'Date' feeds several datetimes but is one mistake.
        key = (idx, column)
        if key not in self.problems:
            self.problems[key] = Problem(self.file, idx + 1, column, message)

    def col(self, name: str) -> pd.Series:
        actual = self.resolved.get(name)
        if actual is None:
            return pd.Series(pd.NA, index=self.df.index, dtype=object)
        return self.df[actual]

    def label(self, name: str) -> str:
        return self.resolved.get(name, name)


def _resolve_columns(df: pd.DataFrame, mapping: Mapping, file: str,
                     warnings: list[Problem]) -> dict[str, str]:
    """Match the mapping's source column names to the frame (exact, then ignoring case)."""
    folded: dict[str, list[str]] = {}
    for c in df.columns:
        folded.setdefault(str(c).casefold(), []).append(str(c))
    duplicated = set(df.attrs.get("duplicated_headers", []))
    resolved: dict[str, str] = {}
    errors: list[Problem] = []
    wanted: dict[str, str] = {}  # source column -> first mapping key naming it
    required: set[str] = set()

    def walk(spec: FieldSpec) -> None:
        for c in (spec.column, *spec.columns, spec.date_column, spec.time_column):
            if c:
                wanted.setdefault(c, spec.key)
                if not spec.optional:
                    required.add(c)
        if spec.if_missing_spec is not None:
            walk(spec.if_missing_spec)

    for spec in list(mapping.fields.values()) + list(mapping.extras.values()):
        walk(spec)
    for name, key in wanted.items():
        if name in duplicated:
            errors.append(Problem(file, None, name, f"the header '{name}' appears more than once; "
                                  f"'{key}' in {mapping.name} cannot tell which to use"))
            continue
        if name in df.columns:
            resolved[name] = name
            continue
        matches = folded.get(name.casefold(), [])
        if len(matches) == 1:
            resolved[name] = matches[0]
            continue
        if name in required:
            errors.append(Problem(file, None, name, f"column '{name}' (named by '{key}' in "
                                  f"{mapping.name}) is not in the source; its columns are: "
                                  f"{', '.join(map(str, df.columns))}"))
        else:
            warnings.append(Problem(file, None, name, f"optional column '{name}' is not in the "
                                    "source; treated as empty"))
    if errors:
        raise InputError(errors)
    return resolved


def _as_text(v: Any) -> str | None:
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _raw_values(spec: FieldSpec, ctx: _Context) -> tuple[pd.Series, str]:
    """The spec's text values before mapping/conversion, and the source column to blame."""
    if spec.how == "column":
        return ctx.col(spec.column), ctx.label(spec.column)
    if spec.derive == "regex":
        src = ctx.col(spec.column)
        group = spec.group

        def extract(v: Any) -> Any:
            t = _as_text(v)
            if t is None:
                return pd.NA
            m = spec.pattern.search(t)
            if m is None:
                return pd.NA
            g = m.group(group)
            return g.strip() if g and g.strip() else pd.NA

        return src.map(extract), ctx.label(spec.column)
    if spec.derive == "split":
        src = ctx.col(spec.column)

        def part(v: Any) -> Any:
            t = _as_text(v)
            if t is None:
                return pd.NA
            parts = t.split(spec.sep)
            try:
                p = parts[spec.index].strip()
            except IndexError:
                return pd.NA
            return p or pd.NA

        return src.map(part), ctx.label(spec.column)
    if spec.derive == "concat":
        cols = [ctx.col(c) for c in spec.columns]
        values = []
        for row in zip(*cols):
            texts = [t for t in (_as_text(v) for v in row) if t]
            values.append(spec.sep.join(texts) if texts else pd.NA)
        return pd.Series(values, index=ctx.df.index, dtype=object), \
            " + ".join(ctx.label(c) for c in spec.columns)
    raise AssertionError(spec)  # pragma: no cover


def _apply_value_map(spec: FieldSpec, raw: pd.Series, column: str, ctx: _Context) -> pd.Series:
    vm = spec.value_map
    if vm is None:
        return raw
    out = []
    for idx, v in raw.items():
        t = _as_text(v)
        if t is None:
            out.append(pd.NA)
            continue
        folded = t.casefold()
        if folded in vm:
            mapped = vm[folded]
            out.append(pd.NA if mapped is None else mapped)
        elif spec.unmapped == "keep":
            out.append(t)
        elif spec.unmapped == "missing":
            out.append(pd.NA)
        else:
            ctx.problem(idx, column, f"value '{t}' is not in the value map of '{spec.key}' "
                                     "(unmapped: error)")
            out.append(pd.NA)
    return pd.Series(out, index=raw.index, dtype=object)


def _convert(spec: FieldSpec, text: pd.Series, column: str, ctx: _Context) -> pd.Series:
    """Text -> the target's typed form (datetime64 for date/datetime, float, str)."""
    kind = spec.kind
    if kind in ("date", "datetime"):
        parse = _parse_date if kind == "date" else _parse_datetime
        cache: dict[str, dt.datetime | None] = {}
        out = []
        for idx, v in text.items():
            t = _as_text(v)
            if t is None:
                out.append(pd.NaT)
                continue
            if t not in cache:
                cache[t] = parse(t, spec.formats)
            got = cache[t]
            if got is None:
                ctx.problem(idx, column, f"cannot read '{t}' as a {kind} "
                                         f"(formats tried: {_describe_formats(spec.formats)})")
                out.append(pd.NaT)
            else:
                out.append(got)
        return pd.Series(pd.to_datetime(pd.Series(out, dtype=object), errors="coerce").values,
                         index=text.index, dtype="datetime64[us]")
    if kind in ("float", "int"):
        out = []
        for idx, v in text.items():
            t = _as_text(v)
            if t is None:
                out.append(np.nan)
                continue
            try:
                # Thousands separators only in their proper places: "1,5" is not 15.
                x = float(t.replace(",", "")) if _THOUSANDS.fullmatch(t) else float(t)
                if not math.isfinite(x):
                    raise ValueError
                if kind == "int" and not x.is_integer():
                    raise ValueError
                out.append(x)
            except ValueError:
                ctx.problem(idx, column, f"cannot read '{t}' as a number")
                out.append(np.nan)
        return pd.Series(out, index=text.index, dtype="float64")
    if kind == "list":
        def to_list(v: Any) -> Any:
            t = _as_text(v)
            if t is None:
                return pd.NA
            items = [i.strip() for i in t.split(spec.list_sep) if i.strip()]
            return ";".join(items) if items else pd.NA
        return text.map(to_list).astype(object)
    return text.map(lambda v: pd.NA if _as_text(v) is None else _as_text(v).strip()).astype(object)


def _combine(spec: FieldSpec, ctx: _Context) -> pd.Series:
    dates = ctx.col(spec.date_column)
    times = ctx.col(spec.time_column)
    dlabel, tlabel = ctx.label(spec.date_column), ctx.label(spec.time_column)
    dcache: dict[str, dt.datetime | None] = {}
    tcache: dict[str, Any] = {}
    out = []
    whole = []  # rows whose time cell held a whole datetime: never rolled over
    for idx, d, t in zip(dates.index, dates, times):
        dtext, ttext = _as_text(d), _as_text(t)
        tval = None
        if ttext is not None:
            if ttext not in tcache:
                tcache[ttext] = _parse_time(ttext, spec.time_formats, spec.datetime_formats)
            tval = tcache[ttext]
            if tval is None:
                ctx.problem(idx, tlabel, f"cannot read '{ttext}' as a time "
                                         f"(formats tried: {_describe_formats(spec.time_formats)})")
        dval = None
        if dtext is not None:
            if dtext not in dcache:
                dcache[dtext] = _parse_date(dtext, spec.date_formats)
            dval = dcache[dtext]
            if dval is None:
                ctx.problem(idx, dlabel, f"cannot read '{dtext}' as a date "
                                         f"(formats tried: {_describe_formats(spec.date_formats)})")
        whole.append(isinstance(tval, dt.datetime))
        if whole[-1]:
            out.append(tval)
        elif tval is not None and dval is not None:
            out.append(dval + tval)
        else:
            out.append(pd.NaT)
    result = pd.Series(pd.to_datetime(pd.Series(out, dtype=object), errors="coerce").values,
                       index=dates.index, dtype="datetime64[us]")
    if spec.roll_over_midnight and spec.after:
        ref = ctx.values.get(spec.after)
        if ref is not None:
            # Earlier than the reference: the clock passed midnight. A gap that would then be
            # implausibly long (a typo such as swapped times) is left for validation to flag.
            rolled = result + pd.Timedelta(days=1)
            early = result.notna() & ref.notna() & (result < ref) & \
                (rolled - ref <= pd.Timedelta(hours=spec.max_roll_over_hours)) & \
                ~pd.Series(whole, index=result.index, dtype=bool)
            result = result.where(~early, rolled)
    return result


def _evaluate(spec: FieldSpec, ctx: _Context) -> pd.Series:
    if spec.how == "combine":
        values = _combine(spec, ctx)
    elif spec.derive == "minutes_between":
        start, end = _target_values(spec.start, ctx), _target_values(spec.end, ctx)
        values = ((end - start).dt.total_seconds() / 60.0).astype("float64")
    elif spec.derive == "from_datetime_date":
        values = _target_values(spec.from_target, ctx).dt.normalize()
    else:
        raw, column = _raw_values(spec, ctx)
        values = _convert(spec, _apply_value_map(spec, raw, column, ctx), column, ctx)
    if spec.if_missing_spec is not None or spec.if_missing_value is not None:
        missing = values.isna()
        if missing.any():
            if spec.if_missing_spec is not None:
                # Fallback problems only count on rows that actually fall back.
                before = dict(ctx.problems)
                fallback = _evaluate(spec.if_missing_spec, ctx)
                ctx.problems = {k: p for k, p in ctx.problems.items()
                                if k in before or missing.loc[k[0]]}
            else:
                fallback = _constant_series(spec, spec.if_missing_value, ctx)
            values = values.where(~missing, fallback)
    return values


def _target_values(name: str, ctx: _Context) -> pd.Series:
    s = ctx.values[name]
    return s if pd.api.types.is_datetime64_any_dtype(s) else \
        pd.to_datetime(s, errors="coerce")


def _constant_series(spec: FieldSpec, value: Any, ctx: _Context) -> pd.Series:
    text = pd.Series(_cell_text(value), index=ctx.df.index, dtype=object)
    return _convert(spec, text, spec.key, ctx)


def _output_text(values: pd.Series, kind: str) -> pd.Series:
    """Typed values -> the contract's text forms."""
    if kind == "date":
        return values.dt.strftime("%Y-%m-%d").astype("str")
    if kind == "datetime":
        return values.dt.strftime("%Y-%m-%dT%H:%M").astype("str")
    if kind in ("float", "int"):
        return values.astype("float64")
    return values.astype("str")


def _snake(name: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return s or "column"


def apply_mapping(source_df: pd.DataFrame, mapping: Mapping, source_name: str,
                  warnings: list[Problem] | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Map a source frame (as from :func:`read_source`) to the contract cases frame.

    Returns ``(cases, problems)``: ``cases`` has one row per source row, in source order and
    with the source frame's index (index label + 1 = the data row in the source file, header
    not counted; blank rows skipped by read_source keep their numbers), in contract text forms
    (dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM``, numbers as floats, lists
    ``;``-joined); values that could not be converted are left missing and listed in
    ``problems`` (file = ``source_name``, 1-based data row, source column), sorted by row.
    A source column the mapping needs but the frame lacks raises ``InputError``.
    """
    warnings = warnings if warnings is not None else []
    # The index locates rows in the source (label + 1 = data row), as read_source leaves it.
    index = source_df.index
    if not (pd.api.types.is_integer_dtype(index) and index.is_unique and (index >= 0).all()):
        index = pd.RangeIndex(len(source_df))
    # Frames not made by read_source (tests, callers) get the same cleaning.
    df = pd.DataFrame({c: _clean_text(source_df[c]).to_numpy() for c in source_df.columns},
                      index=index, dtype=object)
    df.attrs.update(source_df.attrs)
    resolved = _resolve_columns(df, mapping, source_name, warnings)
    ctx = _Context(df=df, mapping=mapping, file=source_name, resolved=resolved)
    specs = {**mapping.fields, **mapping.extras}
    for target, value in mapping.constants.items():
        if target not in specs:  # constant-only columns first: derived columns may read them
            spec = FieldSpec(target=target, kind=CASES_COLUMNS[target],
                             key=f"constants.{target}", how="column",
                             formats=mapping.formats.get(CASES_COLUMNS[target], ()))
            ctx.values[target] = _constant_series(spec, value, ctx)
    for target in mapping.order:
        spec = specs[target]
        values = _evaluate(spec, ctx)
        if target in mapping.constants:  # the constant fills what the column leaves missing
            missing = values.isna()
            if missing.any():
                values = values.where(~missing, _constant_series(spec, mapping.constants[target],
                                                                 ctx))
        ctx.values[target] = values

    out = pd.DataFrame(index=df.index)
    for col in mapping.output_columns():
        kind = CASES_COLUMNS.get(col) or mapping.extras[col].kind
        out[col] = _output_text(ctx.values[col], kind)
    if mapping.extra_columns == "keep":
        used = {resolved.get(c, c) for c in mapping.used_source_columns()}
        for c in df.columns:
            if c in used:
                continue
            name = _snake(str(c))
            while name in out.columns or name in CASES_COLUMNS:
                name = f"source_{name}"
            out[name] = df[c].astype("str")
    problems = sorted(ctx.problems.values(), key=lambda p: (p.row or 0, p.column or ""))
    return out, problems


# ---------------------------------------------------------------------------------------------
# Deriving rooms.csv and surgeons.csv

def derive_rooms(cases: pd.DataFrame, spec: RoomsSpec) -> pd.DataFrame:
    """rooms.csv from the room ids in ``cases`` (plus ``spec.ids``), with defaults and patterns."""
    ids: list[str] = []
    if "room_id" in cases.columns:
        ids = sorted(cases["room_id"].dropna().astype(str).unique())
    for extra in spec.ids:
        if extra not in ids:
            ids.append(extra)
    site_of: dict[str, str] = {}
    if "site" in cases.columns and "room_id" in cases.columns:
        known = cases.dropna(subset=["room_id", "site"])
        for room, grp in known.groupby("room_id"):
            counts = grp["site"].value_counts()
            site_of[str(room)] = sorted(counts[counts == counts.max()].index)[0]
    rows = []
    for room in ids:
        values = {"site": spec.site or site_of.get(room, "Main"), "capabilities": spec.capabilities,
                  "open_time": spec.open_time, "close_time": spec.close_time}
        for rule in spec.rules:
            if rule.pattern.search(room):
                values.update(rule.values)
        rows.append({"room_id": room, **values})
    return pd.DataFrame(rows, columns=list(ROOMS_COLUMNS))


def derive_surgeons(cases: pd.DataFrame) -> pd.DataFrame:
    """surgeons.csv: each surgeon's most frequent service line (ties: alphabetical)."""
    cols = list(SURGEONS_COLUMNS) + ["n_cases"]
    if not {"surgeon_id", "service_line"} <= set(cases.columns):
        return pd.DataFrame(columns=cols)
    known = cases.dropna(subset=["surgeon_id", "service_line"])
    known = known[known["surgeon_id"] != "unknown"]  # validation always knows 'unknown'
    rows = []
    for surgeon, grp in known.groupby("surgeon_id", sort=True):
        counts = grp["service_line"].value_counts()
        top = sorted(counts[counts == counts.max()].index)[0]
        rows.append({"surgeon_id": surgeon, "service_line": top, "n_cases": len(grp)})
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------
# The whole import

@dataclass
class ImportResult:
    """What an import did. ``problems`` are the source values that could not be converted."""

    source: Path
    out_dir: Path
    rows_read: int
    rows_written: int  # rows in cases.csv (validation may still quarantine some on load)
    rows_quarantined: int  # set aside by the importer + quarantined by validation
    rows_set_aside: int  # of those, set aside by the importer for bad values
    problems: list[Problem]
    warnings: list[Problem]
    report: Any = None  # engine.hospital.QualityReport of the written folder
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)  # by source row
    files: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary (the CLI's ``--json`` payload); JSON-serialisable."""
        report = self.report.to_dict() if hasattr(self.report, "to_dict") else None
        return {
            "source": str(self.source), "out_dir": str(self.out_dir),
            "rows_read": self.rows_read, "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined, "rows_set_aside": self.rows_set_aside,
            "files": list(self.files),
            "problems": [_problem_dict(p) for p in self.problems],
            "warnings": [_problem_dict(p) for p in self.warnings],
            "report": report,
        }

    def describe(self, limit: int = 20) -> str:
        """Plain-text account for people: counts, warnings and the rows set aside."""
        lines = [f"imported {self.source} -> {self.out_dir}: {self.rows_read} rows read, "
                 f"{self.rows_written} written, {self.rows_quarantined} quarantined"]
        lines += [f"warning: {p}" for p in self.warnings]
        rows = [f"quarantined: {r.file}, row {r.source_row}, column '{r.column}': {r.reason}"
                for r in self.quarantine.itertuples()] if len(self.quarantine) else []
        lines += rows[:limit]
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more")
        return "\n".join(lines)


def _problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "row": p.row, "column": p.column, "problem": p.problem}


def _count_quarantined(report: Any) -> int:
    return int(getattr(report, "n_quarantined", 0) or 0)


def _copy_files(mapping: Mapping, dest: Path) -> list[str]:
    copied = []
    key_of = {v: k for k, v in FILE_KEYS.items()}
    problems = []
    for name, src in mapping.files.items():
        if not src.is_file():
            problems.append(Problem(mapping.name, None, f"files.{key_of[name]}",
                                    f"file not found: {src}"))
            continue
        shutil.copyfile(src, dest / name)
        copied.append(name)
    if problems:
        raise InputError(problems)
    return copied


def _relabel(exc: InputError, tmp: Path, out_dir: Path, source_name: str,
             source_rows: list[int], mapping: Mapping) -> InputError:
    """Validation problems name the temp folder; point them at the source and out_dir."""
    problems = []
    tmp_text = str(tmp)
    for p in exc.problems:
        file = p.file.replace(tmp_text, str(out_dir))
        if Path(p.file).name == "cases.csv" and p.row is not None and 0 < p.row <= len(source_rows):
            problems.append(Problem(source_name, source_rows[p.row - 1],
                                    _source_label(mapping, p.column),
                                    f"{p.problem} (cases.csv row {p.row})"))
        elif Path(p.file).name == "cases.csv":
            problems.append(Problem(f"cases.csv built from {source_name}", p.row, p.column,
                                    p.problem))
        elif Path(p.file).name in ("rooms.csv", "surgeons.csv") \
                and Path(p.file).name not in mapping.files:
            what = "'rooms' section" if Path(p.file).name == "rooms.csv" else "cases"
            problems.append(Problem(f"{Path(p.file).name} (derived from the {what} of "
                                    f"{mapping.name})", p.row, p.column, p.problem))
        else:
            problems.append(Problem(file, p.row, p.column, p.problem))
    return InputError(problems)


def import_hospital(source: str | Path, mapping_path: str | Path, out_dir: str | Path,
                    params: Any = None) -> ImportResult:
    """Foreign export -> validated contract hospital folder at ``out_dir``, all or nothing.

    Reads ``source`` with the mapping at ``mapping_path``, maps it, writes cases.csv,
    rooms.csv and surgeons.csv (derived unless the mapping's ``files`` names them),
    settings.toml and any ``files`` into a temp folder, validates that folder with
    ``engine.hospital.load_hospital(folder, params)`` and only then swaps it in. Raises
    ``InputError`` (nothing written, an existing ``out_dir`` untouched) for a bad mapping, an
    unreadable source, more bad rows than ``max_bad_row_fraction`` or a rejected folder.
    """
    import tomli_w

    from engine.hospital import load_hospital  # the lead's validator; imported late on purpose

    source = Path(source)
    out_dir = Path(out_dir)
    mapping = load_mapping(mapping_path)
    warnings: list[Problem] = []
    source_name = str(source)
    df = read_source(source, mapping, warnings)
    rows_read = len(df)
    if rows_read == 0:
        raise InputError(Problem(source_name, None, None, "the source has no data rows"))
    cases, problems = apply_mapping(df, mapping, source_name, warnings)

    bad_rows = sorted({p.row for p in problems if p.row is not None})
    if len(bad_rows) > mapping.max_bad_row_fraction * rows_read:
        summary = Problem(source_name, None, None,
                          f"{len(bad_rows)} of {rows_read} rows have values that cannot be "
                          f"converted, more than max_bad_row_fraction "
                          f"{mapping.max_bad_row_fraction:g} of {mapping.name} allows; "
                          "nothing was written")
        raise InputError([summary] + problems)
    set_aside = 0
    if mapping.bad_values == "quarantine" and bad_rows:
        cases = cases[~cases.index.isin([r - 1 for r in bad_rows])]
        set_aside = len(bad_rows)
    source_rows = [int(i) + 1 for i in cases.index]  # cases.csv row k came from source_rows[k-1]
    cases = cases.reset_index(drop=True)
    for p in problems[:20]:
        log.warning("import: %s", p)
    if len(problems) > 20:
        log.warning("import: ... and %d more problems", len(problems) - 20)

    settings = dict(mapping.settings)
    if "service_lines" not in settings and "service_line" in cases.columns:
        # Validation knows service lines from surgeons.csv; cases of 'unknown' surgeons would
        # otherwise be quarantined for a service line no named surgeon has.
        settings["service_lines"] = sorted(str(v) for v in cases["service_line"].dropna().unique())
    _clock_from_history(settings, cases)
    written: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        files = _copy_files(mapping, tmp)
        write_csv(cases, tmp / "cases.csv")
        files.append("cases.csv")
        rooms = None
        if "rooms.csv" not in mapping.files:
            rooms = derive_rooms(cases, mapping.rooms)
            write_csv(rooms, tmp / "rooms.csv")
            files.append("rooms.csv")
        if "surgeons.csv" not in mapping.files:
            write_csv(derive_surgeons(cases), tmp / "surgeons.csv")
            files.append("surgeons.csv")
        inferred = _infer_files(mapping, cases, rooms, tmp, settings)
        files += list(inferred)
        if inferred and SETTINGS_FILE not in mapping.files:
            settings["inferred"] = inferred
        if SETTINGS_FILE not in mapping.files:
            (tmp / SETTINGS_FILE).write_text(tomli_w.dumps(settings), encoding="utf-8")
            files.append(SETTINGS_FILE)
        try:
            loaded = load_hospital(tmp, params)
        except InputError as exc:
            raise _relabel(exc, tmp, out_dir.resolve(), source_name, source_rows,
                           mapping) from exc
        written["report"] = loaded.report
        written["files"] = sorted(files)

    atomic_write_folder(out_dir, build)
    report = written["report"]
    quarantine = _quarantine_by_source_row(problems if set_aside else [], report, source_rows,
                                           source_name, mapping)
    quarantined = set_aside + _count_quarantined(report)
    result = ImportResult(source=source, out_dir=out_dir, rows_read=rows_read,
                          rows_written=len(cases), rows_quarantined=quarantined,
                          rows_set_aside=set_aside, problems=problems, warnings=warnings,
                          report=report, quarantine=quarantine, files=written["files"])
    log.info("import: %s rows read, %s written, %s quarantined", rows_read, len(cases),
             quarantined)
    return result


def _clock_from_history(settings: dict[str, Any], cases: pd.DataFrame) -> None:
    """A hospital's clock cannot be earlier than its last completed case: when the export's history
    runs past today (a test or demo extract), ``as_of`` is set to the day after it (unless given)."""
    if "as_of" in settings or "status" not in cases.columns or "surgery_date" not in cases.columns:
        return
    done = pd.to_datetime(cases.loc[cases["status"].isin(["completed", "cancelled"]), "surgery_date"], errors="coerce")
    if not done.notna().any():
        return
    after = (done.max() + pd.Timedelta(days=1)).normalize()
    if after > pd.Timestamp.now().normalize():
        settings["as_of"] = after.date().isoformat()
        log.warning("import: the export has completed cases up to %s, after today: the hospital's clock "
                    "(settings.as_of) is set to %s; give settings.as_of in the mapping to change it",
                    f"{done.max():%Y-%m-%d}", settings["as_of"])


def _infer_files(mapping: Mapping, cases: pd.DataFrame, rooms: pd.DataFrame | None, tmp: Path,
                 settings: dict[str, Any]) -> dict[str, str]:
    """blocks.csv and staffing.csv inferred from history where the mapping gives none (a provided
    file always wins); returns file -> how it was inferred (written to settings.toml [inferred])."""
    from engine.onboard.infer import InferParams, infer_blocks, infer_staffing

    params = mapping.infer.get("params") or InferParams()
    done: dict[str, str] = {}
    if rooms is None:
        rooms = pd.read_csv(tmp / "rooms.csv", dtype=str)
    if mapping.infer.get("blocks", True) and "blocks.csv" not in mapping.files:
        blocks = infer_blocks(cases, rooms, params)
        write_csv(blocks, tmp / "blocks.csv")
        done["blocks.csv"] = (f"weekly template of the service (or surgeon) that used each room on each weekday over "
                              f"the last {params.weeks} weeks of history (owner on >= {params.min_owner_share:.0%} of "
                              f"the days the room ran, room running >= {params.min_used_share:.0%} of them; otherwise "
                              f"open time); {len(blocks)} blocks")
    if mapping.infer.get("staffing", True) and "staffing.csv" not in mapping.files:
        beds = mapping.infer.get("pacu_beds", settings.get("pacu_beds"))
        staffing, how = infer_staffing(cases, params, beds)
        write_csv(staffing, tmp / "staffing.csv")
        done["staffing.csv"] = (f"rooms running per weekday over the last {params.weeks} weeks (median), as many "
                                f"anesthesia teams; PACU beds: {how}")
    return done


def _source_label(mapping: Mapping, target: Any) -> str | None:
    """'Date + Wheels Out -> wheels_out' for a cases column, or the column itself."""
    if not isinstance(target, str):
        return None
    spec = mapping.fields.get(target) or mapping.extras.get(target)
    cols = spec.source_columns() if spec is not None else ()
    return f"{' + '.join(cols)} -> {target}" if cols else target


def _quarantine_by_source_row(problems: list[Problem], report: Any, source_rows: list[int],
                              source_name: str, mapping: Mapping) -> pd.DataFrame:
    """Every quarantined row, importer's and validation's, located in the source file."""
    rows = [{"file": source_name, "source_row": p.row, "case_id": None, "column": p.column,
             "reason": p.problem, "stage": "import"} for p in problems if p.row is not None]
    q = getattr(report, "quarantine", None)
    if isinstance(q, pd.DataFrame) and len(q):
        for r in q.itertuples(index=False):
            if r.file != "cases.csv" or r.row is None or not 0 < int(r.row) <= len(source_rows):
                continue
            rows.append({"file": source_name, "source_row": source_rows[int(r.row) - 1],
                         "case_id": r.case_id, "column": _source_label(mapping, r.column),
                         "reason": r.reason, "stage": "validation"})
    cols = ["file", "source_row", "case_id", "column", "reason", "stage"]
    return pd.DataFrame(rows, columns=cols).sort_values("source_row", kind="stable") \
        .reset_index(drop=True)
