"""A hospital's settings (settings.toml), typed and validated once by ``load_hospital``.

Every module reads settings through :class:`HospitalSettings` attributes; nothing else parses
``prime_time`` or checks a setting's range. Unknown keys are kept (``settings.get(key)``), so a
hospital's own additions round-trip through the store. Errors become ``Problem`` rows naming the
key (``service_levels.finish_probability``), which the CLI turns into exit 2.
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine import config
from engine.contract import SETTINGS_FILE, SETTINGS_REQUIRED
from engine.errors import Problem
from engine.timeutil import parse_window

DEFAULT_OVERTIME_CAP_MINUTES = 120.0
DEFAULT_MAX_PRIME_TIME_GAP_POINTS = 5.0
DEFAULT_MIN_GROUP_CASES = 5


def _minutes_in(v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ValueError(f"{v!r} must be a number of minutes within {lo:g}..{hi:g}")
    return float(v)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceLevels(_Section):
    """``[service_levels]``: what the hospital promises, in its own words.

    "A room finishes by close + ``finish_by_close_plus_minutes`` with probability at least
    ``finish_probability``"; ``pacu_hold_budget_minutes`` is the PACU hold a day may accept
    (None: no stated budget, 0 minutes); ``pacu_beds_short`` is the shortage of recovery beds the
    week must withstand (nurses short, inpatients boarding): the allocator prices each day's PACU
    load as if that many of its staffed beds were missing (0: the staffed beds). The allocator's
    weights follow from these (docs/architecture.md).
    """

    finish_by_close_plus_minutes: float = 30.0
    finish_probability: float = 0.8
    pacu_hold_budget_minutes: float | None = None
    pacu_beds_short: int = 0

    @field_validator("pacu_beds_short", mode="before")
    @classmethod
    def _short(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
            raise ValueError(f"{v!r} must be a whole number of beds within 0..100, e.g. 2")
        return int(v)

    @field_validator("finish_by_close_plus_minutes", mode="before")
    @classmethod
    def _plus(cls, v: Any) -> float:
        return _minutes_in(v, 0, 720)

    @field_validator("pacu_hold_budget_minutes", mode="before")
    @classmethod
    def _budget(cls, v: Any) -> float | None:
        return None if v is None else _minutes_in(v, 0, 100_000)

    @field_validator("finish_probability", mode="before")
    @classmethod
    def _prob(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.5 <= v < 1.0:
            raise ValueError(f"{v!r} must be a probability in [0.5, 1), e.g. 0.8")
        return float(v)


class FairnessPolicy(_Section):
    """``[fairness]``: the governance board's limits, in percentage points of share.

    ``max_prime_time_gap_points``: the largest allowed shortfall of a service line's prime-time
    share against its demand share. The optional limits are not enforced when absent. Groups with
    fewer than ``min_group_cases`` booked cases are reported but not judged.
    """

    max_prime_time_gap_points: float = DEFAULT_MAX_PRIME_TIME_GAP_POINTS
    max_late_slot_share_gap_points: float | None = None
    max_deferral_rate_gap_points: float | None = None
    min_group_cases: int = DEFAULT_MIN_GROUP_CASES

    @field_validator("max_prime_time_gap_points", "max_late_slot_share_gap_points",
                     "max_deferral_rate_gap_points", mode="before")
    @classmethod
    def _points(cls, v: Any) -> float | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
            raise ValueError(f"{v!r} must be a number of percentage points within 0..100")
        return float(v)

    @field_validator("min_group_cases", mode="before")
    @classmethod
    def _min_cases(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{v!r} must be a whole number of cases >= 1")
        return v


class HospitalSettings(BaseModel):
    """settings.toml. Required: ``turnover_minutes``, ``pacu_minutes``, ``prime_time``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    turnover_minutes: float
    pacu_minutes: float
    prime_time: str
    overtime_cap_minutes: float = DEFAULT_OVERTIME_CAP_MINUTES
    hospital_name: str | None = None
    as_of: dt.date | None = None
    timezone: str | None = None
    service_lines: list[str] = Field(default_factory=list)
    extra_features: list[str] = Field(default_factory=list)
    service_levels: ServiceLevels = Field(default_factory=ServiceLevels)
    fairness: FairnessPolicy = Field(default_factory=FairnessPolicy)
    freshness: dict[str, float] = Field(default_factory=dict)

    @field_validator("turnover_minutes", mode="before")
    @classmethod
    def _turnover(cls, v: Any) -> float:
        return _minutes_in(v, 0, 240)

    @field_validator("pacu_minutes", "overtime_cap_minutes", mode="before")
    @classmethod
    def _day_minutes(cls, v: Any) -> float:
        return _minutes_in(v, 0, 1440)

    @field_validator("prime_time", mode="before")
    @classmethod
    def _prime(cls, v: Any) -> str:
        try:
            a, b = parse_window(str(v))
        except ValueError:
            raise ValueError(f"{v!r} must look like \"07:30-15:30\" (HH:MM-HH:MM, start before end)") from None
        return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> Any:
        if v is None or isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            return v
        try:
            return dt.date.fromisoformat(str(v).strip()[:10])
        except ValueError:
            raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)") from None

    @field_validator("timezone", mode="before")
    @classmethod
    def _tz(cls, v: Any) -> str | None:
        if v is None:
            return None
        try:
            ZoneInfo(str(v))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone name (e.g. \"Europe/Paris\")") from None
        return str(v)

    @field_validator("service_lines", "extra_features", mode="before")
    @classmethod
    def _names(cls, v: Any) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(s, str) and s.strip() for s in v):
            raise ValueError(f"{v!r} must be a list of names, e.g. [\"Orthopedics\", \"Urology\"]")
        return [s.strip() for s in v]

    # ---------------------------------------------------------------- derived, one definition each
    @property
    def prime_window(self) -> tuple[int, int]:
        """Prime time as (start, end) minutes of the day."""
        return parse_window(self.prime_time)

    @property
    def prime_start_minute(self) -> int:
        return self.prime_window[0]

    @property
    def prime_end_minute(self) -> int:
        return self.prime_window[1]

    @property
    def service_levels_stated(self) -> bool:
        """True when settings.toml has a ``[service_levels]`` section (else the defaults apply)."""
        return "service_levels" in self.model_fields_set

    @property
    def fairness_stated(self) -> bool:
        """True when settings.toml has a ``[fairness]`` section (else the stated default applies)."""
        return "fairness" in self.model_fields_set

    def get(self, key: str, default: Any = None) -> Any:
        """A setting by name, including keys this model does not know (kept as given)."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The settings as given (defaults not written out), for the store and settings.toml."""
        return self.model_dump(exclude_unset=True, exclude_none=True)

    def with_updates(self, **changes: Any) -> "HospitalSettings":
        """A validated copy with some settings changed."""
        return HospitalSettings.model_validate({**self.to_dict(), **changes})


def problems_of(exc: ValidationError, fname: str = SETTINGS_FILE) -> list[Problem]:
    """pydantic's errors -> Problems naming the key (``service_levels.finish_probability``)."""
    return config.problems_of(exc, fname, missing="required setting is missing",
                              extra="is not a known setting of this section")


def parse_settings(raw: dict[str, Any], fname: str = SETTINGS_FILE) -> tuple[HospitalSettings | None, list[Problem]]:
    """A parsed TOML mapping -> (settings, problems); settings is None when there are problems."""
    try:
        return HospitalSettings.model_validate(raw), []
    except ValidationError as exc:
        return None, problems_of(exc, fname)


__all__ = ["HospitalSettings", "ServiceLevels", "FairnessPolicy", "parse_settings", "problems_of",
           "SETTINGS_REQUIRED", "DEFAULT_MAX_PRIME_TIME_GAP_POINTS"]
