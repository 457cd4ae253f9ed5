"""The one model-free forecast: booked minutes, spread from the hospital's own history.

Used wherever no trained model may be trusted or exists: the rules schedule governance rolls
back to, the historical replay of a week without a forecaster, an add-on the coordinator enters by
hand, the service's plans without a registered model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.feeds import room_minutes

# Without enough completed history to measure the spread: P80 = 1.25 x P50 (P95 = 1.25 x P80).
DEFAULT_P80_FACTOR = 1.25
DEFAULT_CANCEL_RATE = 0.05
# The fewest completed cases with booked minutes from which the spread is measured.
MIN_SPREAD_CASES = 30


def _completed_minutes(history: pd.DataFrame, timezone: str | None) -> tuple[pd.DataFrame, pd.Series]:
    done = history[(history["status"] == "completed") & history["wheels_in"].notna() & history["wheels_out"].notna()]
    return done, room_minutes(done, timezone)


def spread_factors(history: pd.DataFrame, timezone: str | None = None) -> tuple[float, float]:
    """(P80/P50, P95/P50) of actual over booked minutes in ``history``, never below 1; the default
    factors when fewer than ``MIN_SPREAD_CASES`` completed cases carry booked minutes. Room time is
    the real elapsed time in ``timezone`` (the hospital's; None = the wall-clock difference)."""
    done, minutes = _completed_minutes(history, timezone)
    booked = pd.to_numeric(done["booked_minutes"], errors="coerce")
    ratio = (minutes / booked)[booked > 0].dropna().to_numpy(float)
    if len(ratio) < MIN_SPREAD_CASES:
        return DEFAULT_P80_FACTOR, DEFAULT_P80_FACTOR ** 2
    r50, r80, r95 = np.percentile(ratio, [50, 80, 95])
    return max(r80 / r50, 1.0), max(r95 / r50, 1.0)


def cancel_rate(history: pd.DataFrame) -> float:
    """The share of elective cases cancelled in ``history`` (``DEFAULT_CANCEL_RATE`` without any)."""
    el = history[(history["urgency"].fillna("elective") == "elective") & history["status"].isin(["completed", "cancelled"])]
    return float((el["status"] == "cancelled").mean()) if len(el) else DEFAULT_CANCEL_RATE


def booked_forecasts(cases: pd.DataFrame, history: pd.DataFrame, p80_factor: float | None = None,
                     default_minutes: float = 60.0, timezone: str | None = None) -> pd.DataFrame:
    """Forecast-shaped rows for ``cases`` without a model (case_id, p50, p80, p95, cancel_prob).

    P50 = the booked minutes; a case without them takes its procedure's median room time in
    ``history``, else its service line's, else ``default_minutes``. P80 and P95 are P50 times the
    history's spread of actual over booked minutes (:func:`spread_factors`), or ``p80_factor``
    (and its square) when given. ``cancel_prob`` is the history's elective cancellation rate.
    This is what coordinators plan with today. ``timezone``: the hospital's, for the history's room time.
    """
    if p80_factor is not None and p80_factor < 1:
        raise ValueError(f"p80_factor must be >= 1, got {p80_factor!r}")
    done, minutes = _completed_minutes(history, timezone)
    p50 = pd.to_numeric(cases["booked_minutes"], errors="coerce") if "booked_minutes" in cases else pd.Series(np.nan, index=cases.index)
    if "procedure_code" in cases:
        p50 = p50.fillna(cases["procedure_code"].map(minutes.groupby(done["procedure_code"]).median()))
    if "service_line" in cases:
        p50 = p50.fillna(cases["service_line"].map(minutes.groupby(done["service_line"]).median()))
    p50 = p50.fillna(default_minutes).clip(lower=1.0).to_numpy(float)
    f80, f95 = (p80_factor, p80_factor ** 2) if p80_factor is not None else spread_factors(history, timezone)
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "p50": p50, "p80": p50 * f80, "p95": p50 * f95,
                         "cancel_prob": cancel_rate(history)})
