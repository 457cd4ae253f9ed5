"""Issue 14 (5): day-of re-planning uses the rooms held for add-ons first, for an add-on and for
the cases of a room that went down, on a day with fewer teams than rooms (where the held room
used to be charged a second team)."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.plan import PlanParams, plan
from engine.plan.replan import Event, replan
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon, with_

PARAMS = PlanParams(time_limit_s=20, w_addon_reserve=500.0)
NOW = MONDAY + pd.Timedelta(hours=10)


@pytest.fixture(scope="module")
def held_day(h, fc):
    st = h.staffing.copy()
    st.loc[st["date"] == MONDAY, ["staffed_rooms", "anesthesia_teams"]] = h.rooms["room_id"].nunique() - 2
    hs = with_(h, staffing=st)
    reserve = pd.DataFrame({"date": horizon(1), "reserve_minutes": 2000.0})
    base = plan(hs, fc, MONDAY, PARAMS, addon_reserve=reserve)
    held = {base.instance.slots.at[si, "room_id"] for si in base.held}
    assert held, "the test day must hold an open room for add-ons"
    return hs, base, held


def test_an_addon_goes_to_the_held_room(held_day, fc):
    hs, base, held = held_day
    add = {"case_id": "ADD-1", "service_line": base.schedule["service_line"].iloc[0], "surgeon_id": "unknown",
           "p50": 90.0, "p80": 120.0, "urgency": "emergent", "required_equipment": ""}
    rr = replan(hs, fc, base.schedule, Event("add_on", add_on=add), NOW, PARAMS)
    s = rr.result.schedule.set_index("case_id")
    assert rr.result.banner is None
    assert s.at["ADD-1", "status"] == "scheduled" and s.at["ADD-1", "room_id"] in held
    # No elective planned before is deferred for it.
    was = base.schedule.set_index("case_id")["status"]
    bumped = [c for c in was.index if was[c] == "scheduled" and s.at[c, "status"] == "deferred"]
    assert not bumped, bumped


def test_cases_of_a_room_that_went_down_move_to_the_held_room(held_day, fc):
    hs, base, held = held_day
    sch = base.schedule[base.schedule["status"] == "scheduled"]
    later = sch[pd.to_datetime(sch["start"]) >= NOW]
    room = later.groupby("room_id").size().sort_values().index[-1]
    moved_out = set(later.loc[later["room_id"] == room, "case_id"])
    rr = replan(hs, fc, base.schedule, Event("room_down", room_id=room), NOW, PlanParams(time_limit_s=20))
    s = rr.result.schedule.set_index("case_id")
    assert rr.result.banner is None, rr.result.banner
    into_held = [c for c in moved_out if s.at[c, "status"] == "scheduled" and s.at[c, "room_id"] in held]
    assert into_held, s.loc[sorted(moved_out), ["status", "room_id", "reason"]]
    assert_no_violations(hs, rr.result.schedule, horizon(1))
