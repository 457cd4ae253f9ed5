"""Plan a horizon: instance -> (MIP or rules) assignment -> sequencing -> schedule, KPIs, reasons.

Never worse than the rules: the optimizer's sequenced schedule and the rules-based one are both
scored on the model's objective (engine/plan/score.py) and the optimizer's is used whenever it
scores no worse, whatever its gap (the result then carries a ``notice``: not proven optimal,
with the gap and bound). The rules schedule is returned (with a ``banner`` saying why) only for
a missing or crashed solver, an infeasible model, locks that cannot hold, or an optimizer
schedule that scores worse. Never a silent empty schedule: every booked case of the horizon is
either scheduled or deferred with a reason.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.contract import UNKNOWN_SURGEON
from engine.hospital import Hospital
from engine.plan.instance import PlanInstance, build_instance, minutes_to_time, split_instance
from engine.plan.lns import fix_and_optimize
from engine.plan.model import build_model, extract_assignment, extract_held, feasible_start, set_start
from engine.plan.params import ALTERNATIVES, FAIRNESS_DEFAULT_WEIGHT, PlanParams
from engine.plan.rules import rules_assignment
from engine.plan.score import score_assignment, sequenced_assignment
from engine.plan.sequence import sequence, to_schedule
from engine.plan.solve import SolveResult, relative_gap, solve

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


# ----------------------------------------------------------------- diagnosis


def diagnose(inst: PlanInstance, hospital: Hospital) -> dict[str, str]:
    """Plain-language reason for every case that has no eligible slot at all."""
    out: dict[str, str] = {}
    have = set(inst.eligible["case_id"]) if len(inst.eligible) else set()
    rooms = hospital.rooms.set_index("room_id")
    caps = rooms["capabilities"].map(lambda v: frozenset(p for p in str(v).split(";") if p))
    s = inst.slots
    for cid, case in inst.cases.iterrows():
        if cid in have:
            continue
        d = case["booked_date"]
        day = f"{d:%Y-%m-%d}"
        if int(inst.staffing.loc[d, "room_cap"]) <= 0 if d in inst.staffing.index else True:
            out[cid] = f"case {cid}: no operating room is staffed on {day} (staffing.csv gives no rooms or no anesthesia teams)"
            continue
        eq = case["equipment"]
        if eq:
            capable = [r for r, cp in caps.items() if eq <= cp]
            need = " and ".join(sorted(eq))
            if not capable:
                out[cid] = f"case {cid} needs {need}; no room has it"
                continue
            own = s[(s["room_id"].isin(capable)) & ((s["service_line"] == case["service_line"]) | (s["kind"] == "open"))]
            if not len(own):
                rooms_txt = ", ".join(capable)
                out[cid] = (f"case {cid} needs a {need} room; the only such room{'s' if len(capable) > 1 else ''} ({rooms_txt}) "
                            f"{'have' if len(capable) > 1 else 'has'} no {case['service_line']} block or open time on {day}"
                            f"{' or is unstaffed' if len(capable) == 1 else ''}")
                continue
        own = s[(s["service_line"] == case["service_line"]) | (s["kind"] == "open")]
        if not len(own):
            out[cid] = f"case {cid}: {case['service_line']} has no block and there is no open time in the horizon"
            continue
        longest = int((own["p50_limit"] - own["start_min"]).max())
        if case["p50_i"] > longest:
            out[cid] = (f"case {cid}: its P50 of {case['p50_i']} min is longer than any {case['service_line']} block "
                        f"or open time in the horizon (longest usable {longest} min)")
            continue
        if inst.locks is not None and cid in set(inst.locks["case_id"]):
            out[cid] = f"case {cid} is locked to a room and date where the hard rules cannot hold (equipment, block or staffing)"
            continue
        out[cid] = f"case {cid}: no room time of its service or surgeon fits it within the hard rules"
    return out


def check_locks(inst: PlanInstance) -> list[str]:
    """Locks (overrides) that cannot all hold, in plain words; [] when they can.

    A lock must sit in room time its case may use (equipment, block, staffing, hours at P50 and
    P80), and locks in one room must not overlap (with turnover) nor put a surgeon in two rooms.
    PACU is left to the sequencer."""
    if inst.locks is None or not len(inst.locks):
        return []
    c, s = inst.cases, inst.slots
    have = set(inst.eligible["case_id"]) if len(inst.eligible) else set()
    out, rows = [], []
    for lk in inst.locks.itertuples(index=False):
        if lk.case_id not in c.index:
            continue
        case = c.loc[lk.case_id]
        start = pd.Timestamp(lk.start) if pd.notna(getattr(lk, "start", pd.NaT)) else None
        where = f"{lk.room_id} on {pd.Timestamp(lk.date):%Y-%m-%d}" + (f" at {start:%H:%M}" if start is not None else "")
        if lk.case_id not in have:
            out.append(f"case {lk.case_id} is locked to {where}, where it may not run (equipment, block, staffing or hours)")
            continue
        if start is None:
            continue
        minute = start.hour * 60 + start.minute
        sid = inst.eligible.loc[inst.eligible["case_id"] == lk.case_id, "slot_id"].iloc[0]
        sl = s.loc[sid]
        if minute + case["p50_i"] > sl["p50_limit"] or minute + case["p80_i"] > sl["p80_limit"]:
            out.append(f"case {lk.case_id} is locked to {where}; from there it runs past its block or past close plus "
                       f"the overtime cap (P50 {case['p50_i']} min, P80 {case['p80_i']} min)")
        rows.append((pd.Timestamp(lk.date), lk.room_id, minute, minute + int(case["p50_i"]), minute + int(case["p80_i"]),
                     case["surgeon_id"], lk.case_id))
    rows.sort()
    turn = inst.turnover_minutes
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if b[0] != a[0]:
                break
            if b[1] == a[1] and b[2] < a[3] + turn:
                out.append(f"locked cases {a[6]} and {b[6]} overlap in {a[1]} on {a[0]:%Y-%m-%d} "
                           f"(the second starts before the first ends plus turnover)")
            elif b[1] != a[1] and b[5] == a[5] and b[5] != UNKNOWN_SURGEON and b[2] < a[4] and a[2] < b[4]:
                out.append(f"locked cases {a[6]} and {b[6]} put surgeon {a[5]} in {a[1]} and {b[1]} at the same time")
    return out


# ----------------------------------------------------------------- reasons & KPIs


def placement_reasons(inst: PlanInstance, seq: pd.DataFrame) -> pd.Series:
    """Why this room and time, in plain words, for every scheduled case."""
    c, s = inst.cases, inst.slots
    pacu_min = inst.pacu_minutes
    sched = seq[seq["status"] == "scheduled"]
    # Each room-day's P80 finish (its latest case end at P80), against its close.
    room_ends80 = sched.groupby(["date", "room_id"])["end80_min"].max()
    out = {}
    for r in sched.itertuples():
        case, sl = c.loc[r.case_id], s.loc[r.slot_id]
        parts = []
        owner = {"surgeon": f"the surgeon's own block", "service": f"the {sl['service_line']} block",
                 "open": "open (unblocked) room time"}[sl["kind"]]
        parts.append(f"{owner} in {sl['room_id']}")
        if case["equipment"]:
            parts.append(f"room has {', '.join(sorted(case['equipment']))}")
        parts.append(f"P50 {case['p50_i']} min, P80 {case['p80_i']} min")
        room_end80 = room_ends80[r.date, r.room_id]
        room_slack = sl["close_min"] - room_end80
        if r.end80_min < room_end80:  # not the room's last case: say when it ends, then the room's finish
            parts.append(f"ends by {minutes_to_time(r.date, r.end80_min):%H:%M} at P80")
        parts.append(f"the room finishes by close at P80 with {room_slack:.0f} min to spare" if room_slack >= 0
                     else f"accepted trade-off: the room may run {-room_slack:.0f} min past close at P80 "
                          f"(cap {inst.overtime_cap_minutes:.0f})")
        # PACU slack at this case's arrival.
        d = sched[sched["date"] == r.date]
        arr = r.end50_min
        occ = int(((d["end50_min"] <= arr) & (d["end50_min"] + pacu_min > arr)).sum())
        beds = int(inst.staffing.loc[r.date, "pacu_beds"])
        parts.append(f"PACU {occ} of {beds} beds in use on arrival")
        if case["booked_date"] != r.date:
            parts.append(f"moved from its booked date {case['booked_date']:%Y-%m-%d}")
        elif isinstance(case["booked_room"], str) and case["booked_room"] != r.room_id:
            parts.append(f"moved from booked room {case['booked_room']}")
        out[r.case_id] = "; ".join(parts)
    return pd.Series(out, dtype=object)


def expected_overtime(inst: PlanInstance, seq: pd.DataFrame, draws: int = 300, seed: int = 0) -> float:
    """Mean minutes past close summed over room-days, durations log-normal from P50/P80."""
    c, s = inst.cases, inst.slots
    sched = seq[seq["status"] == "scheduled"].sort_values(["date", "room_id", "start_min"])
    if not len(sched):
        return 0.0
    rng = np.random.default_rng(seed)
    z80 = 0.8416
    total = 0.0
    for (_, room), g in sched.groupby(["date", "room_id"]):
        close = float(s.loc[g["slot_id"].iloc[0], "close_min"])
        finish = np.zeros(draws)
        for r in g.itertuples():
            p50, p80 = float(c.loc[r.case_id, "p50"]), float(c.loc[r.case_id, "p80"])
            sigma = max(np.log(max(p80, p50 + 1e-6) / p50) / z80, 1e-3)
            dur = p50 * np.exp(sigma * rng.standard_normal(draws))
            start = np.maximum(r.start_min, finish + (inst.turnover_minutes if finish.any() else 0))
            finish = start + dur
        total += float(np.maximum(finish - close, 0).mean())
    return total


def kpis(inst: PlanInstance, seq: pd.DataFrame, solver: str) -> dict[str, Any]:
    sched = seq[seq["status"] == "scheduled"]
    s = inst.slots
    ps, pe = inst.prime_start, inst.prime_end
    prime_used = (np.minimum(sched["end50_min"].astype(float), pe) - np.maximum(sched["start_min"].astype(float), ps)).clip(lower=0).sum()
    rooms_per_day = s.groupby("date")["room_id"].nunique() if len(s) else pd.Series(dtype=float)
    avail = sum(min(int(inst.staffing.loc[d, "room_cap"]), int(rooms_per_day.get(d, 0))) for d in inst.dates) * (pe - ps)
    p80_ot = 0.0
    if len(sched):
        last = sched.groupby(["date", "room_id"])["end80_min"].max()
        close = s.groupby(["date", "room_id"])["close_min"].first()
        p80_ot = float((last - close.reindex(last.index)).clip(lower=0).sum())
    peak = 0
    for d, g in sched.groupby("date"):
        ev = sorted([(t, 1) for t in g["end50_min"]] + [(t + inst.pacu_minutes, -1) for t in g["end50_min"]], key=lambda x: (x[0], x[1]))
        cur = 0
        for _, k in ev:
            cur += k
            peak = max(peak, cur)
    return {
        "solver": solver,
        "n_cases": int(len(seq)),
        "n_scheduled": int(len(sched)),
        "n_deferred": int((seq["status"] == "deferred").sum()),
        "expected_overtime_minutes": round(expected_overtime(inst, seq), 1),
        "p80_overtime_minutes": round(p80_ot, 1),
        "utilization": round(float(prime_used / avail), 4) if avail else 0.0,
        "rooms_used": int(sched.groupby("date")["room_id"].nunique().sum()) if len(sched) else 0,
        "pacu_peak": peak,
    }


# ----------------------------------------------------------------- plan


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
    from engine.plan.model import start_is_feasible
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


# Share of a multi-day part's time spent on the booked-date start (see booked_date_start).
START_SHARE = 0.4
# Share of a multi-day part's solving time kept for fix-and-optimize over its days (engine/plan/lns.py).
LNS_SHARE = 0.5


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


# Settings that change neither the model nor which answer is better (the time limit is checked
# apart: see _memo_serves).
_NOT_IN_KEY = ("label", "gap_tolerance", "time_limit_s", "sequencer", "sequence_time_limit_s", "w_pacu_peak_bed",
               "w_sequence_delay")


def _memo_serves(entry, params: PlanParams) -> bool:
    """A remembered answer serves a request when it was proven within the gap or had at least
    as much time as the request gives."""
    if entry is None:
        return False
    res, _, _, limit = entry
    return res.status == "optimal" or limit >= params.time_limit_s


def remember(memo: dict, result: PlanResult) -> None:
    """Put an optimizer's answer (before sequencing) into a ``memo`` for plan(); rules and fallback
    plans are not kept."""
    answer = result.optimizer_assignment
    if result.solve is not None and result.solve.has_solution and result.banner is None and answer is not None:
        memo[model_key(result.instance, result.params)] = (result.solve, answer.copy(), result.held,
                                                           result.params.time_limit_s)


def _staffing_in_model(inst: PlanInstance, params: PlanParams) -> list[str]:
    """The staffing columns the assignment model reads: PACU beds only when the PACU load term is
    priced (model.pacu_hold_weight), so a what-if on beds alone re-sequences the same answer."""
    from engine.plan.model import pacu_hold_weight

    return ["room_cap", "pacu_beds"] if pacu_hold_weight(inst, params) > 0 else ["room_cap"]


def model_key(inst: PlanInstance, params: PlanParams) -> str:
    """A fingerprint of everything the assignment model reads: the cases' planning minutes and
    flags, the slots, the eligible pairs with their costs, the staffed-room limits, the locks
    and the solver, gap and weights. Equal keys give equal models."""
    h = hashlib.sha256()
    c = inst.cases[["p50_i", "p80_i", "is_urgent", "surgeon_id", "service_line"]]
    for frame in (c, inst.slots.drop(columns=["capabilities"]), inst.eligible, inst.staffing[_staffing_in_model(inst, params)],
                  inst.locks if inst.locks is not None else pd.DataFrame(),
                  inst.addon_reserve.to_frame() if inst.addon_reserve is not None else pd.DataFrame()):
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    h.update(repr(sorted((k, v) for k, v in params.to_dict().items() if k not in _NOT_IN_KEY)).encode())
    h.update(repr((inst.turnover_minutes, inst.overtime_cap_minutes, inst.prime_start, inst.prime_end,
                   inst.finish_plus_minutes, inst.finish_probability, inst.min_scheduled, inst.pacu_minutes,
                   inst.pacu_hold_budget_minutes, inst.pacu_beds_short)).encode())
    return h.hexdigest()


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
                gap = f"a gap of {res.mip_gap:.1%}" if res.mip_gap is not None else "no proven bound"
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
    return PlanResult(schedule, k, res, inst, params, banner, notes, seq, held, optimizer_assignment, notice)


def service_level_summary(inst: PlanInstance, params: PlanParams) -> dict[str, Any]:
    """The service level the plan was weighed against and the weights that follow from it, in words
    and numbers (shown on the Schedule page; see model.service_level_weight)."""
    from engine.plan.model import pacu_hold_weight, service_level_weight

    w = service_level_weight(inst, params)
    wp = pacu_hold_weight(inst, params)
    budget = inst.pacu_hold_budget_minutes
    return {"finish_by_close_plus_minutes": inst.finish_plus_minutes, "finish_probability": inst.finish_probability,
            "w_service_level_per_minute": round(w, 2), "w_defer_case": params.w_defer_case,
            "w_pacu_hold_per_minute": round(wp, 2), "pacu_hold_budget_minutes": budget,
            "pacu_beds_short": inst.pacu_beds_short,
            "w_pacu_peak_bed": params.w_pacu_peak_bed, "keep_rules_count": params.keep_rules_count,
            "text": (f"Service level: each room finishes by close + {inst.finish_plus_minutes:.0f} min with probability "
                     f"{inst.finish_probability:.0%}. A minute past it costs {w:.1f} (a deferral costs "
                     f"{params.w_defer_case:.0f}: breaking the level by a median case costs "
                     f"{1 / (1 - inst.finish_probability):.0f} deferrals); "
                     + ((f"an expected PACU hold minute of a day"
                         + (f" past its budget of {budget:.0f} min" if budget else "")
                         + (f", with {inst.pacu_beds_short} of its staffed beds missing," if inst.pacu_beds_short else "")
                         + f" costs {wp:.1f}") if wp > 0 else "the day's PACU load is not priced (w_pacu_hold = 0)")
                     + f"; each bed of PACU peak costs {params.w_pacu_peak_bed:.0f}" + ("; no fewer cases than the block rules schedule."
                                                         if params.keep_rules_count else "."))}


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
