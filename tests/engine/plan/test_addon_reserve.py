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
    params = PlanParams(time_limit_s=20, w_addon_reserve=500.0)
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
                            (PlanParams(time_limit_s=20, hold_addon_rooms=False, w_addon_reserve=500.0), _reserve(2000))):
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
    res = plan(hs, fc, MONDAY, PlanParams(time_limit_s=20, w_addon_reserve=500.0), addon_reserve=_reserve(2000))
    used = res.schedule.loc[res.schedule["status"] == "scheduled", "room_id"].nunique()
    assert used + len(res.held) <= staffed
    assert_no_violations(hs, res.schedule, horizon(1))


def test_the_default_reserve_comes_from_the_addon_forecast(h, fc):
    res = plan(h, fc, MONDAY, PlanParams(time_limit_s=20))
    r = res.instance.addon_reserve
    assert r is not None and list(r.index) == horizon(1) and r.iloc[0] > 0
    assert plan(h, fc, MONDAY, PlanParams(solver="rules")).instance.addon_reserve is None


def test_a_held_room_still_takes_an_urgent_case(h, fc):
    """Rooms are held for add-ons: an urgent case that can only go to open time may use a held room."""
    params = PlanParams(time_limit_s=20, w_addon_reserve=500.0)
    base = plan(h, fc, MONDAY, params, addon_reserve=_reserve(2000))
    held_slot = base.held[0]
    room = base.instance.slots.at[held_slot, "room_id"]
    booked = h.cases[(h.cases["status"] == "booked") & (h.cases["surgery_date"] == MONDAY)]
    case = booked.iloc[0].copy()
    case["case_id"], case["urgency"], case["service_line"] = "URG-1", "emergent", "No Such Line"
    case["surgeon_id"], case["required_equipment"] = "unknown", ""
    cases = pd.concat([h.cases, case.to_frame().T.astype(h.cases.dtypes.to_dict())], ignore_index=True)
    f2 = pd.concat([fc, pd.DataFrame([{"case_id": "URG-1", "p50": 60.0, "p80": 80.0, "p95": 100.0, "cancel_prob": 0.0}])])
    res = plan(with_(h, cases=cases), f2, MONDAY, params, addon_reserve=_reserve(2000))
    row = res.schedule.set_index("case_id").loc["URG-1"]
    assert row["status"] == "scheduled"
    # Only open time takes a case of a line with no block; the held room is one of the open rooms.
    assert row["room_id"] in _open_rooms(res.instance)
    electives = res.schedule[(res.schedule["status"] == "scheduled") & (res.schedule["case_id"] != "URG-1")]
    held_rooms = {res.instance.slots.at[si, "room_id"] for si in res.held}
    assert not set(electives["room_id"]) & held_rooms
    # The urgent case does not cost the reserve: the room held before is still held, and takes it
    # when no other open room is free of electives.
    assert room in held_rooms
    others_free = (_open_rooms(res.instance) - held_rooms) - set(electives["room_id"])
    assert row["room_id"] in held_rooms or row["room_id"] in others_free
    assert_no_violations(with_(h, cases=cases), res.schedule, horizon(1))


def test_a_replan_holds_rooms_for_the_rest_of_the_day_only(h, fc):
    from engine.plan.planner import addon_reserve_minutes
    from engine.plan.replan import Event, replan

    base = plan(h, fc, MONDAY, PlanParams(time_limit_s=20))
    victim = base.schedule[base.schedule["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]
    full = float(addon_reserve_minutes(h, MONDAY, 1)["reserve_minutes"].iloc[0])
    morning = replan(h, fc, base.schedule, Event("cancellation", case_id=victim), MONDAY + pd.Timedelta(hours=9))
    afternoon = replan(h, fc, base.schedule, Event("cancellation", case_id=victim), MONDAY + pd.Timedelta(hours=15))
    r_morning = float(morning.result.instance.addon_reserve.iloc[0])
    r_afternoon = float(afternoon.result.instance.addon_reserve.iloc[0])
    assert 0 < r_afternoon < r_morning < full
    gone = with_(h, cases=h.cases.assign(status=h.cases["status"].where(h.cases["case_id"] != victim, "cancelled")))
    for rr in (morning, afternoon):
        assert_no_violations(gone, rr.result.schedule, horizon(1))


def test_callers_that_plan_the_same_dates_again_make_the_reserve_once(h, fc, monkeypatch):
    """alternatives() plans three weightings and the frontier several risk factors of the same
    dates: each makes the add-on forecast's reserve once and passes it down (issue 18)."""
    import engine.overview as overview
    import engine.plan.planner as planner

    calls = []
    real = planner.addon_reserve_minutes

    def counted(*a, **k):
        calls.append(a[1:])
        return real(*a, **k)

    monkeypatch.setattr(planner, "addon_reserve_minutes", counted)
    monkeypatch.setattr(overview, "addon_reserve_minutes", counted)
    fast = PlanParams(time_limit_s=5, sequencer="greedy")
    res = planner.alternatives(h, fc, MONDAY, fast)
    assert len(res) == 3 and len(calls) == 1
    assert all(r.instance.addon_reserve is not None for r in res.values())
    calls.clear()
    overview.frontier(h, fc, MONDAY, fast, factors=(0.5, 1.0, 2.0), reps=5)
    assert len(calls) == 1
