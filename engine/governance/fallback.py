"""The rules-based block schedule as the safe state: booked durations, no model, no solver."""
from __future__ import annotations

import pandas as pd

from engine.forecast import fallback
from engine.governance.catalog import Catalog, plan_params_from_catalog
from engine.hospital import Hospital
from engine.plan import PlanParams, PlanResult, plan


def booked_forecasts(h: Hospital, p80_factor: float | None = None, default_minutes: float = 60.0) -> pd.DataFrame:
    """The hospital's booked cases forecast without a model: the one model-free forecast
    (:func:`engine.forecast.fallback.booked_forecasts`: booked minutes, the history's spread, or
    ``p80_factor`` when given), the same the simulation's replay and the service use; the history's
    room minutes in the hospital's time zone."""
    booked = h.cases[h.cases["status"] == "booked"]
    return fallback.booked_forecasts(booked, h.cases, p80_factor=p80_factor, default_minutes=default_minutes,
                                     timezone=h.settings.timezone)


def rules_schedule(h: Hospital, start_date: pd.Timestamp | str, days: int = 1, forecasts: pd.DataFrame | None = None,
                   catalog: Catalog | None = None, locks: pd.DataFrame | None = None) -> PlanResult:
    """The rules-based block schedule (first come, first served into own blocks) for the horizon.

    Uses ``forecasts`` when they can be trusted, else booked durations (:func:`booked_forecasts`).
    """
    params = PlanParams(days=days, solver="rules")
    if catalog is not None:
        params = plan_params_from_catalog(catalog, params)
    return plan(h, forecasts if forecasts is not None else booked_forecasts(h), start_date, params, locks=locks)
