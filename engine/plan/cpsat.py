"""PACU-aware sequencing with CP-SAT (OR-Tools): order and time the cases of an assignment so
that recovery arrivals are staggered under the bed count.

Per date, given each case's slot (room and block) from the assignment, a constraint programme
decides its start minute. Model (all minutes from midnight, integers):

- ``start_i`` in [lo_i, hi_i]: lo = the slot's start (and the re-plan's current minute for a
  case not yet started), hi = the latest start that keeps the case inside its block (it starts
  before the block ends, H9), ends by the slot's P50 limit at P50 and by close + cap at P80 (H3).
  A locked case (override, started case) has its lock minute. ``keep_i`` (optional presence)
  is 0 when the case is deferred.
- rooms: ``NoOverlap`` of the intervals [start_i, start_i + P50_i + turnover) of one room (H4);
- surgeons: two cases of one surgeon in different rooms do not overlap at P80 (H5), one
  disjunction per such pair (the assignment seldom has any: the MIP keeps a surgeon in one room);
- PACU: ``AddCumulative`` of the recovery intervals [start_i + P50_i, + pacu) with demand 1 and
  capacity ``peak`` <= beds (H8); ``peak`` is a variable, and minimising it staggers arrivals.
  (Tried and not kept: a second cumulative over [P50 end, P80 end + stay) to stagger with room
  for the durations' spread; on the seed-11 week it raised simulated PACU holds.)

Objective (minimise): sum_i defer_i (1 - keep_i) + w_pacu_peak x peak + w_overtime x sum_r
late_r, where late_r >= start_i + P80_i - close_r (the room's P80 finish
past close, as the MIP's overtime term) and the last term prefers early starts. The greedy
sequencer's times (engine/plan/sequence.py) are handed to CP-SAT as a hint, so its answer is
never worse than the greedy one by this objective; when CP-SAT finds nothing (no solution within
its time, or the package is missing) the greedy times are kept.
"""
from __future__ import annotations

import logging
from itertools import combinations

import pandas as pd

from engine.contract import surgeon_key
from engine.plan.params import PlanParams
from engine.plan.instance import PlanInstance
from engine.plan.sequence import SEQUENCE_COLUMNS, sequence

log = logging.getLogger(__name__)


def cpsat_available() -> bool:
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def pacu_peak(seq: pd.DataFrame, pacu_minutes: float) -> dict:
    """date -> the most patients in recovery at once, from sequenced rows (end50_min arrivals)."""
    out = {}
    s = seq[seq["status"] == "scheduled"]
    for d, g in s.groupby("date"):
        ev = sorted([(int(t), 1) for t in g["end50_min"]] + [(int(t + pacu_minutes), -1) for t in g["end50_min"]],
                    key=lambda x: (x[0], x[1]))
        cur = peak = 0
        for _, k in ev:
            cur += k
            peak = max(peak, cur)
        out[d] = peak
    return out


