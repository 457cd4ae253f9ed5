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


def point_metrics(y: np.ndarray, point: np.ndarray) -> dict[str, float | None]:
    """The figures clinicians quote for a point estimate: MAE, share within 10% of actual and
    within 15 minutes, and bias (mean estimate - actual, negative = under-predicted), over the
    cases where the estimate exists."""
    ok = np.isfinite(point) & np.isfinite(y)
    if not ok.any():
        return {"mae": None, "within_10pct": None, "within_15min": None, "bias": None}
    e = point[ok] - y[ok]
    return {
        "mae": float(np.mean(np.abs(e))),
        "within_10pct": float(np.mean(np.abs(e) <= 0.1 * y[ok])),
        "within_15min": float(np.mean(np.abs(e) <= 15.0)),
        "bias": float(np.mean(e)),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return float(a / b) if a is not None and b else None


def _metrics(y: np.ndarray, pred: pd.DataFrame, booked: np.ndarray, hist: np.ndarray,
             proc: np.ndarray | None = None) -> dict[str, Any]:
    p50, p80, p95 = (pred[c].to_numpy() for c in ("p50", "p80", "p95"))
    proc = np.full(len(y), np.nan) if proc is None else proc
    m, b, h, pr = (point_metrics(y, v) for v in (p50, booked, hist, proc))
    return {
        "n": int(len(y)),
        "mae_p50": m["mae"] if len(y) else None,
        "mae_baseline_booked": b["mae"],
        "mae_baseline_history": h["mae"],
        "mae_baseline_procedure": pr["mae"],
        "mae_ratio_booked": _ratio(m["mae"], b["mae"]),
        "mae_ratio_history": _ratio(m["mae"], h["mae"]),
        "mae_ratio_procedure": _ratio(m["mae"], pr["mae"]),
        "within_10pct_p50": m["within_10pct"],
        "within_15min_p50": m["within_15min"],
        "within_10pct_booked": b["within_10pct"],
        "within_15min_booked": b["within_15min"],
        "within_10pct_history": h["within_10pct"],
        "within_15min_history": h["within_15min"],
        "within_10pct_procedure": pr["within_10pct"],
        "bias_booked": b["bias"],
        "bias_history": h["bias"],
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
    """Train before ``test_from``, score from it on; InputError when either side is empty.

    Reports the model against both simple baselines (the booked minutes and the history median:
    surgeon x procedure, else procedure, else service line; and the procedure median), the
    clinicians' figures (within 10% of actual, within 15 min, bias), what the P50 is (``p50_source``)
    and, in ``notes``, what was adapted to the data (no cancellations, short history, extras).
    """
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
    if not done.any():
        raise InputError(f"no completed cases on or after {test_from.date()} to score the duration forecast on", file="cases.csv")
    y = room_minutes(test, params.timezone).to_numpy()[done]
    booked_col = test["booked_minutes"] if "booked_minutes" in test.columns else pd.Series(np.nan, index=test.index)
    booked = pd.to_numeric(booked_col, errors="coerce").to_numpy(dtype=float)[done]
    booked = np.where(booked > 0, booked, np.nan)
    hist = feats["baseline_history"].to_numpy(dtype=float)[done]
    proc = feats["baseline_procedure"].to_numpy(dtype=float)[done]
    overall = {
        "n_train": int(fc.duration_.n_train_ + fc.duration_.n_calibration_),
        "n_test": int(done.sum()),
        **_metrics(y, pred[done], booked, hist, proc),
        "train_seconds": round(train_seconds, 2),
    }
    overall.pop("n")
    overall["p50_source"] = fc.duration_.p50_source()
    overall["p50_blend"] = fc.duration_.blend_
    overall["calibration_days"] = fc.calibration_days_
    overall["extra_features"] = {c: k for c, k in fc.extra_kinds_.items()}
    overall["cancellation_available"] = fc.cancellation_available
    elective = (test["urgency"].fillna("elective") == "elective").to_numpy()
    label = cancellation_label(test).to_numpy(dtype=float)
    notes = list(fc.notes)
    if fc.cancellation_available:
        overall.update(cancellation_scores(label[elective], pred["cancel_prob"].to_numpy()[elective], fc.cancel_base_rate_))
        if overall["cancel_auc"] is None:
            notes.append("the test window has no cancellations (or only cancellations): cancel_auc cannot be computed")
    else:
        overall.update(cancellation_scores(np.empty(0), np.empty(0), 0.0))
        notes.append("cancel_auc is null: no cancellation model (see the cancellation note)")
    scored = test[done].assign(actual=y, booked=booked, baseline_history=hist, baseline_procedure=proc).join(
        pred[done][["p50", "p80", "p95", "novelty"]]
    )
    by_sl = _grouped(scored, "service_line")
    by_nov = _grouped(scored, "novelty")
    if overall["mae_baseline_booked"] is None:
        notes.append("no booked_minutes in the test window: the booked baseline cannot be computed")
    return EvaluationReport(overall, by_sl, by_nov, scored, quarantined, notes, forecaster=fc)


def _grouped(scored: pd.DataFrame, key: str) -> pd.DataFrame:
    rows = []
    for g, d in scored.groupby(key):
        m = _metrics(d["actual"].to_numpy(), d[["p50", "p80", "p95"]], d["booked"].to_numpy(), d["baseline_history"].to_numpy(),
                     d["baseline_procedure"].to_numpy())
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
