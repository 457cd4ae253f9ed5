"""Case-duration model: CatBoost multi-quantile regression with conformal calibration.

The model learns quantiles of log room time (quantiles are invariant under the monotone log,
and the log tames the right tail). A held-out recent calibration window then shifts each
quantile by a conformal offset so that, on data like the calibration window, the stated
coverage holds: offset_q = the ceil((n+1) q)/n empirical quantile of (log y - pred_q).
Offsets are computed per novelty group (Mondrian conformal): cases of new surgeons or new
procedures get their own, wider, offsets; groups too small to calibrate borrow the pooled
"not known" offsets, never narrower than the global ones. Quantiles are made non-crossing by a
running maximum across levels.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from catboost import CatBoostRegressor, Pool

from engine.errors import InputError
from engine.forecast.features import CATEGORICAL, model_columns
from engine.forecast.params import ForecastParams

log = logging.getLogger(__name__)

GROUPS = ("known", "new_pair", "new_surgeon", "new_procedure")


def _conformal_offsets(resid: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Per-quantile offsets with the finite-sample correction of split conformal."""
    n = len(resid)
    out = np.empty(len(quantiles))
    for j, q in enumerate(quantiles):
        level = min(1.0, np.ceil((n + 1) * q) / n)
        out[j] = np.quantile(resid[:, j], level, method="higher")
    return out


class DurationModel:
    """P50/P80/P95 room-time forecasts (scikit-learn style: fit, predict; fitted attrs end in _)."""

    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = params or ForecastParams()

    # ------------------------------------------------------------------ fit
    def fit(self, features: pd.DataFrame, minutes: pd.Series, calibration: np.ndarray) -> "DurationModel":
        """Train on rows where ``calibration`` is False; calibrate on rows where it is True."""
        p = self.params
        y = np.asarray(minutes, dtype=float)
        ok = np.isfinite(y) & (y > 0)
        calibration = np.asarray(calibration, dtype=bool)
        n_train = int((ok & ~calibration).sum())
        n_cal = int((ok & calibration).sum())
        if n_train < p.min_train_cases:
            raise InputError(
                f"too little data to train the duration model: {n_train} completed cases before the "
                f"calibration window, at least {p.min_train_cases} are needed",
                file="cases.csv",
            )
        if n_cal < p.min_calibration_cases:
            raise InputError(
                f"too little data to calibrate the duration model: {n_cal} completed cases in the last "
                f"{p.calibration_days} days of training data, at least {p.min_calibration_cases} are needed",
                file="cases.csv",
            )
        self.feature_names_ = model_columns(p)
        cats = [c for c in self.feature_names_ if c in CATEGORICAL]
        X = features[self.feature_names_]
        logy = np.log(y)
        alphas = ",".join(f"{q:g}" for q in p.quantiles)
        self.model_ = CatBoostRegressor(
            loss_function=f"MultiQuantile:alpha={alphas}",
            iterations=p.iterations,
            depth=p.depth,
            learning_rate=p.learning_rate,
            max_ctr_complexity=p.max_ctr_complexity,
            random_seed=p.random_state,
            thread_count=p.thread_count,
            allow_writing_files=False,
            verbose=False,
        )
        tr = ok & ~calibration
        self.model_.fit(Pool(X[tr], logy[tr], cat_features=cats))
        cal = ok & calibration
        raw = self._raw_log(X[cal])
        resid = logy[cal][:, None] - raw
        self.global_offsets_ = _conformal_offsets(resid, p.quantiles)
        groups = features["novelty"].to_numpy()[cal]
        unknown = groups != "known"
        pooled = (
            _conformal_offsets(resid[unknown], p.quantiles)
            if unknown.sum() >= p.min_group_calibration_cases
            else None
        )
        self.offsets_: dict[str, np.ndarray] = {}
        self.calibration_counts_: dict[str, int] = {}
        for g in GROUPS:
            m = groups == g
            self.calibration_counts_[g] = int(m.sum())
            if m.sum() >= p.min_group_calibration_cases:
                off = _conformal_offsets(resid[m], p.quantiles)
            elif g != "known" and pooled is not None:
                off = pooled
            else:
                off = self.global_offsets_
            if g != "known":
                # Never narrower than the global calibration for unfamiliar cases.
                upper = np.asarray(p.quantiles) > 0.5
                off = np.where(upper, np.maximum(off, self.global_offsets_), off)
            self.offsets_[g] = off
        self.n_train_, self.n_calibration_ = n_train, n_cal
        log.info("duration model: %d train, %d calibration cases; offsets %s", n_train, n_cal, self.offsets_)
        return self

    # ------------------------------------------------------------------ predict
    def _raw_log(self, X: pd.DataFrame) -> np.ndarray:
        pred = np.asarray(self.model_.predict(X))
        return pred.reshape(len(X), len(self.params.quantiles))

    def predict_log(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated, non-crossing log-minute quantiles, shape (n, n_quantiles)."""
        raw = self._raw_log(features[self.feature_names_])
        groups = features["novelty"].to_numpy()
        off = np.vstack([self.offsets_.get(g, self.offsets_["new_procedure"]) for g in groups]) if len(groups) else raw
        return np.maximum.accumulate(raw + off, axis=1)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Quantiles in minutes: columns ``p50``, ``p80``, ``p95`` (one per quantile)."""
        q = np.exp(self.predict_log(features))
        cols = [f"p{round(100 * a)}" for a in self.params.quantiles]
        return pd.DataFrame(q, index=features.index, columns=cols)

    def shap_log(self, features: pd.DataFrame) -> tuple[np.ndarray, float]:
        """SHAP values of the P50 output (log minutes) and its expected value.

        Uses shap's TreeExplainer (built from a DataFrame, imported lazily because importing
        shap takes seconds, and cached on the model); it reads CatBoost's MultiQuantile model and
        returns a quantile axis, from which the P50 slice is taken.
        """
        X = features[self.feature_names_]
        if len(X) == 0:
            return np.zeros((0, len(self.feature_names_))), 0.0
        explainer = self.__dict__.get("_explainer")
        if explainer is None:
            import shap

            explainer = shap.TreeExplainer(self.model_)
            self.__dict__["_explainer"] = explainer
        exp = explainer(X)
        values = np.asarray(exp.values)
        base = np.asarray(exp.base_values)
        j = self.params.quantiles.index(0.5)
        if values.ndim == 3:  # (n, n_features, n_quantiles)
            values, base = values[:, :, j], base[:, j] if base.ndim == 2 else base
        return values, float(np.ravel(base)[0])

    def __getstate__(self) -> dict:
        # The explainer is a cache: rebuilt after loading, never pickled.
        state = dict(self.__dict__)
        state.pop("_explainer", None)
        return state
