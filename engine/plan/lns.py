"""Fix-and-optimize over the days of a week (issue 16: use the week).

The week's assignment MIP is large and its bound weak, so HiGHS spends most of a 60 s limit
without improving its schedule. A day or two of the week alone solves fast. After the week's own
solve, this module frees two days at a time (every pair, nearest first): the cases on those days (and the deferred
cases) may take any of those days' room time; every other case keeps its room-day (its variables
are fixed). The same model is solved again with HiGHS from the current schedule (a MIP start), so
every answer keeps every constraint of the week's model; a window's answer is kept only when it
lowers the week's objective. Windows are visited in turn until the time is spent or a full round
improves nothing. The week solve's bound stays the bound (a window's bound is not one for the week).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations

import pandas as pd
import pyomo.environ as pyo

from engine.plan.extract import extract_assignment, extract_held, set_start
from engine.plan.solve import solve

MIN_WINDOW_S = 2.0  # a window gets at least this long (loading the model into HiGHS again takes ~0.5 s)


@dataclass
class Improved:
    assignment: pd.DataFrame
    held: list[str]
    objective: float
    windows_tried: int
    windows_improved: int
    seconds: float


def _fix_outside(m: pyo.ConcreteModel, window: set, placed: dict[str, str | None]) -> None:
    """Fix x of every case outside ``window`` (the dates freed) at its room-day; a case in the
    window (or deferred) may take only the window's room time."""
    for ci, si in m.X:
        own = placed.get(ci)
        inside = own is None or m.room_day[own][0] in window
        if inside and m.room_day[si][0] in window:
            continue
        m.x[ci, si].fix(1.0 if own == si else 0.0)


def fix_and_optimize(m: pyo.ConcreteModel, dates: list, assignment: pd.DataFrame, held: list[str],
                     objective: float, budget_s: float, mip_gap: float) -> Improved:
    """Improve ``assignment`` (case_id, slot_id; ``held``: the open rooms it holds for add-ons,
    ``objective``: its value) of model ``m`` window by window within ``budget_s``."""
    t0 = time.perf_counter()
    best, best_obj = assignment.copy(), float(objective)
    # Every pair of days (a surgeon's days of the week are often not adjacent), nearest first.
    windows = [set(p) for p in sorted(combinations(dates, 2), key=lambda p: (p[1] - p[0], p[0]))]
    tried = improved = 0
    since = 0  # windows tried since the last improvement
    while windows and since < len(windows):
        left = budget_s - (time.perf_counter() - t0)
        if left < MIN_WINDOW_S:
            break
        window = windows[tried % len(windows)]
        tried += 1
        placed = {ci: (si if isinstance(si, str) else None) for ci, si in zip(best["case_id"], best["slot_id"])}
        set_start(m, best)
        _fix_outside(m, window, placed)
        try:
            res = solve(m, "highs", max(MIN_WINDOW_S, min(left, budget_s / len(windows))), mip_gap, warm_start=True)
        finally:
            for ci, si in m.X:
                m.x[ci, si].unfix()
        if res.has_solution and res.objective < best_obj - 1e-6 * max(1.0, abs(best_obj)):
            best, best_obj, held = extract_assignment(m), float(res.objective), extract_held(m)
            improved += 1
            since = 0
        else:
            since += 1
    set_start(m, best)
    return Improved(best, held, best_obj, tried, improved, time.perf_counter() - t0)
