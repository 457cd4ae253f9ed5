"""Values in and out of the assignment MIP (engine/plan/model.py): warm starts (feasible_start
cuts a schedule down to one the instance's model accepts, set_start loads it as a MIP start,
start_is_feasible checks it against every constraint) and the solved model read back
(extract_assignment with each deferral's reason, extract_held)."""
from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo

from engine.contract import surgeon_key
from engine.plan.instance import PlanInstance, closing_case, slot_fits


def feasible_start(inst: PlanInstance, assignment: pd.DataFrame) -> pd.DataFrame:
    """``assignment`` (case_id, slot_id) cut down to a schedule this instance's model accepts, as
    a MIP start: a schedule made for a slightly different instance (a what-if with a room less
    or longer durations) would otherwise be dropped whole by the solver. Pairs the instance does
    not allow are dropped; each slot keeps its cases, longest first, while they fit
    (instance.slot_fits: at P50, with a closing case that starts before the block ends and ends
    by close + cap at P80, as the model sizes slots); a surgeon keeps one
    room per day; a day keeps its busiest rooms up to its staffed-room limit. The cases this
    leaves out are then placed where they still fit (_fill); the rest is deferred."""
    c, s, t = inst.cases, inst.slots, inst.turnover_minutes
    allowed = set(zip(inst.eligible["case_id"], inst.eligible["slot_id"]))
    pairs = [(ci, si) for ci, si in zip(assignment["case_id"], assignment["slot_id"])
             if isinstance(si, str) and (ci, si) in allowed]
    by_slot: dict[str, list[str]] = {}
    for ci, si in pairs:
        by_slot.setdefault(si, []).append(ci)
    p50, p80 = c["p50_i"].to_dict(), c["p80_i"].to_dict()
    kept: dict[str, list[str]] = {}
    for si, cases in by_slot.items():
        slot, keep = s.loc[si], []
        for ci in sorted(cases, key=lambda k: (-p50[k], k)):
            trial = keep + [ci]
            if slot_fits(slot, {k: p50[k] for k in trial}, {k: p80[k] for k in trial}, t):
                keep = trial
        kept[si] = keep
    # A surgeon in one room per day (the first room met, by slot id), then the busiest rooms of a day.
    room_of: dict[tuple, str] = {}
    for si in sorted(kept):
        d, r = s.at[si, "date"], s.at[si, "room_id"]
        stay = []
        for ci in kept[si]:
            g = c.at[ci, "surgeon_id"]
            key = (surgeon_key(g, ci), d)
            if room_of.setdefault(key, r) == r:
                stay.append(ci)
        kept[si] = stay
    load_rd: dict[tuple, float] = {}
    for si, cases in kept.items():
        if cases:
            rd = (s.at[si, "date"], s.at[si, "room_id"])
            load_rd[rd] = load_rd.get(rd, 0.0) + sum(c.at[ci, "p50_i"] for ci in cases)
    open_rd: set = set()
    for d in inst.dates:
        cap = int(inst.staffing.at[d, "room_cap"]) if d in inst.staffing.index else 0
        busiest = sorted((rd for rd in load_rd if rd[0] == d), key=lambda rd: (-load_rd[rd], rd[1]))
        open_rd.update(busiest[:cap])
    chosen = {ci: si for si, cases in kept.items() for ci in cases if (s.at[si, "date"], s.at[si, "room_id"]) in open_rd}
    _fill(inst, chosen, open_rd)
    return pd.DataFrame({"case_id": list(c.index), "slot_id": [chosen.get(ci) for ci in c.index]})


