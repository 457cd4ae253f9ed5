"""generate_hospital: the whole hospital in memory, from one SeedSequence (a child stream per
component); staffing, blocks, the elective book and the assembled tables."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from engine.contract import (
    BLOCKS_COLUMNS,
    CASES_COLUMNS,
    ROOMS_COLUMNS,
    SETTINGS_FILE,
    STAFFING_COLUMNS,
    SURGEONS_COLUMNS,
)
from engine.generator.catalog import _SERVICE_LINES
from engine.generator.days import _CASE_FIELDS, _simulate_days
from engine.generator.params import ADMISSION_TYPES, ANESTHESIA_TYPES, GeneratorParams
from engine.generator.patients import _booked_minutes, _patient_terms, _patients
from engine.generator.world import _build_procedures, _build_rooms, _build_surgeons, _build_template, _us_holidays, _whole, _World
from engine.timeutil import minutes_to_hhmm

logger = logging.getLogger("engine.generator")


_STREAMS = ("catalog", "surgeons", "template", "staffing", "blocks", "candidates", "patients",
            "durations", "cancel", "day", "addons")


def generate_hospital(params: GeneratorParams) -> dict[str, pd.DataFrame | dict[str, Any]]:
    """Build the demo hospital in memory.

    Returns ``{"cases.csv", "rooms.csv", "surgeons.csv", "blocks.csv", "staffing.csv",
    "truth.csv"}`` as DataFrames (dates and datetimes as ``datetime64``) and ``"settings.toml"``
    as a dict. The same ``params`` always give identical output.
    """
    if not isinstance(params, GeneratorParams):
        raise TypeError("params must be a GeneratorParams")
    seq = np.random.SeedSequence(params.seed)
    rngs = {name: np.random.default_rng(child) for name, child in zip(_STREAMS, seq.spawn(len(_STREAMS)))}

    sls = list(_SERVICE_LINES[: params.n_service_lines])
    procs = _build_procedures(params, sls, rngs["catalog"])
    rooms = _build_rooms(params)
    surgeons, pref, interaction = _build_surgeons(params, sls, procs, rooms, rngs["surgeons"])
    pm = procs["equip_mask"].to_numpy()
    rm = rooms["cap_mask"].to_numpy()
    feasible = ((pm[None, :] & ~rm[:, None]) == 0) & (rooms["is_main"].to_numpy()[:, None]
                                                      | procs["ambulatory_ok"].to_numpy()[None, :])
    world = _World(sls, procs, rooms, feasible, surgeons, pref, interaction)
    template = _build_template(params, world, rngs["template"])

    today_day = int(np.datetime64(params.today, "D").astype(int))
    first_day = today_day - params.history_days
    days = np.arange(first_day, today_day + params.horizon_days)
    years = range(params.today.year - params.history_days // 365 - 2, params.today.year + 2)
    holidays = {int(np.datetime64(h, "D").astype(int)) for h in _us_holidays(years)}
    weekday = (days + 3) % 7            # 1970-01-01 was a Thursday
    is_holiday = np.array([d in holidays for d in days], dtype=bool)
    workday = (weekday < 5) & ~is_holiday

    staffing = _staffing(params, rooms, days, workday, rngs["staffing"])
    blocks = _blocks(template, days, workday)
    electives = _electives(params, world, blocks, today_day, rngs)
    cases = _simulate_days(params, world, electives, blocks, staffing, days, workday, today_day, rngs)

    frames = _assemble(params, world, cases, blocks, staffing, rooms, surgeons)
    logger.info("generated hospital seed=%s: %d cases, %d rooms, %d surgeons, %d blocks", params.seed,
                len(frames["cases.csv"]), len(rooms), len(surgeons), len(frames["blocks.csv"]))
    return frames


def _staffing(params: GeneratorParams, rooms: pd.DataFrame, days: np.ndarray, workday: np.ndarray,
              rng: np.random.Generator) -> pd.DataFrame:
    n = len(days)
    r = params.rooms
    minus_one = (rng.random(n) < 0.25) & (r >= 4)
    dip = np.where(rng.random(n) < 0.05, rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]), 0)
    staffed = np.clip(r - minus_one - dip, 1, r)
    team_delta = rng.choice([-2, -1, 0, 1], size=n, p=[0.03, 0.09, 0.68, 0.20])
    teams = np.clip(staffed + team_delta, 1, staffed + 1)
    pacu_base = max(1, round(0.8 * r))
    pacu = pacu_base + rng.choice([-1, 0, 0, 1], size=n) - np.where(rng.random(n) < 0.06,
                                                                    rng.integers(2, 5, n), 0)
    pacu = np.clip(pacu, 1, None)
    on_call = np.where((r >= 10) & (rng.random(n) < 0.3), 2, 1)
    on_call = np.minimum(on_call, int(rooms["is_main"].sum()))
    return pd.DataFrame({
        "day": days,
        "staffed_rooms": np.where(workday, staffed, on_call).astype(int),
        "anesthesia_teams": np.where(workday, teams, on_call).astype(int),
        "pacu_beds": np.where(workday, pacu, np.minimum(pacu_base, 2 + (on_call > 1))).astype(int),
    })


def _blocks(template: list[list[tuple[int, int, int, int, int]]], days: np.ndarray,
            workday: np.ndarray) -> pd.DataFrame:
    rows = []
    for d, wd, ok in zip(days, (days + 3) % 7, workday):
        if not ok:
            continue
        for r, s, g, a, b in template[int(wd)]:
            rows.append((int(d), r, s, g, a, b))
    return pd.DataFrame(np.array(rows, dtype=np.int64).reshape(-1, 6),
                        columns=["day", "room", "sl", "surgeon", "start", "end"])


def _electives(params: GeneratorParams, world: _World, blocks: pd.DataFrame, today_day: int,
               rngs: dict[str, np.random.Generator]) -> pd.DataFrame:
    """Elective cases booked into blocks, first come first served, with their true parameters."""
    rng = rngs["blocks"]
    surg = world.surgeons
    sls = world.sls
    rooms = world.rooms
    surg_sl = surg["sl_idx"].to_numpy()
    surg_start = np.array([np.datetime64(d, "D").astype(int) for d in surg["start_date"]])
    volume = surg["volume"].to_numpy()
    home = surg["home_site"].to_numpy()
    room_site = rooms["site"].to_numpy()
    turnover = params.turnover_minutes
    ew = world.procs["elective_w"].to_numpy()
    proc_base = world.procs["base_minutes"].to_numpy()
    proc_sl = world.procs["sl_idx"].to_numpy()

    # fill units: one surgeon's share of one block
    units = []   # (block_row, day, room, sl, surgeon, start, end, fill)
    blocks = blocks.sort_values(["day", "room", "start"], kind="stable").reset_index(drop=True)
    for day, grp in blocks.groupby("day", sort=True):
        used = set(int(g) for g in grp["surgeon"] if g >= 0)
        horizon = day >= today_day
        fill_mean = params.horizon_fill_mean if horizon else params.block_fill_mean
        for row in grp.itertuples():
            owner = int(row.surgeon)
            release_p = 0.06 if owner >= 0 else 0.02
            if rng.random() < release_p:
                continue   # released: vacation, conference, no demand
            f = min(1.0, rng.beta(fill_mean * 14, (1 - fill_mean) * 14))
            if owner >= 0:
                units.append((row.Index, day, row.room, row.sl, owner, row.start, row.end, f))
                continue
            pool = [int(p) for p in np.flatnonzero((surg_sl == row.sl) & (surg_start <= day))
                    if int(p) not in used]
            if not pool:
                pool = [int(p) for p in np.flatnonzero((surg_sl == row.sl) & (surg_start <= day))]
            if not pool:
                continue
            w = volume[pool] * np.where(home[pool] == room_site[row.room], 1.6, 1.0)
            two = len(pool) >= 2 and row.end - row.start >= 480 and rng.random() < 0.35
            picks = rng.choice(pool, size=2 if two else 1, replace=False, p=w / w.sum())
            used.update(int(p) for p in picks)
            if two:
                mid = row.start + ((row.end - row.start) // 2 // 15) * 15
                units.append((row.Index, day, row.room, row.sl, int(picks[0]), row.start, mid, f))
                units.append((row.Index, day, row.room, row.sl, int(picks[1]), mid, row.end, f))
            else:
                units.append((row.Index, day, row.room, row.sl, int(picks[0]), row.start, row.end, f))
    if not units:
        return pd.DataFrame()
    u = pd.DataFrame(units, columns=["block", "day", "room", "sl", "surgeon", "start", "end", "fill"])

    # candidates: more than can fit, drawn from the surgeon's own case mix in that room
    sl_min = np.array([proc_base[proc_sl == s].min() for s in range(len(sls))])
    k = np.ceil((u["end"] - u["start"]) / (0.8 * sl_min[u["sl"]] + turnover)).astype(int) + 3
    k = np.minimum(k, 40)
    cu = np.repeat(np.arange(len(u)), k)
    c_room = u["room"].to_numpy()[cu]
    c_surg = u["surgeon"].to_numpy()[cu]
    c_day = u["day"].to_numpy()[cu]
    rc = rngs["candidates"]
    proc = np.empty(len(cu), dtype=int)
    keys = c_surg * len(rooms) + c_room
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        s, r = divmod(int(key), len(rooms))
        w = world.pref[s] * world.feasible[r]
        if w.sum() <= 0:
            w = ew * world.feasible[r] * (proc_sl == surg_sl[s])
        if w.sum() <= 0:
            w = world.feasible[r] * (proc_sl == surg_sl[s]) * 1.0
        proc[idx] = rc.choice(len(w), size=len(idx), p=w / w.sum())
    main_site = rooms["is_main"].to_numpy()[c_room]
    zeros = np.zeros(len(cu), dtype=bool)
    pat = _patients(rngs["patients"], world, proc, main_site, zeros, zeros)
    raw = _patient_terms(None, proc, pat, zeros)
    c_sl = world.procs["sl_idx"].to_numpy()[proc]
    world.patient_center = np.array([raw[c_sl == s].mean() if (c_sl == s).any() else 0.0
                                     for s in range(len(sls))])
    lead_med = 16.0 * np.array([sl.lead_factor for sl in sls])[u["sl"].to_numpy()[cu]]
    lead = 1 + np.floor(np.exp(rc.normal(np.log(lead_med), 0.85)))
    lead = np.minimum(lead, 180).astype(int)
    book_day = c_day - lead
    bwd = (book_day + 3) % 7
    book_day = book_day - np.where(bwd == 5, 1, 0) - np.where(bwd == 6, 2, 0)
    book_min = rc.integers(7 * 60 + 30, 17 * 60 + 30, len(cu))
    booked = _booked_minutes(rc, world, c_surg, proc, pat, zeros, c_day, today_day)

    cand = pd.DataFrame({"unit": cu, "day": c_day, "room": c_room, "surgeon": c_surg, "proc": proc,
                         "book_day": book_day, "book_min": book_min, "booked": booked,
                         "block": u["block"].to_numpy()[cu]})
    for key, val in pat.items():
        cand[key] = val
    # demand: the candidates, in the order they arise, fill the unit up to its fill target (a case
    # that does not fit goes to another list); cand is already grouped by unit in draw order
    unit_arr = cand["unit"].to_numpy()
    booked_arr = cand["booked"].to_numpy()
    u_start = u["start"].to_numpy()
    u_fill = u["fill"].to_numpy()
    u_cap = (u["end"] - u["start"]).to_numpy() * u_fill
    accept = np.zeros(len(cand), dtype=bool)
    bounds = np.flatnonzero(np.diff(unit_arr, prepend=-1, append=-2))
    for a, b in zip(bounds[:-1], bounds[1:]):
        un = unit_arr[a]
        used = 0.0
        n_acc = 0
        cap = u_cap[un]
        for j in range(a, b):
            need = booked_arr[j] + (turnover if n_acc else 0.0)
            # a long first case may take a whole block that its fill target alone would refuse
            if used + need <= cap or (n_acc == 0 and u_fill[un] > 0.5 and booked_arr[j] <= cap / u_fill[un]):
                used += need
                n_acc += 1
                accept[j] = True
    out = cand[accept]
    # the horizon as known at the as-of date: the cases posted since are not there yet
    out = out[~((out["day"] >= today_day) & (out["book_day"] >= today_day))]
    # first come first served: the list runs in booking order, back to back at the booked times
    out = out.sort_values(["unit", "book_day", "book_min"], kind="stable").copy()
    gap = out.groupby("unit").cumcount().to_numpy() > 0
    need = out["booked"].to_numpy() + np.where(gap, turnover, 0.0)
    before = out.assign(need=need).groupby("unit")["need"].cumsum().to_numpy() - out["booked"].to_numpy()
    out["sched"] = (u_start[out["unit"].to_numpy()] + before).astype(int)
    out = out.sort_values(["day", "room", "sched"], kind="stable").reset_index(drop=True)
    out["urgency"] = 0
    return out


def _assemble(params: GeneratorParams, world: _World, cases: pd.DataFrame, blocks: pd.DataFrame,
              staffing: pd.DataFrame, rooms: pd.DataFrame, surgeons: pd.DataFrame
              ) -> dict[str, pd.DataFrame | dict[str, Any]]:
    procs = world.procs
    if cases.empty:
        cases = pd.DataFrame({k: np.zeros(0, dtype=t) for k, t in _CASE_FIELDS.items()})
    cases = cases.sort_values(["day", "room", "sched", "book_day", "book_min"], kind="stable").reset_index(drop=True)
    n = len(cases)
    width = max(6, len(str(n)))
    case_id = np.array([f"C{i + 1:0{width}d}" for i in range(n)], dtype=object)
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, 99]))
    day = cases["day"].to_numpy().astype("int64")

    def stamp(dd: np.ndarray, minutes: np.ndarray, valid: np.ndarray) -> pd.Series:
        vals = (dd.astype("int64") * 1440 + np.where(valid, minutes, 0).astype("int64")).astype("datetime64[m]")
        s = pd.Series(vals.astype("datetime64[s]"))
        s[~valid] = pd.NaT
        return s

    proc = cases["proc"].to_numpy().astype(int)
    status = cases["status"].to_numpy()
    done = status == 1
    wi = cases["wheels_in"].to_numpy()
    wo = cases["wheels_out"].to_numpy()
    dur = wo - wi
    an = cases["anesthesia"].to_numpy().astype(int)
    pre_med = np.array([22.0, 18.0, 8.0, 5.0])[an]
    post_med = np.array([12.0, 8.0, 5.0, 4.0])[an]
    pre = np.maximum(1, np.minimum(np.round(pre_med * np.exp(rng.normal(0, 0.3, n))), np.floor(0.3 * dur)))
    post = np.maximum(1, np.minimum(np.round(post_med * np.exp(rng.normal(0, 0.3, n))), np.floor(0.2 * dur)))
    room = cases["room"].to_numpy().astype(int)
    has_room = room >= 0
    bmi = cases["bmi"].to_numpy().astype(float)
    bmi = np.where(rng.random(n) < params.bmi_missing_rate, np.nan, bmi)
    urgency = cases["urgency"].to_numpy()
    st_text = np.array(["booked", "completed", "cancelled"], dtype=object)[status]
    reason = cases["reason"].to_numpy()
    reason = np.where(status == 2, reason, None)
    sched = cases["sched"].to_numpy()
    out = pd.DataFrame({
        "case_id": case_id,
        "surgery_date": pd.Series(day.astype("datetime64[D]").astype("datetime64[s]")),
        "status": st_text,
        "service_line": procs["service_line"].to_numpy()[proc],
        "procedure_code": procs["procedure_code"].to_numpy()[proc],
        "procedure_name": procs["procedure_name"].to_numpy()[proc],
        "surgeon_id": surgeons["surgeon_id"].to_numpy()[cases["surgeon"].to_numpy().astype(int)],
        "room_id": np.where(has_room, rooms["room_id"].to_numpy()[np.maximum(room, 0)], None),
        "booked_minutes": cases["booked"].to_numpy().astype(float),
        "booked_at": stamp(cases["book_day"].to_numpy(), cases["book_min"].to_numpy(), np.ones(n, bool)),
        "scheduled_start": stamp(day, sched, sched >= 0),
        "wheels_in": stamp(day, wi, done),
        "wheels_out": stamp(day, wo, done),
        "procedure_start": stamp(day, wi + pre, done),
        "procedure_end": stamp(day, wo - post, done),
        "urgency": np.array(["elective", "urgent", "emergent"], dtype=object)[urgency],
        "cancellation_reason": reason,
        "required_equipment": procs["required_equipment"].to_numpy()[proc],
        "patient_age": cases["age"].to_numpy().astype(int),
        "patient_sex": np.where(cases["female"].to_numpy(), "F", "M"),
        "asa_class": cases["asa"].to_numpy().astype(int),
        "bmi": bmi,
        "anesthesia_type": np.array(ANESTHESIA_TYPES, dtype=object)[an],
        "admission_type": np.array(ADMISSION_TYPES, dtype=object)[cases["admission"].to_numpy().astype(int)],
        "site": np.where(has_room, rooms["site"].to_numpy()[np.maximum(room, 0)], None),
    })
    assert list(out.columns) == list(CASES_COLUMNS)
    truth = pd.DataFrame({
        "case_id": case_id,
        "true_median_minutes": np.round(np.exp(cases["log_med"].to_numpy()), 2),
        "true_sigma": np.round(cases["sigma"].to_numpy(), 4),
        "true_cancel_prob": np.round(cases["p_cancel"].to_numpy(), 5),
    })

    rooms_out = rooms[list(ROOMS_COLUMNS)].copy()
    surgeons_out = surgeons[list(SURGEONS_COLUMNS) + ["name", "home_site"]].copy()
    surgeons_out["start_date"] = pd.to_datetime(pd.Series(surgeons["start_date"])).dt.strftime("%Y-%m-%d")
    b = blocks.sort_values(["day", "room", "start"], kind="stable")
    blocks_out = pd.DataFrame({
        "date": pd.Series(b["day"].to_numpy().astype("int64").astype("datetime64[D]").astype("datetime64[s]")),
        "room_id": rooms["room_id"].to_numpy()[b["room"].to_numpy().astype(int)],
        "service_line": [world.sls[s].name for s in b["sl"]],
        "surgeon_id": np.where(b["surgeon"].to_numpy() >= 0,
                               surgeons["surgeon_id"].to_numpy()[np.maximum(b["surgeon"].to_numpy(), 0)], None),
        "start_time": [minutes_to_hhmm(int(x)) for x in b["start"]],
        "end_time": [minutes_to_hhmm(int(x)) for x in b["end"]],
    })
    assert list(blocks_out.columns) == list(BLOCKS_COLUMNS)
    staffing_out = pd.DataFrame({
        "date": pd.Series(staffing["day"].to_numpy().astype("int64").astype("datetime64[D]").astype("datetime64[s]")),
        "staffed_rooms": staffing["staffed_rooms"].to_numpy(),
        "anesthesia_teams": staffing["anesthesia_teams"].to_numpy(),
        "pacu_beds": staffing["pacu_beds"].to_numpy(),
    })
    assert list(staffing_out.columns) == list(STAFFING_COLUMNS)
    settings = {
        "hospital_name": params.hospital_name,
        "turnover_minutes": _whole(params.turnover_minutes),
        "pacu_minutes": _whole(params.pacu_minutes),
        "prime_time": params.prime_time,
        "overtime_cap_minutes": _whole(params.overtime_cap_minutes),
        "as_of": params.today.isoformat(),
        "seed": params.seed,
    }
    return {
        "cases.csv": out,
        "rooms.csv": rooms_out,
        "surgeons.csv": surgeons_out,
        "blocks.csv": blocks_out,
        "staffing.csv": staffing_out,
        "truth.csv": truth,
        SETTINGS_FILE: settings,
    }
