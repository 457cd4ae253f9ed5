"""Issue 16 (2): the allocator's per-day PACU load term. A day's expected PACU hold minutes are a
convex function of its case count and beds (terms.pacu_hold_curve); the week moves cases from a
day short of PACU beds to a day of the same block with beds to spare, and does not when the term
is off (``w_pacu_hold=0``) or when the day's hold budget covers the load. It is priced by default (no
stated budget: 0 minutes), and a stated ``pacu_beds_short`` prices each day as if that many beds were
missing."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.hospital import load_hospital
from engine.plan import PlanParams, build_instance, plan
from engine.plan.model import build_model
from engine.plan.terms import erlang_c_wait, pacu_hold_curve, pacu_hold_weight
from tests.feasibility import check_schedule
from tests.minihospital import SETTINGS, case_rows, write_mini_hospital

MONDAY = pd.Timestamp("2027-01-04")
WEEK = [MONDAY + pd.Timedelta(days=i) for i in range(5)]

# S1's block on Monday and Thursday; Monday's recovery has one bed, Thursday's four.
BLOCKS = """date,room_id,service_line,surgeon_id,start_time,end_time
2027-01-04,OR2,Orthopedics,S1,07:30,17:00
2027-01-05,OR1,General Surgery,,07:30,17:00
2027-01-06,OR1,General Surgery,,07:30,17:00
2027-01-07,OR2,Orthopedics,S1,07:30,17:00
2027-01-08,OR3,General Surgery,,07:30,15:30
"""
STAFFING = """date,staffed_rooms,anesthesia_teams,pacu_beds
2027-01-04,1,1,1
2027-01-05,1,1,2
2027-01-06,1,1,2
2027-01-07,1,1,4
2027-01-08,1,1,2
"""


def _booked(n: int) -> str:
    return (f"B{n:03d},2027-01-04,booked,Orthopedics,27130,Total hip arthroplasty,S1,,90,2026-12-20T10:00,"
            ",,,,,elective,,,55,F,2,29.0,general,outpatient,Main")


BUDGET_0 = SETTINGS + "\n[service_levels]\npacu_hold_budget_minutes = 0\n"


def _hospital(folder, settings: str = BUDGET_0):
    history = [r for r in case_rows() if ",booked," not in r]
    write_mini_hospital(folder, cases_rows=history + [_booked(i) for i in range(1, 5)], blocks_csv=BLOCKS,
                        staffing_csv=STAFFING, settings_toml=settings)
    h = load_hospital(folder).hospital
    b = h.cases[h.cases["status"] == "booked"]
    # Four 90-minute cases: they fit Monday's block easily (no overtime or service-level risk).
    fc = pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 90.0, "p80": 105.0, "p95": 120.0, "cancel_prob": 0.0})
    return h, fc


def _days(h, fc, **kw) -> pd.Series:
    r = plan(h, fc, MONDAY, PlanParams(days=5, time_limit_s=20, allow_open_time=False, hold_addon_rooms=False, **kw))
    assert not check_schedule(h, r.schedule, horizon_dates=WEEK)
    s = r.schedule[r.schedule["status"] == "scheduled"].set_index("case_id")
    assert len(s) == 4, "every case is scheduled: the term moves cases, it does not defer them"
    return pd.to_datetime(s["date"]).dt.normalize()


def test_hold_curve_is_convex_and_falls_with_beds() -> None:
    few, many = pacu_hold_curve(8, 75, 470, 70), pacu_hold_curve(12, 75, 470, 70)
    assert few[0] == many[0] == 0.0
    for curve in (few, many):
        steps = [b - a for a, b in zip(curve, curve[1:])]
        assert all(s >= -1e-9 for s in steps)
        assert all(b >= a - 1e-9 for a, b in zip(steps, steps[1:])), "convex: each case adds at least the last one's hold"
    assert few[45] > many[45] > 0
    # Past the load the Erlang C wait is followed to, the curve goes on finite and steeper.
    assert erlang_c_wait(70, 8, 75, 470) == float("inf") and few[70] < float("inf")
    # A budget is subtracted (and the curve floored at 0).
    assert pacu_hold_curve(12, 75, 470, 70, budget_minutes=50.0)[45] == pytest.approx(max(0.0, many[45] - 50.0))


def test_week_moves_cases_to_the_day_with_beds(tmp_path) -> None:
    h, fc = _hospital(tmp_path / "mini")
    on = _days(h, fc)
    off = _days(h, fc, w_pacu_hold=0)
    assert (off == MONDAY).all(), "without the term, moving a case only costs (the date-move penalty)"
    unstated, unstated_fc = _hospital(tmp_path / "unstated", SETTINGS)
    assert (_days(unstated, unstated_fc) == WEEK[3]).sum() >= 1, "no stated budget: priced all the same (0 minutes)"
    assert (on == WEEK[3]).sum() >= 1, "with it, Monday's single bed sends cases to Thursday's four"
    assert set(on) <= {MONDAY, WEEK[3]}


def test_a_budget_that_covers_the_load_leaves_the_week_alone(tmp_path) -> None:
    h, fc = _hospital(tmp_path / "mini", SETTINGS + "\n[service_levels]\npacu_hold_budget_minutes = 100000\n")
    inst = build_instance(h, fc, MONDAY, PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False))
    assert inst.pacu_hold_budget_minutes == 100000
    m = build_model(inst, PlanParams(days=5))
    assert len(m.PD) == 0, "no day's expected hold passes the budget: no PACU term"
    assert (_days(h, fc) == MONDAY).all()


def test_weight_follows_the_deferral_cost_and_can_be_set(tmp_path) -> None:
    h, fc = _hospital(tmp_path / "mini")
    inst = build_instance(h, fc, MONDAY, PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False))
    assert pacu_hold_weight(inst, PlanParams()) == pytest.approx(1000.0 / 90.0)
    assert pacu_hold_weight(inst, PlanParams(w_pacu_hold=2.5)) == 2.5
    h2, fc2 = _hospital(tmp_path / "unstated", SETTINGS)
    inst2 = build_instance(h2, fc2, MONDAY, PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False))
    assert pacu_hold_weight(inst2, PlanParams()) == pytest.approx(1000.0 / 90.0), "priced with no stated budget too"
    assert pacu_hold_weight(inst2, PlanParams(w_pacu_hold=0)) == 0.0
    with pytest.raises(ValueError, match="w_pacu_hold"):
        PlanParams(w_pacu_hold=-1)


def test_pacu_beds_enter_the_memo_key_only_when_the_term_is_priced(tmp_path) -> None:
    from engine.plan.memo import model_key

    h, fc = _hospital(tmp_path / "mini")
    p = PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False)
    inst = build_instance(h, fc, MONDAY, p)
    more = build_instance(h, fc, MONDAY, p)
    more.staffing = more.staffing.assign(pacu_beds=more.staffing["pacu_beds"] + 2)
    assert model_key(inst, p) != model_key(more, p), "budget stated: the beds change the model"
    off = p.with_(w_pacu_hold=0)
    assert model_key(inst, off) == model_key(more, off)


# Monday has five beds, Thursday eight: four cases barely queue on five, so they stay on their
# booked Monday; a hospital that must withstand four beds short (Monday on one) moves them.
ROOMY = STAFFING.replace("2027-01-04,1,1,1", "2027-01-04,1,1,5").replace("2027-01-07,1,1,4", "2027-01-07,1,1,8")


def test_a_stated_bed_shortage_prices_the_day_without_those_beds(tmp_path) -> None:
    history = [r for r in case_rows() if ",booked," not in r]

    def hospital(name: str, settings: str):
        write_mini_hospital(tmp_path / name, cases_rows=history + [_booked(i) for i in range(1, 5)], blocks_csv=BLOCKS,
                            staffing_csv=ROOMY, settings_toml=settings)
        h = load_hospital(tmp_path / name).hospital
        b = h.cases[h.cases["status"] == "booked"]
        return h, pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 90.0, "p80": 105.0, "p95": 120.0, "cancel_prob": 0.0})

    staffed, fc = hospital("staffed", SETTINGS)
    short, fc_short = hospital("short", SETTINGS + "\n[service_levels]\npacu_beds_short = 4\n")
    inst = build_instance(short, fc_short, MONDAY, PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False))
    assert inst.pacu_beds_short == 4
    assert (_days(staffed, fc) == MONDAY).all(), "five beds take four cases: moving them only costs"
    assert (_days(short, fc_short) == WEEK[3]).sum() >= 1, "one bed left on Monday: cases go to Thursday's four"
    from engine.plan.memo import model_key
    p = PlanParams(days=5, allow_open_time=False, hold_addon_rooms=False)
    other = build_instance(staffed, fc, MONDAY, p)
    assert model_key(other, p) != model_key(build_instance(short, fc_short, MONDAY, p), p)
