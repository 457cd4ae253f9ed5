"""The allocator's speed levers keep its answers right: the staffed-room strengthening, the
booked-date start of multi-day plans, warm starts and the memo of answers."""
from __future__ import annotations

import dataclasses

import pyomo.environ as pyo
import pytest

from engine.plan import PlanParams, build_instance, build_model, plan
from engine.plan.extract import feasible_start, set_start
from engine.plan.memo import _memo_serves, model_key, remember
from engine.plan.optimize import booked_date_start
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon, with_


def _short_staffed(h, staffed: int):
    st = h.staffing.copy()
    st.loc[st["date"] == MONDAY, ["staffed_rooms", "anesthesia_teams"]] = staffed
    return with_(h, staffing=st)


def test_lp_uses_no_more_room_time_than_staffed_rooms_have(h, fc):
    """On a day with fewer staffed rooms than rooms with time, the relaxation may not spread its
    cases over every room's time (each room only partly opened): the load it places stays within
    the time of the ``staffed`` largest rooms."""
    staffed = 3
    hs = _short_staffed(h, staffed)
    params = PlanParams()
    inst = build_instance(hs, fc, MONDAY, params)
    rooms = inst.slots.groupby("room_id").apply(lambda g: (g["p50_limit"] - g["start_min"]).sum() + inst.turnover_minutes * len(g))
    assert len(rooms) > staffed
    m = build_model(inst, params)
    assert MONDAY in set(m.DS)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(m)
    pyo.SolverFactory("appsi_highs").solve(m)
    load = sum((pyo.value(m.p50[c]) + pyo.value(m.turnover)) * pyo.value(m.x[c, s]) for c, s in m.X)
    assert load <= rooms.sort_values(ascending=False).iloc[:staffed].sum() + 1e-6


def _violated(m) -> list[str]:
    out = []
    for con in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(con.body)
        if con.has_lb() and body < pyo.value(con.lower) - 1e-6 or con.has_ub() and body > pyo.value(con.upper) + 1e-6:
            out.append(con.name)
    return out


def test_booked_date_start_is_a_valid_schedule_of_the_horizon(h, fc):
    params = PlanParams(days=3, time_limit_s=20)
    inst = build_instance(h, fc, MONDAY, params)
    start, secs = booked_date_start(inst, params, 10.0)
    assert start is not None and secs > 0
    assert set(start["case_id"]) == set(inst.cases.index)
    m = build_model(inst, params)
    set_start(m, start)
    assert _violated(m) == []
    placed = start.dropna(subset=["slot_id"])
    slot_date = inst.slots["date"]
    moved = placed[slot_date.loc[placed["slot_id"]].to_numpy() != inst.cases.loc[placed["case_id"], "booked_date"].to_numpy()]
    # Date changes only for cases that did not fit on their own day: never more than the booked
    # dates alone defer (the same days solved with date changes off).
    fixed = PlanParams(days=3, time_limit_s=20, allow_date_change=False)
    alone, _ = booked_date_start(build_instance(h, fc, MONDAY, fixed), fixed, 10.0)
    assert len(moved) <= alone["slot_id"].isna().sum()
    assert len(placed) >= alone["slot_id"].notna().sum()


def test_multi_day_plan_from_the_booked_date_start_is_feasible_and_no_worse(h, fc):
    params = PlanParams(days=3, time_limit_s=20)
    res = plan(h, fc, MONDAY, params)
    assert res.solve is not None and res.solve.has_solution
    assert_no_violations(h, res.schedule, horizon(3))
    inst = res.instance
    start, _ = booked_date_start(inst, params, 10.0)
    m = build_model(inst, params)
    set_start(m, start)
    # The optimizer keeps the start unless it finds better (HiGHS keeps a feasible MIP start).
    assert res.solve.objective <= pyo.value(m.obj) + 1e-6
    # The reported solve time counts finding the start too (all the solving the plan did).
    assert res.solve.solve_seconds == pytest.approx(res.kpis["timings"]["solve_s"], abs=0.01)


def test_warm_start_gives_the_same_or_a_better_plan(h, fc):
    params = PlanParams(time_limit_s=20)
    cold = plan(h, fc, MONDAY, params)
    warm = plan(h, fc, MONDAY, params, warm_start=cold.assignment())
    assert warm.solve.objective <= cold.solve.objective * (1 + params.mip_gap) + 1e-6
    assert_no_violations(h, warm.schedule, horizon(1))


