"""Open rooms held for add-ons: the reserve the add-on forecast asks for, within staffing."""
from __future__ import annotations

import pandas as pd

from engine.plan import PlanParams, build_instance, plan
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon, with_


def _reserve(minutes: float, days: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"date": horizon(days), "reserve_minutes": minutes})


def _open_rooms(inst) -> set:
    s = inst.slots
    return set(s.loc[s["kind"] == "open", "room_id"])


def test_a_costly_reserve_holds_open_rooms_free_and_the_schedule_stays_feasible(h, fc):
    params = PlanParams(time_limit_s=20, w_addon_reserve=50.0)
    res = plan(h, fc, MONDAY, params, addon_reserve=_reserve(2000))
    open_rooms = _open_rooms(res.instance)
    assert open_rooms, "the test hospital needs unblocked room time on the first day"
    held = res.held
    assert held and len(res.kpis["addon_rooms_held"]) == len(held)
    held_rooms = {res.instance.slots.at[si, "room_id"] for si in held}
    assert held_rooms <= open_rooms
    scheduled = res.schedule[res.schedule["status"] == "scheduled"]
    assert not set(scheduled["room_id"]) & held_rooms  # no elective case in a held room
    assert_no_violations(h, res.schedule, horizon(1))


def test_no_reserve_or_hold_off_holds_nothing(h, fc):
    for params, reserve in ((PlanParams(time_limit_s=20), _reserve(0)),
                            (PlanParams(time_limit_s=20, hold_addon_rooms=False, w_addon_reserve=50.0), _reserve(2000))):
        res = plan(h, fc, MONDAY, params, addon_reserve=reserve)
        assert res.held == [] and res.kpis["addon_rooms_held"] == []
    inst = build_instance(h, fc, MONDAY, PlanParams(hold_addon_rooms=False), addon_reserve=_reserve(2000))
    assert inst.addon_reserve is None


def test_held_rooms_need_staff_too(h, fc):
    """On a day with fewer teams than rooms, rooms with cases plus held rooms stay within the teams."""
    st = h.staffing.copy()
    rooms = h.rooms["room_id"].nunique()
    staffed = rooms - 2
    st.loc[st["date"] == MONDAY, ["staffed_rooms", "anesthesia_teams"]] = staffed
    hs = with_(h, staffing=st)
    res = plan(hs, fc, MONDAY, PlanParams(time_limit_s=20, w_addon_reserve=50.0), addon_reserve=_reserve(2000))
    used = res.schedule.loc[res.schedule["status"] == "scheduled", "room_id"].nunique()
    assert used + len(res.held) <= staffed
    assert_no_violations(hs, res.schedule, horizon(1))


def test_the_default_reserve_comes_from_the_addon_forecast(h, fc):
    res = plan(h, fc, MONDAY, PlanParams(time_limit_s=20))
    r = res.instance.addon_reserve
    assert r is not None and list(r.index) == horizon(1) and r.iloc[0] > 0
    assert plan(h, fc, MONDAY, PlanParams(solver="rules")).instance.addon_reserve is None
