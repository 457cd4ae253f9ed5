"""Sequencing: turn case-to-slot assignments into explicit times that satisfy every hard rule.

Assignment (MIP or rules) decides which slot each case goes to; this step decides *when*.
Per date, rooms advance together in an event loop: the room whose next case could start
earliest goes next. A case starts at the earliest minute at or after its room's cursor where
(a) its PACU stay [end_p50, end_p50 + pacu) keeps occupancy below the date's beds at every
moment, and (b) its surgeon is not busy in another room. If no such minute lets it finish
inside its slot (P50) and before close + cap (P80), the next case of the slot is tried; cases
that fit nowhere are deferred with the reason. This keeps H3, H4, H5, H7, H8 and H9 true in
the exported times, whatever the assignment did.

For the optimizer's assignments (``longest_first``): the slot's closing case runs last, as the
model assumed when it sized the slot (instance.closing_case: it starts before the block ends
and ends by close + cap at P80; model.closing_case_fits); when
PACU would hold the next case back, a later case of the queue that can start sooner goes
first; and a case still dropped (PACU waits pushed it past its block) is offered the end of
another room it may use before it is deferred.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.contract import SCHEDULE_COLUMNS, surgeon_key
from engine.plan.instance import PlanInstance, closing_case, minutes_to_time


SEQUENCE_COLUMNS = ["case_id", "slot_id", "date", "room_id", "status", "start_min", "end50_min", "end80_min",
                    "defer_reason"]


@dataclass
class _Placed:
    case_id: str
    slot_id: str
    start: int
    end50: int
    end80: int


def _pacu_ok(placed: list[tuple[int, int]], a: int, b: int, beds: int) -> bool:
    """Would adding [a, b) keep occupancy <= beds at every moment?"""
    if beds <= 0:
        return False
    events = [(s, e) for s, e in placed if s < b and e > a]
    if len(events) < beds:
        return True
    points = sorted({a, *[s for s, _ in events if s > a]})
    return all(sum(1 for s, e in events if s <= t < e) < beds for t in points)


def _surgeon_free(busy: list[tuple[int, int, str]], a: int, b: int, room: str) -> bool:
    return all(e <= a or s >= b or r == room for s, e, r in busy)


def _earliest_start(t0: int, case: pd.Series, pacu: list[tuple[int, int]], pacu_min: int, beds: int,
                    busy: list[tuple[int, int, str]], room: str, limit50: int, limit80: int, block_end: int) -> int | None:
    """The earliest start at or after ``t0`` that keeps PACU and the surgeon free, ends by the
    slot's P50 and P80 limits and starts before the block ends (no case is planned to start
    after its block, even where the overtime cap would let it finish)."""
    p50, p80 = int(case["p50_i"]), int(case["p80_i"])
    cands = {t0}
    cands |= {e - p50 for _, e in pacu if e - p50 > t0}
    cands |= {e for _, e, _ in busy if e > t0}
    for t in sorted(cands):
        if t + p50 > limit50 or t + p80 > limit80 or t >= block_end:
            return None
        if _pacu_ok(pacu, t + p50, t + p50 + pacu_min, beds) and _surgeon_free(busy, t, t + p80, room):
            return t
    return None


def sequence(inst: PlanInstance, assignment: pd.DataFrame, order: str = "longest_first",
             not_before_min: int | None = None, first_lines: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Times for assigned cases. ``assignment``: case_id, slot_id (NaN = deferred by the
    assigner, with ``reason``). ``order``: ``longest_first`` (optimizer), ``booked_first``
    (rules: first come, first served by booking time) or ``published`` (re-planning: keep the
    published order, by ``published.start``). Urgent cases go first in any order. Unlocked
    cases start no earlier than ``not_before_min`` (re-planning during the day). With
    ``longest_first``, cases of ``first_lines`` (service lines short of prime time under the
    fairness policy) go before the other lines' cases of the same slot.

    Returns one row per case: case_id, slot_id, date, room_id, status, start_min, end50_min,
    end80_min, defer_reason.
    """
    c = inst.cases
    rec, srec = _records(c), _records(inst.slots)
    flexible_repair = order == "longest_first"
    turn = int(round(inst.turnover_minutes))
    pacu_min = int(round(inst.pacu_minutes))
    locks = inst.locks.set_index("case_id") if inst.locks is not None and len(inst.locks) else None
    placed: list[_Placed] = []
    deferred: dict[str, str] = {}
    a = assignment.set_index("case_id")
    published_start: dict = {}
    if order == "published" and inst.published is not None and "start" in inst.published.columns:
        pub = inst.published.dropna(subset=["start"])
        published_start = dict(zip(pub["case_id"], pd.to_datetime(pub["start"])))
    for cid in c.index.difference(a.index):
        deferred[cid] = "no eligible room time (see diagnosis)"
    for cid, row in a.iterrows():
        if not isinstance(row.get("slot_id"), str):
            deferred[cid] = str(row.get("reason") or "deferred by the optimizer")
    todo = a[a["slot_id"].map(lambda v: isinstance(v, str)).astype(bool)]
    for d in inst.dates:
        slots = inst.slots[inst.slots["date"] == d]
        if not len(slots):
            continue
        beds = int(inst.staffing.loc[d, "pacu_beds"])
        room_cap = int(inst.staffing.loc[d, "room_cap"])
        day = todo[todo["slot_id"].isin(slots.index)]
        # Rooms beyond the staffing limit (a rules assignment may ask for too many): keep the busiest.
        rooms_load = day.join(c[["p50_i"]]).groupby(slots.loc[day["slot_id"], "room_id"].to_numpy())["p50_i"].sum()
        allowed_rooms = set(rooms_load.sort_values(ascending=False).index[:room_cap])
        queues: dict[str, list[str]] = {}
        for sid in slots.sort_values(["room_id", "start_min"]).index:
            ids = list(day.index[day["slot_id"] == sid])
            if slots.loc[sid, "room_id"] not in allowed_rooms:
                for cid in ids:
                    deferred[cid] = f"room {slots.loc[sid, 'room_id']} is not staffed on {d:%Y-%m-%d} (only {room_cap} rooms)"
                continue
            if order == "booked_first":
                ids.sort(key=lambda i: (pd.Timestamp(rec[i]["booked_at"]) if pd.notna(rec[i]["booked_at"]) else pd.Timestamp.max, i))
            elif order == "published":
                ids.sort(key=lambda i: (published_start.get(i, pd.Timestamp.max), i))
            else:
                ids.sort(key=lambda i: (rec[i]["service_line"] not in first_lines, -rec[i]["p50_i"], i))
                # The closing case runs last: the model sized the slot so that it starts before
                # the block ends and ends by close + cap at P80 (instance.closing_case).
                if len(ids) > 1:
                    p50 = {i: int(rec[i]["p50_i"]) for i in ids}
                    p80 = {i: int(rec[i]["p80_i"]) for i in ids}
                    last = closing_case(slots.loc[sid], p50, p80, turn, strict=False)
                    ids.remove(last)
                    ids.append(last)
            ids.sort(key=lambda i: not bool(rec[i]["is_urgent"]))
            if locks is not None:
                ids.sort(key=lambda i: (0, int(_lock_minute(locks, i))) if i in locks.index else (1, 0))
            queues[sid] = ids
        pacu: list[tuple[int, int]] = []
        busy: dict[str, list[tuple[int, int, str]]] = {}
        by_room = slots.sort_values(["room_id", "start_min"]).groupby("room_id", sort=False)
        room_cursor = {r: int(g["open_min"].iloc[0]) for r, g in by_room}
        room_slots = {r: list(g.index) for r, g in by_room}
        active = {r: 0 for r in room_cursor}  # index of the current slot per room

        def next_start(r: str) -> int | None:
            while active[r] < len(room_slots[r]) and not queues.get(room_slots[r][active[r]]):
                active[r] += 1
            if active[r] >= len(room_slots[r]):
                return None
            sid = room_slots[r][active[r]]
            return max(room_cursor[r], int(srec[sid]["start_min"]))

        while True:
            cands = [(t, r) for r in room_cursor if (t := next_start(r)) is not None]
            if not cands:
                break
            t_room, r = min(cands)
            sid = room_slots[r][active[r]]
            sl = srec[sid]
            q = queues[sid]
            chosen = None
            failed_lock = False
            # The optimizer's order (longest first) is a preference, not a rule: when PACU or the
            # surgeon would delay the next case, a later case of the queue that can start sooner
            # goes first. The closing case (last in the queue) stays last while others remain.
            flexible = order == "longest_first"
            for cid in q:
                case = rec[cid]
                is_locked = locks is not None and cid in locks.index
                t0 = t_room if is_locked or not_before_min is None else max(t_room, not_before_min)
                if is_locked:
                    t_lock = int(_lock_minute(locks, cid))
                    t = t_lock if t_lock >= t0 else None
                    if t is not None and not (_pacu_ok(pacu, t + int(case["p50_i"]), t + int(case["p50_i"]) + pacu_min, beds)
                                              and _surgeon_free(busy.get(_who(case), []), t, t + int(case["p80_i"]), r)
                                              and t + case["p50_i"] <= sl["p50_limit"] and t + case["p80_i"] <= sl["p80_limit"]):
                        t = None
                    if t is None:
                        deferred[cid] = "its lock cannot be honoured without breaking a hard rule (turnover, PACU, surgeon or hours)"
                        q.remove(cid)
                        failed_lock = True
                        break
                    chosen = (cid, t)
                    break
                if chosen is not None and (cid == q[-1] or bool(case["is_urgent"]) != bool(rec[chosen[0]]["is_urgent"])):
                    break
                t = _earliest_start(t0, case, pacu, pacu_min, beds, busy.get(_who(case), []), r,
                                    int(sl["p50_limit"]), int(sl["p80_limit"]), int(sl["end_min"]))
                if t is not None and (chosen is None or t < chosen[1]):
                    chosen = (cid, t)
                if chosen is not None and (not flexible or chosen[1] <= t0):
                    break
            if failed_lock:
                continue
            if chosen is None:
                t0 = t_room if not_before_min is None else max(t_room, not_before_min)
                for cid in list(q):
                    deferred[cid] = _why_not(rec[cid], sl, t0, beds)
                q.clear()
                continue
            cid, t = chosen
            case = rec[cid]
            e50, e80 = t + int(case["p50_i"]), t + int(case["p80_i"])
            placed.append(_Placed(cid, sid, t, e50, e80))
            pacu.append((e50, e50 + pacu_min))
            busy.setdefault(_who(case), []).append((t, e80, r))
            room_cursor[r] = e50 + turn
            q.remove(cid)
        if flexible_repair:
            _append_lost(inst, d, day.index, deferred, locks, slots, room_cursor, room_cap, pacu, pacu_min, beds, busy,
                         placed, turn, not_before_min)
    rows = []
    for p in placed:
        sl = srec[p.slot_id]
        rows.append({"case_id": p.case_id, "slot_id": p.slot_id, "date": sl["date"], "room_id": sl["room_id"],
                     "status": "scheduled", "start_min": p.start, "end50_min": p.end50, "end80_min": p.end80, "defer_reason": ""})
    for cid, why in deferred.items():
        rows.append({"case_id": cid, "slot_id": None, "date": c.loc[cid, "booked_date"], "room_id": None, "status": "deferred",
                     "start_min": None, "end50_min": None, "end80_min": None, "defer_reason": why})
    return pd.DataFrame(rows, columns=SEQUENCE_COLUMNS)


