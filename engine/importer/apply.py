"""Applying the mapping: source rows -> contract cases rows; rooms.csv and surgeons.csv derived from them."""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.contract import CASES_COLUMNS, ROOMS_COLUMNS, SURGEONS_COLUMNS
from engine.errors import InputError, Problem
from engine.importer.spec import _THOUSANDS, FieldSpec, Mapping, RoomsSpec
from engine.importer.reading import _cell_text, _clean_text
from engine.importer.values import _describe_formats, _parse_date, _parse_datetime, _parse_time


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
