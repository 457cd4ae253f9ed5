"""The plan's reporting: why a case has no room time (diagnose), locks that cannot hold
(check_locks), why each case is where it is (placement_reasons) and the plan's KPIs (kpis,
expected_overtime, service_level_summary)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.contract import UNKNOWN_SURGEON
from engine.hospital import Hospital
from engine.plan.instance import PlanInstance, minutes_to_time
from engine.plan.params import PlanParams

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


def empty_horizon_note(inst: PlanInstance, hospital: Hospital) -> str | None:
    """Said when no booked case falls in the plan's dates, so an empty plan is not read as a
    quiet week: the dates asked for, and the dates the booked cases do fall on."""
    if len(inst.cases) or not len(inst.dates):
        return None
    asked = f"{min(inst.dates):%Y-%m-%d}" + (f" to {max(inst.dates):%Y-%m-%d}" if len(inst.dates) > 1 else "")
    booked = pd.to_datetime(hospital.cases.loc[hospital.cases["status"] == "booked", "surgery_date"]).dropna()
    where = (f"booked cases fall on {booked.min():%Y-%m-%d} to {booked.max():%Y-%m-%d}" if len(booked)
             else "the hospital has no booked case at all")
    return f"no booked case falls on {asked}: nothing to plan ({where})"


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
        owner = {"surgeon": "the surgeon's own block", "service": f"the {sl['service_line']} block",
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


def service_level_summary(inst: PlanInstance, params: PlanParams) -> dict[str, Any]:
    """The service level the plan was weighed against and the weights that follow from it, in words
    and numbers (shown on the Schedule page; see terms.service_level_weight)."""
    from engine.plan.terms import pacu_hold_weight, service_level_weight

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
                     + (("an expected PACU hold minute of a day"
                         + (f" past its budget of {budget:.0f} min" if budget else "")
                         + (f", with {inst.pacu_beds_short} of its staffed beds missing," if inst.pacu_beds_short else "")
                         + f" costs {wp:.1f}") if wp > 0 else "the day's PACU load is not priced (w_pacu_hold = 0)")
                     + f"; each bed of PACU peak costs {params.w_pacu_peak_bed:.0f}" + ("; no fewer cases than the block rules schedule."
                                                         if params.keep_rules_count else "."))}