def _append_lost(inst: PlanInstance, d, day_ids, deferred: dict[str, str], locks, slots: pd.DataFrame,
                 room_cursor: dict[str, int], room_cap: int, pacu: list, pacu_min: int, beds: int, busy: dict,
                 placed: list[_Placed], turn: int, not_before_min: int | None) -> None:
    """Cases of day ``d`` that had a slot but were dropped while sequencing (PACU waits pushed
    them past their block) get one more try: appended after the last case of another room they
    are eligible for, at the earliest start every hard rule allows. Rooms stay within staffing."""
    c = inst.cases
    lost = [cid for cid in day_ids if cid in deferred and (locks is None or cid not in locks.index)]
    if not lost:
        return
    el = inst.eligible
    el = el[el["case_id"].isin(lost) & el["slot_id"].isin(slots.index)]
    rooms_used = {slots.loc[p.slot_id, "room_id"] for p in placed if p.slot_id in slots.index}
    for cid in sorted(lost, key=lambda i: (-int(c.loc[i, "p50_i"]), i)):
        case = c.loc[cid]
        for sid in el.loc[el["case_id"] == cid, "slot_id"]:
            sl = slots.loc[sid]
            r = sl["room_id"]
            if r not in rooms_used and len(rooms_used) >= room_cap:
                continue
            t0 = max(room_cursor[r], int(sl["start_min"]), not_before_min or 0)
            t = _earliest_start(t0, case, pacu, pacu_min, beds, busy.get(_who(case), []), r,
                                int(sl["p50_limit"]), int(sl["p80_limit"]), int(sl["end_min"]))
            if t is None:
                continue
            e50, e80 = t + int(case["p50_i"]), t + int(case["p80_i"])
            placed.append(_Placed(cid, sid, t, e50, e80))
            pacu.append((e50, e50 + pacu_min))
            busy.setdefault(_who(case), []).append((t, e80, r))
            room_cursor[r] = e50 + turn
            rooms_used.add(r)
            del deferred[cid]
            break


