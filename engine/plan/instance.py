"""A planning instance: the booked cases of a horizon, their forecasts, and the room time they
may use, as plain tables the model, the rules scheduler and the sequencer all read.

Room time is cut into *slots*: each block of a room on a date is a slot owned by its service
line (or surgeon); a room-date with no block at all is one open slot. A case is eligible for a
slot when the room has its equipment, the slot belongs to its service line or surgeon (or is
open time and the policy allows it), the date is staffed, and the date change is allowed.
Only eligible case-slot pairs exist (a sparse index, never a cross product).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.hospital import Hospital
from engine.plan.params import PlanParams
from engine.timeutil import hhmm_to_minutes

log = logging.getLogger(__name__)
Z80 = 0.8416  # standard normal score of the 80th percentile


@dataclass
class PlanInstance:
    dates: list[pd.Timestamp]
    cases: pd.DataFrame  # index case_id
    slots: pd.DataFrame  # index slot_id
    eligible: pd.DataFrame  # case_id, slot_id, cost columns
    staffing: pd.DataFrame  # index date: room_cap, pacu_beds, staffed_rooms, anesthesia_teams
    turnover_minutes: float
    pacu_minutes: float
    overtime_cap_minutes: float
    prime_start: int
    prime_end: int
    published: pd.DataFrame | None = None
    locks: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    addon_reserve: pd.Series | None = None  # date -> add-on minutes to hold open rooms for
    # Service level (settings [service_levels]): a room finishes by close + finish_plus_minutes
    # with probability finish_probability (terms.service_level_risk).
    finish_plus_minutes: float = 30.0
    finish_probability: float = 0.8
    pacu_hold_budget_minutes: float | None = None  # PACU hold a day may accept (terms._add_pacu_load)
    pacu_beds_short: int = 0  # beds the PACU load is priced without (settings service_levels.pacu_beds_short)
    min_scheduled: int | None = None  # the rules schedule's case count (model.keep_rules_count)
    rules_placed: set | None = None  # the cases the rules schedule places (split by part)

    def slots_of(self, case_id: str) -> pd.Series:
        return self.eligible.loc[self.eligible["case_id"] == case_id, "slot_id"]


def _equipment(v: object) -> frozenset[str]:
    if not isinstance(v, str):
        return frozenset()
    return frozenset(p.strip().lower() for p in v.split(";") if p.strip())


def _slots(h: Hospital, dates: list[pd.Timestamp], cap: float) -> pd.DataFrame:
    rooms = h.rooms.set_index("room_id")
    blocks = h.blocks
    rows = []
    for d in dates:
        day_blocks = blocks[blocks["date"] == d]
        for room_id, room in rooms.iterrows():
            open_m, close_m = hhmm_to_minutes(room["open_time"]), hhmm_to_minutes(room["close_time"])
            rb = day_blocks[day_blocks["room_id"] == room_id].sort_values("start_time")
            base = {"date": d, "room_id": room_id, "site": room["site"], "open_min": open_m, "close_min": close_m,
                    "capabilities": _equipment(room["capabilities"])}
            if not len(rb):
                rows.append({**base, "slot_id": f"{d:%Y%m%d}|{room_id}|open", "kind": "open", "service_line": None,
                             "surgeon_id": None, "start_min": open_m, "end_min": close_m})
                continue
            for b in rb.itertuples():
                s = max(hhmm_to_minutes(b.start_time), open_m)
                e = min(hhmm_to_minutes(b.end_time), close_m)
                if e <= s:
                    continue
                surgeon = b.surgeon_id if isinstance(b.surgeon_id, str) and b.surgeon_id else None
                rows.append({**base, "slot_id": f"{d:%Y%m%d}|{room_id}|{b.start_time}", "kind": "surgeon" if surgeon else "service",
                             "service_line": b.service_line, "surgeon_id": surgeon, "start_min": s, "end_min": e})
    slots = pd.DataFrame(rows)
    if not len(slots):
        return pd.DataFrame(columns=["slot_id", "date", "room_id", "site", "kind", "service_line", "surgeon_id",
                                     "start_min", "end_min", "open_min", "close_min", "capabilities", "p50_limit", "p80_limit"]).set_index("slot_id")
    # A block reaching the room's close may run into the overtime cap; others must end in time.
    slots["p50_limit"] = np.where(slots["end_min"] >= slots["close_min"], slots["close_min"] + cap, slots["end_min"])
    slots["p80_limit"] = slots["close_min"] + cap
    return slots.set_index("slot_id")


def build_instance(
    h: Hospital,
    forecasts: pd.DataFrame,
    start_date: pd.Timestamp | str,
    params: PlanParams,
    published: pd.DataFrame | None = None,
    locks: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
    downtime: list[tuple[pd.Timestamp, str, int]] | None = None,
    addon_reserve: pd.DataFrame | None = None,
) -> PlanInstance:
    """Collect the horizon's booked cases, forecasts (case_id, p50, p80[, p95, cancel_prob]) and slots.

    ``cases`` defaults to the hospital's booked cases; ``published`` (case_id, date, room_id)
    is the schedule to stay close to (default: the booking's own date and room); ``locks``
    (case_id, date, room_id, start) are overrides the plan must keep; ``downtime`` lists
    (date, room_id, from_minute): the room is unavailable from that minute of that date on;
    ``addon_reserve`` (date, reserve_minutes) is the add-on time to hold open rooms for (used
    when ``params.hold_addon_rooms``).
    """
    start = pd.Timestamp(start_date).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(params.days)]
    cap = float(params.overtime_cap_minutes if params.overtime_cap_minutes is not None
                else h.settings.overtime_cap_minutes)
    src = h.cases if cases is None else cases
    booked = src[(src["status"] == "booked") & src["surgery_date"].isin(dates)].copy()
    if booked["case_id"].duplicated().any():
        raise InputError("duplicate booked case ids in the horizon", file="cases.csv")
    f = forecasts.drop_duplicates("case_id").set_index("case_id")
    missing = sorted(set(booked["case_id"]) - set(f.index))
    if missing:
        raise InputError(f"no forecast for {len(missing)} booked cases, e.g. {missing[:3]}", file="forecasts")
    c = booked.set_index("case_id", drop=False)
    c.index.name = None
    c["p50"] = f.loc[c.index, "p50"].astype(float)
    c["p80"] = np.maximum(f.loc[c.index, "p80"].astype(float), c["p50"])
    c["p95"] = f["p95"].reindex(c.index).astype(float) if "p95" in f.columns else c["p80"]
    c["cancel_prob"] = f["cancel_prob"].reindex(c.index).astype(float) if "cancel_prob" in f.columns else 0.0
    # Integer planning minutes: exported times then match the plan to the minute.
    # Each case's duration distribution as the simulation draws it (log-normal through P50 and
    # P80): mean and variance, for a room-day's total (terms.service_level_risk).
    sig = np.log(np.maximum(c["p80"], c["p50"] + 1e-6) / c["p50"].clip(lower=1e-6)) / Z80
    c["dur_mean"] = c["p50"] * np.exp(sig ** 2 / 2)
    c["dur_var"] = c["p50"] ** 2 * np.exp(sig ** 2) * np.expm1(sig ** 2)
    c["p50_i"] = np.ceil(c["p50"]).astype(int)
    c["p80_i"] = np.maximum(np.ceil(c["p80"]).astype(int), c["p50_i"])
    bm = pd.to_numeric(c["booked_minutes"], errors="coerce")
    c["booked_i"] = np.ceil(bm.fillna(c["p50"])).astype(int)
    c["equipment"] = c["required_equipment"].map(_equipment)
    c["booked_date"] = c["surgery_date"]
    c["booked_room"] = c["room_id"]
    c["is_urgent"] = c["urgency"].isin(["urgent", "emergent"])
    c["preferred_rooms"] = _preferred_rooms(h, c)

    st = h.staffing.set_index("date") if len(h.staffing) else pd.DataFrame(columns=["staffed_rooms", "anesthesia_teams", "pacu_beds"])
    staffing = pd.DataFrame(index=pd.Index(dates, name="date"))
    for col in ("staffed_rooms", "anesthesia_teams", "pacu_beds"):
        staffing[col] = st[col].reindex(dates).fillna(0).astype(int) if col in st.columns else 0
    staffing["room_cap"] = staffing[["staffed_rooms", "anesthesia_teams"]].min(axis=1)

    slots = _slots(h, [d for d in dates if staffing.loc[d, "room_cap"] > 0], cap)
    for d, room, from_min in downtime or []:
        hit = (slots["date"] == pd.Timestamp(d)) & (slots["room_id"] == room)
        # A room going down loses its time from that minute: no case may run into it.
        slots.loc[hit, "end_min"] = slots.loc[hit, "end_min"].clip(upper=from_min)
        slots.loc[hit, "p50_limit"] = slots.loc[hit, "p50_limit"].clip(upper=from_min)
        slots.loc[hit, "p80_limit"] = slots.loc[hit, "p80_limit"].clip(upper=from_min)
        slots = slots[~hit | (slots["end_min"] > slots["start_min"])]
    slots = _running_over(slots, c, locks)
    if published is None:
        published = pd.DataFrame({"case_id": c.index, "date": c["booked_date"].to_numpy(), "room_id": c["booked_room"].to_numpy()})
    ps, pe = h.settings.prime_window
    inst = PlanInstance(
        dates=dates, cases=c, slots=slots, eligible=pd.DataFrame(columns=["case_id", "slot_id"]), staffing=staffing,
        turnover_minutes=h.settings.turnover_minutes, pacu_minutes=h.settings.pacu_minutes,
        overtime_cap_minutes=cap, prime_start=ps, prime_end=pe, published=published, locks=locks,
    )
    sl = h.settings.service_levels
    inst.finish_plus_minutes, inst.finish_probability = float(sl.finish_by_close_plus_minutes), float(sl.finish_probability)
    inst.pacu_hold_budget_minutes = None if sl.pacu_hold_budget_minutes is None else float(sl.pacu_hold_budget_minutes)
    inst.pacu_beds_short = int(sl.pacu_beds_short)
    if params.hold_addon_rooms and addon_reserve is not None and len(addon_reserve):
        r = addon_reserve.assign(date=pd.to_datetime(addon_reserve["date"]).dt.normalize()).set_index("date")["reserve_minutes"]
        inst.addon_reserve = r.reindex(dates).fillna(0.0).astype(float)
    inst.eligible = eligible_pairs(inst, params)
    return inst


def _running_over(slots: pd.DataFrame, c: pd.DataFrame, locks: pd.DataFrame | None) -> pd.DataFrame:
    """A case already running (a lock with ``started`` true) that can no longer end by its block's
    limits, or by close plus the overtime cap at its P80, is a fact, not a choice: its slot's limits
    stretch to its own expected end (plus the other started cases of the slot), only started cases
    may use that slot, and the room's later slots that day are dropped (the room is taken)."""
    if locks is None or not len(locks) or "started" not in locks.columns or not len(slots):
        return slots
    slots = slots.copy()
    if "running_over" not in slots.columns:
        slots["running_over"] = False
    started = locks[locks["started"].fillna(False).astype(bool) & locks["start"].notna()]
    for lk in started.itertuples(index=False):
        if lk.case_id not in c.index:
            continue
        t = pd.Timestamp(lk.start)
        minute = t.hour * 60 + t.minute
        same = (slots["date"] == pd.Timestamp(lk.date).normalize()) & (slots["room_id"] == lk.room_id)
        home = same & (slots["start_min"] <= minute) & (minute < slots["p50_limit"])
        if not home.any():
            continue
        sid = slots.index[home][0]
        e50, e80 = minute + int(c.at[lk.case_id, "p50_i"]), minute + int(c.at[lk.case_id, "p80_i"])
        if e50 <= slots.at[sid, "p50_limit"] and e80 <= slots.at[sid, "p80_limit"]:
            continue
        others = [k for k in started["case_id"] if k != lk.case_id and k in c.index]
        slack = sum(int(c.at[k, "p50_i"]) for k in others)  # generous: any started case may share the slot
        slots.at[sid, "p50_limit"] = max(slots.at[sid, "p50_limit"], e50 + slack)
        slots.at[sid, "p80_limit"] = max(slots.at[sid, "p80_limit"], e80 + slack)
        slots.at[sid, "running_over"] = True
        slots = slots[~(same & (slots["start_min"] > minute))]
    return slots


def _preferred_rooms(h: Hospital, c: pd.DataFrame) -> pd.Series:
    """Surgeon's preferred rooms: surgeons.csv ``preferred_rooms`` when given, else their most used room."""
    sg = h.surgeons.set_index("surgeon_id")
    if "preferred_rooms" in sg.columns:
        pref = sg["preferred_rooms"].map(_equipment_upper)
    else:
        done = h.cases[(h.cases["status"] == "completed") & h.cases["room_id"].notna()]
        mode = done.groupby("surgeon_id")["room_id"].agg(lambda s: s.value_counts().index[0]) if len(done) else pd.Series(dtype=str)
        pref = mode.map(lambda r: frozenset([r]))
    return c["surgeon_id"].map(lambda s: pref.get(s, frozenset()) if s in pref.index else frozenset())


def _equipment_upper(v: object) -> frozenset[str]:
    if not isinstance(v, str):
        return frozenset()
    return frozenset(p.strip() for p in v.split(";") if p.strip())


def eligible_pairs(inst: PlanInstance, params: PlanParams) -> pd.DataFrame:
    """Sparse case x slot pairs where a case may go, with the per-pair objective terms."""
    c, s = inst.cases, inst.slots
    if not len(c) or not len(s):
        return pd.DataFrame(columns=["case_id", "slot_id", "date", "room_id", "pref_miss", "date_move", "room_move"])
    pub = inst.published.set_index("case_id") if inst.published is not None and len(inst.published) else None
    rows = []
    slots_by_line: dict = {}
    for sid, sl in s.iterrows():
        key = sl["service_line"] if sl["kind"] != "open" else "__open__"
        slots_by_line.setdefault(key, []).append((sid, sl))
    locks = inst.locks.set_index("case_id") if inst.locks is not None and len(inst.locks) else None
    for cid, case in c.iterrows():
        cands = slots_by_line.get(case["service_line"], []) + (slots_by_line.get("__open__", []) if params.allow_open_time else [])
        for sid, sl in cands:
            if sl["kind"] == "surgeon" and sl["surgeon_id"] != case["surgeon_id"]:
                continue
            if not case["equipment"] <= sl["capabilities"]:
                continue
            if not params.allow_date_change and sl["date"] != case["booked_date"]:
                continue
            is_started = locks is not None and cid in locks.index and bool(locks.loc[cid].get("started", False))
            if bool(sl.get("running_over", False)) and not is_started:
                continue  # a case running past its limits has taken this room for the rest of the day
            if locks is not None and cid in locks.index:
                lk = locks.loc[cid]
                if sl["date"] != pd.Timestamp(lk["date"]) or sl["room_id"] != lk["room_id"]:
                    continue
                # The slot (block) the locked start lies in, so the sequencer can keep the start.
                if "start" in lk.index and pd.notna(lk["start"]):
                    t = pd.Timestamp(lk["start"])
                    minute = t.hour * 60 + t.minute
                    if not sl["start_min"] <= minute < sl["p50_limit"]:
                        continue
            if case["p50_i"] > sl["p50_limit"] - sl["start_min"] or case["p80_i"] > sl["p80_limit"] - sl["start_min"]:
                continue
            pub_date = pub_room = None
            if pub is not None and cid in pub.index:
                pub_date, pub_room = pd.Timestamp(pub.loc[cid, "date"]), pub.loc[cid, "room_id"]
            rows.append({
                "case_id": cid, "slot_id": sid, "date": sl["date"], "room_id": sl["room_id"],
                "pref_miss": float(bool(case["preferred_rooms"]) and sl["room_id"] not in case["preferred_rooms"]),
                "date_move": float(pub_date is not None and sl["date"] != pub_date),
                "room_move": float(isinstance(pub_room, str) and sl["room_id"] != pub_room),
            })
    return pd.DataFrame(rows, columns=["case_id", "slot_id", "date", "room_id", "pref_miss", "date_move", "room_move"])


def closing_case(slot, p50: dict, p80: dict, turnover: float, strict: bool = True) -> str | None:
    """The case to run last in ``slot`` (a slots row) when the cases ``p50``/``p80`` (case_id ->
    minutes) run back to back at P50 from its start: among the cases that, run last, still start
    before the block ends (H9: no case is planned to start after its block) and end by the slot's
    P80 limit at their P80 (H3), the one with the smallest P80 - P50 (ties: longer P50, then id).
    When no case can close the slot that way: None, or with ``strict=False`` the smallest P80 - P50
    of all (the sequencer then defers what does not fit). The model sizes slots with the same rule
    (model.closing_case_fits); the sequencer and the warm start follow it."""
    if not p50:
        return None
    load = sum(p50.values()) + turnover * (len(p50) - 1)
    length = slot["end_min"] - slot["start_min"]
    limit80 = slot["p80_limit"] - slot["start_min"]
    ok = [i for i in p50 if load - p50[i] < length and load + p80[i] - p50[i] <= limit80]
    if not ok and strict:
        return None
    return min(ok or p50, key=lambda i: (p80[i] - p50[i], -p50[i], i))


def slot_fits(slot, p50: dict, p80: dict, turnover: float) -> bool:
    """Do the cases ``p50``/``p80`` (case_id -> minutes) fit ``slot`` as the model sizes it: back to
    back at P50 by its P50 limit, with a case that can close it (closing_case)?"""
    if not p50:
        return True
    load = sum(p50.values()) + turnover * (len(p50) - 1)
    return load <= slot["p50_limit"] - slot["start_min"] and closing_case(slot, p50, p80, turnover) is not None


def minutes_to_time(date: pd.Timestamp, minutes: float) -> pd.Timestamp:
    return pd.Timestamp(date) + pd.Timedelta(minutes=int(round(minutes)))


def ceil_int(x: float) -> int:
    return int(math.ceil(x - 1e-9))


def _part_count(inst: PlanInstance, cids) -> int | None:
    """The rules' case count within a part: ``min_scheduled`` split by the cases it placed."""
    if inst.min_scheduled is None or getattr(inst, "rules_placed", None) is None:
        return None
    return int(len(set(cids) & inst.rules_placed))


def split_instance(inst: PlanInstance) -> list[PlanInstance]:
    """Independent parts of an instance: groups of dates no case can move between.

    Two dates are joined when some case is eligible on both (a date change) or booked on one
    and eligible on the other. Each part keeps its own cases, slots, pairs and staffing, so its
    model is solved alone and the parts' objectives add up to the whole's. One part when the
    horizon is one day or cases may move between all of its days.
    """
    if len(inst.dates) <= 1:
        return [inst]
    parent = {d: d for d in inst.dates}

    def find(d):
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    el = inst.eligible
    if len(el):
        for _, g in el.groupby("case_id")["date"]:
            ds = [pd.Timestamp(x) for x in g.unique()]
            for other in ds[1:]:
                parent[find(other)] = find(ds[0])
    # A case with no pair stays with its booked date (it is deferred there).
    groups: dict = {}
    for d in inst.dates:
        groups.setdefault(find(d), []).append(d)
    if len(groups) == 1:
        return [inst]
    day_of_case = el.groupby("case_id")["date"].first() if len(el) else pd.Series(dtype="datetime64[ns]")
    home = inst.cases["booked_date"].copy()
    home.loc[home.index.intersection(day_of_case.index)] = day_of_case
    parts = []
    for ds in groups.values():
        root = set(ds)
        cids = home.index[home.map(lambda d: pd.Timestamp(d) in root).astype(bool)]
        parts.append(PlanInstance(
            dates=sorted(ds), cases=inst.cases.loc[cids], slots=inst.slots[inst.slots["date"].isin(ds)],
            eligible=el[el["date"].isin(ds)].reset_index(drop=True), staffing=inst.staffing.loc[sorted(ds)],
            turnover_minutes=inst.turnover_minutes, pacu_minutes=inst.pacu_minutes,
            overtime_cap_minutes=inst.overtime_cap_minutes, prime_start=inst.prime_start, prime_end=inst.prime_end,
            published=inst.published, locks=inst.locks, notes=inst.notes,
            addon_reserve=inst.addon_reserve.loc[sorted(ds)] if inst.addon_reserve is not None else None,
            finish_plus_minutes=inst.finish_plus_minutes, finish_probability=inst.finish_probability,
            pacu_hold_budget_minutes=inst.pacu_hold_budget_minutes, pacu_beds_short=inst.pacu_beds_short,
            min_scheduled=_part_count(inst, cids), rules_placed=inst.rules_placed,
        ))
    return parts
