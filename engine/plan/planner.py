"""Plan a horizon: instance -> (MIP or rules) assignment -> sequencing -> schedule, KPIs, reasons.

Never worse than the rules: the optimizer's sequenced schedule and the rules-based one are both
scored on the model's objective (engine/plan/score.py) and the optimizer's is used whenever it
scores no worse, whatever its gap (the result then carries a ``notice``: not proven optimal,
with the gap and bound). The rules schedule is returned (with a ``banner`` saying why) only for
a missing or crashed solver, an infeasible model, locks that cannot hold, or an optimizer
schedule that scores worse. Never a silent empty schedule: every booked case of the horizon is
either scheduled or deferred with a reason.

The optimizer run lives in optimize.py, the memo of its answers in memo.py and the plan's
reporting (diagnosis, placement reasons, KPIs) in report.py.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from engine.hospital import Hospital
from engine.plan.instance import PlanInstance, build_instance
from engine.plan.memo import _memo_serves, model_key, remember
from engine.plan.optimize import optimize
from engine.plan.params import ALTERNATIVES, FAIRNESS_DEFAULT_WEIGHT, PlanParams
from engine.plan.report import check_locks, diagnose, empty_horizon_note, kpis, placement_reasons, service_level_summary
from engine.plan.rules import rules_assignment
from engine.plan.score import score_assignment, sequenced_assignment
from engine.plan.sequence import sequence, to_schedule
from engine.plan.solve import SolveResult

log = logging.getLogger(__name__)

# How many other orders of the same answer a plan that misses the fairness policy tries.
FAIRNESS_RESEQUENCINGS = 3


@dataclass
class PlanResult:
    schedule: pd.DataFrame
    kpis: dict[str, Any]
    solve: SolveResult | None
    instance: PlanInstance
    params: PlanParams
    banner: str | None = None
    diagnosis: list[str] = field(default_factory=list)
    sequence: pd.DataFrame | None = None  # the sequencer's rows (slot ids and minutes)
    held: list[str] = field(default_factory=list)  # open-room slots held free for add-ons
    optimizer_assignment: pd.DataFrame | None = None  # the optimizer's answer before sequencing
    notice: str | None = None  # said with an optimizer schedule that is used but not proven optimal
    fairness: dict[str, Any] | None = None  # the schedule against the fairness policy (PolicyCheck.to_dict)

    def assignment(self) -> pd.DataFrame:
        """case_id, slot_id (None when deferred) of this plan: a MIP start for a similar plan."""
        seq = self.sequence
        done = seq["status"] == "scheduled"
        return pd.DataFrame({"case_id": seq["case_id"], "slot_id": seq["slot_id"].where(done),
                             "reason": seq["defer_reason"].where(~done)})

    def to_json(self) -> dict[str, Any]:
        s = self.solve
        return {
            "status": s.status if s else "rules",
            "solver": self.kpis["solver"],
            "objective": s.objective if s else None,
            "mip_gap": s.mip_gap if s else None,
            "bound": s.bound if s else None,
            "solve_seconds": round(s.solve_seconds, 3) if s else self.kpis.get("solve_seconds"),
            "n_scheduled": self.kpis["n_scheduled"],
            "n_deferred": self.kpis["n_deferred"],
            "expected_overtime_minutes": self.kpis["expected_overtime_minutes"],
            "utilization": self.kpis["utilization"],
            "fallback_used": self.banner is not None,
            "fallback_reason": self.banner,
            "gap_proven": bool(self.kpis.get("gap_proven", False)),
            "beats_rules": bool(self.kpis.get("beats_rules", False)),
            "objective_schedule": self.kpis.get("objective_schedule"),
            "objective_rules": self.kpis.get("objective_rules"),
            "notice": self.notice,
            "diagnosis": self.diagnosis,
            "p80_overtime_minutes": self.kpis["p80_overtime_minutes"],
            "pacu_peak": self.kpis["pacu_peak"],
            "label": self.params.label,
            "addon_rooms_held": self.kpis.get("addon_rooms_held", []),
            "fairness_policy": self.fairness,
        }


def plan(hospital: Hospital, forecasts: pd.DataFrame, start_date: pd.Timestamp | str,
         params: PlanParams | None = None, **kw: Any) -> PlanResult:
    """Plan ``params.days`` days from ``start_date`` under the hospital's fairness policy.

    Keyword arguments after ``params`` are those of :func:`plan_once`. With ``params.fairness_policy``
    (the default) the sequenced schedule is checked against the policy's limit
    (``settings.fairness.max_prime_time_gap_points`` unless ``params.fairness_max_gap_points``
    names another) with the fairness report's own count
    (:func:`engine.fairness.policy.check_policy`). The term approximates prime minutes (times
    come after the MIP). The plan is first made without the term: when it meets the policy it is
    kept (the policy costs nothing that day). Otherwise the same answer is sequenced again with
    the short lines first (up to ``FAIRNESS_RESEQUENCINGS`` orders, no re-solve), then the term is
    added at the limit (warm-started, with its own orders), then the optimizer runs once more with
    the limit tightened by the miss and a heavier term; the schedule that meets the policy (else
    the one closest to it) is kept. ``result.fairness``
    says what was asked, what was reached and, when missed, why in words.
    """
    from engine.fairness.policy import check_policy

    params = params or PlanParams()
    # The add-on reserve is an input: a caller that plans the same dates more than once makes it
    # once (addon_reserve_minutes) and passes it; when it gives none it is made here, once for
    # every plan_once below.
    if kw.get("addon_reserve") is None and needs_addon_reserve(params):
        kw["addon_reserve"] = addon_reserve_minutes(hospital, start_date, params.days)
    policy = hospital.settings.fairness
    if params.fairness_max_gap_points is not None:
        policy = policy.model_copy(update={"max_prime_time_gap_points": params.fairness_max_gap_points})
    stated = hospital.settings.fairness_stated or params.fairness_max_gap_points is not None
    if not params.fairness_policy:
        result = plan_once(hospital, forecasts, start_date, params, **kw)
        result.fairness = {**check_policy(hospital, result.schedule, policy, forecasts, stated).to_dict(), "applied": False}
        return result
    limit = policy.max_prime_time_gap_points
    asked = params.with_(fairness_max_gap_points=limit)
    # A policy is a limit, not a goal: a plan that meets it without the term pays nothing for it.
    result = plan_once(hospital, forecasts, start_date, params.with_(fairness_max_gap_points=None), **kw)
    check = check_policy(hospital, result.schedule, policy, forecasts, stated)
    tries = 1

    def shortfall(c: Any) -> frozenset[str]:
        return frozenset(b.group for b in c.breaches if b.metric == "prime_time_gap")

    def resequence(base: PlanResult, base_check: Any) -> tuple[PlanResult, Any, frozenset[str]]:
        """The same answer sequenced again with the short lines first in their rooms, then with
        the lines that fall short next (a few orders; a memo of this call serves the answer, so
        nothing is solved again): in a room shared by several lines the order decides who gets
        the morning, which the term's P50 x prime-share estimate cannot see."""
        nonlocal tries
        memo: dict = {}  # this call's own: the caller's memo keeps only what the caller remembers
        remember(memo, base)
        best, best_check, best_first = base, base_check, shortfall(base_check)
        queue, seen = [shortfall(base_check)], set()
        while queue and not best_check.met and len(seen) < FAIRNESS_RESEQUENCINGS:
            lines = queue.pop(0)
            seen.add(lines)
            again = plan_once(hospital, forecasts, start_date, base.params,
                              **{**kw, "warm_start": base.assignment(), "memo": memo, "first_lines": lines})
            tries += 1
            if again.banner is not None:
                continue
            c2 = check_policy(hospital, again.schedule, policy, forecasts, stated)
            if c2.excess_points < best_check.excess_points:
                best, best_check, best_first = again, c2, lines
            if shortfall(c2) and shortfall(c2) not in seen:
                queue.append(shortfall(c2))
        return best, best_check, best_first

    if not check.met and result.banner is None and params.solver != "rules" and check.excess_points > 0:
        # Cheapest first: other orders of the same answer; then the term at the limit
        # (warm-started), with its own orders; then the limit tightened by the miss and a heavier
        # term. The schedule that meets the policy is kept, else the one closest to it.
        first = result
        result, check, best_first = resequence(result, check)
        if not check.met:
            termed = plan_once(hospital, forecasts, start_date, asked, **{**kw, "warm_start": first.assignment()})
            tries += 1
            if termed.banner is None:
                t_result, t_check, t_first = resequence(termed, check_policy(hospital, termed.schedule, policy, forecasts, stated))
                if t_check.excess_points < check.excess_points:
                    result, check, best_first = t_result, t_check, t_first
        if not check.met:
            tighter = asked.with_(fairness_max_gap_points=max(0.0, limit - check.excess_points - 0.5),
                                  w_fairness=3 * max(asked.w_fairness, FAIRNESS_DEFAULT_WEIGHT))
            again = plan_once(hospital, forecasts, start_date, tighter,
                              **{**kw, "warm_start": first.assignment(), "memo": None, "first_lines": best_first})
            tries += 1
            if again.banner is None:
                c2 = check_policy(hospital, again.schedule, policy, forecasts, stated)
                if c2.excess_points < check.excess_points:
                    result, check = again, c2
    # The answer under the policy is the answer to this request: a caller's memo keyed by these
    # params then serves it again (a what-if the model does not see re-sequences, no re-solve).
    result.params = params.with_(fairness_max_gap_points=None)
    result.fairness = {**check.to_dict(), "applied": True, "plans_tried": tries}
    return result


