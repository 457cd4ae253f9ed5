"""The import mapping's loader (YAML -> :class:`engine.importer.spec.Mapping`, with every problem
naming the mapping file and key). The format's constants and the typed mapping are in ``spec``."""
from __future__ import annotations

import re
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import yaml
from pydantic import (BeforeValidator, ConfigDict, Field, PrivateAttr, SkipValidation, ValidationInfo,
                      field_validator, model_validator)

import engine.config as config
from engine.contract import CASES_COLUMNS, CASES_REQUIRED, SETTINGS_FILE, SETTINGS_REQUIRED
from engine.errors import InputError, Problem
from engine.importer.clean import CleanRules, parse_clean
from engine.importer.columns import (HHMM, Capabilities, Formats, Site, ValueMap, _Context, _field_spec, _not_allowed,
                                    _one_of, _pattern)
from engine.importer.spec import (BAD_VALUE_POLICIES, DEFAULT_FORMATS, EXTRA_COLUMN_POLICIES, EXTRA_KINDS,
                                 FILE_KEYS, UNMAPPED_POLICIES, FieldSpec, Mapping, RoomRule, RoomsSpec, SourceOptions)



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
