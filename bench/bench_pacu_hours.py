"""When in the day PACU holds happen (issue 16): the optimized week against the rules week, by hour.

    .venv/bin/python bench/bench_pacu_hours.py [--hospitals 27:18] [--days 5] [--time-limit 60]
                                               [--reps 200] [--scenario bed_constraint] [--seed 0]

For each generated hospital ``seed:rooms``, both weeks are planned as ``bench_decision.py`` plans
them (truth forecasts) and simulated day by day with the vectorised engine under ``--scenario``.
Per hour of the day (summed over the week, averaged over replications): the planned ends of
surgery (the schedule's P50 PACU arrivals), the simulated arrivals and the simulated hold minutes
(elective and add-on patients waiting in the OR for a bed, by the hour their surgery ended).
Per day: the planned PACU peak (most patients in recovery at once at P50) and the planned
overlap of recovery stays, the integral of occupancy x (occupancy - 1) / 2 in patient-minutes,
a measure of crowding that does not depend on the bed count.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_decision import generated, week_plans  # noqa: E402
from engine.sim import SimParams, build_instance, load_scenario  # noqa: E402
from engine.sim.draws import make_draws  # noqa: E402
from engine.sim.rng import rep_keys  # noqa: E402
from engine.sim.vector import run_day  # noqa: E402


def by_hour(h, schedule: pd.DataFrame, fc: pd.DataFrame, scenario: str, reps: int, seed: int) -> pd.DataFrame:
    inst = build_instance(h, schedule, fc, load_scenario(scenario), pd.DataFrame(), SimParams(), None)
    keys = rep_keys(seed, 0, reps)
    planned, arrivals, holds = np.zeros(24), np.zeros(24), np.zeros(24)
    for day in inst.days:
        d = make_draws(inst, day, keys)
        o = run_day(day, d, False, inst.params.early_start_minutes)
        np.add.at(planned, (day.planned_end // 60).astype(int).clip(0, 23), 1)
        for end, hold, count in ((o.e_end, o.e_hold, True), (o.a_end, o.a_hold, False)):
            ok = ~np.isnan(end) & ~np.isnan(hold)
            hr = (end[ok] // 60).astype(int).clip(0, 23)
            np.add.at(holds, hr, hold[ok] / reps)
            if count:
                np.add.at(arrivals, hr, 1.0 / reps)
    return pd.DataFrame({"planned ends": planned, "arrivals": arrivals, "hold minutes": holds})


def planned_crowding(schedule: pd.DataFrame) -> pd.DataFrame:
    """Per date: the planned PACU peak and the overlap of recovery stays (patient-minutes)."""
    rows = []
    s = schedule[schedule["status"] == "scheduled"]
    for d, g in s.groupby("date"):
        ev = sorted([(t, 1) for t in g["pacu_in"]] + [(t, -1) for t in g["pacu_out"]], key=lambda x: (x[0], x[1]))
        cur = peak = 0
        overlap, last = 0.0, None
        for t, k in ev:
            if last is not None:
                overlap += (t - last).total_seconds() / 60 * cur * (cur - 1) / 2
            cur += k
            peak = max(peak, cur)
            last = t
        rows.append({"date": f"{pd.Timestamp(d):%a %m-%d}", "patients": len(g), "planned peak": peak,
                     "overlap": round(overlap)})
    return pd.DataFrame(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hospitals", default="27:18")
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--scenario", default="bed_constraint")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.hospitals.split(","):
            s, r = (int(x) for x in spec.split(":"))
            h, fc = generated(Path(tmp) / f"h{s}_{r}", s, r)
            plans = week_plans(h, fc, args.days, args.time_limit)
            print(f"\n== seed {s}, {r} rooms, {args.scenario}, {args.reps} replications (the week, by hour of the day)")
            t = pd.concat({n: by_hour(h, res.schedule, fc, args.scenario, args.reps, args.seed) for n, res in plans.items()},
                          axis=1)
            print(t[t.sum(axis=1) > 0].to_string(float_format=lambda v: f"{v:,.1f}"))
            print(t.sum().to_string(float_format=lambda v: f"{v:,.1f}"))
            for n, res in plans.items():
                print(f"-- {n}: planned PACU crowding per day")
                print(planned_crowding(res.schedule).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
