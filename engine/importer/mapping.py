"""The import mapping: the format's constants, the typed mapping and its loader (YAML -> Mapping,
with every problem naming the mapping file and key)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.contract import CASE_STATUSES, CASES_COLUMNS, CASES_REQUIRED, SETTINGS_FILE, SETTINGS_REQUIRED, URGENCIES
from engine.errors import InputError, Problem
from engine.importer.clean import CleanRules, parse_clean


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
             "max_bad_row_fraction", "settings", "rooms", "files", "infer", "clean")
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
    settings = _parse_settings(data.get("settings"), SETTINGS_FILE in files, errs)
    rooms = _parse_rooms(data.get("rooms"), errs)
    infer = _parse_infer(data.get("infer"), errs)
    clean = parse_clean(data.get("clean"), errs)
    errs.raise_if_any()
    return Mapping(path=path, source=source, formats=formats, fields=fields, constants=constants,
                   extras=extras, order=order, extra_columns=extra_columns, bad_values=bad_values,
                   max_bad_row_fraction=float(max_bad), settings=settings, rooms=rooms,
                   files=files, infer=infer, clean=clean)


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