def _fill(inst: PlanInstance, chosen: dict, open_rd: set) -> None:
    """Place the cases ``chosen`` leaves out where they still fit, urgent then shortest first: in
    a room of the day already open, or a new one while the day has a team for it; the same rules
    as feasible_start (instance.slot_fits, one room per surgeon and day)."""
    c, s, t = inst.cases, inst.slots, inst.turnover_minutes

    def day_key(ci, d):
        return (surgeon_key(c.at[ci, "surgeon_id"], ci), d)

    p50, p80 = c["p50_i"].to_dict(), c["p80_i"].to_dict()
    in_slot: dict[str, list[str]] = {}
    room_of: dict[tuple, str] = {}
    for ci, si in chosen.items():
        in_slot.setdefault(si, []).append(ci)
        room_of[day_key(ci, s.at[si, "date"])] = s.at[si, "room_id"]
    rooms = {d: {r for dd, r in open_rd if dd == d} for d in inst.dates}
    cap = {d: int(inst.staffing.at[d, "room_cap"]) if d in inst.staffing.index else 0 for d in inst.dates}
    slots_of = inst.eligible.groupby("case_id")["slot_id"].agg(list) if len(inst.eligible) else pd.Series(dtype=object)
    left = [ci for ci in c.index if ci not in chosen and ci in slots_of.index]
    for ci in sorted(left, key=lambda k: (not c.at[k, "is_urgent"], p50[k], k)):
        for si in slots_of[ci]:
            d, r = s.at[si, "date"], s.at[si, "room_id"]
            if r not in rooms[d] and len(rooms[d]) >= cap[d]:
                continue
            key = day_key(ci, d)
            if room_of.get(key, r) != r:
                continue
            trial = in_slot.get(si, []) + [ci]
            if not slot_fits(s.loc[si], {k: p50[k] for k in trial}, {k: p80[k] for k in trial}, t):
                continue
            chosen[ci], in_slot[si] = si, trial
            rooms[d].add(r)
            room_of[key] = r
            break


def set_start(m: pyo.ConcreteModel, assignment: pd.DataFrame) -> None:
    """Load ``assignment`` (case_id, slot_id; None = deferred) as the model's starting point (a MIP
    start): x from it, and z, used, y, over, idle at the least values the constraints allow."""
    chosen = {ci: si for ci, si in zip(assignment["case_id"], assignment["slot_id"]) if isinstance(si, str)}
    for ci, si in m.X:
        m.x[ci, si].value = 1.0 if chosen.get(ci) == si else 0.0
    for k in m.Z:
        m.z[k].value = 0.0
    for k in m.RDS:
        m.used[k].value = 0.0
    for ci, si in chosen.items():
        if (ci, si) not in m.X:
            continue
        d, r = m.room_day[si]
        if (m.surgeon_of[ci], d, r) in m.Z:
            m.z[m.surgeon_of[ci], d, r].value = 1.0
        if (d, r) in m.RDS:
            m.used[d, r].value = 1.0
    for k in m.XC:
        m.y[k].value = 0.0
    for si in m.S:
        cases = [ci for ci in m.cases_of_slot[si] if m.x[ci, si].value > 0.5]
        load = sum(pyo.value(m.p50[ci]) + pyo.value(m.turnover) for ci in cases)
        load80 = sum(pyo.value(m.p50[ci]) + pyo.value(m.spread) * (pyo.value(m.p80[ci]) - pyo.value(m.p50[ci]))
                     + pyo.value(m.turnover) for ci in cases)
        m.over[si].value = max(0.0, load80 - pyo.value(m.turnover) - pyo.value(m.length[si])) if cases else 0.0
        m.idle[si].value = max(0.0, pyo.value(m.prime[si]) - load)
        if si in m.SC and cases:
            p50 = {ci: pyo.value(m.p50[ci]) for ci in cases}
            p80 = {ci: pyo.value(m.p80[ci]) for ci in cases}
            last = closing_case(m.slot_row[si], p50, p80, pyo.value(m.turnover), strict=False)
            m.y[last, si].value = 1.0
    m.fewer.value = max(0.0, pyo.value(m.min_scheduled) - len([1 for ci in chosen if (ci, chosen[ci]) in m.X]))
    for si in m.SL:
        cases = [ci for ci in m.cases_of_slot[si] if m.x[ci, si].value > 0.5]
        v0 = pyo.value(m.sl_v0[si])
        load = sum(pyo.value(m.dur_mean[ci]) + pyo.value(m.turnover) for ci in cases) - pyo.value(m.turnover)
        spread = pyo.value(m.sl_z) * (sum(pyo.value(m.dur_var[ci]) for ci in cases) + v0) / (2 * v0 ** 0.5)
        m.risk[si].value = max(0.0, load + spread - pyo.value(m.length[si]) - pyo.value(m.sl_plus))
    for d in m.PD:
        n = sum(1 for si in m.slots_of_day[d] for ci in m.cases_of_slot[si] if m.x[ci, si].value > 0.5)
        m.n_day[d].value = float(n)
        m.pacu_hold[d].value = float(m.pacu_curve[d][min(n, len(m.pacu_curve[d]) - 1)])
    for d in m.DR:
        free_teams = (pyo.value(m.room_cap[d]) - sum(m.used[rd].value for rd in m.rooms_of_day[d])) if d in m.DS else len(m.held_of_day[d])
        need = pyo.value(m.reserve[d])
        for si in m.held_of_day[d]:
            empty = all(m.x[ci, si].value < 0.5 for ci in m.cases_of_slot[si] if not m.urgent[ci])
            rd = m.room_day[si]
            opened = rd in m.RDS and m.used[rd].value > 0.5  # an urgent case already has a team there
            hold = empty and (opened or free_teams >= 1) and need > 0
            m.held[si].value = 1.0 if hold else 0.0
            if hold:
                if rd in m.RDS and not opened:
                    m.used[rd].value = 1.0
                    free_teams -= 1
                elif rd not in m.RDS:
                    free_teams -= 1
                need -= pyo.value(m.length[si])
                m.idle[si].value = 0.0
        m.short[d].value = max(0.0, need)


