"""The rules-based block schedule as the safe state: booked durations, no model, no solver."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.governance.catalog import Catalog, plan_params_from_catalog
from engine.hospital import Hospital
from engine.plan import PlanParams, PlanResult, plan


def booked_forecasts(h: Hospital, p80_factor: float = 1.25, default_minutes: float = 60.0) -> pd.DataFrame:
    """Forecast-shaped durations without a model: P50 = booked minutes, P80 = ``p80_factor`` x P50.

    A case without booked minutes takes its procedure's median room time, else its service line's,
    else ``default_minutes``. This is what coordinators plan with today.
    """
    if p80_factor < 1:
        raise ValueError(f"p80_factor must be >= 1, got {p80_factor!r}")
    c = h.cases
    booked = c[c["status"] == "booked"]
    done = c[c["status"] == "completed"]
    minutes = (done["wheels_out"] - done["wheels_in"]).dt.total_seconds() / 60
    by_proc = minutes.groupby(done["procedure_code"]).median()
    by_line = minutes.groupby(done["service_line"]).median()
    p50 = pd.to_numeric(booked["booked_minutes"], errors="coerce")
    p50 = p50.fillna(booked["procedure_code"].map(by_proc)).fillna(booked["service_line"].map(by_line)).fillna(default_minutes)
    p50 = p50.clip(lower=1.0)
    return pd.DataFrame({"case_id": booked["case_id"].to_numpy(), "p50": p50.to_numpy(float),
                         "p80": (p50 * p80_factor).to_numpy(float), "p95": (p50 * p80_factor ** 2).to_numpy(float),
                         "cancel_prob": np.zeros(len(booked))})


def rules_schedule(h: Hospital, start_date: pd.Timestamp | str, days: int = 1, forecasts: pd.DataFrame | None = None,
                   catalog: Catalog | None = None, locks: pd.DataFrame | None = None) -> PlanResult:
    """The rules-based block schedule (first come, first served into own blocks) for the horizon.

    Uses ``forecasts`` when they can be trusted, else booked durations (:func:`booked_forecasts`).
    """
    params = PlanParams(days=days, solver="rules")
    if catalog is not None:
        params = plan_params_from_catalog(catalog, params)
    return plan(h, forecasts if forecasts is not None else booked_forecasts(h), start_date, params, locks=locks)
