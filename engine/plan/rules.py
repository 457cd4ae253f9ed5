"""The rules-based block scheduler: what coordinators do today, and the safe fallback.

Cases are taken first come, first served (by ``booked_at``) and placed on their booked date
into their own block (a surgeon block of theirs first, then their service's block, preferring
the room they were booked in), filling by ``booked_minutes`` plus turnover up to the block's
end. Open time is used only when no own block has room. Deterministic: ties break by case id.
The shared sequencer then gives the times, and defers whatever the forecast shows cannot fit.
"""
from __future__ import annotations

import pandas as pd

from engine.plan.instance import PlanInstance


def rules_assignment(inst: PlanInstance) -> pd.DataFrame:
    c, s = inst.cases, inst.slots
    turn = inst.turnover_minutes
    locked = set(inst.locks["case_id"]) if inst.locks is not None and len(inst.locks) else set()
    # Locked cases (overrides) first, then first come, first served.
    order = (c.assign(_l=~c.index.isin(list(locked)), _b=c["booked_at"].fillna(pd.Timestamp.max.as_unit(c["booked_at"].dt.unit)))
             .sort_values(["_l", "_b", "case_id"]).index)
    used = {sid: 0.0 for sid in s.index}
    rooms_used: dict[pd.Timestamp, set[str]] = {d: set() for d in inst.dates}
    el = inst.eligible
    rows = []
    for cid in order:
        case = c.loc[cid]
        cand = el[(el["case_id"] == cid) & ((el["date"] == case["booked_date"]) | (cid in locked))]
        if not len(cand):
            rows.append({"case_id": cid, "slot_id": None, "reason": "no block of its service or surgeon on its booked date"})
            continue
        info = s.loc[cand["slot_id"]]
        rank = pd.DataFrame({
            "slot_id": cand["slot_id"].to_numpy(),
            "kind": info["kind"].map({"surgeon": 0, "service": 1, "open": 2}).to_numpy(),
            "booked_room": (info["room_id"] != case["booked_room"]).astype(int).to_numpy(),
            "start": info["start_min"].to_numpy(),
        }).sort_values(["kind", "booked_room", "start", "slot_id"])
        placed, unstaffed = None, False
        for sid in rank["slot_id"]:
            sl = s.loc[sid]
            length = sl["end_min"] - sl["start_min"]
            need = case["booked_i"] + (turn if used[sid] > 0 else 0)
            d = sl["date"]
            new_room = sl["room_id"] not in rooms_used[d]
            if new_room and len(rooms_used[d]) >= int(inst.staffing.loc[d, "room_cap"]):
                unstaffed = unstaffed or used[sid] + need <= length
                continue
            if used[sid] + need <= length:
                used[sid] += need
                rooms_used[d].add(sl["room_id"])
                placed = sid
                break
        rows.append({"case_id": cid, "slot_id": placed, "reason": None if placed else _why_not_placed(inst, case, unstaffed)})
    return pd.DataFrame(rows, columns=["case_id", "slot_id", "reason"])


def _why_not_placed(inst: PlanInstance, case: pd.Series, unstaffed: bool) -> str:
    """A block had the minutes but its room could not open (every staffed room of the day taken:
    rooms or anesthesia teams), or every block it may use is full."""
    if unstaffed:
        d = case["booked_date"]
        cap = int(inst.staffing.loc[d, "room_cap"])
        return (f"its block has room, but on {d:%Y-%m-%d} only {cap} room{'s' if cap != 1 else ''} can be staffed "
                f"(rooms or anesthesia teams in staffing.csv) and they are taken (first come, first served)")
    return "its block is full by booked minutes (first come, first served)"
