"""Forecasts on real hospitals' shapes (issue 15): the figures, per generator seed.

Run: .venv/bin/python bench/bench_forecast_shapes.py [--seeds 7 8 9] [--parts demo real noise short old timing]

For each seed a default demo hospital (2 years, 16 rooms) is generated, then the real-shaped
tables of tests/engine/forecast/shapes.py are built from it:
- demo:  the demo itself, backtest on the last 91 days, tune off and on (``train`` tunes);
- real:  a real case log (completed only: no cancellations, no surgeon ids, no booked minutes, local
         catch-all codes, 6 corrupt rows), contract columns alone and with its extra columns
         declared (team, complexity score, free-text procedure name, two noise columns);
- noise: only the procedure matters and every other column is shuffled (the model's features are
         pure noise), contract columns alone and with three noise columns declared;
- short: 6 weeks of history + 2 weeks to test on;
- old:   a 3-month extract of the first year, no as_of: ``train_and_register`` takes its clock
         from the data;
- timing: the production fit on 2 years (tune off / on) and 500 forecasts with reasons.
Targets (issue 15): demo P50 MAE <= 0.75x booked and <= 0.9x the surgeon x procedure median,
coverage +-0.02 of nominal; real shapes P50 MAE <= 0.99x the procedure median (contract columns),
<= 0.95x (extras declared), coverage P80 +-0.03, P95 +-0.02; fit < 60 s; 500 with reasons < 1 s.
Timings depend on the machine and its load: read them with ``uptime``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.forecast import Forecaster, Registry, evaluate, train_and_register  # noqa: E402
from engine.forecast.params import TRAINING  # noqa: E402
from engine.generator import GeneratorParams, write_hospital  # noqa: E402
from engine.hospital import load_cases, load_hospital  # noqa: E402
from tests.engine.forecast import shapes  # noqa: E402

REAL_EXTRAS = ("primary_team", "complexity_score", "proc_text", "ward_code", "pre_op_score")


def _row(seed: int, shape: str, o: dict, seconds: float) -> dict:
    return {
        "seed": seed, "shape": shape, "n_test": o.get("n_test"), "mae_p50": o.get("mae_p50"),
        "x_booked": o.get("mae_ratio_booked"), "x_history": o.get("mae_ratio_history"),
        "x_procedure": o.get("mae_ratio_procedure"), "cov_p80": o.get("coverage_p80"), "cov_p95": o.get("coverage_p95"),
        "within10": o.get("within_10pct_p50"), "within15": o.get("within_15min_p50"), "bias": o.get("bias_p50"),
        "w10_booked": o.get("within_10pct_booked"), "cancel_auc": o.get("cancel_auc"), "seconds": round(seconds, 1),
        "p50_source": str(o.get("p50_source", ""))[:70],
    }


def _eval(cases, test_from, params, rooms=None):
    t0 = time.perf_counter()
    rep = evaluate(cases, test_from, params, rooms=rooms)
    return rep.overall, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--parts", nargs="+", default=["demo", "real", "noise", "short", "old", "timing"])
    args = ap.parse_args()
    rows, timing = [], []
    base = TRAINING  # what `train` and `evaluate` use: tuned per hospital
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            folder = tmp / "demo"
            write_hospital(folder, GeneratorParams(seed=seed))
            h = load_hospital(folder).hospital
            raw = shapes.read_raw(folder / "cases.csv")
            truth = pd.read_csv(folder / "truth.csv")
            as_of = h.as_of()
            test_from = as_of - pd.Timedelta(days=91)
            if "demo" in args.parts:
                for tune in (False, True):
                    o, s = _eval(h.cases, test_from, replace(base, tune=tune), h.rooms)
                    rows.append(_row(seed, f"demo{' tuned' if tune else ''}", o, s))
                    print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
            if "real" in args.parts:
                d, _ = shapes.real_export(raw, truth, seed)
                cases = load_cases(shapes.write_cases(d, tmp / "real.csv"))[0]
                for name, extras in (("real contract", ()), ("real + extras", REAL_EXTRAS)):
                    o, s = _eval(cases, test_from, replace(base, extra_features=extras))
                    rows.append(_row(seed, name, o, s))
                    print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
            if "noise" in args.parts:
                cases = load_cases(shapes.write_cases(shapes.noise_table(raw, truth, seed), tmp / "noise.csv"))[0]
                for name, extras in (("noise contract", ()), ("noise + extras", tuple(shapes.NOISE_EXTRAS))):
                    o, s = _eval(cases, test_from, replace(base, extra_features=extras))
                    rows.append(_row(seed, name, o, s))
                    print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
            if "short" in args.parts:
                start = as_of - pd.Timedelta(days=56)
                d, _ = shapes.real_export(shapes.window(raw, str(start.date()), str(as_of.date())), truth, seed)
                cases = load_cases(shapes.write_cases(d, tmp / "short.csv"))[0]
                for name, extras in (("6 weeks contract", ()), ("6 weeks + extras", REAL_EXTRAS)):
                    o, s = _eval(cases, as_of - pd.Timedelta(days=14), replace(base, extra_features=extras))
                    rows.append(_row(seed, name, o, s))
                    print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
            if "old" in args.parts:
                start = pd.Timestamp(raw["surgery_date"].min()) + pd.Timedelta(days=120)
                end = start + pd.Timedelta(days=91)
                d, _ = shapes.real_export(shapes.window(raw, str(start.date()), str(end.date())), truth, seed)
                dst = shapes.folder_with_cases(folder, tmp / "old", d, drop_as_of=True)
                t0 = time.perf_counter()
                mv = train_and_register(load_hospital(dst).hospital, "old", replace(base, tune=True), Registry(tmp / "models"))
                o = dict(mv.meta["metrics"])
                rows.append(_row(seed, f"3-month extract (test from {mv.meta['backtest_test_from']})", o, time.perf_counter() - t0))
                print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
            if "timing" in args.parts:
                for tune in (False, True):
                    load = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    fc = Forecaster(replace(base, tune=tune)).fit(h.cases, train_until=as_of, rooms=h.rooms)
                    fit_s = time.perf_counter() - t0
                    booked = h.cases[h.cases["status"] == "booked"]
                    extra = h.cases[h.cases["status"] != "booked"].tail(max(0, 500 - len(booked)))
                    batch = pd.concat([booked, extra]).head(500)
                    t0 = time.perf_counter()
                    fc.predict(batch, h.cases, as_of=as_of, reasons=True)
                    cold = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    fc.predict(batch, h.cases, as_of=as_of, reasons=True)
                    warm = time.perf_counter() - t0
                    timing.append({"seed": seed, "tune": tune, "fit_2y_s": round(fit_s, 1), "predict500_cold_s": round(cold, 2),
                                   "predict500_warm_s": round(warm, 2), "load_1min": round(load, 2),
                                   "chosen": "" if fc.tuning_ is None else f"d{fc.params.depth} lr{fc.params.learning_rate:g} "
                                   f"it{fc.params.iterations} k{fc.params.shrinkage_cases:g}"})
                    print(pd.DataFrame(timing[-1:]).to_string(index=False), flush=True)
    pd.set_option("display.width", 250)
    print("\nall shapes:")
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    if timing:
        print("\ntiming:")
        print(pd.DataFrame(timing).to_string(index=False))


if __name__ == "__main__":
    main()
