"""Where PACU holds come from (issue 16): the schedule's shape, or the randomness of the day?

    .venv/bin/python bench/bench_pacu_bound.py [--hospitals 11:16,23:12] [--days 5] [--time-limit 60]
                                               [--reps 200] [--scenario bed_constraint] [--seed 0]

For each generated hospital ``seed:rooms``: the optimized week (HiGHS, ``--time-limit`` s) and the
rules week, planned as ``bench_decision.py`` plans them (truth forecasts), are simulated day by day
with the vectorised engine under ``--scenario`` (elective cases only: no add-ons). For every replication and day the patients' PACU
requests (ends of surgery) are taken as they happened and fed three ways to a first-come
first-served recovery with the day's beds and the replication's own stays:

- ``simulated``: the simulation's own holds (a held patient also delays the room's next case);
- ``same arrivals``: the same request times, no feedback on the rooms (checks the queue below);
- ``evenly spaced``: the same number of requests, evenly spaced between the day's first and last
  request. This is what a perfect stagger of the same patients would give inside the same window:
  the part of the holds that no order or timing of cases can remove is the rest.

The gap between ``same arrivals`` and ``evenly spaced`` is the randomness of arrivals (durations,
turnovers, late starts, cancellations); the schedule fixes how many patients each day's beds take
and the window, not the minute each one arrives.
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


def fcfs_holds(arrivals: np.ndarray, stays: np.ndarray, beds: int) -> np.ndarray:
    """Total wait per row of a first-come first-served recovery with ``beds`` beds.
    ``arrivals`` and ``stays``: (reps, patients), NaN where a patient never came."""
    reps = arrivals.shape[0]
    order = np.argsort(np.where(np.isnan(arrivals), np.inf, arrivals), axis=1)
    a = np.take_along_axis(arrivals, order, 1)
    s = np.take_along_axis(stays, order, 1)
    free = np.zeros((reps, max(beds, 1)))
    total = np.zeros(reps)
    rows = np.arange(reps)
    for j in range(a.shape[1]):
        came = ~np.isnan(a[:, j])
        bed = free.argmin(axis=1)
        start = np.maximum(a[:, j], free[rows, bed])
        total += np.where(came, start - a[:, j], 0.0)
        free[rows, bed] = np.where(came, start + s[:, j], free[rows, bed])
    return total


def evenly_spaced(arrivals: np.ndarray, stays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same patients per row (their own stays), their requests evenly spaced between the row's
    first and last request."""
    a, s = np.full_like(arrivals, np.nan), np.full_like(stays, np.nan)
    for i, row in enumerate(arrivals):
        came = ~np.isnan(row)
        if came.any():
            times = np.sort(row[came])
            a[i, : came.sum()] = np.linspace(times[0], times[-1], came.sum())
            s[i, : came.sum()] = stays[i, came]
    return a, s


def measure(h, schedule: pd.DataFrame, fc: pd.DataFrame, scenario: str, reps: int, seed: int) -> pd.DataFrame:
    inst = build_instance(h, schedule, fc, load_scenario(scenario), pd.DataFrame(), SimParams(), None)
    keys = rep_keys(seed, 0, reps)
    rows = []
    for day in inst.days:
        d = make_draws(inst, day, keys)
        o = run_day(day, d, False, inst.params.early_start_minutes)
        stays = np.where(np.isnan(o.e_end), np.nan, d.stay)
        rows.append({"date": f"{day.date:%a %m-%d}", "beds": day.pacu_beds, "patients": float(np.mean((~np.isnan(o.e_end)).sum(1))),
                     "simulated": float(np.nansum(o.e_hold) / reps),
                     "same arrivals": float(fcfs_holds(o.e_end, stays, day.pacu_beds).mean()),
                     "evenly spaced": float(fcfs_holds(*evenly_spaced(o.e_end, stays), day.pacu_beds).mean())})
    return pd.DataFrame(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hospitals", default="11:16,23:12")
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
            print(f"\n== seed {s}, {r} rooms, {args.scenario}, {args.reps} replications (mean PACU hold minutes a day)")
            for name, res in plans.items():
                t = measure(h, res.schedule, fc, args.scenario, args.reps, args.seed)
                print(f"-- {name}")
                print(t.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
                tot = t[["simulated", "same arrivals", "evenly spaced"]].sum()
                print(f"   week: simulated {tot['simulated']:,.0f}, same arrivals {tot['same arrivals']:,.0f}, "
                      f"evenly spaced {tot['evenly spaced']:,.0f} "
                      f"({tot['evenly spaced'] / max(tot['simulated'], 1e-9):.0%} of the simulated holds)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
