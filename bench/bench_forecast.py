"""Forecasting benchmark: training time, prediction-with-reasons time, backtest accuracy.

Run: .venv/bin/python bench/bench_forecast.py [--seeds 7 8 9]
For each demo hospital seed: generate the default hospital (2 years, 16 rooms), evaluate with
the last 3 months of history as the test window (time-aware split), then time a production
fit on all history and the forecast of 500 booked cases with their reasons; ``recal500_*`` time
the same forecast by the backtest model, whose conformal offsets are recalibrated on the 91 days
of cases completed after it was trained (cold: scores those cases; warm: cached per history).

Diagnostic columns: ``unf_*`` are the test cases of unfamiliar surgeons/procedures/pairs (their
count, P80/P95 coverage and mean ln(P95/P50) width). ``noise_p80``/``noise_p95`` use the
generator's hidden truth (truth.csv: true median m and sigma of each case): the share of test
cases at or below their true log-normal body quantile m exp(z_q sigma), minus that share over
all completed history. It is the luck of the test window's irreducible noise: a forecaster that
knew every case's true distribution would score about nominal + noise on this window.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.forecast import ForecastParams, Forecaster, evaluate  # noqa: E402
from engine.generator import GeneratorParams, write_hospital  # noqa: E402
from engine.hospital import load_hospital  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "demo"
            write_hospital(folder, GeneratorParams(seed=seed))
            h = load_hospital(folder).hospital
            truth = pd.read_csv(folder / "truth.csv")
        as_of = h.as_of()
        test_from = as_of - pd.Timedelta(days=91)
        t0 = time.perf_counter()
        rep = evaluate(h.cases, test_from, ForecastParams(), rooms=h.rooms)
        o = rep.overall
        backtest_predict_s = time.perf_counter() - t0 - o["train_seconds"]
        noise = _noise_luck(h.cases, truth, test_from)
        sc = rep.predictions
        unf = sc[sc["novelty"] != "known"]
        t0 = time.perf_counter()
        fc = Forecaster().fit(h.cases, train_until=as_of, rooms=h.rooms)
        fit_s = time.perf_counter() - t0
        booked = h.cases[h.cases["status"] == "booked"]
        # 500 cases: the booked horizon, topped up with recent cases re-posed as booked.
        extra = h.cases[h.cases["status"] != "booked"].tail(max(0, 500 - len(booked)))
        batch = pd.concat([booked, extra]).head(500)
        t0 = time.perf_counter()
        fc.predict(batch, h.cases, as_of=as_of, reasons=True)  # cold: builds the history index
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fc.predict(batch, h.cases, as_of=as_of, reasons=True)
        pred_s = time.perf_counter() - t0
        # The backtest model is 91 days older than the history: its offsets are recalibrated on
        # the cases completed since (scored once per history, then cached).
        old = rep.forecaster
        t0 = time.perf_counter()
        old.predict(batch, h.cases, as_of=as_of, reasons=True)
        recal_cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        old.predict(batch, h.cases, as_of=as_of, reasons=True)
        recal_warm_s = time.perf_counter() - t0
        rows.append({
            "seed": seed, "n_train": o["n_train"], "n_test": o["n_test"],
            "mae_p50": o["mae_p50"], "mae_booked": o["mae_baseline_booked"], "mae_history": o["mae_baseline_history"],
            "ratio_booked": o["mae_p50"] / o["mae_baseline_booked"], "ratio_history": o["mae_p50"] / o["mae_baseline_history"],
            "cov_p80": o["coverage_p80"], "cov_p95": o["coverage_p95"], "pinball_p80": o["pinball_p80"],
            "noise_p80": noise[0.8], "noise_p95": noise[0.95], "unf_n": len(unf),
            "unf_cov80": (unf["actual"] <= unf["p80"]).mean(), "unf_cov95": (unf["actual"] <= unf["p95"]).mean(),
            "unf_w95": np.log(unf["p95"] / unf["p50"]).mean(),
            "cancel_auc": o["cancel_auc"], "cancel_brier": o["cancel_brier"], "brier_base": o["cancel_brier_base_rate"],
            "backtest_fit_s": o["train_seconds"], "full_fit_s": fit_s, "predict500_cold_s": cold_s, "predict500_warm_s": pred_s,
            "backtest_predict_s": backtest_predict_s, "recal500_cold_s": recal_cold_s, "recal500_warm_s": recal_warm_s,
        })
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    print("\nall seeds:")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def _noise_luck(cases: pd.DataFrame, truth: pd.DataFrame, test_from: pd.Timestamp) -> dict[float, float]:
    """Share of test cases at or below their true body quantile, minus the share over all history."""
    done = cases[cases["status"] == "completed"]
    t = truth.set_index("case_id").reindex(done["case_id"])
    actual = (done["wheels_out"] - done["wheels_in"]).dt.total_seconds().to_numpy() / 60
    z = (np.log(actual) - np.log(t["true_median_minutes"].to_numpy())) / t["true_sigma"].to_numpy()
    test = (done["surgery_date"] >= test_from).to_numpy()
    return {q: float(np.mean(z[test] <= norm.ppf(q)) - np.mean(z <= norm.ppf(q))) for q in (0.8, 0.95)}


if __name__ == "__main__":
    main()
