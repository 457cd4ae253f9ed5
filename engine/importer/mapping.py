"""The import mapping: the format's constants, the typed mapping and its loader (YAML -> Mapping,
with every problem naming the mapping file and key)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import yaml
from pydantic import (BeforeValidator, ConfigDict, Field, PrivateAttr, SkipValidation, ValidationError, ValidationInfo,
                      field_validator, model_validator)

import engine.config as config
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
# Loading the mapping: the file as written is a pydantic model (_MappingFile) whose validators
# build the typed mapping's parts; engine.config words each problem by the mapping file and key.

class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: ``Y``, ``yes``, ``on`` stay strings (value-map keys)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


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
    """Validate an already-parsed mapping document (``load_mapping`` without the file).

    Every problem is reported at once, except those across sections (dependency cycles, columns
    referring to columns the mapping does not define), which wait until each section is valid.
    """
    path = Path(path)
    if not isinstance(data, dict):
        raise InputError(Problem(str(path), None, "", "the mapping must be a YAML mapping (key: value) "
                                                      "at the top level"))
    f = config.validate(_MappingFile, data, str(path), path=path)
    return Mapping(path=path, source=SourceOptions(**f.source.model_dump()), formats=f.formats.model_dump(),
                   fields=f.columns, constants=f.constants, extras=f.extras, order=f.order(),
                   extra_columns=f.extra_columns, bad_values=f.bad_values,
                   max_bad_row_fraction=f.max_bad_row_fraction, settings=f.settings, rooms=f.rooms.spec(),
                   files=f.files, infer=f.infer, clean=f.clean)


# --- value checks: each raises ValueError with the words the mapping's author reads


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {v!r}")
        return str(v)
    return BeforeValidator(check)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _text(v: Any) -> str | None:
    """A column name: non-empty text, trimmed."""
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty text")
    return v.strip()


def _formats(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise ValueError("must be a strptime format or a list of them, e.g. '%m/%d/%Y'")
    bad = [x for x in v if "%" not in x]
    if bad:
        config.fail([((), f"'{x}' has no % directive; strptime formats look like '%m/%d/%Y'") for x in bad])
    return tuple(v)


def _map_key(value: Any) -> str:
    """Value-map keys as the text a source cell would hold (YAML may give ints or floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _value_map(raw: Any) -> dict[str, str | None]:
    """``{source value: output value}``, keys folded to lower case (clashes are problems)."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("a value map must be a non-empty mapping of source value -> output value")
    out: dict[str, str | None] = {}
    seen: dict[str, str] = {}
    errs = config.Errors()
    for src, dst in raw.items():
        if src is None:
            errs.add((), "a value-map key is empty; missing values are handled by if_missing")
            continue
        if isinstance(dst, (dict, list)):
            errs.add((str(src),), "must map to a single value")
            continue
        folded = _map_key(src).casefold()
        dst_text = None if dst is None else _map_key(dst)
        if folded in out and out[folded] != dst_text:
            errs.add((str(src),), f"clashes with '{seen[folded]}' (keys match ignoring case)")
            continue
        out[folded] = dst_text
        seen[folded] = str(src)
    errs.raise_if_any()
    return out


def _not_allowed(target: str, value: Any) -> str | None:
    """Why a fixed value cannot go in ``status`` / ``urgency`` (None: it can)."""
    allowed = {"status": CASE_STATUSES, "urgency": URGENCIES}.get(target)
    if allowed and value is not None and value not in allowed:
        return f"'{value}' is not a valid {target} (allowed: {', '.join(allowed)})"
    return None


def _hhmm(v: Any) -> str:
    if not isinstance(v, str) or not _HHMM.match(v):
        raise ValueError(f"must be HH:MM, got {v!r}")
    return v


def _site(v: Any) -> str:
    if not isinstance(v, (str, int)) or v == "":
        raise ValueError("must be a site name")
    return str(v)


def _capabilities(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        items = v.split(";")
    elif isinstance(v, list):
        items = [str(x) for x in v]
    else:
        raise ValueError("must be a list or a ';'-separated text")
    return ";".join(i.strip() for i in items if i.strip())


def _pattern(v: Any) -> re.Pattern[str]:
    try:
        return re.compile(v)
    except re.error as exc:
        raise ValueError(f"bad regular expression: {exc}") from None


Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[Optional[str], BeforeValidator(_text)]
Formats = Annotated[tuple[str, ...], BeforeValidator(_formats)]
OptFormats = Annotated[Optional[tuple[str, ...]], BeforeValidator(_formats)]  # given: never None
ValueMap = Annotated[dict[str, Optional[str]], BeforeValidator(_value_map)]
HHMM = Annotated[str, BeforeValidator(_hhmm)]
Site = Annotated[Optional[str], BeforeValidator(_site)]
Capabilities = Annotated[str, BeforeValidator(_capabilities)]


# --- the sections


class _Source(config.Table):
    """``source:``: how to read the source file."""

    unknown_key = "unknown key (known: {sorted})"
    not_a_table = "must be a mapping (format, encoding, delimiter, sheet, header_row)"

    format: Optional[str] = None
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: Union[str, int] = 0
    header_row: int = 1

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> str | None:
        if v is not None and v not in ("csv", "parquet", "excel"):
            raise ValueError(f"must be csv, parquet or excel, got {v!r}")
        return v

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding(cls, v: Any) -> str:
        try:
            "".encode(str(v))
        except LookupError:
            raise ValueError(f"unknown encoding '{v}'") from None
        return str(v)

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter(cls, v: Any) -> str:
        v = "\t" if v in ("\\t", "tab") else v
        if not isinstance(v, str) or len(v) != 1:
            raise ValueError(f"must be a single character, got {v!r}")
        return v

    @field_validator("sheet", mode="before")
    @classmethod
    def _sheet(cls, v: Any) -> str | int:
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            raise ValueError("must be a sheet name or a 0-based sheet index")
        return v

    @field_validator("header_row", mode="before")
    @classmethod
    def _header_row(cls, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError("must be a whole number >= 1")
        return v


class _Formats(config.Table):
    """``formats:``: the strptime formats a column spec uses unless it gives its own."""

    unknown_key = "unknown key (known: {known})"
    not_a_table = "must be a mapping with date / time / datetime formats"

    date: Formats = DEFAULT_FORMATS["date"]
    time: Formats = DEFAULT_FORMATS["time"]
    datetime: Formats = DEFAULT_FORMATS["datetime"]


class _Spec(config.Table):
    """One ``columns`` / ``extras`` / ``if_missing`` entry written as a mapping.

    The keys are checked here one by one; :meth:`field_spec` checks them together and against
    the rest of the mapping (the target's kind, named value maps, other output columns).
    """

    column: Text = None
    date: Text = None
    time: Text = None
    derive: Optional[str] = None
    format: OptFormats = None
    date_format: OptFormats = None
    time_format: OptFormats = None
    map: Any = None  # a name under value_maps, or the map itself (folded by _value_map)
    unmapped: Annotated[str, _one_of(UNMAPPED_POLICIES)] = "keep"
    if_missing: Any = None  # a constant, or a _Spec
    optional: Flag = False
    roll_over_midnight: Flag = False
    after: Text = None
    start: Text = None
    end: Text = None
    from_: Text = Field(None, alias="from")
    max_roll_over_hours: float = 18.0
    # Checked by field_spec, with the derive kind that reads them.
    pattern: Any = None
    group: Any = 1
    sep: Any = None
    index: Any = 0
    columns: Any = None
    list_sep: Optional[str] = None
    kind: Any = None  # extras only

    @field_validator("derive", mode="before")
    @classmethod
    def _derive(cls, v: Any) -> str:
        if v not in DERIVE_KINDS:
            raise ValueError(f"unknown derive kind '{v}' (known: {', '.join(DERIVE_KINDS)})")
        return v

    @field_validator("map", mode="before")
    @classmethod
    def _map(cls, v: Any) -> Any:
        return v if isinstance(v, str) else _value_map(v)

    @field_validator("if_missing", mode="before")
    @classmethod
    def _if_missing(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return _Spec.model_validate(v)
        if isinstance(v, list):
            raise ValueError("must be a constant or a spec mapping")
        return v

    @field_validator("max_roll_over_hours", mode="before")
    @classmethod
    def _max_roll(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 24:
            raise ValueError(f"must be a number of hours in (0, 24], got {v!r}")
        return float(v)

    @field_validator("list_sep", mode="before")
    @classmethod
    def _list_sep(cls, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise ValueError("must be a non-empty text")
        return v

    def field_spec(self, target: str, kind: str, key: str, loc: config.Loc, ctx: _Context,
                   errs: config.Errors, allow_kind: bool = False) -> FieldSpec | None:
        """The FieldSpec of ``target`` (a ``kind`` column); problems go to ``errs`` at ``loc``
        (None after one). ``key`` names the entry in messages (``columns.room_id``)."""
        n_before = len(errs)
        given = self.model_fields_set
        if "kind" in given and not allow_kind:
            errs.add((*loc, "kind"), "unknown key")
        common: dict[str, Any] = {"target": target, "kind": kind, "key": key,
                                  "formats": self.format if self.format is not None else ctx.formats.get(kind, ()),
                                  "unmapped": self.unmapped if "unmapped" in given else ctx.unmapped,
                                  "optional": self.optional}
        if "map" in given:
            vm = self.map
            if isinstance(vm, str):
                vm = ctx.value_maps.get(vm) if ctx.value_maps is not None else None
                if vm is None and ctx.value_maps is not None:
                    errs.add((*loc, "map"), f"no value map named '{self.map}' under 'value_maps'")
            common["value_map"] = vm
            if vm and target in ("status", "urgency"):
                allowed = CASE_STATUSES if target == "status" else URGENCIES
                for dst in vm.values():
                    if dst is not None and dst not in allowed:
                        errs.add((*loc, "map"), f"maps to '{dst}', which is not a valid {target} "
                                                f"(allowed: {', '.join(allowed)})")
        elif "unmapped" in given:
            errs.add((*loc, "unmapped"), "'unmapped' needs a 'map'")
        if self.list_sep is not None:
            common["list_sep"] = self.list_sep
        if isinstance(self.if_missing, _Spec):
            common["if_missing_spec"] = self.if_missing.field_spec(target, kind, f"{key}.if_missing",
                                                                   (*loc, "if_missing"), ctx, errs)
        elif "if_missing" in given:
            common["if_missing_value"] = self.if_missing
            if (why := _not_allowed(target, self.if_missing)) is not None:
                errs.add((*loc, "if_missing"), why)

        spec: FieldSpec
        if self.derive is not None:
            spec = self._derived(common, target, kind, loc, errs)
        elif "date" in given or "time" in given:
            if not self.date or not self.time:
                errs.add(loc, "a date+time spec needs both 'date' and 'time' source columns")
            if kind != "datetime":
                errs.add(loc, f"date+time gives a datetime; '{target}' is a {kind}")
            roll, after = self.roll_over_midnight, self.after
            if roll and after is None:
                after = "wheels_in"
            if after is not None and not roll:
                errs.add((*loc, "after"), "'after' only makes sense with roll_over_midnight: true")
            if after == target:
                errs.add((*loc, "after"), f"'{target}' cannot roll over relative to itself; "
                                          "set 'after' to an earlier column")
            spec = FieldSpec(**common, how="combine", date_column=self.date, time_column=self.time,
                             date_formats=self.date_format or ctx.formats["date"],
                             time_formats=self.time_format or ctx.formats["time"],
                             datetime_formats=ctx.formats["datetime"], roll_over_midnight=roll,
                             max_roll_over_hours=self.max_roll_over_hours, after=after)
        elif "column" in given:
            spec = FieldSpec(**common, how="column", column=self.column)
        else:
            errs.add(loc, "needs 'column', 'date' + 'time', or 'derive'")
            return None
        for k in ("date_format", "time_format", "roll_over_midnight", "after", "max_roll_over_hours"):
            if k in given and spec.how != "combine":
                errs.add((*loc, k), "only for date + time specs")
        if spec.how == "combine" or spec.derive in ("minutes_between", "from_datetime_date"):
            for k in ("format", "map", "unmapped", "list_sep"):
                if k in given:
                    errs.add((*loc, k), "only for specs that read text (column, regex, split, "
                                        "concat); date + time specs use date_format/time_format")
        return spec if len(errs) == n_before else None

    def _derived(self, common: dict[str, Any], target: str, kind: str, loc: config.Loc,
                 errs: config.Errors) -> FieldSpec:
        common = common | {"how": "derive", "derive": self.derive}
        if self.derive == "minutes_between":
            if not self.start or not self.end:
                errs.add(loc, "minutes_between needs 'start' and 'end' (output datetime columns)")
            if kind not in ("float", "int"):
                errs.add((*loc, "derive"), f"minutes_between gives minutes; '{target}' is a {kind}")
            return FieldSpec(**common, start=self.start, end=self.end)
        if self.derive == "from_datetime_date":
            if not self.from_:
                errs.add(loc, "from_datetime_date needs 'from' (an output datetime column)")
            if kind != "date":
                errs.add((*loc, "derive"), f"from_datetime_date gives a date; '{target}' is a {kind}")
            return FieldSpec(**common, from_target=self.from_)
        if self.derive == "regex":
            pat, group, compiled = self.pattern, self.group, None
            if not self.column:
                errs.add(loc, "regex needs 'column' (the source column)")
            if not isinstance(pat, str) or not pat:
                errs.add((*loc, "pattern"), "regex needs a 'pattern'")
            else:
                try:
                    compiled = _pattern(pat)
                except ValueError as exc:
                    errs.add((*loc, "pattern"), str(exc))
            if compiled is not None:
                if isinstance(group, int) and not isinstance(group, bool):
                    if not 0 <= group <= compiled.groups:
                        errs.add((*loc, "group"), f"the pattern has {compiled.groups} groups")
                elif not isinstance(group, str) or group not in compiled.groupindex:
                    errs.add((*loc, "group"), f"no group {group!r} in the pattern")
            return FieldSpec(**common, column=self.column, pattern=compiled, group=group)
        if self.derive == "split":
            sep, index = self.sep, self.index
            if not self.column:
                errs.add(loc, "split needs 'column' (the source column)")
            if not isinstance(sep, str) or not sep:
                errs.add((*loc, "sep"), "split needs a non-empty 'sep'")
            if not isinstance(index, int) or isinstance(index, bool):
                errs.add((*loc, "index"), "must be a whole number (0 = first part, -1 = last)")
                index = 0
            return FieldSpec(**common, column=self.column, sep=sep, index=index)
        # concat
        cols, sep = self.columns, " " if self.sep is None else self.sep
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c.strip() for c in cols):
            errs.add((*loc, "columns"), "concat needs 'columns': a list of source columns")
            cols = []
        if not isinstance(sep, str):
            errs.add((*loc, "sep"), "must be a text")
            sep = " "
        return FieldSpec(**common, columns=tuple(c.strip() for c in cols), sep=sep)


@dataclass(frozen=True)
class _Context:
    """What a column spec takes from the rest of the mapping (value_maps None: that section is wrong)."""

    formats: dict[str, tuple[str, ...]]
    value_maps: dict[str, dict[str, str | None]] | None
    unmapped: str

    @classmethod
    def of(cls, info: ValidationInfo) -> _Context:
        formats = info.data["formats"].model_dump() if "formats" in info.data else dict(DEFAULT_FORMATS)
        return cls(formats, info.data.get("value_maps"), info.data.get("unmapped_values", "keep"))


def _field_spec(raw: Any, target: str, kind: str, section: str, ctx: _Context, errs: config.Errors,
                allow_kind: bool = False) -> FieldSpec | None:
    """A ``section`` entry (a source column name, or a mapping) -> FieldSpec; None after a problem."""
    loc, key = (target,), f"{section}.{target}"
    if isinstance(raw, str):
        if not raw.strip():
            errs.add(loc, "empty source column name")
            return None
        return FieldSpec(target=target, kind=kind, key=key, how="column", column=raw.strip(),
                         formats=ctx.formats.get(kind, ()), unmapped=ctx.unmapped)
    if not isinstance(raw, dict):
        errs.add(loc, "must be a source column name or a mapping (column / date+time / derive)")
        return None
    try:
        spec = _Spec.model_validate(raw)
    except ValidationError as exc:
        errs.add_exc(exc, loc)
        return None
    return spec.field_spec(target, kind, key, loc, ctx, errs, allow_kind)


class _RoomValues(config.Table):
    """Room attributes: the ``rooms:`` defaults, or one of its ``patterns``."""

    unknown_key = "unknown key"

    site: Site = None
    open_time: HHMM = "07:00"
    close_time: HHMM = "17:00"
    capabilities: Capabilities = ""

    def given(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("open_time", "close_time", "site", "capabilities")
                if k in self.model_fields_set}


class _RoomPattern(_RoomValues):
    not_a_table = "each pattern needs 'match' (a regular expression on room_id)"

    match: Annotated[re.Pattern[str], BeforeValidator(_pattern)]

    @classmethod
    def accepts(cls, data: Any) -> bool:
        return isinstance(data, dict) and isinstance(data.get("match"), str)


class _Rooms(_RoomValues):
    """``rooms:``: how rooms.csv is derived from the room ids seen in the cases."""

    unknown_key = "unknown key (known: {sorted})"
    not_a_table = "must be a mapping (site, open_time, close_time, capabilities, patterns)"

    patterns: list[_RoomPattern] = []
    ids: tuple[str, ...] = ()

    @field_validator("patterns", mode="before")
    @classmethod
    def _patterns(cls, v: Any) -> list[Any]:
        if v is not None and not isinstance(v, list):
            raise ValueError("must be a list of {match: REGEX, ...room fields}")
        return v or []

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> tuple[str, ...]:
        if v is not None and not isinstance(v, list):
            raise ValueError("must be a list of room ids")
        return tuple(str(i).strip() for i in v or [])

    def spec(self) -> RoomsSpec:
        return RoomsSpec(site=self.site, open_time=self.open_time, close_time=self.close_time,
                         capabilities=self.capabilities, ids=self.ids,
                         rules=tuple(RoomRule(pattern=p.match, values=p.given()) for p in self.patterns))


_INFER_FLAGS = ("blocks", "staffing")


def _infer_params() -> list[str]:
    """engine.onboard.infer.InferParams's fields: the inference rules' thresholds."""
    from engine.onboard.infer import InferParams

    return sorted(f.name for f in dataclass_fields(InferParams))


class _Infer(config.Table):
    """``infer: {blocks: true, staffing: true, pacu_beds: 8, weeks: 8, ...}``: which missing files to
    infer from history, and the rules' thresholds (engine.onboard.infer.InferParams fields)."""

    model_config = ConfigDict(extra="allow")
    unknown_key = "unknown key (known: {known})"
    not_a_table = "must be a mapping (blocks: true, staffing: true, pacu_beds: N, weeks: N, ...)"

    blocks: bool = True
    staffing: bool = True
    pacu_beds: Optional[int] = None

    @classmethod
    def known_keys(cls) -> list[str]:
        return [*super().known_keys(), *_infer_params()]

    @field_validator(*_INFER_FLAGS, mode="before")
    @classmethod
    def _flags(cls, v: Any) -> bool:
        if not isinstance(v, bool):
            raise ValueError(f"must be true or false, got {v!r}")
        return v

    @field_validator("pacu_beds", mode="before")
    @classmethod
    def _beds(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"must be a whole number of beds >= 0, got {v!r}")
        return v

    def as_dict(self) -> dict[str, Any]:
        """What the importer reads: the flags, ``pacu_beds`` when given, and ``params``."""
        from engine.onboard.infer import InferParams

        try:
            params = InferParams(**(self.model_extra or {}))
        except (TypeError, ValueError) as exc:
            config.fail([((), str(exc))])
        out: dict[str, Any] = {"blocks": self.blocks, "staffing": self.staffing}
        if "pacu_beds" in self.model_fields_set:
            out["pacu_beds"] = self.pacu_beds
        return out | {"params": params}


class _MappingFile(config.Table):
    """A mapping file as written (data/mappings/README.md).

    Fields are validated in this order, so a section's checks can read the sections it depends
    on from ``info.data`` (absent when that section is wrong: its dependants then skip the
    checks that would only repeat the problem).
    """

    unknown_key = "unknown key (known: {known})"

    version: Any = None
    name: Any = None
    description: Any = None
    source: _Source = _Source()
    formats: _Formats = _Formats()
    value_maps: dict[str, ValueMap] = {}
    unmapped_values: Annotated[str, _one_of(UNMAPPED_POLICIES)] = "keep"
    constants: SkipValidation[dict[str, Any]] = {}
    columns: SkipValidation[dict[str, FieldSpec]] = Field(None, validate_default=True)
    extras: SkipValidation[dict[str, FieldSpec]] = {}
    extra_columns: Annotated[str, _one_of(EXTRA_COLUMN_POLICIES)] = "drop"
    bad_values: Annotated[str, _one_of(BAD_VALUE_POLICIES)] = "quarantine"
    max_bad_row_fraction: float = 0.05
    files: dict[str, Path] = {}
    settings: SkipValidation[dict[str, Any]] = Field(None, validate_default=True)
    rooms: _Rooms = _Rooms()
    infer: SkipValidation[dict[str, Any]] = {"blocks": True, "staffing": True}
    clean: SkipValidation[Optional[CleanRules]] = None
    _order: tuple[str, ...] = PrivateAttr(())

    @field_validator("value_maps", mode="before")
    @classmethod
    def _value_maps(cls, v: Any) -> dict[str, Any]:
        if v is not None and not isinstance(v, dict):
            raise ValueError("must be a mapping of map name -> {source value: output value}")
        return {str(k): m for k, m in (v or {}).items()}

    @field_validator("constants", mode="before")
    @classmethod
    def _constants(cls, v: Any) -> dict[str, Any]:
        if not isinstance(v or {}, dict):
            raise ValueError("must be a mapping of contract column -> value")
        errs = config.Errors()
        for target, value in (v or {}).items():
            if target not in CASES_COLUMNS:
                errs.add((str(target),), f"unknown target column '{target}'")
            elif isinstance(value, (dict, list)):
                errs.add((target,), "a constant must be a single value")
            elif (why := _not_allowed(target, value)) is not None:
                errs.add((target,), why)
        errs.raise_if_any()
        return dict(v or {})

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, v: Any, info: ValidationInfo) -> dict[str, FieldSpec]:
        if v is None:
            raise ValueError("missing section: 'columns' maps contract columns to source columns")
        errs, ctx, out = config.Errors(), _Context.of(info), {}
        if not isinstance(v, dict) or not v:
            errs.add((), "must be a non-empty mapping of contract column -> source spec")
        for target, raw in (v.items() if isinstance(v, dict) else ()):
            if target not in CASES_COLUMNS:
                errs.add((str(target),), f"unknown target column '{target}' (cases.csv columns: "
                                         f"{', '.join(CASES_COLUMNS)}; put other columns under 'extras')")
            elif (spec := _field_spec(raw, target, CASES_COLUMNS[target], "columns", ctx, errs)) is not None:
                out[target] = spec
        if isinstance(v, dict) and "constants" in info.data:
            for req in CASES_REQUIRED:
                if req not in v and req not in info.data["constants"]:
                    errs.add((req,), f"required cases.csv column '{req}' is not mapped "
                                     "(map it under 'columns' or give it under 'constants')")
        errs.raise_if_any()
        return out

    @field_validator("extras", mode="before")
    @classmethod
    def _extras(cls, v: Any, info: ValidationInfo) -> dict[str, FieldSpec]:
        if not isinstance(v or {}, dict):
            raise ValueError("must be a mapping of output column -> source spec")
        errs, ctx, out = config.Errors(), _Context.of(info), {}
        for target, raw in (v or {}).items():
            target = str(target)
            kind = raw.get("kind", "str") if isinstance(raw, dict) else "str"
            if target in CASES_COLUMNS:
                errs.add((target,), f"'{target}' is a contract column: map it under 'columns'")
            elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", target):
                errs.add((target,), "extra column names must be identifiers (letters, digits, _)")
            elif kind not in EXTRA_KINDS:
                errs.add((target, "kind"), f"unknown kind '{kind}' (known: {', '.join(EXTRA_KINDS)})")
            elif (spec := _field_spec(raw, target, kind, "extras", ctx, errs, allow_kind=True)) is not None:
                out[target] = spec
        errs.raise_if_any()
        return out

    @field_validator("max_bad_row_fraction", mode="before")
    @classmethod
    def _max_bad(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"must be a number between 0 and 1, got {v!r}")
        return float(v)

    @field_validator("files", mode="before")
    @classmethod
    def _files(cls, v: Any, info: ValidationInfo) -> dict[str, Path]:
        """Contract file name -> path (relative paths are from the mapping's folder)."""
        if v is not None and not isinstance(v, dict):
            raise ValueError(f"must be a mapping of {', '.join(FILE_KEYS)} -> path")
        errs, out, folder = config.Errors(), {}, Path(info.context["path"]).parent
        for k, p in (v or {}).items():
            if k not in FILE_KEYS:
                errs.add((str(k),), f"unknown file (known: {', '.join(FILE_KEYS)})")
            elif not isinstance(p, str) or not p.strip():
                errs.add((k,), "must be a path")
            else:
                out[FILE_KEYS[k]] = Path(p.strip()) if Path(p.strip()).is_absolute() else folder / p.strip()
        errs.raise_if_any()
        return out

    @field_validator("settings", mode="before")
    @classmethod
    def _settings(cls, v: Any, info: ValidationInfo) -> dict[str, Any]:
        """settings.toml's keys, checked with the model load_hospital uses (one set of rules)."""
        from engine.settings import parse_settings

        files = info.data.get("files")
        from_file = files is not None and SETTINGS_FILE in files
        if v is None:
            if files is not None and not from_file:
                raise ValueError("missing section: settings.toml needs "
                                 f"{', '.join(SETTINGS_REQUIRED)} (or point files.settings at one)")
            return {}
        errs = config.Errors()
        if from_file:
            errs.add((), "give either a 'settings' section or 'files.settings', not both")
        if not isinstance(v, dict):
            errs.add((), "must be a mapping (turnover_minutes, pacu_minutes, prime_time, ...)")
            errs.raise_if_any()
        _, problems = parse_settings({k: x for k, x in v.items() if x is not None})
        for p in problems:
            errs.add((p.column,) if p.column else (), p.problem)
        for k, x in v.items():
            if x is None:
                errs.add((str(k),), "has no value (TOML has no null)")
        errs.raise_if_any()
        return dict(v)

    @field_validator("infer", mode="before")
    @classmethod
    def _infer(cls, v: Any) -> dict[str, Any]:
        return {"blocks": True, "staffing": True} if v is None else _Infer.model_validate(v).as_dict()

    @field_validator("clean", mode="before")
    @classmethod
    def _clean(cls, v: Any) -> CleanRules | None:
        errs = _CleanErrors()
        rules = parse_clean(v, errs)
        errs.raise_if_any()
        return rules

    def order(self) -> tuple[str, ...]:
        """Columns and extras in evaluation order (dependencies first)."""
        return self._order

    @model_validator(mode="after")
    def _references(self) -> _MappingFile:
        """Across sections, once each is valid: cycles, undefined columns, non-datetime references."""
        errs = config.Errors()
        self._order = _evaluation_order(self.columns, self.extras, self.constants, errs)
        errs.raise_if_any()
        return self


class _CleanErrors(config.Errors):
    """engine.importer.clean reports by full key (``clean.surgeons.aliases``); relative to ``clean`` here."""

    def add(self, key: Any, message: str) -> None:  # type: ignore[override]
        parts = tuple(key.split(".")) if isinstance(key, str) else tuple(key)
        super().add(parts[1:] if parts[:1] == ("clean",) else parts, message)


def _evaluation_order(fields: dict[str, FieldSpec], extras: dict[str, FieldSpec],
                      constants: dict[str, Any], errs: config.Errors) -> tuple[str, ...]:
    """Dependencies first (derived columns need the columns they read); cycles are errors."""
    specs = {**fields, **extras}
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def where(name: str) -> config.Loc:
        return tuple(specs[name].key.split(".", 1))

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            errs.add(where(name), "derived columns depend on each other in a cycle: "
                                  + " -> ".join(path + [name]))
            return
        state[name] = 1
        for ref in specs[name].target_refs():
            if ref in specs:
                visit(ref, path + [name])
            elif ref not in constants:
                errs.add(where(name), f"refers to output column '{ref}', which the mapping "
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
                errs.add(where(name), f"'{ref}' is a {kind}; a datetime column is needed here")
    return tuple(order)
