"""Day-of cancellation probability per booked elective case.

A CatBoost classifier ranks cases; isotonic regression fitted on the recent calibration window
turns its scores into calibrated probabilities (so 0.2 means one in five such cases cancels).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from engine.errors import InputError
from engine.forecast.features import categorical_columns, model_columns
from engine.forecast.params import ForecastParams

log = logging.getLogger(__name__)

# Features about the case's own history that leak nothing about cancellation and help little.
_DROP = ("scheduled_minute_of_day",)


def skip_reason(label: pd.Series, calibration: np.ndarray, params: ForecastParams) -> str | None:
    """Why the cancellation model cannot be trained on these labels, or None when it can.

    Too few cancellations (``min_cancellations`` in the training window, or
    ``min_calibration_cancellations`` in the calibration window), or too few labelled cases.
    """
    y = np.asarray(label, dtype=float)
    ok = np.isfinite(y)
    calibration = np.asarray(calibration, dtype=bool)
    tr, cal = ok & ~calibration, ok & calibration
    n_all = int(np.nansum(y[ok]))
    if n_all == 0:
        return (f"no cancellations recorded among {int(ok.sum())} elective cases: the cancellation model is skipped "
                "and no cancellation probability is forecast (shown as 0)")
    need = (("training", tr, params.min_cancellations), ("calibration", cal, params.min_calibration_cancellations))
    for name, m, k in need:
        n_c = int(np.nansum(y[m]))
        if m.sum() < params.min_calibration_cases or n_c < k or n_c == m.sum():
            return (f"too few cancellations for a cancellation model ({n_c} in the {name} window of {int(m.sum())} "
                    f"elective cases; at least {k} are needed): every case carries the history's base rate "
                    f"({n_all / max(int(ok.sum()), 1):.1%} of {int(ok.sum())} elective cases)")
    return None


def cancellation_label(cases: pd.DataFrame) -> pd.Series:
    """1 when a case was cancelled, 0 when completed; NaN for booked (unknown outcome)."""
    return cases["status"].map({"cancelled": 1.0, "completed": 0.0})


class CancellationModel:
    """Calibrated day-of cancellation probability (fit, predict_proba; fitted attrs end in _)."""

    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = params or ForecastParams()

    def fit(self, features: pd.DataFrame, label: pd.Series, calibration: np.ndarray,
            feature_names: list[str] | None = None) -> "CancellationModel":
        p = self.params
        y = np.asarray(label, dtype=float)
        ok = np.isfinite(y)
        calibration = np.asarray(calibration, dtype=bool)
        tr, cal = ok & ~calibration, ok & calibration
        for name, m in (("training", tr), ("calibration", cal)):
            if m.sum() < p.min_calibration_cases or len(np.unique(y[m])) < 2:
                raise InputError(
                    f"too little data for the cancellation model: the {name} window has {int(m.sum())} "
                    f"completed/cancelled cases and {int(np.nansum(y[m]))} cancellations; at least "
                    f"{p.min_calibration_cases} cases with both outcomes are needed",
                    file="cases.csv",
                )
        names = list(feature_names) if feature_names is not None else model_columns(p)
        self.feature_names_ = [c for c in names if c not in _DROP]
        cats = categorical_columns(self.feature_names_)
        X = features[self.feature_names_]
        self.model_ = CatBoostClassifier(
            iterations=p.cancel_iterations,
            depth=4,
            learning_rate=0.05,
            l2_leaf_reg=10,
            max_ctr_complexity=p.max_ctr_complexity,
            random_seed=p.random_state,
            thread_count=p.thread_count,
            allow_writing_files=False,
            verbose=False,
        )
        self.model_.fit(Pool(X[tr], y[tr], cat_features=cats))
        raw = self.model_.predict_proba(X[cal])[:, 1]
        self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y[cal])
        self.base_rate_ = float(y[tr].mean())
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability that each case is cancelled on the day."""
        if len(features) == 0:
            return np.empty(0)
        raw = self.model_.predict_proba(features[self.feature_names_])[:, 1]
        return np.clip(self.calibrator_.predict(raw), 0.0, 1.0)


def cancellation_scores(y: np.ndarray, prob: np.ndarray, base_rate: float) -> dict[str, float | None]:
    """AUC, Brier score, and the Brier score of always predicting the base rate."""
    y = np.asarray(y, dtype=float)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return {"cancel_auc": None, "cancel_brier": None, "cancel_brier_base_rate": None, "cancel_rate": None}
    return {
        "cancel_auc": float(roc_auc_score(y, prob)),
        "cancel_brier": float(brier_score_loss(y, prob)),
        "cancel_brier_base_rate": float(brier_score_loss(y, np.full(len(y), base_rate))),
        "cancel_rate": float(y.mean()),
    }
