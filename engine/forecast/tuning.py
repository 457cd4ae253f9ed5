"""Model choices per hospital by a small time-series validation (``ForecastParams.tune``).

The training part of the history (before the calibration window) is split by decision time:
the latest ``VALIDATION_SHARE`` validates, the cases before it (the most recent
``MAX_TUNE_CASES`` of them) train. Each candidate (depth, learning rate) is fitted once with
early stopping on the validation cases' MultiQuantile loss, which also gives its number of
iterations; the candidate with the lowest validation loss wins. Candidates run in order, the
defaults first, until ``tune_budget_s`` is spent, so the budget bounds the extra training time.
The budget counts CPU seconds per CatBoost thread (process time / ``thread_count``), about the
wall time on an unshared machine: on a shared, loaded one the wall clock would cut the search
short and the same data would get different settings.
The shrinkage of the surgeon x procedure median (``shrinkage_cases``) is chosen on the same
validation cases by the MAE of the shrunk median itself (no model fit: it is computed from the
feature columns). The defaults (depth 6, learning rate 0.1, shrinkage 5 cases) are CatBoost's
and a plain prior, not tuned on the demo generator.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from catboost import CatBoostRegressor, Pool

from engine.forecast.features import categorical_columns
from engine.forecast.params import ForecastParams

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.2
MAX_TUNE_CASES = 10000
MIN_VALIDATION_CASES = 100
SHRINKAGE_CANDIDATES = (1.0, 2.0, 5.0, 10.0, 20.0)


def candidates(params: ForecastParams) -> list[tuple[int, float]]:
    """(depth, learning_rate) pairs, the hospital's current settings first."""
    out = [(params.depth, params.learning_rate), (4, 0.1), (8, 0.1), (6, 0.05)]
    return list(dict.fromkeys(out))


def choose_shrinkage(features: pd.DataFrame, minutes: np.ndarray) -> float | None:
    """The pseudo-count whose shrunk surgeon x procedure median has the lowest MAE on these cases.

    Shrunk median = exp(w log(pair median) + (1 - w) log(procedure median)), w = n / (n + k);
    None when no case has a surgeon x procedure history (e.g. no surgeon ids)."""
    n = features["sp_count"].to_numpy(dtype=float)
    sp = np.log(features["baseline_history"].to_numpy(dtype=float))
    pr = np.log(features["baseline_procedure"].to_numpy(dtype=float))
    ok = np.isfinite(sp) & np.isfinite(pr) & (n > 0) & np.isfinite(minutes)
    if ok.sum() < MIN_VALIDATION_CASES or np.allclose(sp[ok], pr[ok]):
        return None
    maes = {k: float(np.mean(np.abs(np.exp((n[ok] * sp[ok] + k * pr[ok]) / (n[ok] + k)) - minutes[ok])))
            for k in SHRINKAGE_CANDIDATES}
    return min(maes, key=maes.get)


def tune(features: pd.DataFrame, minutes: np.ndarray, usable: np.ndarray, feature_names: list[str],
         params: ForecastParams) -> tuple[ForecastParams, dict]:
    """Choose depth, learning rate, iterations and shrinkage on a time split of the ``usable`` rows.

    Returns the chosen params (``tune`` off, so refits do not tune again) and a report of what was
    tried. With too few cases to validate, the params are returned unchanged.
    """
    def clock() -> float:
        return time.process_time() / max(params.thread_count, 1)

    t0 = clock()
    rows = np.flatnonzero(usable & np.isfinite(minutes) & (minutes > 0))
    times = pd.to_datetime(features["decision_time"]).to_numpy(dtype="datetime64[ns]")[rows]
    rows = rows[np.argsort(times, kind="mergesort")]
    n_val = int(len(rows) * VALIDATION_SHARE)
    report: dict = {"tried": [], "n_validation": n_val}
    if n_val < MIN_VALIDATION_CASES or len(rows) - n_val < params.min_train_cases:
        report["skipped"] = f"too few cases to validate on ({len(rows)})"
        return replace(params, tune=False), report
    val, train = rows[-n_val:], rows[:-n_val][-MAX_TUNE_CASES:]
    X = features[feature_names]
    logy = np.log(minutes)
    alphas = ",".join(f"{q:g}" for q in params.quantiles)
    cats = categorical_columns(list(feature_names))
    pool_tr = Pool(X.iloc[train], logy[train], cat_features=cats)
    pool_va = Pool(X.iloc[val], logy[val], cat_features=cats)
    best: tuple[float, int, float, int] | None = None
    last = 0.0
    for depth, lr in candidates(params):
        if best is not None and clock() - t0 + last > params.tune_budget_s:
            report["stopped"] = "training-time budget"
            break
        t1 = clock()
        m = CatBoostRegressor(
            loss_function=f"MultiQuantile:alpha={alphas}", iterations=2 * params.iterations, depth=depth,
            learning_rate=lr, max_ctr_complexity=params.max_ctr_complexity, random_seed=params.random_state,
            thread_count=params.thread_count, allow_writing_files=False, verbose=False,
            od_type="Iter", od_wait=40, use_best_model=True,
        )
        m.fit(pool_tr, eval_set=pool_va)
        loss = float(m.get_best_score()["validation"][next(iter(m.get_best_score()["validation"]))])
        iters = int(m.get_best_iteration()) + 1
        last = clock() - t1
        report["tried"].append({"depth": depth, "learning_rate": lr, "iterations": iters, "loss": loss, "seconds": round(last, 1)})
        if best is None or loss < best[0]:
            best = (loss, depth, lr, iters)
    assert best is not None
    _, depth, lr, iters = best
    # More training data than the tuning fit saw: a few more rounds, within 50..2x the default.
    scale = min(1.5, max(1.0, (len(rows) / max(len(train), 1)) ** 0.5))
    iterations = int(min(2 * params.iterations, max(50, round(iters * scale))))
    k = choose_shrinkage(features.iloc[val], minutes[val])
    chosen = replace(params, depth=depth, learning_rate=lr, iterations=iterations,
                     shrinkage_cases=k if k is not None else params.shrinkage_cases, tune=False)
    report.update({"depth": depth, "learning_rate": lr, "iterations": iterations, "shrinkage_cases": chosen.shrinkage_cases,
                   "seconds": round(clock() - t0, 1)})
    log.info("tuning: %s", report)
    return chosen, report