def plan_once(
    hospital: Hospital,
    forecasts: pd.DataFrame,
    start_date: pd.Timestamp | str,
    params: PlanParams | None = None,
    *,
    published: pd.DataFrame | None = None,
    locks: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    downtime: list | None = None,
    not_before_min: int | None = None,
    order: str | None = None,
    warm_start: pd.DataFrame | None = None,
    memo: dict | None = None,
    addon_reserve: pd.DataFrame | None = None,
    first_lines: frozenset[str] = frozenset(),
) -> PlanResult:
    """One plan of ``params.days`` days from ``start_date`` (no fairness check; see :func:`plan`).
    See the module docstring for fallbacks.

    Re-planning passes ``published`` (with start times), ``locks``, ``downtime``, the current
    minute ``not_before_min`` and ``order='published'`` to keep the day's order where possible.
    ``warm_start`` (case_id, slot_id) is a MIP start for HiGHS. ``memo`` (a dict kept by the
    caller) remembers the optimizer's answer by everything the model reads (``model_key``): a
    what-if that changes nothing the model sees (cancellation rates; PACU beds when ``w_pacu_hold=0``) is sequenced again
    without solving again. ``addon_reserve`` (date, reserve_minutes) is the add-on time to hold
    open rooms for, made once by :func:`plan` (None: no room is held).
    ``kpis['addon_rooms_held']`` lists the rooms held. ``kpis['timings']`` holds the seconds spent
    building, solving and sequencing.
    """
    params = params or PlanParams()
    t0 = time.perf_counter()
    inst = build_instance(hospital, forecasts, start_date, params, published=published, locks=locks, cases=cases,
                          downtime=downtime, addon_reserve=addon_reserve)
    diag = diagnose(inst, hospital)
    timings = {"instance_s": time.perf_counter() - t0, "model_s": 0.0, "solve_s": 0.0}
    banner = notice = None
    res: SolveResult | None = None
    lock_problems: list[str] = []
    reused, limit, held = False, params.time_limit_s, []
    models: list = []
    judged: dict[str, float | bool | None] = {"objective_schedule": None, "objective_rules": None,
                                               "beats_rules": False, "gap_proven": False}
    t_seq = 0.0
    if params.solver == "rules":
        assignment, order, used = rules_assignment(inst), "booked_first", "rules"
        t1 = time.perf_counter()
        seq = sequence(inst, _with_reasons(assignment, diag), order=order, not_before_min=not_before_min,
                           first_lines=first_lines)
        t_seq = time.perf_counter() - t1
    else:
        lock_problems = check_locks(inst)
        rules_a = rules_assignment(inst)
        t1 = time.perf_counter()
        rules_seq = sequence(inst, _with_reasons(rules_a, diag), order="booked_first", not_before_min=not_before_min)
        t_seq += time.perf_counter() - t1
        if params.keep_rules_count:
            # The rules' cases in open rooms on days with an add-on reserve are not counted: the
            # floor must not push electives into the rooms the plan may hold for add-ons.
            # Counted without the PACU limit, which the model does not see: the floor (and so the
            # model and its memo key) does not change with the PACU beds of a what-if.
            roomy = replace(inst, staffing=inst.staffing.assign(pacu_beds=10 ** 6))
            floor_seq = sequence(roomy, _with_reasons(rules_a, diag), order="booked_first", not_before_min=not_before_min)
            done = floor_seq[floor_seq["status"] == "scheduled"]
            reserve = inst.addon_reserve if inst.addon_reserve is not None else pd.Series(dtype=float)
            holdable = done["slot_id"].map(lambda si: inst.slots.at[si, "kind"] == "open"
                                           and reserve.get(inst.slots.at[si, "date"], 0.0) > 0)
            placed = set(done.loc[~holdable.astype(bool), "case_id"])
            inst.min_scheduled, inst.rules_placed = len(placed), placed
        key = model_key(inst, params) if memo is not None else None
        if lock_problems:
            res, assignment, t = None, None, {}
        elif key is not None and _memo_serves(memo.get(key), params):
            res, assignment, held, limit = memo[key]
            assignment, t, reused = assignment.copy(), {}, True
        else:
            res, assignment, held, t = optimize(inst, params, warm_start, models_out=models,
                                                rules_start=sequenced_assignment(rules_seq))
            if key is not None and res.has_solution:
                memo[key] = (res, assignment.copy(), held, params.time_limit_s)
        timings.update(t)
        used = params.solver
        if lock_problems:
            shown = "; ".join(lock_problems[:3]) + (f"; and {len(lock_problems) - 3} more" if len(lock_problems) > 3 else "")
            banner = f"The locked cases cannot all hold: {shown}."
        elif not res.has_solution:
            banner = {
                "not_available": f"The {params.solver} solver is not available ({res.message}).",
                "infeasible": "The optimizer found the rules cannot all hold (see the diagnosis).",
                "error": f"The {params.solver} solver failed ({res.message}).",
                "time_limit": f"The {params.solver} solver found no schedule within {params.time_limit_s:.0f} s.",
            }.get(res.status, f"The {params.solver} solver returned no schedule ({res.status}).")
        if banner is None:
            order = order or "longest_first"
            t1 = time.perf_counter()
            seq = sequence(inst, _with_reasons(assignment, diag), order=order, not_before_min=not_before_min,
                           first_lines=first_lines)
            # A fairness re-solve (first_lines) keeps the order that gives the short lines the
            # morning; CP-SAT would reorder the rooms for the PACU peak alone.
            if order == "longest_first" and params.sequencer == "cpsat" and not first_lines:
                seq = _pacu_aware(inst, params, _with_reasons(assignment, diag), seq, not_before_min, models)
            t_seq += time.perf_counter() - t1
            # Never worse than the rules: both exported schedules scored on the model's objective.
            t1 = time.perf_counter()
            mine = score_assignment(inst, params, sequenced_assignment(seq), models or None)
            theirs = score_assignment(inst, params, sequenced_assignment(rules_seq), models or None)
            timings["score_s"] = time.perf_counter() - t1
            judged.update(objective_schedule=round(mine, 3), objective_rules=round(theirs, 3),
                          beats_rules=bool(mine <= theirs + 1e-6),
                          gap_proven=bool(res.status == "optimal"))
            if not judged["beats_rules"]:
                banner = (f"The optimizer's schedule scores worse than the rules-based block schedule on the same "
                          f"objective ({mine:,.0f} against {theirs:,.0f}).")
            elif not judged["gap_proven"]:
                # The objective has negative terms (idle prime time credited), so a weak bound can lie
                # below zero and the relative gap pass 100%: a share that says nothing is not shown.
                gap = ("no proven bound" if res.mip_gap is None else f"a gap of {res.mip_gap:.1%}" if res.mip_gap < 1
                       else "a bound too weak to give as a gap")
                bound = f", bound {res.bound:,.0f}" if res.bound is not None else ""
                notice = (f"Not proven optimal: the {params.solver} solver stopped at {gap} (objective {res.objective:,.0f}"
                          f"{bound}). The schedule passes every hard rule and scores better than the rules-based "
                          f"block schedule ({mine:,.0f} against {theirs:,.0f}), so it is used.")
        if banner:
            banner += " Showing the rules-based block schedule instead."
            assignment, order, used, held, seq = rules_a, "booked_first", "rules", [], rules_seq
            judged["objective_schedule"] = judged["objective_rules"]
    optimizer_assignment = assignment.copy() if used != "rules" else None
    t1 = time.perf_counter()
    reasons = placement_reasons(inst, seq)
    schedule = to_schedule(inst, seq, reasons)
    timings["sequence_s"] = t_seq + time.perf_counter() - t1
    k = kpis(inst, seq, used)
    k.update(judged)
    k["service_level"] = service_level_summary(inst, params)
    k["solve_seconds"] = round(time.perf_counter() - t0, 3)
    k["reused_solution"] = reused
    k["solution_time_limit_s"] = limit
    k["addon_rooms_held"] = [f"{inst.slots.at[si, 'room_id']} on {inst.slots.at[si, 'date']:%a %d %b}" for si in held]
    timings["total_s"] = time.perf_counter() - t0
    k["timings"] = {key: round(v, 3) for key, v in timings.items()}
    notes = sorted(diag.values()) + [p for p in lock_problems if p not in diag.values()]
    if (empty := empty_horizon_note(inst, hospital)) is not None:
        notes.append(empty)
    return PlanResult(schedule, k, res, inst, params, banner, notes, seq, held, optimizer_assignment, notice)


