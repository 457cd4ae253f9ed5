"""The static world of a generated hospital: procedures, rooms, surgeons and the block template (and
the small helpers they share)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.generator.catalog import _AMBULATORY_MAX, _LAST_NAMES, _ServiceLine
from engine.generator.params import _EQ_BIT, EQUIPMENT, GeneratorParams, ROOM_TIME_OVERHEAD_MINUTES, ROOM_TIME_SCALE, SITE_NAMES
from engine.timeutil import hhmm_to_minutes


def _largest_remainder(weights: np.ndarray, total: int, minimum: int = 0) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights``, each >= ``minimum``."""
    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    base = np.full(n, minimum, dtype=int)
    rest = total - base.sum()
    if rest <= 0:
        # not enough to give everyone the minimum: the heaviest first
        out = np.zeros(n, dtype=int)
        order = np.argsort(-weights, kind="stable")
        out[order[:total]] = 1
        return out
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(int)
    left = rest - counts.sum()
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:left]] += 1
    return base + counts


def _whole(x: float) -> int | float:
    """30.0 -> 30 (TOML readers then see the integer the settings mean)."""
    return int(x) if float(x).is_integer() else float(x)


def _round15(x: np.ndarray) -> np.ndarray:
    return np.maximum(15.0, np.round(np.asarray(x, dtype=float) / 15.0) * 15.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) weight matrix (rows need not be normalised)."""
    cum = np.cumsum(weights, axis=1)
    total = cum[:, -1:]
    u = rng.random((weights.shape[0], 1)) * total
    idx = (cum <= u).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def _us_holidays(years: range) -> list[dt.date]:
    """Major US holidays on which no elective lists run (observed dates)."""
    out: list[dt.date] = []

    def observed(d: dt.date) -> dt.date:
        if d.weekday() == 5:
            return d - dt.timedelta(days=1)
        if d.weekday() == 6:
            return d + dt.timedelta(days=1)
        return d

    def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
        d = dt.date(year, month, 1)
        d += dt.timedelta(days=(weekday - d.weekday()) % 7)
        return d + dt.timedelta(weeks=n - 1)

    def last_weekday(year: int, month: int, weekday: int) -> dt.date:
        d = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
        return d - dt.timedelta(days=(d.weekday() - weekday) % 7)

    for y in years:
        out += [observed(dt.date(y, 1, 1)), last_weekday(y, 5, 0), observed(dt.date(y, 7, 4)),
                nth_weekday(y, 9, 0, 1), nth_weekday(y, 11, 3, 4), observed(dt.date(y, 12, 25))]
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# The static world: procedures, rooms, surgeons, block template
# ---------------------------------------------------------------------------------------------
@dataclass
class _World:
    sls: list[_ServiceLine]
    procs: pd.DataFrame          # one row per procedure
    rooms: pd.DataFrame
    feasible: np.ndarray         # (n_rooms, n_procs) bool: procedure may run in room
    surgeons: pd.DataFrame
    pref: np.ndarray             # (n_surgeons, n_procs) elective procedure weights
    interaction: np.ndarray      # (n_surgeons, n_procs) log-duration surgeon x procedure effect
    # mean patient effect per service line, so that a procedure's base time is the median for
    # the line's typical patient (set once the elective patients are drawn)
    patient_center: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _build_procedures(params: GeneratorParams, sls: list[_ServiceLine],
                      rng: np.random.Generator) -> pd.DataFrame:
    counts = _largest_remainder(np.ones(len(sls)), params.n_procedures, minimum=2)
    rows = []
    for s, (sl, k) in enumerate(zip(sls, counts)):
        catalog = list(sl.procedures)
        for j in range(k):
            if j < len(catalog):
                code, name, base, equip, kind = catalog[j]
            else:
                # more procedures than the catalog lists: local variants of catalog entries
                _, name0, base0, equip, kind = catalog[j % len(catalog)]
                variant = j // len(catalog)
                code = f"L{s:02d}{j:03d}"
                name = f"{name0}, variant {variant}"
                base = float(base0) * float(np.exp(rng.normal(0.1, 0.15)))
            # the catalog lists surgical time plus a little; room time adds induction and emergence
            room = ROOM_TIME_SCALE * float(base) + ROOM_TIME_OVERHEAD_MINUTES
            rows.append((code, name, sl.name, s, round(room, 1), equip, kind, j))
    procs = pd.DataFrame(rows, columns=["procedure_code", "procedure_name", "service_line", "sl_idx",
                                        "base_minutes", "required_equipment", "kind", "rank"])
    if procs["procedure_code"].duplicated().any():
        raise AssertionError("duplicate procedure codes in the catalog")
    n = len(procs)
    lb = np.log(procs["base_minutes"].to_numpy())
    complexity = np.clip(0.1 + 0.8 * (lb - np.log(20)) / (np.log(420) - np.log(20))
                         + rng.normal(0, 0.06, n), 0.0, 1.0)
    procs["complexity"] = complexity
    procs["sigma"] = 0.13 + 0.19 * complexity
    procs["equip_mask"] = [sum(_EQ_BIT[e] for e in eq.split(";") if e) for eq in procs["required_equipment"]]
    popularity = (procs["rank"].to_numpy() + 1.0) ** -0.7 * np.exp(rng.normal(0, 0.25, n))
    kind = procs["kind"].to_numpy()
    procs["elective_w"] = popularity * np.select([kind == "E", kind == "B"], [1.0, 0.6], 0.03)
    procs["addon_w"] = np.sqrt(popularity) * np.select([kind == "E", kind == "B"], [0.02, 1.0], 2.5)
    main_only = np.array([sls[s].main_only for s in procs["sl_idx"]])
    rare = (procs["equip_mask"].to_numpy() & (_EQ_BIT["robot"] | _EQ_BIT["hybrid"] | _EQ_BIT["cath"])) > 0
    procs["ambulatory_ok"] = (~main_only) & (~rare) & (kind != "A") & (procs["base_minutes"] <= 160) \
        & (complexity < 0.62)
    return procs


def _build_rooms(params: GeneratorParams) -> pd.DataFrame:
    n_main = min(max(1, round(params.rooms * 0.69)), params.rooms - (params.sites - 1))
    n_other = params.rooms - n_main
    per_site = _largest_remainder(np.ones(params.sites - 1), n_other, minimum=1) if params.sites > 1 \
        else np.zeros(0, dtype=int)
    names = [SITE_NAMES[i] if i < len(SITE_NAMES) else f"Site{i + 1}" for i in range(params.sites)]
    rows = []
    main_caps = ["hybrid;cath;fluoro", "robot;laparoscopy;fluoro"]
    if n_main >= 8:
        main_caps.append("robot;laparoscopy")
    main_caps += ["fluoro", "fluoro", "laparoscopy", "laparoscopy;fluoro", "laparoscopy", "",
                  "laparoscopy", ""]
    for i in range(n_main):
        if n_main == 1:
            caps = ";".join(EQUIPMENT)
        else:
            caps = main_caps[i] if i < len(main_caps) else ("laparoscopy" if i % 2 else "")
        close = "15:30" if (n_main >= 6 and i == n_main - 1) else "17:00"
        rows.append((f"MAIN-OR{i + 1:02d}", names[0], caps, "07:30", close, True))
    amb_caps = ["laparoscopy;fluoro", "laparoscopy", ""]
    for s, k in enumerate(per_site, start=1):
        for i in range(int(k)):
            caps = amb_caps[i] if i < len(amb_caps) else ""
            close = "17:00" if i < 2 else "15:30"
            rows.append((f"{names[s].upper()}-OR{i + 1:02d}", names[s], caps, "07:30", close, False))
    rooms = pd.DataFrame(rows, columns=["room_id", "site", "capabilities", "open_time", "close_time",
                                        "is_main"])
    rooms["cap_mask"] = [sum(_EQ_BIT[e] for e in c.split(";") if e) for c in rooms["capabilities"]]
    rooms["open_min"] = [hhmm_to_minutes(t) for t in rooms["open_time"]]
    rooms["close_min"] = [hhmm_to_minutes(t) for t in rooms["close_time"]]
    return rooms


def _build_surgeons(params: GeneratorParams, sls: list[_ServiceLine], procs: pd.DataFrame,
                    rooms: pd.DataFrame, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    n_sl = len(sls)
    minimum = 2 if params.n_surgeons >= 2 * n_sl else 1
    sizes = _largest_remainder(np.array([sl.block_share for sl in sls]) ** 0.75, params.n_surgeons, minimum)
    sl_idx = np.repeat(np.arange(n_sl), sizes)
    n = len(sl_idx)
    names_perm = rng.permutation(len(_LAST_NAMES))
    initials = rng.choice(list("ABCDEFGHJKLMNPRSTW"), size=n)
    names = []
    for i in range(n):
        last = _LAST_NAMES[names_perm[i % len(_LAST_NAMES)]]
        suffix = "" if i < len(_LAST_NAMES) else f" {i // len(_LAST_NAMES) + 1}"
        names.append(f"Dr. {initials[i]}. {last}{suffix}")
    has_amb = bool((~rooms["is_main"]).any())
    amb_sites = rooms.loc[~rooms["is_main"], "site"].drop_duplicates().tolist()
    home = []
    for i in range(n):
        sl = sls[sl_idx[i]]
        if has_amb and not sl.main_only and rng.random() < 0.3:
            home.append(amb_sites[int(rng.integers(len(amb_sites)))])
        else:
            home.append(rooms["site"].iloc[0])
    effect = rng.normal(0.0, 0.15, n)
    slow = rng.random(n) < 0.10
    effect = effect + slow * 0.22
    drifting = rng.random(n) < 0.25
    drift = drifting * rng.normal(0.0, 0.12, n)            # log-duration change per year
    volume = np.exp(rng.normal(0.0, 0.5, n))
    optimism = rng.normal(-0.09, 0.06, n)                     # log bias of the surgeon's own estimate
    habitual = rng.random(n) < 0.10                           # books the same time whatever the case
    cancel_effect = rng.normal(0.0, 0.35, n)
    history_start = params.today - dt.timedelta(days=params.history_days)
    start = [history_start - dt.timedelta(days=3650)] * n
    n_new = round(0.05 * n) if n >= 20 else 0
    if n_new and params.history_days > 90:
        # a few surgeons joined recently: little history to learn from
        for i in rng.choice(n, size=n_new, replace=False):
            back = int(rng.integers(45, max(46, min(300, params.history_days - 30))))
            start[i] = params.today - dt.timedelta(days=back)
    n_procs = len(procs)
    pref = np.zeros((n, n_procs))
    proc_sl = procs["sl_idx"].to_numpy()
    ew = procs["elective_w"].to_numpy()
    for i in range(n):
        mine = np.flatnonzero(proc_sl == sl_idx[i])
        k = max(2, int(round(rng.uniform(0.45, 0.9) * len(mine))))
        p = ew[mine] / ew[mine].sum()
        chosen = rng.choice(mine, size=min(k, len(mine)), replace=False, p=p)
        pref[i, chosen] = ew[chosen] * rng.gamma(2.0, 0.5, len(chosen))
    interaction = rng.normal(0.0, 0.10, (n, n_procs))
    # the habitual booking: the surgeon's typical case, rounded to the half hour
    typical = np.exp((pref * np.log(procs["base_minutes"].to_numpy())[None, :]).sum(1) / pref.sum(1))
    default_booked = np.maximum(30.0, np.round(typical * np.exp(optimism) / 30.0) * 30.0)
    surgeons = pd.DataFrame({
        "surgeon_id": [f"S{i + 1:03d}" for i in range(n)],
        "service_line": [sls[s].name for s in sl_idx],
        "name": names,
        "home_site": home,
        "sl_idx": sl_idx,
        "effect": effect,
        "drift": drift,
        "volume": volume,
        "optimism": optimism,
        "habitual": habitual,
        "default_booked": default_booked,
        "cancel_effect": cancel_effect,
        "start_date": start,
    })
    return surgeons, pref, interaction


def _build_template(params: GeneratorParams, world: _World, rng: np.random.Generator
                    ) -> list[list[tuple[int, int, int, int, int]]]:
    """Weekly block template: per weekday (0..4) a list of (room, sl, surgeon or -1, start, end)."""
    rooms, procs, sls = world.rooms, world.procs, world.sls
    n_rooms, n_sl = len(rooms), len(sls)
    ew = procs["elective_w"].to_numpy()
    proc_sl = procs["sl_idx"].to_numpy()
    # affinity: the share of a service line's elective mix that can run in a room
    aff = np.zeros((n_sl, n_rooms))
    for s in range(n_sl):
        mine = proc_sl == s
        aff[s] = (world.feasible[:, mine] * ew[mine]).sum(1) / ew[mine].sum()
    is_main = rooms["is_main"].to_numpy()
    rare_mask = _EQ_BIT["robot"] | _EQ_BIT["hybrid"] | _EQ_BIT["cath"]
    rare_room = (rooms["cap_mask"].to_numpy() & rare_mask) > 0
    # open (unblocked) rooms: plain main rooms, kept for add-ons; more on Mondays and Fridays
    plain_main = [r for r in range(n_rooms) if is_main[r] and not rare_room[r]][::-1]
    n_open_base = 0 if n_rooms < 4 else (1 if n_rooms < 12 else 2)
    open_rooms: list[list[int]] = []
    for wd in range(5):
        k = n_open_base if wd in (0, 4) else max(0, n_open_base - 1) if n_rooms >= 12 else n_open_base
        k = min(k, len(plain_main))
        open_rooms.append([plain_main[(wd + j) % len(plain_main)] for j in range(k)] if k else [])
    slots = [(wd, r) for wd in range(5) for r in range(n_rooms) if r not in open_rooms[wd]]
    share = np.array([sl.block_share for sl in sls])
    target = _largest_remainder(share, len(slots), minimum=1 if len(slots) >= n_sl else 0)
    # service lines that need rare equipment choose first, then the main-only ones
    rare_need = np.array([(ew[(proc_sl == s)] * ((procs["equip_mask"].to_numpy()[proc_sl == s] & rare_mask) > 0)
                           ).sum() / ew[proc_sl == s].sum() for s in range(n_sl)])
    order = sorted(range(n_sl), key=lambda s: (-rare_need[s], not sls[s].main_only, -share[s]))
    owner = {}
    per_room_sl = np.zeros((n_rooms, n_sl))
    per_day_sl = np.zeros((5, n_sl))
    jitter = rng.random((n_sl, 5, n_rooms)) * 0.05
    amb_max = np.array([0.0 if sl.main_only else _AMBULATORY_MAX.get(sl.name, 0.3) for sl in sls])
    per_sl_amb = np.zeros(n_sl)

    def score(s: int, wd: int, r: int) -> float:
        a = aff[s, r]
        if a <= 0:
            return -np.inf
        v = a + 0.35 * (per_room_sl[r, s] > 0) - 0.3 * per_day_sl[wd, s] + jitter[s, wd, r]
        if rare_room[r] and per_room_sl[r, s] >= 3:
            v -= 0.6   # share a rare-equipment room between the lines that need it
        if rare_room[r] and rare_need[s] < 0.05:
            v -= 0.8   # do not waste a robot or hybrid room on a line that cannot use it
        return v

    def take(s: int, count: int, main: bool) -> None:
        for _ in range(count):
            free = [(wd, r) for (wd, r) in slots if (wd, r) not in owner and is_main[r] == main]
            if not free:
                return
            best = max(free, key=lambda x: score(s, *x))
            if score(s, *best) == -np.inf:
                return
            owner[best] = s
            per_room_sl[best[1], s] += 1
            per_day_sl[best[0], s] += 1
            per_sl_amb[s] += not main

    # ambulatory rooms first, each line up to its quota, the outpatient lines first; then the
    # main rooms for the rest of every line's target
    amb_order = sorted(range(n_sl), key=lambda s: (-amb_max[s], -share[s]))
    for s in amb_order:
        take(s, int(round(amb_max[s] * target[s])), main=False)
    for s in order:
        take(s, int(target[s] - per_sl_amb[s]), main=True)
    for wd, r in slots:  # leftovers: the line with the biggest deficit that can use the room
        if (wd, r) in owner:
            continue
        cand = [s for s in range(n_sl) if aff[s, r] > 0]
        if cand:
            # spare ambulatory time goes to the outpatient lines first
            s = max(cand, key=lambda s: (is_main[r] or amb_max[s] >= 0.7,
                                         target[s] - per_day_sl[:, s].sum(), -s))
            owner[(wd, r)] = s
            per_day_sl[wd, s] += 1
    # surgeon blocks and half-day splits
    surg = world.surgeons
    established = surg["start_date"].to_numpy() < params.today - dt.timedelta(days=params.history_days)
    template: list[list[tuple[int, int, int, int, int]]] = [[] for _ in range(5)]
    for (wd, r), s in sorted(owner.items()):
        start, end = int(rooms["open_min"].iloc[r]), int(rooms["close_min"].iloc[r])
        pool = np.flatnonzero((surg["sl_idx"].to_numpy() == s) & established)
        used = {e[2] for e in template[wd] if e[2] >= 0}
        pool = np.array([p for p in pool if p not in used], dtype=int)
        u = rng.random()
        if len(pool) >= 2 and u < 0.10 and end - start >= 480:
            mid = start + ((end - start) // 2 // 15) * 15
            w = surg["volume"].to_numpy()[pool]
            a, b = rng.choice(pool, size=2, replace=False, p=w / w.sum())
            template[wd].append((r, s, int(a), start, mid))
            template[wd].append((r, s, int(b), mid, end))
        elif len(pool) >= 1 and u < 0.32:
            w = surg["volume"].to_numpy()[pool]
            a = rng.choice(pool, p=w / w.sum())
            template[wd].append((r, s, int(a), start, end))
        else:
            template[wd].append((r, s, -1, start, end))
    return template
