"""Time the simulation (a script, not a test).

    .venv/bin/python bench/bench_sim.py [--reps 1000] [--seed 1] [--simpy-reps 200] [--no-dask]
                                        [--demo DIR --models DIR [--week-time-limit S]]

Instance: one weekday (the as-of Tuesday) of a 20-room generated hospital (seed 11, 180 days of
history), its booked cases at their booked rooms and times, the generator's truth as forecasts
(the ML is not what is timed), the add-on forecast of that day, scenario ``normal``.

Prints: vectorised replications per second and the 1,000-replication time (twice: the same
seed must give identical results); the SimPy reference on the same draws (time, and the largest
difference from the vectorised outcome, case by case); a sweep (4 scenarios x 2 knob values x
reps) in-process and on a local Dask cluster (2 worker processes, 1 thread each): the overhead.

``--demo DIR --models DIR``: the issue's "done when" on a hospital folder with a registered model
(``python -m engine generate --out DIR``; ``python -m engine train --data DIR --models M``):
plan the first booked day and the first week (Mon-Fri; as one 5-day plan, and as five 1-day
plans) with HiGHS and with rules, simulate
``--reps`` replications of each under ``normal`` with one seed, and print the paired
differences optimized - rules with 95% intervals (t for means, paired bootstrap for P95).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.forecast import forecast_addons  # noqa: E402
from engine.generator import GeneratorParams, write_hospital  # noqa: E402
from engine.hospital import load_hospital  # noqa: E402
from engine.sim import (SimParams, as_booked_schedule, build_instance, compare_policies, load_scenario,  # noqa: E402
                        policy_schedules, run_sweep)
from engine.sim import model as simpy_model  # noqa: E402
from engine.sim import vector  # noqa: E402
from engine.sim.draws import make_draws  # noqa: E402
from engine.sim.rng import rep_keys  # noqa: E402
from engine.sim.runner import run_block  # noqa: E402

Z80, Z95 = 0.8416212335729143, 1.6448536269514722


def truth_forecasts(folder: Path, cases: pd.DataFrame) -> pd.DataFrame:
    t = pd.read_csv(folder / "truth.csv").set_index("case_id").loc[cases["case_id"]]
    m, s = t["true_median_minutes"].to_numpy(), t["true_sigma"].to_numpy()
    return pd.DataFrame({"case_id": cases["case_id"].to_numpy(), "p50": m, "p80": m * np.exp(Z80 * s),
                         "p95": m * np.exp(Z95 * s), "cancel_prob": t["true_cancel_prob"].to_numpy()})


def bench_engines(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "h20"
        write_hospital(folder, GeneratorParams(seed=11, rooms=20, history_days=180, horizon_days=7))
        h = load_hospital(folder).hospital
        day = h.as_of() + pd.Timedelta(days=1)
        fc = truth_forecasts(folder, h.cases[h.cases["status"] == "booked"])
        sched = as_booked_schedule(h, fc, day, 1)
        af = forecast_addons(h.cases, [day], as_of=h.as_of())
        t0 = time.perf_counter()
        inst = build_instance(h, sched, fc, load_scenario("normal"), af, SimParams())
        t_build = time.perf_counter() - t0
        d0 = inst.days[0]
        print(f"instance: {day:%Y-%m-%d}, {d0.n_rooms} rooms ({int(d0.is_reserve.sum())} reserve), {d0.n_cases} cases, "
              f"{d0.pacu_beds} PACU beds, {d0.addon_mean.sum():.1f} add-ons expected; build {t_build:.2f}s; cores {os.cpu_count()}")
        run_block(inst, args.seed, 0, 50)  # warm-up (imports, caches)
        times, outs = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            outs.append(run_block(inst, args.seed, 0, args.reps))
            times.append(time.perf_counter() - t0)
        same = all(np.array_equal(outs[0]["sums"][k], outs[1]["sums"][k]) for k in outs[0]["sums"])
        print(f"vectorised: {args.reps} replications of the 20-room day in {min(times):.3f}s "
              f"({args.reps / min(times):,.0f} reps/s); rerun with the same seed identical: {same}")
        keys = rep_keys(args.seed, 0, args.simpy_reps)
        d = make_draws(inst, d0, keys)
        t0 = time.perf_counter()
        ov = vector.run_day(d0, d, False, inst.params.early_start_minutes)
        tv = time.perf_counter() - t0
        t0 = time.perf_counter()
        om = simpy_model.run_day(d0, d, False, inst.params.early_start_minutes)
        ts = time.perf_counter() - t0
        print(f"SimPy reference: {args.simpy_reps} replications {ts:.2f}s ({args.simpy_reps / ts:,.0f} reps/s, "
              f"1,000 would take ~{1000 * ts / args.simpy_reps:.1f}s) vs vectorised engine {tv:.3f}s on the same draws: "
              f"{ts / tv:.0f}x; largest case-level difference {ov.max_abs_difference(om):g} min")
        if args.no_dask:
            return
        scen = ["normal", "high_addon", "staff_shortage", "bed_constraint"]
        kw = dict(scenarios=scen, reps=args.reps, seed=args.seed, knobs=[{}, {"duration_inflation": 0.1}],
                  addon_forecast=af, params=SimParams(chunk_reps=500))
        t0 = time.perf_counter()
        local = run_sweep(h, {"as_booked": sched}, fc, **kw)
        t_local = time.perf_counter() - t0
        from distributed import LocalCluster

        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            t_up = time.perf_counter() - t0
            t0 = time.perf_counter()
            remote = run_sweep(h, {"as_booked": sched}, fc, scheduler_address=cluster.scheduler_address, **kw)
            t_dask = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_sweep(h, {"as_booked": sched}, fc, scheduler_address=cluster.scheduler_address,
                      **{**kw, "reps": 1, "scenarios": ["normal"], "knobs": [{}]})
            t_tiny = time.perf_counter() - t0
        equal = local.table.equals(remote.table)
        n_runs = len(scen) * 2
        print(f"sweep {len(scen)} scenarios x 2 knob values x {args.reps} reps ({n_runs * args.reps:,} replications): "
              f"in-process {t_local:.2f}s, Dask LocalCluster(2 processes) {t_dask:.2f}s (+{t_up:.1f}s cluster start-up); "
              f"one 1-rep task on the cluster {t_tiny:.2f}s (per-call overhead); identical tables: {equal}")


def bench_demo(args) -> None:
    from engine.forecast import Registry
    from engine.plan import PlanParams

    h = load_hospital(args.demo).hospital
    mv = Registry(args.models).load(args.demo.resolve().name)
    if mv is None:
        raise SystemExit(f"no model registered for {args.demo.name} in {args.models} (python -m engine train)")
    start = h.as_of()
    booked = h.cases[h.cases["status"] == "booked"]
    fc = mv.forecaster.predict(booked, h.cases, as_of=start)
    pd.set_option("display.width", 200)
    runs = (("first booked day", 1, 30.0, False), ("first week (Mon-Fri), one 5-day plan", 5, args.week_time_limit, False),
            ("first week (Mon-Fri), five 1-day plans", 5, 30.0, True))
    for label, days, tl, daily in runs:
        t0 = time.perf_counter()
        if daily:
            parts = [policy_schedules(h, fc, start + pd.Timedelta(days=i), 1, PlanParams(days=1, time_limit_s=tl),
                                      policies=("optimized", "rules")) for i in range(days)]
            sch = {}
            for name in ("optimized", "rules"):
                sch[name] = pd.concat([p[name] for p in parts], ignore_index=True)
                pjs = [p[name].attrs.get("plan", {}) for p in parts]
                sch[name].attrs["plan"] = {
                    "solver": "+".join(sorted({str(j.get("solver")) for j in pjs})),
                    "n_scheduled": sum(j.get("n_scheduled", 0) for j in pjs), "n_deferred": sum(j.get("n_deferred", 0) for j in pjs),
                    "fallback_reason": "; ".join(j["fallback_reason"] for j in pjs if j.get("fallback_reason")) or None}
        else:
            sch = policy_schedules(h, fc, start, days, PlanParams(days=days, time_limit_s=tl), policies=("optimized", "rules"))
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmp_ = compare_policies(h, sch, fc, "normal", args.reps, args.seed)
        t_sim = time.perf_counter() - t0
        print(f"\n== {label}: {start:%Y-%m-%d} + {days} day(s); plans {t_plan:.1f}s, simulation {t_sim:.1f}s, "
              f"{args.reps} reps, seed {args.seed}")
        for name, s in sch.items():
            pj = s.attrs.get("plan", {})
            print(f"  {name}: solver {pj.get('solver')}, {pj.get('n_scheduled')} scheduled, {pj.get('n_deferred')} deferred"
                  + (f"; FALLBACK: {pj['fallback_reason']}" if pj.get("fallback_reason") else ""))
        p = cmp_.paired
        keep = p[p["metric"].isin(["utilization", "overtime_minutes", "pacu_hold_minutes", "cancellations",
                                   "spillover_cases", "surgeon_idle_minutes", "elective_cases_run"])
                 & p["statistic"].isin(["mean", "p95"])]
        print(keep[["metric", "statistic", "policy_value", "baseline_value", "diff", "ci_lo", "ci_hi"]]
              .rename(columns={"policy_value": "optimized", "baseline_value": "rules"}).round(3).to_string(index=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--simpy-reps", type=int, default=200)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--demo", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--week-time-limit", type=float, default=30.0)
    args = ap.parse_args()
    if args.demo:
        bench_demo(args)
    else:
        bench_engines(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