class _Rec(dict):
    """A row as a dict (fast lookups in the event loop) that keeps its label as ``name``, like a Series."""

    __slots__ = ("name",)


def _records(frame: pd.DataFrame) -> dict:
    out = {}
    for key, row in zip(frame.index, frame.to_dict("records")):
        r = _Rec(row)
        r.name = key
        out[key] = r
    return out


def _who(case: pd.Series) -> str:
    """The surgeon whose time the case takes; "unknown" is not one person (H5 skips it)."""
    return surgeon_key(case["surgeon_id"], case.name)


def _lock_minute(locks: pd.DataFrame, cid: str) -> float:
    t = pd.Timestamp(locks.loc[cid, "start"])
    return t.hour * 60 + t.minute


def _why_not(case: pd.Series, sl: pd.Series, t0: int, beds: int) -> str:
    p50, p80 = int(case["p50_i"]), int(case["p80_i"])
    if t0 >= sl["end_min"]:
        end = int(sl["end_min"])
        return (f"the block in {sl['room_id']} on {sl['date']:%Y-%m-%d} ends at {end // 60:02d}:{end % 60:02d} before "
                f"it could start (no case is planned to start after its block)")
    if t0 + p50 > sl["p50_limit"]:
        return (f"does not fit the remaining block time in {sl['room_id']} on {sl['date']:%Y-%m-%d}: "
                f"P50 {p50} min from {t0 // 60:02d}:{t0 % 60:02d} would end after the block")
    if t0 + p80 > sl["p80_limit"]:
        return f"its P80 ({p80} min) would run past close plus the overtime cap in {sl['room_id']}"
    return f"no PACU bed free when it would finish (only {beds} beds) and no later start fits the block in {sl['room_id']}"


