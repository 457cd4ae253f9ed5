"""The assignment MIP: which slot (date, room, block) each case goes to, or deferral.

``build_model(instance, params)`` is pure (no solving). Times are decided afterwards by the
sequencer (engine/plan/sequence.py), which also enforces the hard rules that need explicit
times (PACU at every moment, surgeons never in two rooms at once, turnover). The model keeps
the sequencer's job possible: each slot's cases fit at P50 (with turnovers), the case run last
in a slot that reaches the room's close finishes by close + cap at its P80 (H3), a surgeon uses
one room per day (so never two rooms at once, H5) and a day opens no more rooms than it has
staff for (H7).

Index sets are sparse: X holds only eligible (case, slot) pairs; Z only the (surgeon, date,
room) triples those pairs reach; XC only the pairs of slots whose P80 limit can bind.

The service-level, PACU-load and fairness terms are added from engine/plan/terms.py; warm starts
and reading a solved model are in engine/plan/extract.py.
"""
from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo

from engine.contract import surgeon_key
from engine.plan.instance import PlanInstance
from engine.plan.params import PlanParams
from engine.plan.terms import _add_fairness, _add_pacu_load, _add_service_level


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


def _opened(m, s):
    """used[d,r] for a slot of a room-day whose opening is a choice (a day with fewer staffed teams
    than rooms), else 1. Scaling a slot's capacity by it is valid (an unopened room runs nothing)
    and keeps the relaxation from using every room's time with each room only partly opened."""
    rd = m.room_day[s]
    return m.used[rd] if rd in m.RDS else 1


def slot_capacity(m, s):
    """sum_c (P50_c + turnover) x[c,s] <= (slot minutes usable at P50 + turnover) x opened(s)
    (the last case needs no turnover; a block reaching the room's close may use the overtime cap).
    Skipped where closing_case_fits is at least as strict (no case's closing limit exceeds it)."""
    cases = m.cases_of_slot[s]
    if not cases or (s in m.SC and m.rmax[s] <= m.usable[s]):
        return pyo.Constraint.Skip
    return sum((m.p50[c] + m.turnover) * m.x[c, s] for c in cases) <= (m.usable[s] + m.turnover) * _opened(m, s)


def closing_case_fits(m, s):
    """sum_c (P50_c + turnover) x[c,s] - (turnover + R0_s) x opened(s) - sum_c (R_c,s - R0_s) y[c,s] <= 0.

    R_c,s = min(block minutes - 1 + P50_c, P80 limit_s - (P80_c - P50_c)), in minutes from the
    slot's start, is how far the slot's cases may run back to back at P50 when c runs last: c must
    still start before the block ends (H9: the overtime cap lets a case finish after close, not
    start after it) and end by close + cap at its P80 (H3). R0_s = min_c R_c,s over the slot's
    eligible cases, not below -turnover (opened(s) is 1 unless the room's opening is a choice, see _opened).

    With y[c,s] <= x[c,s] and sum_c y[c,s] <= 1 (y continuous), the best y puts its weight on the
    chosen case with the largest R, so for a whole x this reads: some chosen case, run last, starts
    inside the block and ends by close + cap at P80. The sequencer runs such a case last
    (instance.closing_case). Without it a full room's last case would be dropped by the sequencer."""
    cases = m.cases_of_slot[s]
    load = sum((m.p50[c] + m.turnover) * m.x[c, s] for c in cases)
    relief = sum((m.reach[c, s] - m.r0[s]) * m.y[c, s] for c in cases)
    return load - (m.turnover + m.r0[s]) * _opened(m, s) - relief <= 0


def closing_case_chosen(m, c, s):
    """y[c,s] <= x[c,s]: only a case in the slot can close it."""
    return m.y[c, s] <= m.x[c, s]


def one_closing_case(m, s):
    """sum_c y[c,s] <= 1."""
    return sum(m.y[c, s] for c in m.cases_of_slot[s]) <= 1


def overtime_definition(m, s):
    """over[s] >= sum_c (P50_c + spread (P80_c - P50_c) + turnover) x[c,s] - turnover - block minutes:
    the slot's P80-style finish beyond its block end."""
    cases = m.cases_of_slot[s]
    if not cases:
        return pyo.Constraint.Skip
    load = sum((m.p50[c] + m.spread * (m.p80[c] - m.p50[c]) + m.turnover) * m.x[c, s] for c in cases)
    return m.over[s] >= load - m.turnover - m.length[s]


