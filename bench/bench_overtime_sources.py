"""Where the optimized week's overtime comes from (issue 16): mean overtime past close per room-day,
optimized against rules, split by the kind of room time (surgeon block, service block, or a room
with no block: the rooms the simulation's ``reserve`` add-on policy sends add-ons to).

    .venv/bin/python bench/bench_overtime_sources.py [--hospitals 11:16,8:14] [--reps 300] [--time-limit 60]

Same set-up as bench_decision.py (generated hospital, truth forecasts, first booked Monday, 5 days,
normal scenario, evaluation seed 0). Per-room overtime is read by wrapping
``engine.sim.metrics.day_sums`` (the simulation reports only the day's sum over rooms); the totals
printed are the simulation's own mean weekly overtime.
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

import engine.sim.metrics as M  # noqa: E402
from bench_decision import generated, week_plans  # noqa: E402
from engine.sim import simulate  # noqa: E402


def room_overtime(h, schedule, fc, reps: int) -> pd.Series:
    """Mean overtime past close per (date, room) over ``reps`` simulated days, and the run's mean total."""
    rows = []
    real = M.day_sums

    def spy(inst, day, d, o):
        past = np.nan_to_num(np.clip(o.last_release - day.close_min[None, :], 0, None))
        rows.extend((day.date, r, float(past[:, j].mean())) for j, r in enumerate(day.rooms))
        return real(inst, day, d, o)

    M.day_sums = spy
    try:
        res = simulate(h, schedule, fc, "normal", reps, 0)
    finally:
        M.day_sums = real
    s = pd.DataFrame(rows, columns=["date", "room_id", "ot"]).groupby(["date", "room_id"])["ot"].sum()
    assert abs(s.sum() - res.per_rep["overtime_minutes"].mean()) < 1e-6 * max(1.0, s.sum())
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hospitals", default="11:16,8:14")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.hospitals.split(","):
            seed, rooms = (int(x) for x in spec.split(":"))
            h, fc = generated(Path(tmp) / f"h{seed}_{rooms}", seed, rooms)
            plans = week_plans(h, fc, 5, args.time_limit)
            ot = pd.DataFrame({k: room_overtime(h, r.schedule, fc, args.reps) for k, r in plans.items()}).fillna(0.0)
            b = h.blocks.assign(date=pd.to_datetime(h.blocks["date"]).dt.normalize())
            named = b["surgeon_id"].notna() & (b["surgeon_id"].astype(str) != "")
            kind = b.assign(kind=np.where(named, "surgeon block", "service block")).groupby(["date", "room_id"])["kind"].first()
            ot = ot.join(kind, how="left").fillna({"kind": "no block (add-on room)"})
            by = ot.groupby("kind")[["optimized", "rules"]].sum()
            by.loc["all rooms"] = ot[["optimized", "rules"]].sum()
            by["ratio"] = by["optimized"] / by["rules"].where(by["rules"] > 0)
            print(f"\n== seed {seed}, {rooms} rooms: mean overtime past close per week (min), {args.reps} replications, normal")
            print(by.round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