def to_schedule(inst: PlanInstance, seq: pd.DataFrame, reasons: pd.Series | None = None) -> pd.DataFrame:
    """The contract schedule.csv frame from sequenced rows (times as datetimes)."""
    c = inst.cases
    rows = []
    for r in seq.itertuples():
        case = c.loc[r.case_id]
        base = {"case_id": r.case_id, "surgeon_id": case["surgeon_id"], "service_line": case["service_line"]}
        if r.status == "scheduled":
            d = pd.Timestamp(r.date)
            e50 = minutes_to_time(d, r.end50_min)
            rows.append({**base, "date": d, "room_id": r.room_id, "status": "scheduled",
                         "start": minutes_to_time(d, r.start_min), "end_p50": e50, "end_p80": minutes_to_time(d, r.end80_min),
                         "pacu_in": e50, "pacu_out": e50 + pd.Timedelta(minutes=round(inst.pacu_minutes))})
        else:
            rows.append({**base, "date": pd.Timestamp(r.date), "room_id": None, "status": "deferred", "start": pd.NaT,
                         "end_p50": pd.NaT, "end_p80": pd.NaT, "pacu_in": pd.NaT, "pacu_out": pd.NaT})
        rows[-1]["reason"] = (reasons.get(r.case_id) if reasons is not None and r.case_id in reasons.index else None) or r.defer_reason
    out = pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)
    return out.sort_values(["date", "room_id", "start", "case_id"], na_position="last").reset_index(drop=True)
