"""Issue 16, never worse than the rules: the optimizer's schedule is used whenever it scores no
worse than the rules-based one on the model's objective (whatever its gap); the rules schedule
is returned only when it scores better (or the solver fails)."""
from __future__ import annotations

import importlib

import pandas as pd

from engine.plan import PlanParams, plan
from engine.plan.score import score_assignment, sequenced_assignment
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon

planner_mod = importlib.import_module("engine.plan.planner")
optimize_mod = importlib.import_module("engine.plan.optimize")


def test_plan_reports_both_scores_and_uses_the_better(day_plans) -> None:
    r = day_plans["highs"]
    j = r.to_json()
    assert {"gap_proven", "beats_rules", "objective_schedule", "objective_rules"} <= set(j)
    assert j["fallback_used"] is False and j["beats_rules"] is True
    assert j["objective_schedule"] <= j["objective_rules"] + 1e-6
    # The score is the model's objective at the exported schedule.
    again = score_assignment(r.instance, r.params, sequenced_assignment(r.sequence))
    assert abs(again - j["objective_schedule"]) < 1e-3


def test_a_schedule_worse_than_the_rules_falls_back(h, fc, monkeypatch) -> None:
    """An optimizer that defers everything scores worse than the rules: the rules schedule is used."""
    real = planner_mod.optimize

    def lazy(inst, params, warm_start=None, models_out=None, **kw):
        res, a, held, t = real(inst, params, warm_start, models_out, **kw)
        return res, a.assign(slot_id=None, reason="deferred"), [], t

    monkeypatch.setattr(planner_mod, "optimize", lazy)
    r = plan(h, fc, MONDAY, PlanParams(time_limit_s=10))
    j = r.to_json()
    rules = plan(h, fc, MONDAY, PlanParams(solver="rules"))
    assert j["fallback_used"] is True and j["beats_rules"] is False and "scores worse" in r.banner
    assert r.kpis["solver"] == "rules"
    cols = ["case_id", "status", "room_id", "start"]
    pd.testing.assert_frame_equal(r.schedule[cols].reset_index(drop=True), rules.schedule[cols].reset_index(drop=True))
    assert_no_violations(h, r.schedule, horizon(1))


def test_week_with_a_short_limit_is_the_optimizers(h, fc) -> None:
    """A week stopped far from proven is still the optimizer's when it beats the rules."""
    r = plan(h, fc, MONDAY, PlanParams(days=5, time_limit_s=8))
    j = r.to_json()
    if j["fallback_used"]:
        assert "scores worse" in r.banner and j["objective_schedule"] == j["objective_rules"]
    else:
        assert j["beats_rules"] and (j["gap_proven"] or r.notice)
    assert_no_violations(h, r.schedule, horizon(5))


def test_a_solver_with_no_schedule_in_time_still_gives_its_start(h, fc, monkeypatch) -> None:
    """HiGHS stopping at its limit with no schedule of its own (a loaded machine) does not throw
    the plan back to the rules: its MIP start (here the rules schedule cut down to the model's
    rules) is the answer, scored against the rules and checked like any answer."""
    from engine.plan.solve import SolveResult

    def nothing(model, solver, limit, gap, warm_start=False):
        return SolveResult(solver, "time_limit", None, None, None, float(limit), False, "stopped")

    monkeypatch.setattr(optimize_mod, "solve", nothing)
    r = plan(h, fc, MONDAY, PlanParams(days=2, time_limit_s=4))
    j = r.to_json()
    assert r.solve.has_solution and r.solve.bound is None and "MIP start" in r.solve.message
    assert j["objective_schedule"] <= j["objective_rules"] + 1e-6
    assert j["fallback_used"] is False and r.notice and "no proven bound" in r.notice
    assert_no_violations(h, r.schedule, horizon(2))


def test_a_bound_below_zero_is_not_shown_as_a_gap_over_100_percent(h, fc, monkeypatch) -> None:
    """The objective credits idle prime time, so a weak bound can fall below zero and the relative
    gap pass 100% (seen on a 24-room week: "a gap of 101.3%"). The notice then says the bound is
    too weak, and still gives objective and bound."""
    import dataclasses

    from engine.plan.solve import relative_gap

    real = optimize_mod.solve

    def weak(model, solver, limit, gap, warm_start=False):
        res = real(model, solver, limit, gap, warm_start=warm_start)
        bound = -abs(res.objective) - 1000.0
        return dataclasses.replace(res, status="time_limit", bound=bound, mip_gap=relative_gap(res.objective, bound))

    monkeypatch.setattr(optimize_mod, "solve", weak)
    r = plan(h, fc, MONDAY, PlanParams(time_limit_s=10))
    assert r.solve.mip_gap is not None and r.solve.mip_gap > 1
    assert r.banner is None and r.notice and "too weak to give as a gap" in r.notice
    assert "%" not in r.notice.split("(")[0] and "bound -" in r.notice


def test_a_start_that_breaks_a_model_rule_is_not_an_answer(h, fc) -> None:
    from engine.plan import build_instance
    from engine.plan.extract import set_start, start_is_feasible
    from engine.plan.model import build_model

    inst = build_instance(h, fc, MONDAY, PlanParams(hold_addon_rooms=False))
    m = build_model(inst, PlanParams())
    set_start(m, pd.DataFrame({"case_id": inst.cases.index, "slot_id": None}))
    assert start_is_feasible(m), "deferring everything keeps every rule"
    first = m.X.at(1)
    m.x[first].value = 0.5
    assert not start_is_feasible(m)
