"""The optimizer run: the assignment MIP solved one independent part at a time, with the
booked-date start, fix-and-optimize over a part's days and the leftover time for the parts that
stopped above the gap (see :func:`optimize`)."""
from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd

from engine.plan.extract import extract_assignment, extract_held, feasible_start, set_start
from engine.plan.instance import PlanInstance, split_instance
from engine.plan.lns import fix_and_optimize
from engine.plan.model import build_model
from engine.plan.params import PlanParams
from engine.plan.solve import SolveResult, relative_gap, solve

# Share of a multi-day part's time spent on the booked-date start (see booked_date_start).
START_SHARE = 0.4
# Share of a multi-day part's solving time kept for fix-and-optimize over its days (engine/plan/lns.py).
LNS_SHARE = 0.5


def optimize(inst: PlanInstance, params: PlanParams, warm_start: pd.DataFrame | None = None,
             models_out: list | None = None, rules_start: pd.DataFrame | None = None
             ) -> tuple[SolveResult, pd.DataFrame | None, list[str], dict[str, float]]:
    """Build and solve the assignment MIP, one independent part at a time.

    Parts (``split_instance``) share the time limit in proportion to their size. With HiGHS, a
    multi-day part solves for ``1 - LNS_SHARE`` of its share, then, unless proven optimal, spends
    the rest on fix-and-optimize over pairs of its days (engine/plan/lns.py; kept only when it
    lowers the objective; the bound stays the whole part's). With HiGHS,
    time the easy parts leave over goes to the parts that stopped above ``mip_gap``: they are
    solved again from their schedule (a warm start), keeping the better schedule and the higher
    of the two bounds (both valid). ``warm_start`` (case_id, slot_id) is handed to HiGHS as a
    MIP start, e.g. the schedule of a similar plan (HiGHS drops it when it breaks a rule of this
    instance). Returns the combined result (objectives and bounds add up), the assignment (None
    when a part has no solution), the open-room slots held for add-ons and the build and solve
    seconds. ``models_out`` (a list) receives the parts' models (to score schedules with).
    ``rules_start`` (the rules schedule's case_id, slot_id), cut down by feasible_start, is the
    MIP start instead of the other start when it scores better on the model: the optimizer then
    starts from a schedule at least as good as the rules one.
    """
    t_model = t_solve = 0.0
    parts = split_instance(inst)
    weights = [max(len(p.eligible), 1) for p in parts]
    results: list[SolveResult] = []
    models = []
    assignments: list[pd.DataFrame] = []
    held: list[list[str]] = []
    budget = float(params.time_limit_s)
    floor = min(1.0, budget)  # least time a part gets (the whole budget when it is below a second)
    for i, part in enumerate(parts):
        t0 = time.perf_counter()
        model = build_model(part, params)
        t_model += time.perf_counter() - t0
        remaining = budget - t_solve
        share = max(floor, remaining * weights[i] / sum(weights[i:]))
        start = feasible_start(part, warm_start) if warm_start is not None else None
        start_s = 0.0
        if start is None and params.solver == "highs" and len(part.dates) > 1:
            start, start_s = booked_date_start(part, params, START_SHARE * share)
            t_solve += start_s
            share = max(floor, share - start_s)
        if rules_start is not None and params.solver == "highs":
            start = _better_start(model, start, feasible_start(part, rules_start))
        warm = start is not None and params.solver == "highs"
        if warm:
            set_start(model, start)
        # A multi-day part keeps part of its time for fix-and-optimize over its days (lns.py).
        lns_s = LNS_SHARE * share if params.solver == "highs" and len(part.dates) > 1 else 0.0
        part_end = t_solve + share
        res = solve(model, params.solver, share - lns_s, params.mip_gap, warm_start=warm)
        t_solve += res.solve_seconds
        if not res.has_solution and res.status == "time_limit" and start is not None:
            res = _start_as_answer(model, start, res)
        # The part's solving time includes finding its start (reported as the plan's solve time).
        res = replace(res, solve_seconds=res.solve_seconds + start_s)
        models.append(model)
        if not res.has_solution:
            results.append(res)
            break
        part_assignment, part_held = extract_assignment(model), extract_held(model)
        if lns_s and res.status != "optimal":
            imp = fix_and_optimize(model, sorted(part.dates), part_assignment, part_held, res.objective,
                                   part_end - t_solve - 0.5, params.mip_gap)
            t_solve += imp.seconds
            # Its seconds are the part's solving time whether or not a window improved the schedule.
            res = replace(res, solve_seconds=res.solve_seconds + imp.seconds)
            if imp.windows_improved:
                part_assignment, part_held = imp.assignment, imp.held
                gap = relative_gap(imp.objective, res.bound)
                res = replace(res, objective=imp.objective, mip_gap=gap,
                              status="optimal" if gap is not None and gap <= params.mip_gap + 1e-9 else res.status,
                              message=f"{res.message}; fix-and-optimize over its days: {imp.windows_improved} of "
                                      f"{imp.windows_tried} windows improved it")
        results.append(res)
        assignments.append(part_assignment)
        held.append(part_held)
    if len(parts) > 1 and params.solver == "highs" and len(results) == len(parts) and all(r.has_solution for r in results):
        for i in sorted(range(len(parts)), key=lambda k: -_abs_gap(results[k])):
            # Keep a little for loading the model into HiGHS again, so the total stays in budget.
            remaining = budget - t_solve - 0.5
            if remaining < 1.0 or results[i].status == "optimal" or not _abs_gap(results[i]):
                continue
            model = models[i]
            set_start(model, assignments[i])
            again = solve(model, "highs", remaining, params.mip_gap, warm_start=True)
            t_solve += again.solve_seconds
            best = results[i]
            if again.has_solution and again.objective < best.objective - 1e-9:
                assignments[i], held[i] = extract_assignment(model), extract_held(model)
                best = again
            bounds = [b for b in (results[i].bound, again.bound) if b is not None]
            bound = max(bounds) if bounds else None
            gap = relative_gap(best.objective, bound)
            status = "optimal" if gap is not None and gap <= params.mip_gap + 1e-9 else "time_limit"
            results[i] = SolveResult("highs", status, best.objective, bound, gap,
                                     results[i].solve_seconds + again.solve_seconds, True, best.message)
    if len(results) == 1:
        combined = results[0]
    else:
        combined = _combine(params.solver, results, len(parts))
    assignment = pd.concat(assignments, ignore_index=True) if combined.has_solution else None
    if models_out is not None:
        models_out.extend(models)
    return combined, assignment, [si for h in held for si in h], {"model_s": t_model, "solve_s": t_solve}


