"""The history's days: each day's electives run with their real durations, cancellations and add-ons
(what cases.csv records)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engine.generator.params import ADDON_LAST_START_MINUTE, CANCEL_REASONS, GeneratorParams
from engine.generator.patients import _booked_minutes, _duration, _log_median, _noise, _patients, _sigma, _surgeon_terms
from engine.generator.world import _choice_rows, _sigmoid, _World


def _simulate_days(params: GeneratorParams, world: _World, el: pd.DataFrame, blocks: pd.DataFrame,
                   staffing: pd.DataFrame, days: np.ndarray, workday: np.ndarray, today_day: int,
                   rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Run every history day: cancellations, late starts, turnovers, overtime, add-ons."""
    rooms, surg, procs = world.rooms, world.surgeons, world.procs
    sls = world.sls
    n_rooms = len(rooms)
    is_main = rooms["is_main"].to_numpy()
    open_min = rooms["open_min"].to_numpy()
    close_min = rooms["close_min"].to_numpy()
    cap_mask = rooms["cap_mask"].to_numpy()
    equip_mask = procs["equip_mask"].to_numpy()
    turnover = params.turnover_minutes
    rng = rngs["day"]

    # add-on arrivals (history only)
    addons = _addons(params, world, days, workday, today_day, rngs)
    cases = pd.concat([el, addons], ignore_index=True) if len(addons) else el.copy()
    if cases.empty:
        return cases
    n = len(cases)
    proc = cases["proc"].to_numpy()
    surgeon = cases["surgeon"].to_numpy().copy()
    main_site = is_main[cases["room"].to_numpy()] if "room" in cases else np.ones(n, bool)
    addon = cases["urgency"].to_numpy() > 0
    emergent = cases["urgency"].to_numpy() == 2
    pat = {k: cases[k].to_numpy() for k in ("age", "female", "bmi", "asa", "anesthesia", "admission")}
    day = cases["day"].to_numpy()
    # add-on rooms are chosen below; all add-ons run at the main site
    main_site = np.where(addon, True, main_site)
    log_med = _log_median(world, surgeon, proc, pat, main_site, emergent, day, today_day)
    sigma = _sigma(world, proc, pat["asa"], addon)
    z, mult = _noise(rngs["durations"], world, proc, pat["asa"])
    actual = _duration(log_med, sigma, z, mult)
    cases["sigma"] = sigma
    surg_sl = surg["sl_idx"].to_numpy()
    surg_start = np.array([np.datetime64(x, "D").astype(int) for x in surg["start_date"]])

    # day-of cancellation: logistic in lead time, ASA, admission, service line, surgeon
    rc = rngs["cancel"]
    lead_days = np.maximum(day - cases["book_day"].to_numpy(), 0)
    sl = procs["sl_idx"].to_numpy()[proc]
    eta = (0.8 * np.log1p(lead_days) + 0.65 * (pat["asa"] - 2) + 1.0 * (pat["admission"] == 2)
           + 0.35 * (pat["admission"] == 1) + np.array([x.cancel_effect for x in sls])[sl]
           + surg["cancel_effect"].to_numpy()[surgeon] + 0.45 * (pat["age"] >= 80)
           + 0.35 * (pat["bmi"] >= 40) + 0.2 * ((day + 3) % 7 == 0))
    hist_el = (~addon) & (day < today_day)
    lo, hi = -15.0, 5.0
    target = params.cancel_rate
    for _ in range(60):   # intercept that gives the target mean probability on history electives
        mid = (lo + hi) / 2
        if hist_el.any() and _sigmoid(mid + eta[hist_el]).mean() > target:
            hi = mid
        else:
            lo = mid
    p_cancel = np.where(addon, 0.025, _sigmoid((lo + hi) / 2 + eta))
    cancelled = rc.random(n) < p_cancel
    reason_w = np.column_stack([
        1.0 + 1.2 * (pat["asa"] >= 3) + 1.0 * addon,
        (0.8 + 0.8 * (lead_days > 30)) * (pat["admission"] != 2) * (~addon),
        2.2 * (pat["admission"] == 2) + 0.5 * (pat["admission"] == 1),
        0.45 * np.ones(n),
        0.25 + 0.5 * (procs["equip_mask"].to_numpy()[proc] > 0),
        0.6 * np.ones(n),
    ])
    reason = _choice_rows(rc, reason_w)
    cases["p_cancel"] = p_cancel

    # ---- day by day, room by room
    wheels_in = np.full(n, -1, dtype=int)
    wheels_out = np.full(n, -1, dtype=int)
    status = np.where(day >= today_day, 0, 1)          # 0 booked, 1 completed, 2 cancelled
    reason_txt = np.full(n, "", dtype=object)
    room_arr = cases["room"].to_numpy().copy()
    sched_arr = cases["sched"].to_numpy().copy()
    cx = procs["complexity"].to_numpy()[proc]
    # random pieces drawn up front (vectorised), used in the loop
    turn = np.clip(np.exp(rng.normal(np.log(turnover), 0.3, n)) * (1 + 0.25 * (cx > 0.6))
                   * np.where(main_site, 1.0, 0.8), 12, 150).round()
    booked_arr = cases["booked"].to_numpy()
    ready_arr = cases["ready"].to_numpy() if "ready" in cases else np.zeros(n)
    early_ok = rng.random(n) < 0.7
    otime_go = rng.random(n) < 0.45
    staff = staffing.set_index("day")
    blocks_by_day = {d: g for d, g in blocks.groupby("day")}
    case_order = np.lexsort((sched_arr, room_arr, day))
    sorted_day = day[case_order]
    busy_until: dict[int, int] = {}
    ordered_days = np.sort(np.unique(day[day < today_day]))
    d_to_rng = rng.random((len(days), n_rooms, 5))
    day_index = {int(d): i for i, d in enumerate(days)}
    for d in ordered_days:
        d = int(d)
        lo_i = np.searchsorted(sorted_day, d, "left")
        hi_i = np.searchsorted(sorted_day, d, "right")
        todays = case_order[lo_i:hi_i]
        el_idx = todays[~addon[todays]]
        ad_idx = todays[addon[todays]]
        rr = d_to_rng[day_index[d]]
        staffed = int(staff.at[d, "staffed_rooms"])
        teams = int(staff.at[d, "anesthesia_teams"])
        blk = blocks_by_day.get(d)
        blocked_rooms = sorted(set(blk["room"].tolist())) if blk is not None else []
        load = {r: float(booked_arr[el_idx][room_arr[el_idx] == r].sum()) for r in blocked_rooms}
        if blk is not None:
            open_r = [r for r in range(n_rooms) if r not in blocked_rooms]
            closed = set()
            excess = n_rooms - staffed
            for r in sorted(open_r, reverse=True) + sorted(blocked_rooms, key=lambda r: (load[r], r)):
                if excess <= 0:
                    break
                closed.add(r)
                excess -= 1
            live = [r for r in range(n_rooms) if r not in closed
                    and (r in blocked_rooms or is_main[r])]
        else:
            # weekend or holiday: on-call rooms only, the best-equipped main rooms first
            main_rooms = sorted(np.flatnonzero(is_main), key=lambda r: (-bin(int(cap_mask[r])).count("1"), r))
            live = [int(r) for r in main_rooms[:staffed]]
            closed = set(range(n_rooms)) - set(live)
        short_teams = max(0, staffed - teams)
        free = {r: int(open_min[r]) for r in live}
        had_case: set[int] = set()
        busy_until = {}
        # electives, room by room
        for r in blocked_rooms:
            idx = el_idx[room_arr[el_idx] == r]
            if r in closed:
                status[idx] = 2
                reason_txt[idx] = "no staff"
                continue
            delay = 0
            if rr[r, 0] < params.late_start_prob * (1.3 if (d + 3) % 7 == 0 else 1.0):
                delay = int(round(-math.log(1 - rr[r, 1]) * params.late_start_mean_minutes)) + 1
                if rr[r, 2] < 0.12:
                    delay += int(20 + 55 * rr[r, 3])
            if short_teams > 0 and r in blocked_rooms[-short_teams:]:
                delay += 25 + int(35 * rr[r, 4])    # waiting for an anesthesia team
            t = None
            first = True
            for j in idx:
                if cancelled[j]:
                    status[j] = 2
                    reason_txt[j] = CANCEL_REASONS[reason[j]]
                    continue
                s_j = int(sched_arr[j])
                if first:
                    start = s_j + delay
                else:
                    earliest = s_j - 60 if early_ok[j] else s_j
                    start = max(t + int(turn[j]), earliest)
                    # no elective starts long after closing, nor runs far past the overtime cap
                    late_start = start > close_min[r] + params.overtime_cap_minutes / 2
                    too_long = start + booked_arr[j] > close_min[r] + params.overtime_cap_minutes
                    too_late = start > close_min[r] + params.overtime_cap_minutes
                    if too_late or (late_start and not (otime_go[j] and early_ok[j])) \
                            or (too_long and not otime_go[j]):
                        status[j] = 2
                        reason_txt[j] = "ran out of time"
                        continue
                dur = max(10, int(min(actual[j], 1439 - start)))   # the day ends at midnight
                wheels_in[j] = start
                wheels_out[j] = start + dur
                t = start + dur
                first = False
                busy_until[int(surgeon[j])] = max(busy_until.get(int(surgeon[j]), 0), t)
            if t is not None:
                free[r] = t
                had_case.add(r)
        # add-ons in order of readiness, into the live main room that frees first
        for j in ad_idx[np.argsort(ready_arr[ad_idx], kind="stable")]:
            need = equip_mask[proc[j]]
            ready = int(ready_arr[j])
            # the on-call surgeon of the line who is free first; the duration follows that surgeon
            pool = np.flatnonzero((surg_sl == sl[j]) & (surg_start <= d))
            if len(pool):
                g = int(min(pool, key=lambda p: (busy_until.get(int(p), 0), int(p))))
                one = np.array([j])
                log_med[j] += (_surgeon_terms(world, np.array([g]), proc[one], day[one], today_day)
                               - _surgeon_terms(world, surgeon[one], proc[one], day[one], today_day))[0]
                surgeon[j] = g
                actual[j] = _duration(log_med[one], sigma[one], z[one], mult[one])[0]
            not_before = max(ready, busy_until.get(int(surgeon[j]), 0) + 15 if int(surgeon[j]) in busy_until else 0)

            def start_in(r: int) -> int:
                if r in free:
                    return max(free[r] + (int(turn[j]) if r in had_case else 0), not_before)
                return max(int(open_min[r]) + 30, not_before)   # a team called in

            # a live main room with the equipment; an emergency may call in a closed one
            cands = [r for r in live if is_main[r] and (cap_mask[r] & need) == need]
            if emergent[j] or not cands:
                cands = cands + [r for r in range(n_rooms) if r not in cands and is_main[r]
                                 and (cap_mask[r] & need) == need]
            if not cands:
                cands = [r for r in range(n_rooms) if (cap_mask[r] & need) == need] or list(range(n_rooms))
            r = min(cands, key=lambda r: (start_in(r), r not in live, r))
            start = start_in(r)
            room_arr[j] = r
            sched_arr[j] = min(start, 1439 - 15)
            if cancelled[j] or start > ADDON_LAST_START_MINUTE:
                # too late tonight: the add-on is postponed (booked again as a new case)
                status[j] = 2
                reason_txt[j] = CANCEL_REASONS[reason[j]] if cancelled[j] else "ran out of time"
                continue
            dur = max(10, int(min(actual[j], 1439 - start)))
            wheels_in[j] = start
            wheels_out[j] = start + dur
            free[r] = start + dur
            had_case.add(r)
            busy_until[int(surgeon[j])] = start + dur
    cases["surgeon"] = surgeon
    cases["room"] = room_arr
    cases["sched"] = sched_arr
    cases["wheels_in"] = wheels_in
    cases["wheels_out"] = wheels_out
    cases["status"] = status
    cases["reason"] = reason_txt
    cases["log_med"] = log_med
    if addon.any():   # the on-call surgeon's own estimate, made when the add-on was posted
        cases["booked"] = np.where(addon, _booked_minutes(rngs["addons"], world, surgeon, proc, pat, emergent, day, today_day),
                                   cases["booked"].to_numpy())
    return cases


