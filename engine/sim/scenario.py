"""Scenarios: stress settings of a simulated day, kept as TOML data files (data/scenarios/).

A scenario file has a ``name``, a ``description`` and a ``[knobs]`` table. Every knob has a
default (the ``normal`` day), so a file lists only what it changes. Float knobs take a number or
a two-number range ``[lo, hi]``: a range is *parameter uncertainty*, drawn uniformly once per
replication (the same draw for every schedule under one seed, so comparisons stay paired).

Loading validates everything and raises :class:`engine.errors.InputError` naming the file and
the key (``knobs.duration_inflation``) for unknown keys, wrong types and out-of-range values.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, create_model, field_validator

from engine.config import Table, read_toml, validate
from engine.errors import InputError

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "data" / "scenarios"
Knob = Union[float, int, tuple[float, float]]


@dataclass(frozen=True)
class KnobSpec:
    kind: str  # "float" (number or [lo, hi] range) or "int"
    lo: float
    hi: float
    default: Knob
    doc: str


KNOBS: dict[str, KnobSpec] = {
    "duration_inflation": KnobSpec("float", -0.5, 3.0, 0.0,
                                   "fraction added to every drawn case duration (0.10 = 10% longer)"),
    "cancel_multiplier": KnobSpec("float", 0.0, 50.0, 1.0,
                                  "multiplies each case's forecast cancel_prob (capped at 1): a cancellation spike"),
    "late_start_prob": KnobSpec("float", 0.0, 1.0, 0.35, "probability that a room's first case starts late"),
    "late_start_mean_minutes": KnobSpec("float", 0.0, 240.0, 12.0,
                                        "mean of the exponential delay of a late first case (plus 1 minute)"),
    "room_downtime_prob": KnobSpec("float", 0.0, 1.0, 0.0,
                                   "probability that a room goes down once during its day (no case may start then)"),
    "room_downtime_minutes": KnobSpec("float", 0.0, 1440.0, 60.0, "length of a room downtime"),
    "addon_multiplier": KnobSpec("float", 0.0, 20.0, 1.0, "multiplies the forecast add-on volume"),
    "staffed_rooms_delta": KnobSpec("int", -1000, 1000, 0,
                                    "rooms added to (negative: removed from) staffing.csv's staffed rooms"),
    "pacu_beds_delta": KnobSpec("int", -1000, 100000, 0, "PACU beds added to (negative: removed from) staffing.csv"),
    "staffed_rooms_min_share": KnobSpec("float", 0.0, 1.0, 0.0,
                                        "the staffed rooms never fall below this share of staffing.csv's (rounded up)"),
    "pacu_beds_min_share": KnobSpec("float", 0.0, 1.0, 0.0,
                                    "the PACU beds never fall below this share of staffing.csv's (rounded up)"),
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _knob(spec: KnobSpec) -> BeforeValidator:
    """The check of one knob: an integer, or a number or a ``[lo, hi]`` range, within its bounds."""
    rng = f"{spec.lo:g}..{spec.hi:g}"

    def check(v: Any) -> Knob:
        if spec.kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"must be an integer, got {v!r}")
        elif isinstance(v, (list, tuple)):
            if len(v) != 2 or not all(_is_number(x) for x in v):
                raise ValueError(f"a range must be two numbers [lo, hi], got {list(v)!r}")
            if v[0] > v[1]:
                raise ValueError(f"range {list(v)!r} has lo above hi")
            if not all(spec.lo <= x <= spec.hi for x in v):
                raise ValueError(f"{list(v)!r} is out of range ({rng})")
            return (v[0], v[1])
        elif not _is_number(v):
            raise ValueError(f"must be a number or a range [lo, hi], got {v!r}")
        if not spec.lo <= v <= spec.hi:
            raise ValueError(f"{v!r} is out of range ({rng})")
        return v
    return BeforeValidator(check)


class _KnobTable(Table):
    unknown_key = "unknown knob (known: {known})"


# ``[knobs]``: one field per KNOBS entry (a file lists only the knobs it changes).
_Knobs = create_model("_Knobs", __base__=_KnobTable,
                      **{name: (Annotated[Any, _knob(spec)], None) for name, spec in KNOBS.items()})


class _ScenarioFile(BaseModel):
    """A scenario file as written; knob values are checked against ``KNOBS`` (one spec table)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    description: str = ""
    knobs: _Knobs = _Knobs()  # type: ignore[valid-type]

    def given_knobs(self) -> dict[str, Knob]:
        return self.knobs.model_dump(include=self.knobs.model_fields_set)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME_RE.match(v):
            raise ValueError(f"{v!r} must be letters, digits, '_' or '-'")
        return v


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: its name, description, source file and knob values."""

    name: str
    description: str = ""
    knobs: dict[str, Knob] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        given = validate(_ScenarioFile, {"knobs": self.knobs}, self.source or "scenario").given_knobs()
        object.__setattr__(self, "knobs", {k: spec.default for k, spec in KNOBS.items()} | given)

    def value(self, name: str) -> Knob:
        return self.knobs[name]

    def is_range(self, name: str) -> bool:
        return isinstance(self.knobs[name], tuple)

    def bounds(self, name: str) -> tuple[float, float]:
        """(lo, hi) of a float knob; lo == hi when it is a fixed number."""
        v = self.knobs[name]
        return (float(v[0]), float(v[1])) if isinstance(v, tuple) else (float(v), float(v))

    def with_(self, name: str | None = None, **knobs: Knob) -> "Scenario":
        """A copy with some knobs changed (for sweeps); validated like a file."""
        return Scenario(name or self.name, self.description, {**self.knobs, **knobs}, self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "knobs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.knobs.items()}}


def available_scenarios(folder: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (folder or SCENARIO_DIR).glob("*.toml"))


def load_scenario(name_or_path: str | Path, folder: Path | None = None) -> Scenario:
    """A scenario by name (``data/scenarios/<name>.toml``) or by path to a TOML file."""
    folder = folder or SCENARIO_DIR
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(name_or_path)
    else:
        if not _NAME_RE.match(text) or not (folder / f"{text}.toml").exists():
            raise InputError(f"unknown scenario {text!r} (available: {', '.join(available_scenarios(folder))})",
                             file=str(folder))
        path = folder / f"{text}.toml"
    fname = str(path)
    f = validate(_ScenarioFile, read_toml(path), fname)
    return Scenario(name=f.name or path.stem, description=f.description, knobs=f.given_knobs(), source=fname)
