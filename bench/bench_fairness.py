"""The fairness policy on the first five booked days of generated hospitals (a script, not a test).

    .venv/bin/python bench/bench_fairness.py [--seeds 11,5,23] [--rooms 16,12,20] [--work DIR]

For each seed (with its room count) it generates a hospital (or reuses ``WORK/g<seed>``),
trains and registers its model once (``WORK/models``), then plans each of the first five booked
days as ``python -m engine plan`` does (default PlanParams: the policy applied) and once more
without the policy (``fairness_policy=False``). It prints, per day, the largest prime-time gap
as the fairness report counts it (``fairness --json``'s ``max_prime_time_gap``, lines of at least
``min_group_cases``), whether the policy is met or why not, how many plans the policy took, and
the policy's measured cost against the plain plan: cases scheduled, expected overtime and
utilization. Every schedule is run through the independent checker.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.checker import check_schedule  # noqa: E402
from engine.fairness import fairness_report  # noqa: E402
from engine.forecast import Registry, train_and_register  # noqa: E402
from engine.generator import GeneratorParams, write_hospital  # noqa: E402
from engine.hospital import load_hospital  # noqa: E402
from engine.plan import PlanParams, plan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="11,5,23")
    ap.add_argument("--rooms", default="16,12,20")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_fairness"))
    args = ap.parse_args()
    registry = Registry(args.work / "models")
    totals = []
    for seed, rooms in zip([int(s) for s in args.seeds.split(",")], [int(r) for r in args.rooms.split(",")]):
        folder = args.work / f"g{seed}"
        if not (folder / "cases.csv").exists():
            write_hospital(folder, GeneratorParams(seed=seed, rooms=rooms))
        h = load_hospital(folder).hospital
        hid = folder.name
        mv = registry.load(hid) or train_and_register(h, hid, registry=registry)
        booked = h.cases[h.cases["status"] == "booked"]
        fc = mv.forecaster.predict(booked, h.cases, as_of=h.as_of())
        print(f"seed {seed}, {rooms} rooms, policy {h.settings.fairness.max_prime_time_gap_points:g} points "
              f"(min {h.settings.fairness.min_group_cases} cases a line)")
        for day in sorted(booked["surgery_date"].unique())[:5]:
            t = time.perf_counter()
            fair = plan(h, fc, day, PlanParams())
            secs = time.perf_counter() - t
            plain = plan(h, fc, day, PlanParams(fairness_policy=False))
            gap = 100 * fairness_report(h, fair.schedule, fc)["max_prime_time_gap"]
            gap0 = 100 * fairness_report(h, plain.schedule, fc)["max_prime_time_gap"]
            bad = len(check_schedule(h, fair.schedule, horizon_dates=[pd.Timestamp(day)]))
            f, k, k0 = fair.fairness, fair.kpis, plain.kpis
            totals.append({"seed": seed, "met": f["met"], "gap": gap, "gap0": gap0})
            print(f"  {pd.Timestamp(day):%a %Y-%m-%d}: gap {gap0:5.1f} -> {gap:5.1f} points ({'met' if f['met'] else 'MISSED'}, "
                  f"{f['plans_tried'] if f.get('plans_tried') else 1} plans, {secs:.1f}s); cost: scheduled "
                  f"{k['n_scheduled'] - k0['n_scheduled']:+d}, expected overtime "
                  f"{k['expected_overtime_minutes'] - k0['expected_overtime_minutes']:+.0f} min, utilization "
                  f"{100 * (k['utilization'] - k0['utilization']):+.1f} pts; checker violations {bad}")
            for line in f["explanation"]:
                print(f"      why: {line}")
    t = pd.DataFrame(totals)
    print(f"days within the policy: {int(t['met'].sum())} of {len(t)} (plain plans: {int((t['gap0'] <= 5 + 1e-9).sum())})")


if __name__ == "__main__":
    main()