def test_memo_reuses_an_answer_only_when_the_model_is_the_same(h, fc):
    # With the PACU load term off, PACU beds are not in the assignment model (priced, they are:
    # tests/engine/plan/test_pacu_load.py).
    params = PlanParams(time_limit_s=20, w_pacu_hold=0)
    memo: dict = {}
    first = plan(h, fc, MONDAY, params, memo=memo)
    assert not first.kpis["reused_solution"] and len(memo) == 1
    entry = next(iter(memo.values()))
    # So a change of PACU beds alone: the same answer, sequenced again.
    st = h.staffing.copy()
    st["pacu_beds"] = st["pacu_beds"] + 2
    again = plan(with_(h, staffing=st), fc, MONDAY, params, memo=memo)
    assert again.kpis["reused_solution"]
    assert _slots(again) == _slots(first)
    # Fewer staffed rooms is another model: solved again.
    fewer = plan(_short_staffed(h, 3), fc, MONDAY, params, memo=memo)
    assert not fewer.kpis["reused_solution"] and len(memo) == 2
    assert_no_violations(_short_staffed(h, 3), fewer.schedule, horizon(1))
    # A shorter time limit is served by the answer that had more time; a longer one is not.
    assert plan(h, fc, MONDAY, params.with_(time_limit_s=1.0), memo=memo).kpis["reused_solution"] == True  # noqa: E712
    # A longer limit is served only by a proven answer: both cases, whatever this machine proved in 20 s.
    longer = params.with_(time_limit_s=40.0)
    res, answer, held, limit = entry
    assert _memo_serves((dataclasses.replace(res, status="optimal"), answer, held, limit), longer)
    assert not _memo_serves((dataclasses.replace(res, status="time_limit"), answer, held, limit), longer)
    assert _memo_serves((dataclasses.replace(res, status="time_limit"), answer, held, limit), params.with_(time_limit_s=1.0))


def test_model_key_follows_what_the_model_reads(h, fc):
    params = PlanParams()
    inst = build_instance(h, fc, MONDAY, params)
    key = model_key(inst, params)
    assert model_key(inst, params.with_(label="other", gap_tolerance=0.5, time_limit_s=3)) == key
    assert model_key(inst, params.with_(w_overtime=9.0)) != key
    longer = fc.assign(p50=fc["p50"] * 1.1, p80=fc["p80"] * 1.1)
    assert model_key(build_instance(h, longer, MONDAY, params), params) != key
    memo: dict = {}
    rules = plan(h, fc, MONDAY, params.with_(solver="rules"))
    remember(memo, rules)
    assert memo == {}  # rules plans are never served as optimizer answers


@pytest.mark.parametrize("field", ["p50_i", "p80_i"])
def test_model_key_changes_with_each_case_duration(h, fc, field):
    params = PlanParams()
    inst = build_instance(h, fc, MONDAY, params)
    cases = inst.cases.copy()
    cases.iloc[0, cases.columns.get_loc(field)] += 5
    assert model_key(dataclasses.replace(inst, cases=cases), params) != model_key(inst, params)


def _slots(result) -> dict:
    a = result.assignment()
    return dict(zip(a["case_id"], a["slot_id"].where(a["slot_id"].notna(), None)))


@pytest.mark.parametrize("change", ["fewer_rooms", "longer_cases"])
def test_feasible_start_repairs_a_plan_made_for_another_instance(h, fc, change):
    """A plan for the baseline, cut down by feasible_start, satisfies every constraint of the
    changed instance's model, and keeps most of the baseline's placements."""
    params = PlanParams(time_limit_s=20)
    base = plan(h, fc, MONDAY, params)
    hs, f2 = (_short_staffed(h, 3), fc) if change == "fewer_rooms" else (h, fc.assign(p50=fc["p50"] * 1.3, p80=fc["p80"] * 1.3))
    inst = build_instance(hs, f2, MONDAY, params)
    start = feasible_start(inst, base.assignment())
    m = build_model(inst, params)
    set_start(m, base.assignment())
    assert _violated(m) != []  # the baseline itself breaks the changed rules
    set_start(m, start)
    assert _violated(m) == []
    kept = start["slot_id"].notna().sum()
    assert 0 < kept < base.assignment()["slot_id"].notna().sum()
