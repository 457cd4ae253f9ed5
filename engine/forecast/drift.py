"""Drift: population stability index (PSI) of key features and of residuals.

PSI compares the distribution of a quantity in a reference window (training) with a recent
window, over deciles of the reference: sum((a - e) * ln(a / e)). Conventional reading:
below 0.1 stable (ok), 0.1 to 0.25 moderate shift (warn), above 0.25 major shift (stop).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DRIFT_FEATURES = ("booked_minutes", "patient_age", "asa_class", "bmi", "sp_median", "lead_days", "surgeon_volume_365d")


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


def state_of(value: float, params: DriftParams) -> str:
    if not np.isfinite(value):
        return "n/a"
    return "stop" if value >= params.stop_psi else "warn" if value >= params.warn_psi else "ok"


def drift_report(reference: pd.DataFrame, recent: pd.DataFrame, params: DriftParams | None = None) -> pd.DataFrame:
    """PSI and state per quantity. Both frames hold feature columns and ``residual``
    (log actual - log P50) where known."""
    params = params or DriftParams()
    rows = []
    for col in [*DRIFT_FEATURES, "residual"]:
        if col not in reference.columns or col not in recent.columns:
            continue
        v = psi(reference[col].to_numpy(dtype=float), recent[col].to_numpy(dtype=float), params.bins)
        rows.append({"quantity": col, "psi": v, "state": state_of(v, params),
                     "n_reference": int(reference[col].notna().sum()), "n_recent": int(recent[col].notna().sum())})
    return pd.DataFrame(rows)


def overall_state(report: pd.DataFrame) -> str:
    """The worst state: stop > warn > ok."""
    states = set(report["state"]) if len(report) else set()
    for s in ("stop", "warn", "ok"):
        if s in states:
            return s
    return "n/a"
