"""The forecaster: features + duration model + cancellation model + reasons, trained together.

Real hospitals' tables come in shapes the demo does not have, and every one must give a forecast
or a clear reason why not (``Forecaster.notes`` says what was adapted):

- no cancellations, or too few: the cancellation model is skipped; forecasts carry the base rate
  (0 when none was recorded) and ``cancellation_available`` is False;
- a short history (6 weeks or more): the calibration window shrinks to ``calibration_share`` of it;
- below ``min_history_days`` of history or too few completed cases: InputError saying how much is
  needed (exit 2 on the command line);
- declared extra features (``ForecastParams.extra_features``): classified once at fit
  (``extra_kinds_``) so training and prediction describe a column the same way.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.feeds import room_minutes
from engine.forecast.cancellation import CancellationModel, cancellation_label, skip_reason
from engine.forecast.duration import DurationModel, RecentResiduals
from engine.forecast.features import build_features, classify_extras, completed_history, model_columns
from engine.forecast.params import ForecastParams
from engine.forecast.reasons import top_reasons
from engine.forecast.tuning import tune
from engine.timeutil import hhmm_to_minutes

log = logging.getLogger(__name__)


def room_open_minutes(rooms: pd.DataFrame | None) -> dict[str, float] | None:
    if rooms is None or not len(rooms):
        return None
    return {r: hhmm_to_minutes(t) for r, t in zip(rooms["room_id"], rooms["open_time"]) if isinstance(t, str)}


def minimum_needed(params: ForecastParams) -> str:
    """The least history that can give a forecast, in words."""
    return (f"at least {params.min_history_days} days ({params.min_history_days / 7:g} weeks) of history with "
            f"{params.min_train_cases + params.min_calibration_cases} completed cases")


class Forecaster:
    """Duration quantiles, cancellation probability and reasons for cases.

    ``fit(cases, train_until)`` learns from cases with surgery dates before ``train_until``
    (default: after the last date), holding out the last ``calibration_days`` (on a short history
    ``calibration_share`` of it) for calibration.

    After fit: ``notes`` (what was adapted to this hospital's data, in sentences),
    ``cancellation_available`` (False when the cancellation model was skipped),
    ``cancel_base_rate_`` (share of elective cases cancelled in the training history, None when
    there were none labelled), ``calibration_days_`` (the window used), ``extra_kinds_``,
    ``tuning_`` (what the time-split validation tried and chose, None without ``params.tune``; after
    a tuned fit ``params`` holds the chosen settings, with ``tune`` off, so a refit reuses them).
    """

    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = params or ForecastParams()

    @property
    def notes(self) -> list[str]:
        return list(self.__dict__.get("notes_", []))

    @property
    def cancellation_available(self) -> bool:
        return self.__dict__.get("cancellation_") is not None

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
        notes: list[str] = []
        if train_until is None:
            train_until = cases["surgery_date"].max() + pd.Timedelta(days=1)
        train_until = pd.Timestamp(train_until)
        hist = cases[cases["surgery_date"] < train_until]
        self.open_minutes_ = room_open_minutes(rooms)
        past = hist[hist["status"].isin(["completed", "cancelled"])]
        done = (past["status"] == "completed").to_numpy()
        if not done.any():
            raise InputError(f"too little data to forecast: no completed cases before {train_until.date()}; {minimum_needed(p)} are needed",
                             file="cases.csv")
        first = past.loc[done, "surgery_date"].min()
        span_days = int((train_until - first).days)
        if span_days < p.min_history_days or int(done.sum()) < p.min_train_cases + p.min_calibration_cases:
            raise InputError(
                f"too little data to forecast: {int(done.sum())} completed cases over {span_days} days before "
                f"{train_until.date()}; {minimum_needed(p)} are needed",
                file="cases.csv",
            )
        cal_days = min(p.calibration_days, max(7, int(round(p.calibration_share * span_days))))
        if cal_days < p.calibration_days:
            notes.append(f"short history ({span_days} days): the calibration window is the latest {cal_days} days "
                         f"instead of {p.calibration_days}")
        fit_params = replace(p, calibration_days=cal_days)
        self.calibration_days_ = cal_days
        self.extra_kinds_, extra_notes = classify_extras(past, p.extra_features, p)
        notes += extra_notes
        step(0.05, "building as-of features")
        feats = build_features(past, hist, p, room_open_minutes=self.open_minutes_, extras=self.extra_kinds_)
        self.feature_names_ = model_columns(p, self.extra_kinds_)
        cal_start = train_until - pd.Timedelta(days=cal_days)
        calibration = (past["surgery_date"] >= cal_start).to_numpy()
        minutes = room_minutes(past, p.timezone).to_numpy()
        self.tuning_ = None
        if p.tune:
            step(0.1, "choosing model settings on a time split")
            tuned, self.tuning_ = tune(feats, np.where(done, minutes, np.nan), done & ~calibration, self.feature_names_, p)
            if "skipped" in self.tuning_:
                notes.append(f"model settings not tuned: {self.tuning_['skipped']}")
            else:
                notes.append(f"model settings chosen on a time split of the training history: depth {tuned.depth}, "
                             f"learning rate {tuned.learning_rate:g}, {tuned.iterations} iterations, "
                             f"shrinkage {tuned.shrinkage_cases:g} cases ({len(self.tuning_['tried'])} candidates, "
                             f"{self.tuning_['seconds']:.0f} s)")
            if tuned.shrinkage_cases != p.shrinkage_cases:
                feats = build_features(past, hist, tuned, room_open_minutes=self.open_minutes_, extras=self.extra_kinds_)
            # Predictions build features with the chosen settings too.
            p = self.params = tuned
            fit_params = replace(tuned, calibration_days=cal_days)
        step(0.2, "training the duration model")
        self.duration_ = DurationModel(fit_params).fit(
            feats[done], minutes[done], calibration[done],
            calibration_start=cal_start - pd.Timedelta(days=p.planning_lead_days),
            feature_names=self.feature_names_,
        )
        notes.append(f"P50: {self.duration_.p50_source()} (chosen on the calibration window against the simple baselines)")
        step(0.75, "training the cancellation model")
        elective = (past["urgency"].fillna("elective") == "elective").to_numpy()
        label = cancellation_label(past[elective])
        y = label.to_numpy(dtype=float)
        self.cancel_base_rate_ = float(np.nanmean(y)) if np.isfinite(y).any() else None
        reason = skip_reason(label, calibration[elective], p)
        self.cancellation_ = None
        if reason is None:
            try:
                self.cancellation_ = CancellationModel(p).fit(
                    feats[elective], label, calibration[elective], feature_names=self.feature_names_
                )
            except (InputError, ValueError) as exc:
                reason = f"cancellation model skipped ({exc}); every case carries the history's base rate"
        if reason is not None:
            notes.append(reason)
            log.info("cancellation: %s", reason)
        self.notes_ = notes
        self.train_until_ = train_until
        self.training_window_ = (str(hist["surgery_date"].min().date()), str((train_until - pd.Timedelta(days=1)).date()))
        self.calibration_start_ = cal_start
        self.fit_seconds_ = time.perf_counter() - t0
        step(1.0, "done")
        return self

    def features(self, cases: pd.DataFrame, history: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        return build_features(cases, history, self.params, as_of=as_of, room_open_minutes=self.open_minutes_,
                              extras=self.__dict__.get("extra_kinds_"))

    def cancel_probability(self, features: pd.DataFrame) -> tuple[np.ndarray, str]:
        """Probability of day-of cancellation per row and where it comes from: ``model``,
        ``base_rate`` (too few cancellations to model) or ``none`` (none recorded: 0)."""
        model = self.__dict__.get("cancellation_")
        if model is not None:
            return model.predict_proba(features), "model"
        rate = self.__dict__.get("cancel_base_rate_")
        if rate:
            return np.full(len(features), float(rate)), "base_rate"
        return np.zeros(len(features)), "none"

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

        Columns: case_id, p50, p80, p95, cancel_prob, cancel_source (``model``, ``base_rate`` or
        ``none``), novelty (+ reason columns if asked, see ``reasons.top_reasons``: the parts add
        up from ``reason_base_minutes`` to the P50). An empty ``cases`` gives an empty frame with
        these columns.
        """
        f = features if features is not None else self.features(cases, history, as_of)
        q = self.duration_.predict(f, self.recent_residuals(history) if len(f) else None)
        out = pd.DataFrame({"case_id": cases["case_id"].to_numpy()}, index=cases.index)
        out = out.join(q)
        prob, source = self.cancel_probability(f)
        out["cancel_prob"] = prob
        out["cancel_source"] = source
        out["novelty"] = f["novelty"]
        if reasons and len(cases):
            sv, base = self.duration_.shap_log(f)
            r = top_reasons(f, cases, sv, self.duration_.feature_names_, q["p50"].to_numpy(),
                            min_pair_cases=self.params.min_pair_cases, base_log=base)
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
        newer = completed_history(newer, self.params.timezone)
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
