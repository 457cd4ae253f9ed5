"""The forecaster: features + duration model + cancellation model + reasons, trained together."""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from engine.forecast.cancellation import CancellationModel, cancellation_label
from engine.forecast.duration import DurationModel, RecentResiduals
from engine.forecast.features import build_features, completed_history
from engine.forecast.params import ForecastParams
from engine.forecast.reasons import top_reasons

log = logging.getLogger(__name__)


def room_open_minutes(rooms: pd.DataFrame | None) -> dict[str, float] | None:
    if rooms is None or not len(rooms):
        return None
    return {r: int(t[:2]) * 60 + int(t[3:]) for r, t in zip(rooms["room_id"], rooms["open_time"]) if isinstance(t, str)}


class Forecaster:
    """Duration quantiles, cancellation probability and reasons for cases.

    ``fit(cases, train_until)`` learns from cases with surgery dates before ``train_until``
    (default: after the last date), holding out the last ``calibration_days`` for calibration.
    """

    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = params or ForecastParams()

    def fit(
        self,
        cases: pd.DataFrame,
        train_until: pd.Timestamp | None = None,
        rooms: pd.DataFrame | None = None,
        progress=None,
    ) -> "Forecaster":
        p = self.params
        t0 = time.perf_counter()
        step = progress or (lambda frac, text: None)
        if train_until is None:
            train_until = cases["surgery_date"].max() + pd.Timedelta(days=1)
        train_until = pd.Timestamp(train_until)
        hist = cases[cases["surgery_date"] < train_until]
        self.open_minutes_ = room_open_minutes(rooms)
        step(0.05, "building as-of features")
        past = hist[hist["status"].isin(["completed", "cancelled"])]
        feats = build_features(past, hist, p, room_open_minutes=self.open_minutes_)
        cal_start = train_until - pd.Timedelta(days=p.calibration_days)
        calibration = (past["surgery_date"] >= cal_start).to_numpy()
        done = (past["status"] == "completed").to_numpy()
        minutes = ((past["wheels_out"] - past["wheels_in"]).dt.total_seconds() / 60).to_numpy()
        step(0.2, "training the duration model")
        self.duration_ = DurationModel(p).fit(
            feats[done], minutes[done], calibration[done],
            calibration_start=cal_start - pd.Timedelta(days=p.planning_lead_days),
        )
        step(0.75, "training the cancellation model")
        elective = (past["urgency"].fillna("elective") == "elective").to_numpy()
        self.cancellation_ = CancellationModel(p).fit(
            feats[elective], cancellation_label(past[elective]), calibration[elective]
        )
        self.train_until_ = train_until
        self.training_window_ = (str(hist["surgery_date"].min().date()), str((train_until - pd.Timedelta(days=1)).date()))
        self.calibration_start_ = cal_start
        self.fit_seconds_ = time.perf_counter() - t0
        step(1.0, "done")
        return self

    def features(self, cases: pd.DataFrame, history: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        return build_features(cases, history, self.params, as_of=as_of, room_open_minutes=self.open_minutes_)

    def predict(
        self,
        cases: pd.DataFrame,
        history: pd.DataFrame,
        as_of: pd.Timestamp | None = None,
        reasons: bool = False,
        features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Forecasts for ``cases`` using outcomes in ``history`` known before each decision time.

        The conformal offsets are recalibrated as of each decision time on the completed cases of
        ``history`` that the model did not train on (see ``DurationModel.offsets_as_of``).

        Columns: case_id, p50, p80, p95, cancel_prob, novelty (+ reason columns if asked).
        """
        f = features if features is not None else self.features(cases, history, as_of)
        q = self.duration_.predict(f, self.recent_residuals(history))
        out = pd.DataFrame({"case_id": cases["case_id"].to_numpy()}, index=cases.index)
        out = out.join(q)
        out["cancel_prob"] = self.cancellation_.predict_proba(f)
        out["novelty"] = f["novelty"]
        if reasons and len(cases):
            sv, _ = self.duration_.shap_log(f)
            r = top_reasons(f, cases, sv, self.duration_.feature_names_, q["p50"].to_numpy(), min_pair_cases=self.params.min_pair_cases)
            out = out.join(r.drop(columns=["case_id"]))
        return out

    def recent_residuals(self, history: pd.DataFrame) -> RecentResiduals | None:
        """Residuals of the completed cases of ``history`` from ``train_until_`` on, for the as-of
        recalibration; each scored with features as of its own decision time.

        None when there are none. Cached per fingerprint of ``history`` (the last one only): the
        planner and the backtest predict many batches against the same history.
        """
        if not hasattr(self, "train_until_"):
            return None
        newer = history[(history["surgery_date"] >= self.train_until_) & (history["status"] == "completed")]
        newer = completed_history(newer)
        if not len(newer):
            return None
        key = int(pd.util.hash_pandas_object(history, index=True).sum())
        cached = self.__dict__.get("_recent")
        if cached is not None and cached[0] == key:
            return cached[1]
        f = self.features(newer, history)
        recent = RecentResiduals(
            residuals=self.duration_.residuals(f, newer["duration"].to_numpy()),
            groups=f["novelty"].to_numpy(),
            decision_time=f["decision_time"].to_numpy(dtype="datetime64[ns]"),
            known_time=newer["wheels_out"].to_numpy(dtype="datetime64[ns]"),
        )
        self.__dict__["_recent"] = (key, recent)
        return recent

    def __getstate__(self) -> dict:
        # The recent residuals are a cache of a history: never pickled.
        state = dict(self.__dict__)
        state.pop("_recent", None)
        return state