def _pacu_aware(inst: PlanInstance, params: PlanParams, assignment: pd.DataFrame, greedy: pd.DataFrame,
                not_before_min: int | None, models: list) -> pd.DataFrame:
    """CP-SAT's PACU-staggered times (engine/plan/cpsat.py) unless they cost more on the model's
    objective than the PACU peak beds they save are worth (``w_pacu_peak_bed`` each): the greedy
    event loop may place a case in another room that CP-SAT, which keeps each case's slot,
    would defer."""
    from engine.plan.cpsat import pacu_peak, sequence_cpsat

    cp = sequence_cpsat(inst, assignment, params, not_before_min, greedy)
    if cp is greedy:
        return greedy
    a = score_assignment(inst, params, sequenced_assignment(cp), models or None)
    b = score_assignment(inst, params, sequenced_assignment(greedy), models or None)
    saved = sum(pacu_peak(greedy, inst.pacu_minutes).values()) - sum(pacu_peak(cp, inst.pacu_minutes).values())
    return cp if a - params.w_pacu_peak_bed * saved <= b + 1e-6 else greedy


def _with_reasons(assignment: pd.DataFrame, diag: dict[str, str]) -> pd.DataFrame:
    """The assignment with the diagnosis' reason for each case that has no room time at all."""
    a = assignment.copy()
    if len(a):
        why = a["case_id"].map(diag)
        a["reason"] = why.where(why.notna(), a["reason"] if "reason" in a.columns else None)
    return a