def _addons(params: GeneratorParams, world: _World, days: np.ndarray, workday: np.ndarray,
            today_day: int, rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Urgent and emergent add-ons of the history (the future ones are not known yet)."""
    rng = rngs["addons"]
    hist = days < today_day
    wd = (days + 3) % 7
    factor = np.select([~workday & (wd >= 5), ~workday, wd == 0, wd == 4], [0.35, 0.4, 1.3, 1.25], 1.0)
    lam = params.addon_rate_per_room * params.rooms * factor * hist
    counts = rng.poisson(lam)
    n = int(counts.sum())
    if n == 0:
        return pd.DataFrame()
    day = np.repeat(days, counts)
    sls = world.sls
    procs = world.procs
    share = np.array([sl.addon_share for sl in sls])
    sl = rng.choice(len(sls), size=n, p=share / share.sum())
    aw = procs["addon_w"].to_numpy()
    proc = np.empty(n, dtype=int)
    proc_sl = procs["sl_idx"].to_numpy()
    for s in range(len(sls)):
        idx = np.flatnonzero(sl == s)
        if len(idx):
            w = aw * (proc_sl == s)
            proc[idx] = rng.choice(len(w), size=len(idx), p=w / w.sum())
    emergent = rng.random(n) < 0.3
    # booked: emergent the same day; urgent the evening before or the same morning
    prev = (~emergent) & (rng.random(n) < 0.5)
    book_min = np.where(emergent, rng.integers(6 * 60, 19 * 60, n),
                        np.where(prev, rng.integers(12 * 60, 20 * 60, n), rng.integers(6 * 60, 12 * 60, n)))
    book_day = day - prev
    ready = np.where(emergent, book_min + rng.integers(30, 120, n),
                     np.where(prev, 7 * 60 + 30 + rng.integers(0, 360, n), book_min + rng.integers(90, 240, n)))
    ready = np.minimum(ready, 21 * 60)
    ones = np.ones(n, dtype=bool)
    pat = _patients(rngs["patients"], world, proc, ones, ones, emergent)
    # surgeon is fixed on the day (on call); a placeholder from the line for now
    surg_sl = world.surgeons["sl_idx"].to_numpy()
    first_of = np.array([np.flatnonzero(surg_sl == s)[0] for s in range(len(sls))])
    out = pd.DataFrame({"day": day, "room": -1, "surgeon": first_of[proc_sl[proc]], "proc": proc,
                        "book_day": book_day, "book_min": book_min, "booked": 0.0, "block": -1,
                        "sched": -1, "urgency": np.where(emergent, 2, 1), "ready": ready})
    for key, val in pat.items():
        out[key] = val
    return out


# internal case fields (one row per case) as they reach _assemble
_CASE_FIELDS: dict[str, Any] = {
    "day": np.int64, "room": np.int64, "sched": np.int64, "book_day": np.int64, "book_min": np.int64,
    "proc": np.int64, "surgeon": np.int64, "status": np.int64, "wheels_in": np.int64, "wheels_out": np.int64,
    "anesthesia": np.int64, "bmi": float, "urgency": np.int64, "reason": object, "booked": float,
    "age": np.int64, "female": bool, "asa": np.int64, "admission": np.int64, "log_med": float,
    "sigma": float, "p_cancel": float,
}
