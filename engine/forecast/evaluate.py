"""Time-aware evaluation of the forecasts against the two baselines.

Train on cases before ``test_from``; score completed cases from ``test_from`` on. Features of
test cases are built as of their own decision times, so they may use test-window outcomes that
finished before (as they would in production), never after. Likewise the conformal offsets are
recalibrated as of each decision time on the test-window cases completed before it
(``Forecaster.predict``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.feeds import room_minutes
from engine.forecast.cancellation import cancellation_label, cancellation_scores
from engine.forecast.forecaster import Forecaster
from engine.forecast.params import ForecastParams

log = logging.getLogger(__name__)


def pinball(y: np.ndarray, pred: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss in minutes."""
    d = y - pred
    return float(np.mean(np.maximum(q * d, (q - 1) * d)))


def _metrics(y: np.ndarray, pred: pd.DataFrame, booked: np.ndarray, hist: np.ndarray) -> dict[str, Any]:
    p50, p80, p95 = (pred[c].to_numpy() for c in ("p50", "p80", "p95"))
    has_booked = np.isfinite(booked)
    return {
        "n": int(len(y)),
        "mae_p50": float(np.mean(np.abs(y - p50))) if len(y) else None,
        "mae_baseline_booked": float(np.mean(np.abs(y[has_booked] - booked[has_booked]))) if has_booked.any() else None,
        "mae_baseline_history": float(np.nanmean(np.abs(y - hist))) if np.isfinite(hist).any() else None,
        "bias_p50": float(np.mean(p50 - y)) if len(y) else None,
        "coverage_p50": float(np.mean(y <= p50)) if len(y) else None,
        "coverage_p80": float(np.mean(y <= p80)) if len(y) else None,
        "coverage_p95": float(np.mean(y <= p95)) if len(y) else None,
        "pinball_p50": pinball(y, p50, 0.5) if len(y) else None,
        "pinball_p80": pinball(y, p80, 0.8) if len(y) else None,
        "pinball_p95": pinball(y, p95, 0.95) if len(y) else None,
        "under_prediction_rate": float(np.mean(y > p80)) if len(y) else None,
    }


@dataclass
class EvaluationReport:
    """Overall figures (the contract's JSON keys and more), by service line, and per case."""

    overall: dict[str, Any]
    by_service_line: pd.DataFrame
    by_novelty: pd.DataFrame
    predictions: pd.DataFrame
    quarantined: int = 0
    notes: list[str] = field(default_factory=list)
    forecaster: Forecaster | None = field(default=None, repr=False)  # the backtest's, for benches

    def to_json(self) -> dict[str, Any]:
        keys = ["n_train", "n_test", "mae_p50", "mae_baseline_booked", "mae_baseline_history", "coverage_p80",
                "coverage_p95", "pinball_p80", "cancel_auc", "train_seconds"]
        out = {k: self.overall.get(k) for k in keys}
        extra = {k: v for k, v in self.overall.items() if k not in out}
        out.update(extra)
        out["n_quarantined"] = self.quarantined
        out["by_service_line"] = {
            r["service_line"]: {k: (None if pd.isna(v) else v) for k, v in r.items() if k != "service_line"}
            for r in self.by_service_line.to_dict("records")
        }
        out["notes"] = self.notes
        return out


def evaluate(
    cases: pd.DataFrame,
    test_from: pd.Timestamp | str,
    params: ForecastParams | None = None,
    rooms: pd.DataFrame | None = None,
    quarantined: int = 0,
) -> EvaluationReport:
    """Train before ``test_from``, score from it on; InputError when either side is empty."""
    params = params or ForecastParams()
    test_from = pd.Timestamp(test_from)
    train = cases[cases["surgery_date"] < test_from]
    test = cases[(cases["surgery_date"] >= test_from) & cases["status"].isin(["completed", "cancelled"])]
    if not len(test):
        raise InputError(f"no completed or cancelled cases on or after {test_from.date()} to test on", file="cases.csv")
    t0 = time.perf_counter()
    fc = Forecaster(params).fit(cases, train_until=test_from, rooms=rooms)
    train_seconds = time.perf_counter() - t0
    feats = fc.features(test, cases)
    pred = fc.predict(test, cases, features=feats)
    done = (test["status"] == "completed").to_numpy()
    y = room_minutes(test).to_numpy()[done]
    booked = pd.to_numeric(test["booked_minutes"], errors="coerce").to_numpy(dtype=float)[done]
    hist = feats["baseline_history"].to_numpy(dtype=float)[done]
    overall = {
        "n_train": int(fc.duration_.n_train_ + fc.duration_.n_calibration_),
        "n_test": int(done.sum()),
        **_metrics(y, pred[done], booked, hist),
        "train_seconds": round(train_seconds, 2),
    }
    overall.pop("n")
    elective = (test["urgency"].fillna("elective") == "elective").to_numpy()
    label = cancellation_label(test).to_numpy(dtype=float)
    overall.update(cancellation_scores(label[elective], pred["cancel_prob"].to_numpy()[elective], fc.cancellation_.base_rate_))
    scored = test[done].assign(actual=y, booked=booked, baseline_history=hist).join(
        pred[done][["p50", "p80", "p95", "novelty"]]
    )
    by_sl = _grouped(scored, "service_line")
    by_nov = _grouped(scored, "novelty")
    notes = []
    if overall["mae_baseline_booked"] is None:
        notes.append("no booked_minutes in the test window: the booked baseline cannot be computed")
    return EvaluationReport(overall, by_sl, by_nov, scored, quarantined, notes, forecaster=fc)


def _grouped(scored: pd.DataFrame, key: str) -> pd.DataFrame:
    rows = []
    for g, d in scored.groupby(key):
        m = _metrics(d["actual"].to_numpy(), d[["p50", "p80", "p95"]], d["booked"].to_numpy(), d["baseline_history"].to_numpy())
        rows.append({key: g, **m})
    return pd.DataFrame(rows)


def calibration_points(scored: pd.DataFrame, quantiles: tuple[float, ...] = (0.5, 0.8, 0.95), by: str | None = None) -> pd.DataFrame:
    """Observed share of cases at or below each stated quantile: nominal, observed, group, n."""
    rows = []
    groups = [("all cases", scored)] + (list(scored.groupby(by)) if by else [])
    for g, d in groups:
        for q in quantiles:
            col = f"p{round(100 * q)}"
            rows.append({"group": str(g), "nominal": q, "observed": float((d["actual"] <= d[col]).mean()), "n": len(d)})
    return pd.DataFrame(rows)
