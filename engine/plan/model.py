"""The assignment MIP: which slot (date, room, block) each case goes to, or deferral.

``build_model(instance, params)`` is pure (no solving). Times are decided afterwards by the
sequencer (engine/plan/sequence.py), which also enforces the hard rules that need explicit
times (PACU at every moment, surgeons never in two rooms at once, turnover).

Index sets are sparse: X holds only eligible (case, slot) pairs.
"""
from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo

from engine.plan.instance import PlanInstance
from engine.plan.params import PlanParams


# ----------------------------------------------------------------- constraint rules


def assign_at_most_once(m, c):
    """sum_s x[c,s] <= 1: a case goes to at most one slot (else it is deferred)."""
    pairs = m.pairs_of_case[c]
    if not pairs:
        return pyo.Constraint.Skip
    return sum(m.x[c, s] for s in pairs) <= 1


def locked_cases_placed(m, c):
    """sum_s x[c,s] = 1 for a locked case: an override must be kept."""
    return sum(m.x[c, s] for s in m.pairs_of_case[c]) == 1


def slot_capacity(m, s):
    """sum_c (P50_c + turnover) x[c,s] <= slot minutes usable at P50 + turnover
    (the last case needs no turnover; a block reaching the room's close may use the overtime cap)."""
    cases = m.cases_of_slot[s]
    if not cases:
        return pyo.Constraint.Skip
    return sum((m.p50[c] + m.turnover) * m.x[c, s] for c in cases) <= m.usable[s] + m.turnover


def overtime_definition(m, s):
    """over[s] >= sum_c (P50_c + spread (P80_c - P50_c) + turnover) x[c,s] - turnover - block minutes:
    the slot's P80-style finish beyond its block end."""
    cases = m.cases_of_slot[s]
    if not cases:
        return pyo.Constraint.Skip
    load = sum((m.p50[c] + m.spread * (m.p80[c] - m.p50[c]) + m.turnover) * m.x[c, s] for c in cases)
    return m.over[s] >= load - m.turnover - m.length[s]


def idle_prime_definition(m, s):
    """idle[s] >= prime minutes of the slot x used[room, date] - sum_c (P50_c + turnover) x[c,s]."""
    cases = m.cases_of_slot[s]
    return m.idle[s] >= m.prime[s] * m.used[m.room_day[s]] - sum((m.p50[c] + m.turnover) * m.x[c, s] for c in cases)


def room_used_link(m, c, s):
    """x[c,s] <= used[room, date]: a case opens its room for the day."""
    return m.x[c, s] <= m.used[m.room_day[s]]


def staffed_rooms(m, d):
    """sum_r used[d,r] <= min(staffed_rooms_d, anesthesia_teams_d)."""
    rds = [rd for rd in m.RD if rd[0] == d]
    if not rds:
        return pyo.Constraint.Skip
    return sum(m.used[rd] for rd in rds) <= m.room_cap[d]


def surgeon_room_link(m, c, s):
    """x[c,s] <= z[surgeon(c), date(s), room(s)]."""
    d, r = m.room_day[s]
    return m.x[c, s] <= m.z[m.surgeon_of[c], d, r]


def surgeon_one_room(m, g, d):
    """sum_r z[g,d,r] <= 1: a surgeon works in one room per day, so never in two at once."""
    rooms = [k for k in m.Z if k[0] == g and k[1] == d]
    if len(rooms) <= 1:
        return pyo.Constraint.Skip
    return sum(m.z[k] for k in rooms) <= 1


def objective_rule(m):
    """min  w_ot sum over + w_idle sum idle + sum_c defer_c (1 - sum_s x[c,s]) + sum_(c,s) move_cost[c,s] x[c,s]."""
    defer = sum(m.defer_cost[c] * (1 - sum(m.x[c, s] for s in m.pairs_of_case[c])) for c in m.C)
    return (m.w_ot * sum(m.over[s] for s in m.S) + m.w_idle * sum(m.idle[s] for s in m.S)
            + defer + sum(m.move_cost[p] * m.x[p] for p in m.X) + m.fair_cost)


# ----------------------------------------------------------------- build


