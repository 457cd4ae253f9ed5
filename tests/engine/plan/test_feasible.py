"""Every schedule the allocator hands out passes the independent checker (tests/feasibility.py):
each solver, one day and several days, each alternative, and re-plans after each event."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from engine.plan import PlanParams, alternatives, compare, plan
from engine.plan.replan import Event, replan
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon, with_

NOW = MONDAY + pd.Timedelta(hours=10)


@pytest.mark.parametrize("solver", ["highs", "glpk", "rules"])
def test_one_day_plan_is_feasible(h, day_plans, solver: str) -> None:
    r = day_plans[solver]
    assert_no_violations(h, r.schedule, horizon(1))
    booked = h.cases[(h.cases["status"] == "booked") & (h.cases["surgery_date"] == MONDAY)]
    assert sorted(r.schedule["case_id"]) == sorted(booked["case_id"])
    assert r.kpis["n_scheduled"] > 0


@pytest.mark.parametrize("solver, limit, date_change", [
    ("highs", 4, True), ("highs", 8, False), ("glpk", 2, True), ("rules", 1, True),
])
def test_three_day_plan_is_feasible(h, fc, solver: str, limit: float, date_change: bool) -> None:
    # Whatever the solver reaches in its time (or the rules fallback it triggers), the exported
    # schedule keeps every hard rule.
    r = plan(h, fc, MONDAY, PlanParams(days=3, solver=solver, time_limit_s=limit, allow_date_change=date_change))
    assert_no_violations(h, r.schedule, horizon(3), plan_date=MONDAY)
    assert r.kpis["n_cases"] == int(((h.cases["status"] == "booked") & h.cases["surgery_date"].isin(horizon(3))).sum())
    if not date_change:
        moved = r.schedule.merge(h.cases[["case_id", "surgery_date"]], on="case_id")
        assert (moved["date"] == moved["surgery_date"]).all()


def test_each_alternative_is_feasible(h, fc) -> None:
    results = alternatives(h, fc, MONDAY, PlanParams(time_limit_s=20))
    assert set(results) == {"utilization-first", "balanced", "overtime-averse"}
    for name, r in results.items():
        assert r.params.label == name
        assert_no_violations(h, r.schedule, horizon(1))
    table = compare(results)
    assert list(table["alternative"]) == list(results) and table["n_scheduled"].gt(0).all()
    # Each row says where its schedule comes from; a fallback says why.
    assert all(src.startswith("highs, ") for src in table["schedule_from"])
    fallen = dict(results, balanced=dataclasses.replace(
        results["balanced"], banner="The highs solver stopped at a gap of 9.0%, above the tolerance of 5%. "
                                    "Showing the rules-based block schedule instead."))
    row = compare(fallen).set_index("alternative").loc["balanced"]
    assert row["fallback"] and row["schedule_from"] == ("rules fallback: The highs solver stopped at a gap of 9.0%, "
                                                        "above the tolerance of 5%.")


@pytest.fixture(scope="module")
def current(day_plans) -> pd.DataFrame:
    return day_plans["highs"].schedule


def started_and_waiting(current: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = current[current["status"] == "scheduled"]
    return s[pd.to_datetime(s["start"]) < NOW], s[pd.to_datetime(s["start"]) >= NOW]


def events(current: pd.DataFrame) -> dict[str, Event]:
    started, waiting = started_and_waiting(current)
    return {
        "running_long": Event("running_long", case_id=started["case_id"].iloc[0], extra_minutes=60),
        "add_on": Event("add_on", add_on={"case_id": "ADDON-1", "service_line": started["service_line"].iloc[0],
                                          "surgeon_id": started["surgeon_id"].iloc[0], "p50": 75, "p80": 100}),
        "room_down": Event("room_down", room_id=started["room_id"].iloc[-1]),
        "cancellation": Event("cancellation", case_id=waiting["case_id"].iloc[0]),
    }


@pytest.mark.parametrize("kind", ["running_long", "add_on", "room_down", "cancellation"])
def test_replanned_day_is_feasible_and_keeps_started_cases(h, fc, current, kind: str) -> None:
    ev = events(current)[kind]
    rr = replan(h, fc, current, ev, NOW, PlanParams(time_limit_s=20))
    res = rr.result
    locks = res.instance.locks
    started, _ = started_and_waiting(current)
    assert len(locks) and set(locks["case_id"]) <= set(started["case_id"])
    # The world after the event, as cases.csv would hold it.
    world = h
    if kind == "add_on":
        new = res.instance.cases.loc[[ev.add_on["case_id"]], list(h.cases.columns)]
        world = with_(h, cases=pd.concat([h.cases, new], ignore_index=True))
    if kind == "cancellation":
        cases = h.cases.copy()
        cases.loc[cases["case_id"] == ev.case_id, "status"] = "cancelled"
        world = with_(h, cases=cases)
    assert_no_violations(world, res.schedule, horizon(1), locked=locks)
    if kind == "room_down":
        later = res.schedule[(res.schedule["room_id"] == ev.room_id) & (pd.to_datetime(res.schedule["start"]) >= NOW)]
        assert later.empty, "nothing new starts in a room that went down"