def extract_held(m: pyo.ConcreteModel) -> list[str]:
    """Open-room slots a solved model holds free for add-ons."""
    return [si for si in m.HO if m.held[si].value is not None and m.held[si].value > 0.5]


def start_is_feasible(m: pyo.ConcreteModel, tol: float = 1e-6) -> bool:
    """Do the variables' current values (a MIP start loaded by set_start) keep every constraint of
    ``m`` (within ``tol``, scaled by the bound's size) and every binary at 0 or 1?"""
    for v in m.component_data_objects(pyo.Var, active=True):
        if v.value is None:
            return False
        if v.is_binary() and min(abs(v.value), abs(v.value - 1.0)) > tol:
            return False
    for con in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(con.body)
        lo, up = con.lower, con.upper
        if lo is not None and body < pyo.value(lo) - tol * max(1.0, abs(pyo.value(lo))):
            return False
        if up is not None and body > pyo.value(up) + tol * max(1.0, abs(pyo.value(up))):
            return False
    return True


def extract_assignment(m: pyo.ConcreteModel) -> pd.DataFrame:
    """case_id, slot_id (None when deferred) from a solved model."""
    chosen = {}
    for ci, si in m.X:
        v = m.x[ci, si].value
        if v is not None and v > 0.5:
            chosen[ci] = si
    rows = [{"case_id": ci, "slot_id": chosen.get(ci), "reason": None if ci in chosen else _deferral_reason(m, ci)}
            for ci in m.C]
    return pd.DataFrame(rows, columns=["case_id", "slot_id", "reason"])


def _deferral_reason(m: pyo.ConcreteModel, ci: str) -> str:
    if not m.pairs_of_case[ci]:
        return "no eligible room time"
    rooms = sorted({m.room_day[si][1] for si in m.pairs_of_case[ci]})
    shown = ", ".join(rooms[:4]) + (f" and {len(rooms) - 4} more" if len(rooms) > 4 else "")
    return (f"deferred by the optimizer: the room time it may use ({shown}) is taken by other cases or would need "
            f"more overtime than deferring costs (P50 {pyo.value(m.p50[ci]):.0f} min)")