def idle_prime_definition(m, s):
    """idle[s] >= prime minutes of the slot x (1 - held[s]) - sum_c (P50_c + turnover) x[c,s].

    Every room counts, opened or not: a staffed room left empty idles through prime time too, so
    crowding cases into fewer rooms saves nothing. On a day with fewer staffed teams than rooms
    the rooms no team can staff are taken off again as a constant (see objective_rule). A room
    held for add-ons (held[s] = 1) is not idle: it waits for them."""
    cases = m.cases_of_slot[s]
    prime = m.prime[s] * (1 - m.held[s]) if s in m.HO else m.prime[s]
    return m.idle[s] >= prime - sum((m.p50[c] + m.turnover) * m.x[c, s] for c in cases)


def held_room_stays_free(m, c, s):
    """x[c,s] <= 1 - held[s] for an elective case c: no elective case in an open room held for
    add-ons (urgent and emergent cases are what the room is held for)."""
    return m.x[c, s] <= 1 - m.held[s]


def held_room_capacity(m, s):
    """sum_(elective c) (P50_c + turnover) x[c,s] <= (slot minutes usable at P50 + turnover) x (1 - held[s]):
    valid, and it keeps the relaxation from counting a half-held room both as add-on reserve and
    as elective time."""
    electives = [c for c in m.cases_of_slot[s] if not m.urgent[c]]
    if not electives:
        return pyo.Constraint.Skip
    return sum((m.p50[c] + m.turnover) * m.x[c, s] for c in electives) <= (m.usable[s] + m.turnover) * (1 - m.held[s])


def addon_reserve_short(m, d):
    """short[d] >= reserve_d - sum_(s held on d) slot minutes_s x held[s]: add-on minutes the
    plan holds no free open room for (penalised per minute)."""
    return m.short[d] >= m.reserve[d] - sum(m.length[s] * m.held[s] for s in m.held_of_day[d])


def started_case_opens_room(m, c, s):
    """x[c,s] <= used[d,r] for a case already under way (a day-of re-plan's started lock) on a day
    where opening rooms is a choice: its room keeps its team. Started cases are facts, so they do
    not tie their surgeon to their room for the rest of the day (no z link): after a room goes
    down its surgeon's remaining cases may move to another room (the sequencer keeps the
    surgeon's intervals apart, H5)."""
    return m.x[c, s] <= m.used[m.room_day[s]]


def surgeon_room_link(m, c, s):
    """x[c,s] <= z[surgeon(c), date(s), room(s)]: a case puts its surgeon in its room for the day."""
    d, r = m.room_day[s]
    return m.x[c, s] <= m.z[m.surgeon_of[c], d, r]


def surgeon_room_capacity(m, g, d, r):
    """sum_(c of g, s in room r on d) (P50_c + turnover) x[c,s] <= room minutes usable by g x z[g,d,r],
    only where g's eligible cases exceed those minutes (elsewhere x <= z implies it).

    Valid since a surgeon's cases in a room fit its slots; it tightens the relaxation, where a
    fractional z would otherwise let a surgeon's cases fill their own block and overflow into
    other rooms at the same time."""
    pairs = m.pairs_of_surgeon_room[g, d, r]
    return sum((m.p50[c] + m.turnover) * m.x[c, s] for c, s in pairs) <= m.surgeon_room_minutes[g, d, r] * m.z[g, d, r]


def surgeon_opens_room(m, g, d, r):
    """z[g,d,r] <= used[d,r]: a surgeon working in a room opens it (so x[c,s] <= used as well)."""
    return m.z[g, d, r] <= m.used[d, r]


def staffed_rooms(m, d):
    """sum_r used[d,r] <= min(staffed_rooms_d, anesthesia_teams_d), on days with more rooms than
    that (DS). A room held for add-ons is an opened room (held_room_opened), so it needs a team
    once, whether or not an urgent case also runs in it (counting used + held charged a held
    room that took an add-on two teams, and kept add-ons out of the held room: issue 14)."""
    return sum(m.used[rd] for rd in m.rooms_of_day[d]) <= m.room_cap[d]


def held_room_opened(m, s):
    """held[s] <= used[d,r] for a held open room on a day where opening rooms is a choice: the
    team waits in the held room for the add-ons."""
    return m.held[s] <= m.used[m.room_day[s]]


def surgeon_one_room(m, g, d):
    """sum_r z[g,d,r] <= 1: a surgeon works in one room per day, so never in two at once."""
    rooms = m.rooms_of_surgeon_day[g, d]
    if len(rooms) <= 1:
        return pyo.Constraint.Skip
    return sum(m.z[g, d, r] for r in rooms) <= 1