def build_model(inst: PlanInstance, params: PlanParams) -> pyo.ConcreteModel:
    """The assignment MIP for ``inst``. Pure: no solver is called."""
    m = pyo.ConcreteModel(name="or_assignment")
    c, s, el = inst.cases, inst.slots, inst.eligible
    m.C = pyo.Set(initialize=list(c.index), ordered=True)
    m.S = pyo.Set(initialize=list(s.index), ordered=True)
    pairs = list(zip(el["case_id"], el["slot_id"]))
    m.X = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    rd = sorted({(s.loc[sid, "date"], s.loc[sid, "room_id"]) for sid in s.index})
    m.RD = pyo.Set(initialize=rd, dimen=2, ordered=True)
    m.D = pyo.Set(initialize=[d for d in inst.dates], ordered=True)
    zk = sorted({(c.loc[ci, "surgeon_id"], s.loc[si, "date"], s.loc[si, "room_id"]) for ci, si in pairs})
    m.Z = pyo.Set(initialize=zk, dimen=3, ordered=True)
    m.GD = pyo.Set(initialize=sorted({(g, d) for g, d, _ in zk}), dimen=2, ordered=True)

    m.pairs_of_case = {ci: [] for ci in c.index}
    m.cases_of_slot = {si: [] for si in s.index}
    for ci, si in pairs:
        m.pairs_of_case[ci].append(si)
        m.cases_of_slot[si].append(ci)
    m.room_day = {si: (s.loc[si, "date"], s.loc[si, "room_id"]) for si in s.index}
    m.surgeon_of = c["surgeon_id"].to_dict()

    m.p50 = pyo.Param(m.C, initialize=c["p50_i"].astype(float).to_dict())
    m.p80 = pyo.Param(m.C, initialize=c["p80_i"].astype(float).to_dict())
    m.turnover = pyo.Param(initialize=inst.turnover_minutes)
    m.spread = pyo.Param(initialize=params.overtime_spread)
    m.usable = pyo.Param(m.S, initialize=(s["p50_limit"] - s["start_min"]).astype(float).to_dict())
    m.length = pyo.Param(m.S, initialize=(s["end_min"] - s["start_min"]).astype(float).to_dict())
    prime = (s["end_min"].clip(upper=inst.prime_end) - s["start_min"].clip(lower=inst.prime_start)).clip(lower=0)
    m.prime = pyo.Param(m.S, initialize=prime.astype(float).to_dict())
    m.room_cap = pyo.Param(m.D, initialize=inst.staffing["room_cap"].astype(int).to_dict())
    defer = c["is_urgent"].map({True: params.w_defer_urgent_case, False: params.w_defer_case})
    m.defer_cost = pyo.Param(m.C, initialize=defer.astype(float).to_dict())
    move = (params.w_preference_case * el["pref_miss"] + params.w_stability_date_case * el["date_move"]
            + params.w_stability_room_case * el["room_move"])
    m.move_cost = pyo.Param(m.X, initialize=dict(zip(pairs, move.astype(float))))
    m.w_ot = pyo.Param(initialize=params.w_overtime)
    m.w_idle = pyo.Param(initialize=params.w_idle_prime)

    m.x = pyo.Var(m.X, domain=pyo.Binary)
    m.used = pyo.Var(m.RD, domain=pyo.Binary)
    m.z = pyo.Var(m.Z, domain=pyo.Binary)
    m.over = pyo.Var(m.S, domain=pyo.NonNegativeReals)
    m.idle = pyo.Var(m.S, domain=pyo.NonNegativeReals)

    m.assign_once = pyo.Constraint(m.C, rule=assign_at_most_once)
    locked = [ci for ci in (inst.locks["case_id"] if inst.locks is not None and len(inst.locks) else []) if m.pairs_of_case.get(ci)]
    m.L = pyo.Set(initialize=locked, ordered=True)
    m.locked = pyo.Constraint(m.L, rule=locked_cases_placed)
    m.capacity = pyo.Constraint(m.S, rule=slot_capacity)
    m.overtime = pyo.Constraint(m.S, rule=overtime_definition)
    m.idle_prime = pyo.Constraint(m.S, rule=idle_prime_definition)
    m.room_link = pyo.Constraint(m.X, rule=room_used_link)
    m.staffing = pyo.Constraint(m.D, rule=staffed_rooms)
    m.surgeon_link = pyo.Constraint(m.X, rule=surgeon_room_link)
    m.surgeon_room = pyo.Constraint(m.GD, rule=surgeon_one_room)
    m.fair_cost = pyo.Expression(expr=0.0)
    m.obj = pyo.Objective(rule=objective_rule, sense=pyo.minimize)
    return m


def extract_assignment(m: pyo.ConcreteModel) -> pd.DataFrame:
    """case_id, slot_id (None when deferred) from a solved model."""
    chosen = {}
    for ci, si in m.X:
        v = m.x[ci, si].value
        if v is not None and v > 0.5:
            chosen[ci] = si
    rows = [{"case_id": ci, "slot_id": chosen.get(ci),
             "reason": None if ci in chosen else ("no eligible room time" if not m.pairs_of_case[ci] else "deferred by the optimizer: the penalty of deferring was lower than the overtime or moves needed to fit it")}
            for ci in m.C]
    return pd.DataFrame(rows, columns=["case_id", "slot_id", "reason"])