def needs_addon_reserve(params: PlanParams) -> bool:
    """True when a plan with ``params`` holds rooms for add-ons (the optimizer with
    ``hold_addon_rooms``; the rules schedule holds none)."""
    return params.hold_addon_rooms and params.solver != "rules"


def addon_reserve_minutes(hospital: Hospital, start_date, days: int) -> pd.DataFrame:
    """The add-on forecast's reserve minutes (P80 of a day's add-on minutes) for the horizon."""
    from engine.forecast import forecast_addon_totals

    start = pd.Timestamp(start_date).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    return forecast_addon_totals(hospital.cases, dates, as_of=min(start, hospital.as_of()),
                                 timezone=hospital.settings.timezone)[["date", "reserve_minutes"]]


def alternative_params(params: PlanParams | None = None) -> dict[str, PlanParams]:
    """The ranked alternatives' settings (utilization-first, balanced, overtime-averse): the same
    rules and limits as ``params``, other weights."""
    params = params or PlanParams()
    return {name: params.with_(label=name, **changes) for name, changes in ALTERNATIVES.items()}


def alternatives(hospital: Hospital, forecasts: pd.DataFrame, start_date, params: PlanParams | None = None,
                 published: pd.DataFrame | None = None, locks: pd.DataFrame | None = None) -> dict[str, PlanResult]:
    """The ranked alternatives (utilization-first, balanced, overtime-averse) on the same rules and
    the same add-on reserve (made once for the three)."""
    ps = alternative_params(params)
    reserve = addon_reserve_minutes(hospital, start_date, (params or PlanParams()).days) \
        if any(needs_addon_reserve(p) for p in ps.values()) else None
    return {name: plan(hospital, forecasts, start_date, p, published=published, locks=locks, addon_reserve=reserve)
            for name, p in ps.items()}


def compare(results: dict[str, PlanResult]) -> pd.DataFrame:
    """KPIs side by side, one row per alternative, with where each schedule comes from (an
    alternative whose optimizer fell back shows the rules schedule, and says so)."""
    rows = []
    for name, r in results.items():
        s = r.solve
        if r.banner:
            source = f"rules fallback: {r.banner.removesuffix(' Showing the rules-based block schedule instead.')}"
        elif s is None:
            source = "rules"
        else:
            source = f"{s.solver}, {s.status}" + (f", gap {s.mip_gap:.1%}" if s.mip_gap is not None else "")
        rows.append({"alternative": name, **{k: r.kpis[k] for k in ("n_scheduled", "n_deferred", "utilization",
                     "expected_overtime_minutes", "p80_overtime_minutes", "pacu_peak")},
                     "solver": r.kpis["solver"], "fallback": r.banner is not None, "schedule_from": source})
    return pd.DataFrame(rows)