# A case fewer than the rules schedule places costs this many deferrals (keep_rules_count).
FEWER_THAN_RULES_DEFERRALS = 20


def keep_rules_count(m):
    """sum_(c,s) x[c,s] + fewer >= min_scheduled: no fewer cases than the rules schedule places
    (soft, but ``fewer`` costs FEWER_THAN_RULES_DEFERRALS deferrals per case, more than any
    service-level saving of one case: a rules schedule may break a model rule, e.g. a surgeon
    in two rooms in a day, so a hard floor could be infeasible)."""
    return sum(m.x[p] for p in m.X) + m.fewer >= m.min_scheduled


def objective_rule(m):
    """min  w_ot sum over + w_idle (sum idle - sum_d unstaffed_prime_d) + sum_c defer_c (1 - sum_s x[c,s])
    + sum_(c,s) move_cost[c,s] x[c,s] + w_reserve sum_d short[d] + w_sl sum_s risk[s] (service level,
    service_level_risk) + w_pacu sum_d pacu_hold[d] (PACU load, pacu_hold_cut) (+ the fairness term), where unstaffed_prime_d = (rooms_d - staffed rooms_d) x mean
    prime minutes of a room: the constant that makes the idle term count staffed rooms only."""
    defer = sum(m.defer_cost[c] * (1 - sum(m.x[c, s] for s in m.pairs_of_case[c])) for c in m.C)
    idle = sum(m.idle[s] for s in m.S) - sum(m.unstaffed_prime[d] for d in m.DS)
    return (m.w_ot * sum(m.over[s] for s in m.S) + m.w_idle * idle
            + defer + sum(m.move_cost[p] * m.x[p] for p in m.X) + m.fair_cost + m.risk_cost + m.pacu_cost
            + FEWER_THAN_RULES_DEFERRALS * m.w_defer * m.fewer
            + m.w_reserve * sum(m.short[d] for d in m.DR))


# ----------------------------------------------------------------- build


