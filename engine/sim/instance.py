"""A simulation instance: a schedule, its forecasts and the hospital turned into plain arrays per day.

Both engines (the SimPy reference and the vectorised numpy engine) read the same
:class:`SimDay` objects and the same draws, so they simulate exactly the same day.

Per date the instance fixes what does not depend on chance:
- which rooms run: the schedule's rooms, cut to the staffed capacity
  ``min(staffed_rooms, anesthesia_teams) + staffed_rooms_delta``, never below
  ``staffed_rooms_min_share`` of it (the lightest lists by P50
  minutes close first and their cases are cancelled for lack of staff), plus *reserve* rooms:
  staffed capacity the schedule leaves unused (rooms at add-on sites and open time first);
- the elective lists per room in planned-start order, each surgeon's chain of cases in planned
  order (a surgeon is never in two rooms at once: a case waits for the surgeon's previous one);
- the forecast quantiles of each case (log P50/P80/P95), its cancel_prob, planned end and P80 end;
- the add-on model of the day: the forecast mean per service line, the historical dispersion
  of counts, and the historical add-ons (duration, equipment, ready time) to bootstrap from;
- PACU beds ``pacu_beds + pacu_beds_delta``, never below ``pacu_beds_min_share`` of them (and at least 1).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.contract import SCHEDULE_REQUIRED, surgeon_key
from engine.errors import InputError, Problem
from engine.hospital import Hospital
from engine.timeutil import hhmm_to_minutes, room_minutes
from engine.sim.params import SimParams
from engine.sim.rng import entity_key, entity_keys
from engine.sim.scenario import Scenario

log = logging.getLogger(__name__)

Z80, Z95 = 0.8416212335729143, 1.6448536269514722


def _minutes(ts: pd.Series, day: pd.Timestamp) -> np.ndarray:
    return ((pd.to_datetime(ts) - day).dt.total_seconds() / 60.0).to_numpy(dtype=float)


def _equipment(v: object) -> frozenset[str]:
    if not isinstance(v, str):
        return frozenset()
    return frozenset(p.strip().lower() for p in v.split(";") if p.strip())


@dataclass
class Actuals:
    """What really happened (historical replay): used instead of draws where known.

    ``durations``: case_id -> wheels-in to wheels-out minutes; ``cancelled``: case ids cancelled
    for patient or booking reasons (the rest ran, or were cancelled by the day itself and are
    simulated); ``addons``: the day's real add-ons (date, service_line, arrival_min, duration,
    required_equipment, case_id), which replace the add-on draws.
    """

    durations: dict[str, float]
    cancelled: set[str]
    addons: pd.DataFrame
    showed: set[str] = field(default_factory=set)  # not cancelled by patient or booking (ran or hit by the day)


@dataclass
class AddonModel:
    """Historical add-ons to bootstrap from, with each one's equipment class and ready minute."""

    service_line: np.ndarray  # index into the instance's service lines
    duration: np.ndarray
    cls: np.ndarray  # index into classes
    ready_min: np.ndarray
    classes: list[frozenset[str]]
    sites: set[str]
    dispersion: dict[tuple[int, str], float]  # (weekday, service line) -> variance / mean of daily counts