def sequence_cpsat(inst: PlanInstance, assignment: pd.DataFrame, params: PlanParams,
                   not_before_min: int | None = None, greedy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Times for ``assignment`` (case_id, slot_id[, reason]) as :func:`engine.plan.sequence.sequence`
    returns them (same columns), staggering PACU arrivals. ``greedy`` (the greedy sequencer's rows,
    computed here when not given) is the hint and the fallback."""
    if greedy is None:
        greedy = sequence(inst, assignment, order="longest_first", not_before_min=not_before_min)
    if not cpsat_available():
        log.warning("ortools is not installed: PACU-aware sequencing falls back to the greedy sequencer")
        return greedy
    decided: dict[str, dict] = {}
    for d in inst.dates:
        day = _solve_day(inst, assignment, params, d, not_before_min, greedy)
        if day:
            decided.update(day)
    rows = [decided.get(r["case_id"], r) for r in greedy.to_dict("records")]
    return pd.DataFrame(rows, columns=SEQUENCE_COLUMNS)


def _solve_day(inst: PlanInstance, assignment: pd.DataFrame, params: PlanParams, d, not_before_min,
               greedy: pd.DataFrame) -> dict[str, dict] | None:
    """case_id -> sequenced row for the cases ``assignment`` puts on date ``d``; None: keep the
    greedy rows (no case that day, no CP-SAT solution, or a lock it cannot honour)."""
    from ortools.sat.python import cp_model

    c, slots = inst.cases, inst.slots
    day_slots = slots[slots["date"] == d]
    a = assignment[assignment["slot_id"].isin(day_slots.index)]
    if not len(a):
        return None
    beds = int(inst.staffing.loc[d, "pacu_beds"])
    turn = int(round(inst.turnover_minutes))
    pacu = int(round(inst.pacu_minutes))
    locks = inst.locks.set_index("case_id") if inst.locks is not None and len(inst.locks) else None
    hint = greedy.set_index("case_id")
    m = cp_model.CpModel()
    start, keep, info, skipped, earliest = {}, {}, {}, [], {}
    room_iv: dict[str, list] = {}
    pacu_iv = []
    for cid, sid in zip(a["case_id"], a["slot_id"]):
        sl = day_slots.loc[sid]
        p50, p80 = int(c.at[cid, "p50_i"]), int(c.at[cid, "p80_i"])
        lo = int(sl["start_min"])
        hi = min(int(sl["end_min"]) - 1, int(sl["p50_limit"]) - p50, int(sl["p80_limit"]) - p80)
        locked = locks is not None and cid in locks.index and pd.notna(locks.at[cid, "start"])
        if locked:
            t = pd.Timestamp(locks.at[cid, "start"])
            lo = hi = t.hour * 60 + t.minute
        elif not_before_min is not None:
            lo = max(lo, int(not_before_min))
        if hi < lo:
            if locked:
                return None  # the greedy sequencer reports the lock it cannot honour
            skipped.append(cid)
            continue
        s = m.NewIntVar(lo, hi, f"s_{cid}")
        earliest[cid] = lo
        k = m.NewConstant(1) if locked else m.NewBoolVar(f"k_{cid}")
        start[cid], keep[cid] = s, k
        info[cid] = (sid, sl["room_id"], p50, p80, int(sl["close_min"]), hi)
        room_iv.setdefault(sl["room_id"], []).append(m.NewOptionalFixedSizeIntervalVar(s, p50 + turn, k, f"r_{cid}"))
        pacu_iv.append(m.NewOptionalIntervalVar(s + p50, pacu, s + p50 + pacu, k, f"p_{cid}"))

        if cid in hint.index and hint.at[cid, "status"] == "scheduled" and hint.at[cid, "slot_id"] == sid:
            m.AddHint(s, int(hint.at[cid, "start_min"]))
            if not locked:
                m.AddHint(k, 1)
        elif not locked:
            m.AddHint(k, 0)
    if not start:
        return None
    for ivs in room_iv.values():
        m.AddNoOverlap(ivs)
    by_surgeon: dict[str, list[str]] = {}
    for cid in start:
        by_surgeon.setdefault(surgeon_key(c.at[cid, "surgeon_id"], cid), []).append(cid)
    for ids in by_surgeon.values():
        for i, j in combinations(ids, 2):
            if info[i][1] == info[j][1]:
                continue
            b = m.NewBoolVar(f"o_{i}_{j}")
            m.Add(start[i] + info[i][3] <= start[j]).OnlyEnforceIf([b, keep[i], keep[j]])
            m.Add(start[j] + info[j][3] <= start[i]).OnlyEnforceIf([b.Not(), keep[i], keep[j]])
    peak = m.NewIntVar(0, max(beds, 0), "peak")
    m.AddCumulative(pacu_iv, [1] * len(pacu_iv), peak)
    late = []
    for r in room_iv:
        ids = [cid for cid in start if info[cid][1] == r]
        close = info[ids[0]][4]
        horizon = max(info[cid][3] + info[cid][5] for cid in ids) - close
        v = m.NewIntVar(0, max(horizon, 0), f"late_{r}")
        for cid in ids:
            m.Add(v >= start[cid] + info[cid][3] - close).OnlyEnforceIf(keep[cid])
        late.append(v)
    defer = {cid: int(params.w_defer_urgent_case if c.at[cid, "is_urgent"] else params.w_defer_case) for cid in start}
    scale = 1000  # integer objective: costs in thousandths
    m.Minimize(sum(scale * defer[cid] * (1 - keep[cid]) for cid in start)
               + int(scale * params.w_pacu_peak_bed) * peak
               + int(scale * params.w_overtime) * sum(late)
               + int(scale * params.w_sequence_delay) * sum(start[cid] - earliest[cid] for cid in start))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(params.sequence_time_limit_s)
    solver.parameters.num_workers = 2
    solver.parameters.random_seed = 0
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    out: dict[str, dict] = {}
    for cid, s in start.items():
        sid, room, p50, p80, _, _ = info[cid]
        if solver.Value(keep[cid]):
            t = int(solver.Value(s))
            out[cid] = {"case_id": cid, "slot_id": sid, "date": d, "room_id": room, "status": "scheduled",
                        "start_min": t, "end50_min": t + p50, "end80_min": t + p80, "defer_reason": ""}
    for cid in list(start) + skipped:
        if cid in out:
            continue
        g = hint.loc[cid]
        why = g["defer_reason"] if g["status"] == "deferred" and g["defer_reason"] else (
            f"no start in its block lets it fit with the room's other cases, its surgeon's other rooms and the "
            f"PACU ({beds} beds) without more overtime than deferring it costs")
        out[cid] = {"case_id": cid, "slot_id": None, "date": c.at[cid, "booked_date"], "room_id": None,
                    "status": "deferred", "start_min": None, "end50_min": None, "end80_min": None, "defer_reason": why}
    return out
