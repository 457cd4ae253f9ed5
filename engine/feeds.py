"""Feed freshness and simple descriptive views of a hospital's data.

Freshness answers "can I trust that this data is current?": for each feed, the newest record
and how stale it is against the hospital's clock (``Hospital.as_of``). History feeds go stale
when their newest record is too old; forward-looking feeds (blocks, staffing) go stale when
they do not reach far enough ahead.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.hospital import Hospital
from engine.settings import HospitalSettings
from engine.timeutil import room_minutes  # the one definition of room time; re-exported for the forecast

__all__ = ["FreshnessParams", "duration_by_service_line", "feed_freshness", "room_minutes", "weekly_case_counts"]


@dataclass(frozen=True)
class FreshnessParams:
    """Thresholds for feed freshness, in days. Overridden by ``[freshness]`` in settings.toml."""

    cases_max_age_days: float = 3.0
    blocks_min_days_ahead: float = 7.0
    staffing_min_days_ahead: float = 7.0

    def __post_init__(self) -> None:
        for name in ("cases_max_age_days", "blocks_min_days_ahead", "staffing_min_days_ahead"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_settings(cls, settings: HospitalSettings) -> "FreshnessParams":
        known = {k: float(v) for k, v in settings.freshness.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def feed_freshness(h: Hospital, params: FreshnessParams | None = None) -> pd.DataFrame:
    """One row per feed: newest record, its age (or reach ahead) in days, threshold, status."""
    params = params or FreshnessParams.from_settings(h.settings)
    now = h.as_of()
    rows = []
    c = h.cases
    newest_case = pd.concat([c["booked_at"], c["wheels_out"]]).max()
    age = (now - newest_case).total_seconds() / 86400 if pd.notna(newest_case) else float("nan")
    rows.append(
        {
            "feed": "cases (bookings and completed cases)",
            "newest_record": newest_case,
            "days": round(age, 1) if pd.notna(newest_case) else None,
            "measure": "age",
            "threshold_days": params.cases_max_age_days,
            "status": "stale" if pd.isna(newest_case) or age > params.cases_max_age_days else "ok",
        }
    )
    for feed, df, limit in (
        ("blocks", h.blocks, params.blocks_min_days_ahead),
        ("staffing", h.staffing, params.staffing_min_days_ahead),
    ):
        last = df["date"].max() if len(df) else pd.NaT
        ahead = (last - now.normalize()).days + 1 if pd.notna(last) else None
        rows.append(
            {
                "feed": feed,
                "newest_record": last,
                "days": ahead,
                "measure": "days ahead",
                "threshold_days": limit,
                "status": "stale" if ahead is None or ahead < limit else "ok",
            }
        )
    return pd.DataFrame(rows)


def weekly_case_counts(cases: pd.DataFrame) -> pd.DataFrame:
    """Cases per service line per week (Monday start), by status: long format."""
    d = cases.assign(week=cases["surgery_date"].dt.to_period("W-SUN").dt.start_time)
    out = d.groupby(["week", "service_line", "status"], observed=True).size().rename("cases").reset_index()
    return out.sort_values(["week", "service_line"]).reset_index(drop=True)


def duration_by_service_line(cases: pd.DataFrame, timezone: str | None = None) -> pd.DataFrame:
    """Completed cases' room minutes with their service line, for distribution charts (``timezone``:
    the hospital's, for the real elapsed time across a daylight-saving change)."""
    done = cases[cases["status"] == "completed"]
    return pd.DataFrame({"service_line": done["service_line"], "room_minutes": room_minutes(done, timezone)}).dropna()
