"""Issue 16 (4): fix-and-optimize over the week's days (engine/plan/lns.py). From the booked-date
schedule of a week where one surgeon's Monday is overbooked, freeing two days at a time moves a
case to that surgeon's Thursday (days that are not adjacent), lowers the week's objective, and the
answer keeps every constraint of the week's model; with no time it returns the start unchanged."""
from __future__ import annotations

import pandas as pd

from engine.plan import PlanParams
from engine.plan.extract import feasible_start, set_start, start_is_feasible
from engine.plan.instance import build_instance
from engine.plan.lns import fix_and_optimize
from engine.plan.model import build_model
from engine.plan.rules import rules_assignment
from engine.plan.score import start_value
from tests.engine.plan.test_week_date_moves import MONDAY, THURSDAY, week_hospital  # noqa: F401 (fixture)

PARAMS = PlanParams(days=5, time_limit_s=20, allow_open_time=False, hold_addon_rooms=False)


def _start(h, fc):
    inst = build_instance(h, fc, MONDAY, PARAMS)
    m = build_model(inst, PARAMS)
    start = feasible_start(inst, rules_assignment(inst))
    return inst, m, start, start_value(m, start)


def test_fix_and_optimize_moves_a_case_across_the_week(week_hospital):  # noqa: F811
    h, fc = week_hospital
    inst, m, start, value = _start(h, fc)
    day = {si: m.room_day[si][0] for si in m.S}
    on = lambda a: {ci: day.get(si) for ci, si in zip(a["case_id"], a["slot_id"]) if isinstance(si, str)}  # noqa: E731
    assert sum(d == MONDAY for d in on(start).values()) == 3  # all three of S1's cases on its Monday
    imp = fix_and_optimize(m, sorted(inst.dates), start, [], value, budget_s=20, mip_gap=0.0)
    assert imp.windows_improved >= 1 and imp.objective < value - 1.0
    assert THURSDAY in on(imp.assignment).values()
    set_start(m, imp.assignment)
    assert start_is_feasible(m)
    assert abs(start_value(m, imp.assignment) - imp.objective) <= 1e-6 * max(1.0, abs(imp.objective))
    assert all(not m.x[k].fixed for k in m.X)  # the model is left as it was built


def test_fix_and_optimize_without_time_keeps_the_start(week_hospital):  # noqa: F811
    h, fc = week_hospital
    inst, m, start, value = _start(h, fc)
    imp = fix_and_optimize(m, sorted(inst.dates), start, [], value, budget_s=0.5, mip_gap=0.0)
    assert imp.windows_tried == 0 and imp.objective == value
    pd.testing.assert_frame_equal(imp.assignment[["case_id", "slot_id"]], start[["case_id", "slot_id"]])