@dataclass
class SimDay:
    date: pd.Timestamp
    rooms: list[str]
    open_min: np.ndarray
    close_min: np.ndarray
    limit_min: np.ndarray  # close + overtime cap: no case starts at or after it
    is_reserve: np.ndarray
    room_keys: np.ndarray
    cap_rooms: int  # staffed capacity: the utilization denominator counts these rooms
    pacu_beds: int
    # electives (scheduled cases in running rooms), index e
    case_ids: list[str]
    case_keys: np.ndarray
    room_idx: np.ndarray
    planned_start: np.ndarray
    planned_end: np.ndarray
    end_p80: np.ndarray
    p50: np.ndarray
    l50: np.ndarray
    s1: np.ndarray  # log-sd between P50 and P80 (also below P50)
    s2: np.ndarray  # log-sd between P80 and P95 (and the tail beyond)
    cancel_prob: np.ndarray
    sl_idx: np.ndarray
    surg_idx: np.ndarray
    surg_prev: np.ndarray  # the surgeon's previous case in planned order, -1 if none
    order: np.ndarray  # all cases in planned order (start, room, case id)
    room_lists: np.ndarray  # (rooms, K) case indices in planned order, -1 padded
    staff_cancelled: np.ndarray  # per service line: cases of rooms closed for lack of staff
    scheduled_by_sl: np.ndarray  # per service line: scheduled cases of the day (incl. staff-cancelled)
    # add-ons
    addon_sl: np.ndarray  # service lines with a forecast
    addon_mean: np.ndarray
    addon_phi: np.ndarray
    addon_allowed: np.ndarray  # (classes, rooms)
    actual_dur: np.ndarray  # NaN where unknown
    actual_cancel: np.ndarray  # -1 unknown, 0 ran, 1 cancelled
    actual_addons: pd.DataFrame | None = None

    @property
    def n_rooms(self) -> int:
        return len(self.rooms)

    @property
    def n_cases(self) -> int:
        return len(self.case_ids)


@dataclass
class SimInstance:
    days: list[SimDay]
    service_lines: list[str]
    prime_start: float
    prime_end: float
    turnover_minutes: float
    pacu_minutes: float
    overtime_cap_minutes: float
    scenario: Scenario
    params: SimParams
    addons: AddonModel
    n_scheduled: int
    n_deferred: int
    notes: list[str] = field(default_factory=list)

    @property
    def n_surgeons(self) -> int:
        return max((int(d.surg_idx.max()) + 1 for d in self.days if d.n_cases), default=0)


# ----------------------------------------------------------------------------- schedule input


