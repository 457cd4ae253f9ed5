"""Drift: population stability index (PSI) of key features and of residuals.

PSI compares the distribution of a quantity in a reference window (training) with a recent
window, over deciles of the reference: sum((a - e) * ln(a / e)). Conventional reading:
below 0.1 stable (ok), 0.1 to 0.25 moderate shift (warn), above 0.25 major shift (stop).

PSI is positive even with no shift at all: two samples of sizes n and m from one distribution
give about (k - 1)(1/n + 1/m) over k bins. The state is read from the PSI less that noise floor,
with n and m the numbers of *independent* values: the cases for a per-case quantity, but the
surgeons for a per-surgeon one (``CLUSTERED``: every case of a surgeon carries the surgeon's
365-day volume, so a hospital with 20 surgeons has 20 values, not 700). Without this, a small
stationary hospital read "stop" on surgeon volume alone (PSI 0.27-0.37 on 2-4 generated rooms,
residuals ok), and the drift gate withheld its schedules. A quantity with fewer than two
independent values a bin on either side warns at most: its floor is itself too rough to stop on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DRIFT_FEATURES = ("booked_minutes", "patient_age", "asa_class", "bmi", "sp_median", "lead_days", "surgeon_volume_365d")
# Quantities shared by every case of one unit: quantity -> the column naming the unit.
CLUSTERED = {"surgeon_volume_365d": "surgeon_id"}


@dataclass(frozen=True)
class DriftParams:
    warn_psi: float = 0.1
    stop_psi: float = 0.25
    bins: int = 10
    recent_days: int = 56

    def __post_init__(self) -> None:
        if not 0 < self.warn_psi < self.stop_psi:
            raise ValueError(f"warn_psi must be > 0 and below stop_psi, got {self.warn_psi!r}, {self.stop_psi!r}")
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins!r}")
        if self.recent_days <= 0:
            raise ValueError(f"recent_days must be > 0, got {self.recent_days!r}")


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference`` (NaNs ignored)."""
    ref = np.asarray(reference, dtype=float)
    rec = np.asarray(recent, dtype=float)
    ref, rec = ref[np.isfinite(ref)], rec[np.isfinite(rec)]
    if len(ref) < bins or len(rec) == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.allclose(rec, ref[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(ref, edges)[0] / len(ref)
    a = np.histogram(rec, edges)[0] / len(rec)
    eps = 1e-4
    e, a = np.clip(e, eps, None), np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def noise_floor(n_reference: int, n_recent: int, bins: int) -> float:
    """The PSI two samples of these sizes from one distribution show on average: (k - 1)(1/n + 1/m)."""
    if n_reference <= 0 or n_recent <= 0:
        return float("nan")
    return (bins - 1) * (1.0 / n_reference + 1.0 / n_recent)


def _independent(frame: pd.DataFrame, col: str) -> int:
    """How many independent values ``col`` holds: its non-missing cases, or its units (CLUSTERED)."""
    vals = frame[col].notna()
    unit = CLUSTERED.get(col)
    if unit is not None and unit in frame.columns:
        return int(frame.loc[vals, unit].nunique())
    return int(vals.sum())


def state_of(value: float, params: DriftParams) -> str:
    if not np.isfinite(value):
        return "n/a"
    return "stop" if value >= params.stop_psi else "warn" if value >= params.warn_psi else "ok"


def drift_report(reference: pd.DataFrame, recent: pd.DataFrame, params: DriftParams | None = None) -> pd.DataFrame:
    """PSI, its noise floor (``noise_psi``) and state (of PSI less the floor) per quantity. Both
    frames hold feature columns and ``residual`` (log actual - log P50) where known, and
    ``surgeon_id`` for the per-surgeon quantities (CLUSTERED; without it they count as per-case)."""
    params = params or DriftParams()
    rows = []
    for col in [*DRIFT_FEATURES, "residual"]:
        if col not in reference.columns or col not in recent.columns:
            continue
        v = psi(reference[col].to_numpy(dtype=float), recent[col].to_numpy(dtype=float), params.bins)
        n_ref, n_rec = _independent(reference, col), _independent(recent, col)
        floor = noise_floor(n_ref, n_rec, params.bins)
        state = state_of(v - floor if np.isfinite(floor) else v, params)
        if state == "stop" and min(n_ref, n_rec) < 2 * params.bins:
            # Fewer independent values than two a bin (a one-room hospital's 15 surgeons): the floor is
            # itself a rough guess there, so the reading warns and does not stop.
            state = "warn"
        rows.append({"quantity": col, "psi": v, "noise_psi": floor, "state": state,
                     "n_reference": int(reference[col].notna().sum()), "n_recent": int(recent[col].notna().sum())})
    return pd.DataFrame(rows)


def overall_state(report: pd.DataFrame) -> str:
    """The worst state: stop > warn > ok."""
    states = set(report["state"]) if len(report) else set()
    for s in ("stop", "warn", "ok"):
        if s in states:
            return s
    return "n/a"