def build_model(inst: PlanInstance, params: PlanParams) -> pyo.ConcreteModel:
    """The assignment MIP for ``inst``. Pure: no solver is called."""
    m = pyo.ConcreteModel(name="or_assignment")
    c, s, el = inst.cases, inst.slots, inst.eligible
    m.C = pyo.Set(initialize=list(c.index), ordered=True)
    m.S = pyo.Set(initialize=list(s.index), ordered=True)
    pairs = list(zip(el["case_id"], el["slot_id"]))
    m.X = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    slot_date, slot_room = s["date"].to_dict(), s["room_id"].to_dict()
    rd = sorted({(slot_date[sid], slot_room[sid]) for sid in s.index})
    m.RD = pyo.Set(initialize=rd, dimen=2, ordered=True)
    m.D = pyo.Set(initialize=[d for d in inst.dates], ordered=True)
    surgeon = {ci: surgeon_key(g, ci) for ci, g in c["surgeon_id"].items()}
    started = set()
    if inst.locks is not None and len(inst.locks) and "started" in inst.locks.columns:
        started = set(inst.locks.loc[inst.locks["started"].fillna(False).astype(bool), "case_id"])
    linked = [(ci, si) for ci, si in pairs if ci not in started]
    m.XL = pyo.Set(initialize=linked, dimen=2, ordered=True)
    zk = sorted({(surgeon[ci], slot_date[si], slot_room[si]) for ci, si in linked})
    m.Z = pyo.Set(initialize=zk, dimen=3, ordered=True)
    m.GD = pyo.Set(initialize=sorted({(g, d) for g, d, _ in zk}), dimen=2, ordered=True)

    m.pairs_of_case = {ci: [] for ci in c.index}
    m.cases_of_slot = {si: [] for si in s.index}
    for ci, si in pairs:
        m.pairs_of_case[ci].append(si)
        m.cases_of_slot[si].append(ci)
    m.room_day = {si: (slot_date[si], slot_room[si]) for si in s.index}
    m.slot_row = {si: row for si, row in zip(s.index, s[["start_min", "end_min", "p50_limit", "p80_limit"]].to_dict("records"))}
    m.surgeon_of = surgeon
    m.rooms_of_day = {d: [k for k in rd if k[0] == d] for d in inst.dates}
    m.rooms_of_surgeon_day = {gd: [] for gd in m.GD}
    for g, d, r in zk:
        m.rooms_of_surgeon_day[g, d].append(r)

    p50 = c["p50_i"].astype(float).to_dict()
    p80 = c["p80_i"].astype(float).to_dict()
    m.p50 = pyo.Param(m.C, initialize=p50)
    m.p80 = pyo.Param(m.C, initialize=p80)
    m.turnover = pyo.Param(initialize=inst.turnover_minutes)
    m.spread = pyo.Param(initialize=params.overtime_spread)
    usable = (s["p50_limit"] - s["start_min"]).astype(float).to_dict()
    usable80 = (s["p80_limit"] - s["start_min"]).astype(float).to_dict()
    m.usable = pyo.Param(m.S, initialize=usable)
    m.usable80 = pyo.Param(m.S, initialize=usable80)
    length = (s["end_min"] - s["start_min"]).astype(float).to_dict()
    m.length = pyo.Param(m.S, initialize=length)
    prime = (s["end_min"].clip(upper=inst.prime_end) - s["start_min"].clip(lower=inst.prime_start)).clip(lower=0)
    m.prime = pyo.Param(m.S, initialize=prime.astype(float).to_dict())
    m.room_cap = pyo.Param(m.D, initialize=inst.staffing["room_cap"].astype(int).to_dict())
    # Days with fewer staffed teams than rooms with time: only there is "which rooms open" a choice.
    m.DS = pyo.Set(initialize=[d for d in inst.dates if len(m.rooms_of_day[d]) > m.room_cap[d]], ordered=True)
    prime_rd = {k: 0.0 for k in rd}
    for si, p in prime.astype(float).items():
        prime_rd[m.room_day[si]] += p
    m.unstaffed_prime = pyo.Param(m.DS, initialize={
        d: (len(m.rooms_of_day[d]) - m.room_cap[d]) * sum(prime_rd[k] for k in m.rooms_of_day[d]) / len(m.rooms_of_day[d])
        for d in m.DS})
    defer = c["is_urgent"].map({True: params.w_defer_urgent_case, False: params.w_defer_case})
    m.defer_cost = pyo.Param(m.C, initialize=defer.astype(float).to_dict())
    move = (params.w_preference_case * el["pref_miss"] + params.w_stability_date_case * el["date_move"]
            + params.w_stability_room_case * el["room_move"])
    m.move_cost = pyo.Param(m.X, initialize=dict(zip(pairs, move.astype(float))))
    m.w_ot = pyo.Param(initialize=params.w_overtime)
    m.w_idle = pyo.Param(initialize=params.w_idle_prime)

    # Closing limits (closing_case_fits): R[c,s] per eligible pair, and the slots where they can
    # bind (SC): the whole P50 capacity overruns the worst closing case's limit.
    reach, r0, rmax, closing = {}, {}, {}, []
    for si, cases in m.cases_of_slot.items():
        if not cases:
            continue
        for ci in cases:
            reach[ci, si] = min(length[si] - 1 + p50[ci], usable80[si] - (p80[ci] - p50[ci]))
        r0[si] = max(min(reach[ci, si] for ci in cases), -inst.turnover_minutes)
        rmax[si] = max(reach[ci, si] for ci in cases)
        load = sum(p50[ci] + inst.turnover_minutes for ci in cases) - inst.turnover_minutes
        if min(load, usable[si]) > r0[si]:
            closing.append(si)
    m.SC = pyo.Set(initialize=closing, ordered=True)
    m.XC = pyo.Set(initialize=[(ci, si) for si in closing for ci in m.cases_of_slot[si]], dimen=2, ordered=True)
    m.reach = pyo.Param(m.XC, initialize={k: reach[k] for k in m.XC})
    m.r0 = pyo.Param(m.SC, initialize={si: r0[si] for si in closing})
    m.rmax = pyo.Param(m.SC, initialize={si: rmax[si] for si in closing})

    m.x = pyo.Var(m.X, domain=pyo.Binary)
    m.RDS = pyo.Set(initialize=[k for k in rd if k[0] in m.DS], dimen=2, ordered=True)
    m.used = pyo.Var(m.RDS, domain=pyo.Binary)
    m.z = pyo.Var(m.Z, domain=pyo.Binary)
    m.ZS = pyo.Set(initialize=[k for k in zk if k[1] in m.DS], dimen=3, ordered=True)
    # Surgeon-rooms whose eligible cases exceed the room time they could use (ZB).
    m.pairs_of_surgeon_room = {k: [] for k in zk}
    for ci, si in linked:
        d, r = m.room_day[si]
        m.pairs_of_surgeon_room[surgeon[ci], d, r].append((ci, si))
    room_minutes, demand = {}, {}
    for k, prs in m.pairs_of_surgeon_room.items():
        room_minutes[k] = sum(usable[si] + inst.turnover_minutes for si in {si for _, si in prs})
        demand[k] = sum(p50[ci] + inst.turnover_minutes for ci, _ in prs)
    zb = [k for k in zk if demand[k] > room_minutes[k]]
    m.ZB = pyo.Set(initialize=zb, dimen=3, ordered=True)
    m.surgeon_room_minutes = pyo.Param(m.ZB, initialize={k: room_minutes[k] for k in zb})
    m.y = pyo.Var(m.XC, bounds=(0, 1))
    m.over = pyo.Var(m.S, domain=pyo.NonNegativeReals)
    m.idle = pyo.Var(m.S, domain=pyo.NonNegativeReals)
    # Open rooms that may be held for add-ons (HO), on days with an add-on reserve (DR).
    reserve = inst.addon_reserve if inst.addon_reserve is not None else pd.Series(dtype=float)
    ho = [si for si in s.index if s.at[si, "kind"] == "open" and reserve.get(slot_date[si], 0.0) > 0]
    m.HO = pyo.Set(initialize=ho, ordered=True)
    m.DR = pyo.Set(initialize=sorted({slot_date[si] for si in ho}), ordered=True)
    m.held_of_day = {d: [si for si in ho if slot_date[si] == d] for d in m.DR}
    m.reserve = pyo.Param(m.DR, initialize={d: float(reserve[d]) for d in m.DR})
    m.w_reserve = pyo.Param(initialize=params.w_addon_reserve)
    m.held = pyo.Var(m.HO, domain=pyo.Binary)
    m.short = pyo.Var(m.DR, domain=pyo.NonNegativeReals)
    m.urgent = c["is_urgent"].astype(bool).to_dict()
    m.XH = pyo.Set(initialize=[(ci, si) for si in ho for ci in m.cases_of_slot[si] if not m.urgent[ci]], dimen=2, ordered=True)

    _add_service_level(m, inst, params, s, c)
    _add_pacu_load(m, inst, params, s)
    m.w_defer = pyo.Param(initialize=float(params.w_defer_case))
    m.min_scheduled = pyo.Param(initialize=float(inst.min_scheduled or 0))
    m.fewer = pyo.Var(domain=pyo.NonNegativeReals, bounds=(0, float(inst.min_scheduled or 0)))
    if inst.min_scheduled:
        m.rules_count = pyo.Constraint(rule=keep_rules_count)
    m.assign_once = pyo.Constraint(m.C, rule=assign_at_most_once)
    locked = [ci for ci in (inst.locks["case_id"] if inst.locks is not None and len(inst.locks) else []) if m.pairs_of_case.get(ci)]
    m.L = pyo.Set(initialize=locked, ordered=True)
    m.locked = pyo.Constraint(m.L, rule=locked_cases_placed)
    m.capacity = pyo.Constraint(m.S, rule=slot_capacity)
    m.closing_fits = pyo.Constraint(m.SC, rule=closing_case_fits)
    m.closing_chosen = pyo.Constraint(m.XC, rule=closing_case_chosen)
    m.one_closing = pyo.Constraint(m.SC, rule=one_closing_case)
    m.overtime = pyo.Constraint(m.S, rule=overtime_definition)
    m.idle_prime = pyo.Constraint(m.S, rule=idle_prime_definition)
    m.surgeon_link = pyo.Constraint(m.XL, rule=surgeon_room_link)
    m.XS = pyo.Set(initialize=[(ci, si) for ci, si in pairs if ci in started and m.room_day[si] in m.RDS],
                   dimen=2, ordered=True)
    m.started_open = pyo.Constraint(m.XS, rule=started_case_opens_room)
    m.surgeon_capacity = pyo.Constraint(m.ZB, rule=surgeon_room_capacity)
    m.room_open = pyo.Constraint(m.ZS, rule=surgeon_opens_room)
    m.staffing = pyo.Constraint(m.DS, rule=staffed_rooms)
    m.surgeon_room = pyo.Constraint(m.GD, rule=surgeon_one_room)
    m.held_free = pyo.Constraint(m.XH, rule=held_room_stays_free)
    m.held_capacity = pyo.Constraint(m.HO, rule=held_room_capacity)
    m.reserve_short = pyo.Constraint(m.DR, rule=addon_reserve_short)
    m.HOS = pyo.Set(initialize=[si for si in ho if m.room_day[si] in m.RDS], ordered=True)
    m.held_opened = pyo.Constraint(m.HOS, rule=held_room_opened)
    _add_fairness(m, inst, params)
    m.obj = pyo.Objective(rule=objective_rule, sense=pyo.minimize)
    return m