def read_schedule_file(path: str | Path) -> pd.DataFrame:
    """Read a schedule.csv (CONTRACTS.md section 2); a missing or unreadable file is an InputError."""
    from engine.plan.schedule_io import read_schedule

    path = Path(path)
    if not path.is_file():
        raise InputError("schedule file not found", file=str(path))
    try:
        head = pd.read_csv(path, dtype=str, nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV: {exc}", file=str(path)) from exc
    missing = [c for c in SCHEDULE_REQUIRED if c not in head.columns]
    if missing:
        raise InputError([Problem(str(path), None, c, "required column is missing") for c in missing])
    try:
        return read_schedule(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"a date or time does not parse: {exc}", file=str(path)) from exc


def validate_schedule(hospital: Hospital, schedule: pd.DataFrame, file: str = "schedule.csv") -> pd.DataFrame:
    """Check a schedule against the hospital; returns it with typed columns or raises InputError."""
    problems: list[Problem] = []
    for c in SCHEDULE_REQUIRED:
        if c not in schedule.columns:
            problems.append(Problem(file, None, c, "required column is missing"))
    if problems:
        raise InputError(problems)
    s = schedule.reset_index(drop=True).copy()
    for col in ("date", "start", "end_p50", "end_p80") + (("planned_end",) if "planned_end" in s.columns else ()):
        if not pd.api.types.is_datetime64_any_dtype(s[col]):
            parsed = pd.to_datetime(s[col], errors="coerce", format="ISO8601")
            for i in np.flatnonzero(parsed.isna() & s[col].notna()):
                problems.append(Problem(file, int(i) + 1, col, f"{s.at[i, col]!r} is not an ISO date/time"))
            s[col] = parsed
    known = set(hospital.cases["case_id"])
    rooms = set(hospital.rooms["room_id"])
    dup = s["case_id"].duplicated(keep="first")
    for i, row in s.iterrows():
        n = int(i) + 1
        cid = row["case_id"]
        if not isinstance(cid, str) or not cid:
            problems.append(Problem(file, n, "case_id", "is empty"))
            continue
        if cid not in known:
            problems.append(Problem(file, n, "case_id", f"case {cid!r} is not in the hospital's cases.csv"))
        if dup.iloc[i]:
            problems.append(Problem(file, n, "case_id", f"case {cid!r} appears more than once"))
        if row["status"] not in ("scheduled", "deferred"):
            problems.append(Problem(file, n, "status", f"{row['status']!r} is not 'scheduled' or 'deferred'"))
        elif row["status"] == "scheduled":
            for col in ("date", "room_id", "start", "end_p50", "end_p80"):
                if pd.isna(row[col]) or row[col] == "":
                    problems.append(Problem(file, n, col, "is empty on a scheduled row"))
            if isinstance(row["room_id"], str) and row["room_id"] and row["room_id"] not in rooms:
                problems.append(Problem(file, n, "room_id", f"room {row['room_id']!r} is not in rooms.csv"))
    if problems:
        raise InputError(problems)
    return s


# ----------------------------------------------------------------------------- add-on model


def service_lines(hospital: Hospital) -> list[str]:
    """The hospital's service lines in a fixed order (the index of every per-line array)."""
    return sorted(set(hospital.surgeons["service_line"].dropna()) | set(hospital.cases["service_line"].dropna()))


def addon_model(hospital: Hospital, as_of: pd.Timestamp, service_lines: list[str], params: SimParams,
                exclude_dates: set | None = None) -> AddonModel:
    """Historical add-ons before ``as_of`` (optionally leaving some dates out) to bootstrap from."""
    c = hospital.cases
    hist = c[(c["surgery_date"] < as_of) & c["urgency"].isin(["urgent", "emergent"])]
    if exclude_dates:
        hist = hist[~hist["surgery_date"].isin(list(exclude_dates))]
    done = hist[(hist["status"] == "completed") & hist["wheels_in"].notna() & hist["wheels_out"].notna()]
    rooms = hospital.rooms.set_index("room_id")
    first_open = min((hhmm_to_minutes(t) for t in rooms["open_time"] if isinstance(t, str)), default=450.0)
    site_of = rooms["site"].to_dict()
    sites = done["room_id"].map(site_of).dropna()
    share = sites.value_counts(normalize=True)
    keep_sites = set(share[share >= params.addon_site_min_share].index) or set(rooms["site"].dropna())
    dur = room_minutes(done, hospital.settings.timezone).to_numpy(dtype=float)
    posted = ((done["booked_at"] - done["surgery_date"]).dt.total_seconds() / 60).to_numpy(dtype=float)
    ready = np.where(np.isfinite(posted), np.maximum(posted, first_open), first_open)
    eq = [_equipment(v) for v in done["required_equipment"]]
    classes = sorted(set(eq), key=lambda s: (len(s), sorted(s)))
    cls_idx = {k: i for i, k in enumerate(classes)}
    sl_idx = {s: i for i, s in enumerate(service_lines)}
    # Dispersion of daily counts per weekday x service line (the forecast gives the mean).
    disp: dict[tuple[int, str], float] = {}
    if len(hist):
        days = pd.date_range(c["surgery_date"].min(), as_of - pd.Timedelta(days=1), freq="D")
        counts = (hist.groupby([hist["surgery_date"], "service_line"]).size().unstack(fill_value=0)
                  .reindex(index=days, fill_value=0))
        for wd in range(7):
            sub = counts[counts.index.day_of_week == wd]
            for sl in counts.columns:
                x = sub[sl].to_numpy(dtype=float)
                m = x.mean() if len(x) else 0.0
                disp[(wd, sl)] = float(max(1.0, x.var(ddof=1) / m)) if len(x) > 1 and m > 0 else 1.0
    keep = np.array([s in sl_idx for s in done["service_line"]], dtype=bool)
    return AddonModel(
        service_line=np.array([sl_idx.get(s, -1) for s in done["service_line"]], dtype=int)[keep],
        duration=dur[keep], cls=np.array([cls_idx[e] for e in eq], dtype=int)[keep] if len(eq) else np.zeros(0, int),
        ready_min=ready[keep], classes=classes, sites=keep_sites, dispersion=disp,
    )


# ----------------------------------------------------------------------------- the instance


def _log_quantiles(p50: np.ndarray, p80: np.ndarray, p95: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    l50 = np.log(np.maximum(p50, 1e-3))
    l80 = np.log(np.maximum(p80, np.exp(l50)))
    s1 = (l80 - l50) / Z80
    l95 = np.where(np.isfinite(p95), np.log(np.maximum(np.nan_to_num(p95, nan=1.0), np.exp(l80))), l80 + s1 * (Z95 - Z80))
    s2 = (l95 - l80) / (Z95 - Z80)
    return l50, s1, s2


def build_instance(
    hospital: Hospital,
    schedule: pd.DataFrame,
    forecasts: pd.DataFrame,
    scenario: Scenario,
    addon_forecast: pd.DataFrame,
    params: SimParams | None = None,
    actuals: Actuals | None = None,
    addons: AddonModel | None = None,
) -> SimInstance:
    """Arrays per date of ``schedule`` (see module docstring). ``addon_forecast`` is the caller's
    (``engine.forecast.addon_forecast_for``; an empty frame: no add-ons), never recomputed here."""
    params = params or SimParams()
    sched = validate_schedule(hospital, schedule)
    settings = hospital.settings
    turnover = settings.turnover_minutes
    pacu_min = settings.pacu_minutes
    cap_min = settings.overtime_cap_minutes
    ps, pe = (float(m) for m in settings.prime_window)
    cases = hospital.cases.set_index("case_id", drop=False)
    scheduled = sched[sched["status"] == "scheduled"]
    f = forecasts.drop_duplicates("case_id").set_index("case_id")
    missing = sorted(set(scheduled["case_id"]) - set(f.index))
    if missing:
        raise InputError(f"no forecast for {len(missing)} scheduled cases, e.g. {missing[:3]}", file="forecasts")
    lines = service_lines(hospital)
    sl_idx = {s: i for i, s in enumerate(lines)}
    dates = sorted(pd.to_datetime(sched["date"].dropna()).dt.normalize().unique())
    if addons is None:
        first = min(dates) if dates else hospital.as_of()
        addons = addon_model(hospital, min(pd.Timestamp(first), hospital.as_of()), lines, params)
    rooms_tab = hospital.rooms.set_index("room_id")
    caps = {r: _equipment(v) for r, v in rooms_tab["capabilities"].items()}
    staffing = hospital.staffing.set_index("date") if len(hospital.staffing) else pd.DataFrame()
    surgeons: dict[str, int] = {}
    notes: list[str] = []
    days = []
    for d in dates:
        d = pd.Timestamp(d)
        day_sched = scheduled[pd.to_datetime(scheduled["date"]).dt.normalize() == d]
        row = staffing.loc[d] if d in staffing.index else None
        staffed = int(min(row["staffed_rooms"], row["anesthesia_teams"])) if row is not None else 0
        cap = int(np.clip(staffed + int(scenario.value("staffed_rooms_delta")), 0, len(rooms_tab)))
        # A shortage is a share of what the day has: a fixed delta must not close a small hospital.
        cap = max(cap, min(math.ceil(float(scenario.value("staffed_rooms_min_share")) * staffed), len(rooms_tab)))
        staffed_beds = int(row["pacu_beds"]) if row is not None else 0
        beds = staffed_beds + int(scenario.value("pacu_beds_delta"))
        beds = max(beds, math.ceil(float(scenario.value("pacu_beds_min_share")) * staffed_beds))
        if beds < 1:
            notes.append(f"{d:%Y-%m-%d}: {beds} PACU beds after the scenario; simulated with 1")
            beds = 1
        p50_all = f["p50"].reindex(day_sched["case_id"]).to_numpy(dtype=float)
        load = pd.Series(p50_all, index=day_sched["room_id"].to_numpy()).groupby(level=0).sum()
        used = sorted(load.index)
        closed: list[str] = []
        if len(used) > cap:
            # The lightest lists close first (ties: the later room id), as a coordinator would.
            ranked = sorted(used, key=lambda r: (load[r], [-ord(ch) for ch in r]))
            closed = ranked[: len(used) - cap]
            notes.append(f"{d:%Y-%m-%d}: {len(used)} rooms scheduled, {cap} staffed: closed {', '.join(closed)}")
        running = [r for r in used if r not in closed]
        blocked_rooms = set(hospital.blocks.loc[hospital.blocks["date"] == d, "room_id"])
        spare = [r for r in rooms_tab.index if r not in used]
        spare.sort(key=lambda r: (rooms_tab.at[r, "site"] not in addons.sites, r in blocked_rooms, r))
        reserve = spare[: max(0, cap - len(used))]
        room_ids = running + reserve
        R = len(room_ids)
        ridx = {r: i for i, r in enumerate(room_ids)}
        open_m = np.array([hhmm_to_minutes(rooms_tab.at[r, "open_time"]) for r in room_ids], dtype=float)
        close_m = np.array([hhmm_to_minutes(rooms_tab.at[r, "close_time"]) for r in room_ids], dtype=float)
        staff_cancel = np.zeros(len(lines), dtype=int)
        by_sl = np.zeros(len(lines), dtype=int)
        for cid in day_sched["case_id"]:
            by_sl[sl_idx[cases.at[cid, "service_line"]]] += 1
        dc = day_sched[day_sched["room_id"].isin(closed)]
        for cid in dc["case_id"]:
            staff_cancel[sl_idx[cases.at[cid, "service_line"]]] += 1
        run = day_sched[day_sched["room_id"].isin(running)].copy()
        run["_start"] = _minutes(run["start"], d)
        run["_end50"] = _minutes(run["end_p50"], d)
        run["_end80"] = _minutes(run["end_p80"], d)
        if "planned_end" in run.columns:
            pend = _minutes(run["planned_end"], d)
            run["_pend"] = np.where(np.isfinite(pend), pend, run["_end50"])
        else:
            run["_pend"] = run["_end50"]
        run["_room"] = run["room_id"].map(ridx)
        run = run.sort_values(["_start", "_room", "case_id"]).reset_index(drop=True)
        cids = run["case_id"].tolist()
        fc = f.loc[cids] if cids else f.iloc[:0]
        p50 = fc["p50"].to_numpy(dtype=float)
        p80 = np.maximum(fc["p80"].to_numpy(dtype=float), p50)
        p95 = fc["p95"].to_numpy(dtype=float) if "p95" in fc.columns else np.full(len(cids), np.nan)
        l50, s1, s2 = _log_quantiles(p50, p80, p95)
        cp = fc["cancel_prob"].to_numpy(dtype=float) if "cancel_prob" in fc.columns else np.zeros(len(cids))
        sgs = []
        for cid in cids:
            sg = surgeon_key(cases.at[cid, "surgeon_id"], cid)
            sgs.append(surgeons.setdefault(sg, len(surgeons)))
        surg = np.array(sgs, dtype=int)
        prev = np.full(len(cids), -1, dtype=int)
        last: dict[int, int] = {}
        for i, s in enumerate(surg):  # run is in planned order
            prev[i] = last.get(s, -1)
            last[s] = i
        room_of = run["_room"].to_numpy(dtype=int)
        K = max((int((room_of == r).sum()) for r in range(R)), default=0)
        lists = np.full((R, max(K, 1)), -1, dtype=int)
        for r in range(R):
            members = np.flatnonzero(room_of == r)
            lists[r, : len(members)] = members
        # Add-ons of the day: forecast mean per service line, historical dispersion.
        fa = addon_forecast[pd.to_datetime(addon_forecast["date"]).dt.normalize() == d] if len(addon_forecast) else addon_forecast
        a_sl, a_mean, a_phi = [], [], []
        for r_ in fa.itertuples():
            if r_.service_line in sl_idx and float(r_.expected_cases) > 0:
                a_sl.append(sl_idx[r_.service_line])
                a_mean.append(float(r_.expected_cases))
                a_phi.append(addons.dispersion.get((d.weekday(), r_.service_line), 1.0))
        is_res = np.array([r in reserve for r in room_ids], dtype=bool)
        site_ok = np.array([rooms_tab.at[r, "site"] in addons.sites for r in room_ids], dtype=bool)
        act_classes = list(addons.classes)
        act_add = None
        if actuals is not None:
            act_add = actuals.addons[pd.to_datetime(actuals.addons["date"]).dt.normalize() == d].copy()
            act_eq = [_equipment(v) for v in act_add["required_equipment"]]
            for e in act_eq:
                if e not in act_classes:
                    act_classes.append(e)
            act_add["cls"] = [act_classes.index(e) for e in act_eq]
            act_add["sl"] = [sl_idx.get(s, 0) for s in act_add["service_line"]]
        capable = np.array([[cl <= caps[r] for r in room_ids] for cl in act_classes], dtype=bool).reshape(len(act_classes), R)
        capable &= site_ok[None, :]
        allowed = capable.copy()
        if params.addon_policy == "reserve" and is_res.any():
            to_reserve = (capable & is_res[None, :]).any(axis=1)
            allowed[to_reserve] &= is_res[None, :]
        if actuals is not None:
            a_dur = np.array([actuals.durations.get(c, np.nan) for c in cids], dtype=float)
            a_can = np.array([1 if c in actuals.cancelled else (0 if c in actuals.durations or c in actuals.showed else -1)
                              for c in cids], dtype=np.int8)
        else:
            a_dur = np.full(len(cids), np.nan)
            a_can = np.full(len(cids), -1, dtype=np.int8)
        days.append(SimDay(
            date=d, rooms=room_ids, open_min=open_m, close_min=close_m, limit_min=close_m + cap_min, is_reserve=is_res,
            room_keys=entity_keys([f"room|{d:%Y-%m-%d}|{r}" for r in room_ids]), cap_rooms=cap, pacu_beds=beds,
            case_ids=cids, case_keys=entity_keys(cids), room_idx=room_of,
            planned_start=run["_start"].to_numpy(dtype=float), planned_end=run["_pend"].to_numpy(dtype=float),
            end_p80=run["_end80"].to_numpy(dtype=float), p50=p50, l50=l50, s1=s1, s2=s2,
            cancel_prob=np.clip(np.nan_to_num(cp), 0.0, 1.0),
            sl_idx=np.array([sl_idx[cases.at[c, "service_line"]] for c in cids], dtype=int),
            surg_idx=surg, surg_prev=prev, order=np.arange(len(cids)), room_lists=lists,
            staff_cancelled=staff_cancel, scheduled_by_sl=by_sl,
            addon_sl=np.array(a_sl, dtype=int), addon_mean=np.array(a_mean, dtype=float),
            addon_phi=np.array(a_phi, dtype=float), addon_allowed=allowed,
            actual_dur=a_dur, actual_cancel=a_can, actual_addons=act_add,
        ))
    for n in notes:
        log.info(n)
    return SimInstance(
        days=days, service_lines=lines, prime_start=ps, prime_end=pe, turnover_minutes=turnover,
        pacu_minutes=pacu_min, overtime_cap_minutes=cap_min, scenario=scenario, params=params, addons=addons,
        n_scheduled=int((sched["status"] == "scheduled").sum()), n_deferred=int((sched["status"] == "deferred").sum()),
        notes=notes,
    )


def addon_group_key(d: pd.Timestamp, service_line: str) -> int:
    return entity_key(f"addon|{d:%Y-%m-%d}|{service_line}")