def _start_as_answer(model, start: pd.DataFrame, res: SolveResult) -> SolveResult:
    """A solver that stops at its time limit with no schedule of its own (a loaded machine, a hard
    week) still had a MIP start: the booked-date start (each day solved alone, booked_date_start)
    or the rules schedule cut down to the model's rules (feasible_start). When that start keeps
    every constraint of the model it is the part's answer, with no bound (the plan then says "not
    proven optimal"; it is still scored against the rules schedule and checked, as any answer)."""
    from engine.plan.extract import start_is_feasible
    from engine.plan.score import start_value

    value = start_value(model, start)
    if not start_is_feasible(model):
        return res
    return SolveResult(res.solver, "time_limit", value, None, None, res.solve_seconds, True,
                       "no schedule of its own within the limit: its MIP start is the answer")


def _better_start(model, a: pd.DataFrame | None, b: pd.DataFrame) -> pd.DataFrame:
    """The MIP start (a or b) with the lower objective on ``model`` (a when b is no better)."""
    from engine.plan.score import start_value

    if a is None:
        return b
    return b if start_value(model, b) < start_value(model, a) - 1e-6 else a


def booked_date_start(inst: PlanInstance, params: PlanParams, budget_s: float) -> tuple[pd.DataFrame | None, float]:
    """A good first schedule of a multi-day horizon, and the seconds spent: every case on its
    booked date, solved one day at a time (single days solve fast), then the cases this defers
    placed on other days where room time is left. It is a valid schedule of the horizon and the
    MIP start for it: on a multi-day horizon HiGHS alone spends most of its time before it finds
    a good schedule (bench/bench_plan.py). None when the horizon does not split into days."""
    el = inst.eligible
    if not len(el):
        return None, 0.0
    booked = inst.cases.loc[el["case_id"], "booked_date"].to_numpy()
    fixed = replace(inst, eligible=el[pd.to_datetime(el["date"]).to_numpy() == pd.to_datetime(booked)].reset_index(drop=True))
    days = split_instance(fixed)
    if len(days) <= 1:
        return None, 0.0
    weights = [max(len(d.eligible), 1) for d in days]
    spent, out = 0.0, []
    for i, day in enumerate(days):
        share = max(1.0, (budget_s - spent) * weights[i] / sum(weights[i:]))
        model = build_model(day, params)
        res = solve(model, "highs", share, params.mip_gap)
        spent += res.solve_seconds
        if not res.has_solution:
            return None, spent
        out.append(extract_assignment(model))
    start = pd.concat(out, ignore_index=True)[["case_id", "slot_id"]]
    # Then the cases deferred on their booked day may take room time left on another day: the
    # horizon's model with every scheduled case held in its slot (small once presolved).
    model = build_model(inst, params)
    placed = dict(zip(start["case_id"], start["slot_id"]))
    for ci, si in model.X:
        if isinstance(placed.get(ci), str):
            model.x[ci, si].fix(1.0 if placed[ci] == si else 0.0)
    set_start(model, start)
    res = solve(model, "highs", max(1.0, budget_s - spent), params.mip_gap, warm_start=True)
    spent += res.solve_seconds
    if res.has_solution:
        start = extract_assignment(model)[["case_id", "slot_id"]]
    return start, spent


def _abs_gap(r: SolveResult) -> float:
    if r.objective is None:
        return 0.0
    return abs(r.objective - r.bound) if r.bound is not None else float("inf")  # no bound: the most to gain


def _combine(solver: str, results: list[SolveResult], n_parts: int) -> SolveResult:
    bad = [r for r in results if not r.has_solution]
    secs = sum(r.solve_seconds for r in results)
    if bad or len(results) < n_parts:
        r = bad[0] if bad else results[-1]
        return SolveResult(solver, r.status, None, None, None, secs, False, r.message)
    obj = sum(r.objective for r in results)
    bound = sum(r.bound for r in results) if all(r.bound is not None for r in results) else None
    status = "optimal" if all(r.status == "optimal" for r in results) else "time_limit"
    return SolveResult(solver, status, obj, bound, relative_gap(obj, bound), secs, True,
                       f"{n_parts} independent parts: " + ", ".join(r.status for r in results))
