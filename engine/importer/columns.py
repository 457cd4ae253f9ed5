"""The import mapping's value checks and its column specs (a ``columns:`` / ``extra_columns:`` entry ->
:class:`engine.importer.spec.FieldSpec`), shared by the mapping file's sections
(:mod:`engine.importer.mapping`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator

import engine.config as config
from engine.contract import CASE_STATUSES, URGENCIES
from engine.importer.spec import _HHMM, DEFAULT_FORMATS, DERIVE_KINDS, UNMAPPED_POLICIES, FieldSpec


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


# --- a column spec

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
